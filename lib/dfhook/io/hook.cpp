#include "dfhook/io/hook.hpp"

#include "dfhook/core/units.hpp"
#include "dfhook/io/atomic_file.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <string_view>
#include <thread>
#include <utility>

namespace dfhook::io {

namespace {

using SteadyClock = std::chrono::steady_clock;

// Without a pidfd (kernel before 5.3, or a seccomp filter refusing it) the wait falls back to
// polling the pipe with this tick and checking the child in between.
constexpr int k_fallback_tick_ms = 50;

class Fd {
public:
  Fd() noexcept = default;
  explicit Fd(int fd) noexcept : m_fd(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  [[nodiscard]] int get() const noexcept { return m_fd; }
  [[nodiscard]] bool valid() const noexcept { return m_fd >= 0; }
  void reset(int fd = -1) noexcept {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
    m_fd = fd;
  }

private:
  int m_fd = -1;
};

class SpawnSetup {
public:
  SpawnSetup() {
    posix_spawn_file_actions_init(&m_actions);
    posix_spawnattr_init(&m_attributes);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&m_actions);
    posix_spawnattr_destroy(&m_attributes);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  // Returns 0 or the error number of the step that failed.
  int prepare(int output_fd) {
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    int error = 0;
    const auto step = [&](int result) {
      if (error == 0) {
        error = result;
      }
    };
    step(posix_spawn_file_actions_addopen(&m_actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0));
    step(posix_spawn_file_actions_adddup2(&m_actions, output_fd, STDOUT_FILENO));
    step(posix_spawn_file_actions_adddup2(&m_actions, output_fd, STDERR_FILENO));
    // Descriptors another thread opened without O_CLOEXEC (or an flock a daemon started by
    // the hook would keep forever) must not reach the hook.
    step(posix_spawn_file_actions_addclosefrom_np(&m_actions, STDERR_FILENO + 1));
    step(posix_spawnattr_setflags(
        &m_attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF));
    step(posix_spawnattr_setpgroup(&m_attributes, 0));
    // listen blocks or ignores signals (SIGPIPE, the shutdown signals): the hook must not
    // inherit that, ignored dispositions survive exec.
    step(posix_spawnattr_setsigmask(&m_attributes, &none));
    step(posix_spawnattr_setsigdefault(&m_attributes, &all));
    return error;
  }

  [[nodiscard]] const posix_spawn_file_actions_t* actions() const { return &m_actions; }
  [[nodiscard]] const posix_spawnattr_t* attributes() const { return &m_attributes; }

private:
  posix_spawn_file_actions_t m_actions{};
  posix_spawnattr_t m_attributes{};
};

bool is_removed_variable(std::string_view entry) {
  static constexpr std::array<std::string_view, 7> k_removed = {
      "DFHOOK_SECRET",     "DFHOOK_AUTH_TOKEN",        "DFHOOK_DATAFILE",   "DFHOOK_REVISION",
      "DFHOOK_PROJECT_ID", "DFHOOK_PREVIOUS_REVISION", "DFHOOK_ENVIRONMENT"};
  const std::string_view name = entry.substr(0, entry.find('='));
  return std::find(k_removed.begin(), k_removed.end(), name) != k_removed.end();
}

// Whether the child has exited, without reaping it: while it is a zombie its pid, which is
// also the process group id, cannot be reused, so killing the group stays safe.
bool has_exited(pid_t pid) {
  siginfo_t info{};
  for (;;) {
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0) {
      return info.si_pid == pid;
    }
    if (errno != EINTR) {
      return true;  // ECHILD: someone else reaped it
    }
  }
}

int poll_timeout_ms(SteadyClock::time_point now, SteadyClock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
  return static_cast<int>(std::clamp<long long>(left, 0, INT_MAX));
}

class OutputCollector {
public:
  explicit OutputCollector(HookResult& result) : m_result(result) {}

  // Reads what the pipe holds now; false at end of file.
  bool drain(int fd) {
    std::array<char, std::size_t{16} * 1024> buffer{};
    for (;;) {
      const ssize_t got = ::read(fd, buffer.data(), buffer.size());
      if (got > 0) {
        keep(std::string_view(buffer.data(), static_cast<std::size_t>(got)));
        continue;
      }
      if (got == 0) {
        return false;
      }
      if (errno == EINTR) {
        continue;
      }
      return errno == EAGAIN;
    }
  }

private:
  void keep(std::string_view bytes) {
    const std::size_t room = k_hook_output_limit - m_result.output.size();
    if (bytes.size() > room) {
      m_result.output_truncated = true;
      bytes = bytes.substr(0, room);
    }
    m_result.output.append(bytes);
  }

  HookResult& m_result;
};

}  // namespace

std::string HookResult::describe() const {
  switch (outcome) {
  case HookOutcome::exited:
    return fmt::format("exited with status {}", exit_status);
  case HookOutcome::signaled: {
    const char* name = ::sigabbrev_np(signal);
    return name != nullptr ? fmt::format("killed by signal {} (SIG{})", signal, name)
                           : fmt::format("killed by signal {}", signal);
  }
  case HookOutcome::timed_out:
    return fmt::format("timed out after {}", core::format_duration(timeout));
  case HookOutcome::not_started:
    return fmt::format("could not start: {}", error);
  }
  return "unknown";
}

std::vector<std::string> hook_environment(const HookRequest& request, const char* const* base) {
  std::vector<std::string> environment;
  for (const char* const* entry = base; entry != nullptr && *entry != nullptr; ++entry) {
    if (!is_removed_variable(*entry)) {
      environment.emplace_back(*entry);
    }
  }
  environment.push_back("DFHOOK_DATAFILE=" + request.datafile);
  environment.push_back(fmt::format("DFHOOK_REVISION={}", request.revision));
  environment.push_back(
      "DFHOOK_PREVIOUS_REVISION=" +
      (request.previous_revision ? std::to_string(*request.previous_revision) : std::string()));
  if (!request.project_id.empty()) {
    environment.push_back("DFHOOK_PROJECT_ID=" + request.project_id);
  }
  if (!request.environment.empty()) {
    environment.push_back("DFHOOK_ENVIRONMENT=" + request.environment);
  }
  return environment;
}

HookResult run_hook(const HookRequest& request) {
  const auto started = SteadyClock::now();
  HookResult result;
  result.timeout = request.timeout;
  const auto finish = [&]() -> HookResult {
    result.duration =
        std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started);
    return std::move(result);
  };

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    result.error = fmt::format("cannot create a pipe: {}", errno_text(errno));
    return finish();
  }
  Fd output(pipe_fds[0]);
  Fd output_write_end(pipe_fds[1]);

  SpawnSetup setup;
  if (const int error = setup.prepare(output_write_end.get()); error != 0) {
    result.error = fmt::format("cannot prepare posix_spawn: {}", errno_text(error));
    return finish();
  }
  std::vector<std::string> environment = hook_environment(request, environ);
  std::vector<char*> envp;
  envp.reserve(environment.size() + 1);
  for (auto& entry : environment) {
    envp.push_back(entry.data());
  }
  envp.push_back(nullptr);
  std::string shell_name = "sh";
  std::string dash_c = "-c";
  std::string command = request.command;
  char* argv[] = {shell_name.data(), dash_c.data(), command.data(), nullptr};

  pid_t pid = 0;
  const int spawn_error =
      ::posix_spawn(&pid, "/bin/sh", setup.actions(), setup.attributes(), argv, envp.data());
  output_write_end.reset();
  if (spawn_error != 0) {
    result.error = fmt::format("cannot run /bin/sh: {}", errno_text(spawn_error));
    return finish();
  }
  result.process_group = pid;
  ::fcntl(output.get(), F_SETFL, ::fcntl(output.get(), F_GETFL) | O_NONBLOCK);
  const Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  // O_CLOEXEC is implied for pidfds.
  OutputCollector collector(result);

  enum class Phase { running, terminating, killing };
  Phase phase = Phase::running;
  const bool limited = request.timeout.count() > 0;
  const auto deadline = started + request.timeout;
  auto grace_deadline = SteadyClock::time_point::max();
  bool exited = false;
  for (;;) {
    exited = exited || has_exited(pid);
    // A normal end does not wait for the pipe: a background process the hook started may
    // hold it for ever. After a kill, the pipe closing tells that the whole group is gone.
    if (exited && (phase != Phase::terminating || !output.valid())) {
      break;
    }
    const auto now = SteadyClock::now();
    if (phase == Phase::running && limited && now >= deadline) {
      ::kill(-pid, SIGTERM);
      phase = Phase::terminating;
      grace_deadline = now + request.kill_grace;
      continue;
    }
    if (phase == Phase::terminating && now >= grace_deadline) {
      ::kill(-pid, SIGKILL);
      phase = Phase::killing;
      continue;
    }
    int wait_ms = -1;
    if (phase == Phase::running && limited) {
      wait_ms = poll_timeout_ms(now, deadline);
    } else if (phase == Phase::terminating) {
      wait_ms = poll_timeout_ms(now, grace_deadline);
    }
    if (!pidfd.valid() && (wait_ms < 0 || wait_ms > k_fallback_tick_ms)) {
      wait_ms = k_fallback_tick_ms;
    }
    std::array<pollfd, 2> fds{};
    nfds_t count = 0;
    if (pidfd.valid() && !exited) {
      fds[count++] = pollfd{pidfd.get(), POLLIN, 0};
    }
    if (output.valid()) {
      fds[count++] = pollfd{output.get(), POLLIN, 0};
    }
    if (::poll(fds.data(), count, wait_ms) < 0 && errno != EINTR) {
      // Only ENOMEM is possible here: back off instead of spinning.
      std::this_thread::sleep_for(std::chrono::milliseconds(k_fallback_tick_ms));
    }
    if (output.valid() && !collector.drain(output.get())) {
      output.reset();
    }
  }

  if (phase == Phase::terminating) {
    // The shell is gone, the pipe closed: anything of the group still alive ignored SIGTERM
    // and closed its output. The shell is not reaped yet, so its group id is still ours.
    ::kill(-pid, SIGKILL);
  }
  if (output.valid()) {
    collector.drain(output.get());
  }
  int status = 0;
  pid_t reaped = -1;
  do {
    reaped = ::waitpid(pid, &status, 0);
  } while (reaped < 0 && errno == EINTR);
  if (reaped != pid) {
    // Reaped by someone else (a waitpid(-1) elsewhere in the process): the status is lost.
    result.outcome = phase == Phase::running ? HookOutcome::exited : HookOutcome::timed_out;
  } else if (phase != Phase::running) {
    result.outcome = HookOutcome::timed_out;
    result.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    result.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  } else if (WIFSIGNALED(status)) {
    result.outcome = HookOutcome::signaled;
    result.signal = WTERMSIG(status);
  } else {
    result.outcome = HookOutcome::exited;
    result.exit_status = WEXITSTATUS(status);
  }
  return finish();
}

}  // namespace dfhook::io
