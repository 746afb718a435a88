#include "dfhook/io/hook.hpp"

#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <csignal>
#include <cstdlib>
#include <thread>

namespace {

using dfhook::io::HookOutcome;
using dfhook::io::HookRequest;
using dfhook::io::run_hook;
using dfhook::test::read_bytes;
using dfhook::test::TempDir;
using namespace std::chrono_literals;

HookRequest request_for(std::string command) {
  HookRequest request;
  request.command = std::move(command);
  request.datafile = "/srv/datafiles/1234.json";
  request.revision = 42;
  request.previous_revision = 41;
  request.project_id = "10847551550";
  request.environment = "Production";
  request.timeout = 30s;
  return request;
}

// Whether process `pid` ends within `limit` (a zombie counts as ended).
bool ends_within(pid_t pid, std::chrono::milliseconds limit) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) {
    return errno == ESRCH;
  }
  pollfd entry{fd, POLLIN, 0};
  const int ready = ::poll(&entry, 1, static_cast<int>(limit.count()));
  ::close(fd);
  return ready == 1;
}

// Restores an environment variable when the test ends.
class ScopedEnv {
public:
  ScopedEnv(const char* name, const char* value) : m_name(name) {
    if (const char* old = std::getenv(name)) {
      m_old = old;
    }
    ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (m_old) {
      ::setenv(m_name, m_old->c_str(), 1);
    } else {
      ::unsetenv(m_name);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
  const char* m_name;
  std::optional<std::string> m_old;
};

}  // namespace

TEST_CASE("the hook gets the datafile's variables and never the secret or token") {
  const ScopedEnv secret("DFHOOK_SECRET", "s3cret");
  const ScopedEnv token("DFHOOK_AUTH_TOKEN", "t0ken");
  const ScopedEnv stale("DFHOOK_REVISION", "1");
  const ScopedEnv kept("DFHOOK_TEST_KEPT", "yes");
  const auto result = run_hook(request_for("env | grep '^DFHOOK_' | LC_ALL=C sort"));
  CHECK(result.ok());
  CHECK(result.output ==
        "DFHOOK_DATAFILE=/srv/datafiles/1234.json\n"
        "DFHOOK_ENVIRONMENT=Production\n"
        "DFHOOK_PREVIOUS_REVISION=41\n"
        "DFHOOK_PROJECT_ID=10847551550\n"
        "DFHOOK_REVISION=42\n"
        "DFHOOK_TEST_KEPT=yes\n");
}

TEST_CASE("on a first write the previous revision is empty and unknown values are unset") {
  const ScopedEnv stale("DFHOOK_ENVIRONMENT", "Staging");
  HookRequest request = request_for(
      "printf '%s|%s|%s\\n' \"${DFHOOK_PREVIOUS_REVISION-unset}\" \"${DFHOOK_PROJECT_ID-unset}\" "
      "\"${DFHOOK_ENVIRONMENT-unset}\"");
  request.previous_revision.reset();
  request.project_id.clear();
  request.environment.clear();
  const auto result = run_hook(request);
  CHECK(result.ok());
  CHECK(result.output == "|unset|unset\n");
}

TEST_CASE("hook_environment drops secrets and inherited hook variables, keeps the rest") {
  const char* base[] = {"PATH=/usr/bin",
                        "DFHOOK_SECRET=x",
                        "DFHOOK_AUTH_TOKEN=y",
                        "DFHOOK_SECRET_FILE=/etc/f",
                        "DFHOOK_DATAFILE=/old",
                        "HOME=/root",
                        nullptr};
  HookRequest request = request_for("true");
  request.environment.clear();
  CHECK(dfhook::io::hook_environment(request, base) ==
        std::vector<std::string>{"PATH=/usr/bin", "DFHOOK_SECRET_FILE=/etc/f", "HOME=/root",
                                 "DFHOOK_DATAFILE=/srv/datafiles/1234.json", "DFHOOK_REVISION=42",
                                 "DFHOOK_PREVIOUS_REVISION=41", "DFHOOK_PROJECT_ID=10847551550"});
}

TEST_CASE("stdout and stderr are captured in order and the exit status reported") {
  const auto result = run_hook(request_for("echo out; echo err >&2; echo more; exit 3"));
  CHECK(result.outcome == HookOutcome::exited);
  CHECK(result.exit_status == 3);
  CHECK_FALSE(result.ok());
  CHECK(result.output == "out\nerr\nmore\n");
  CHECK_FALSE(result.output_truncated);
  CHECK(result.describe() == "exited with status 3");
}

TEST_CASE("a hook killed by a signal is reported as such") {
  const auto result = run_hook(request_for("kill -KILL $$"));
  CHECK(result.outcome == HookOutcome::signaled);
  CHECK(result.signal == SIGKILL);
  CHECK(result.describe() == "killed by signal 9 (SIGKILL)");
}

TEST_CASE("a hook past its timeout is killed with its whole process group") {
  const TempDir dir;
  HookRequest request =
      request_for("sleep 100 & echo $! > '" + (dir / "grandchild").string() + "'; sleep 100");
  request.timeout = 300ms;
  const auto result = run_hook(request);
  CHECK(result.outcome == HookOutcome::timed_out);
  CHECK(result.signal == SIGTERM);
  CHECK_FALSE(result.ok());
  CHECK(result.describe() == "timed out after 300ms");
  CHECK(result.duration >= 300ms);
  CHECK(result.duration < 10s);
  const pid_t grandchild = std::stoi(read_bytes(dir / "grandchild"));
  CHECK(ends_within(grandchild, 5s));
  CHECK(ends_within(result.process_group, 5s));
}

TEST_CASE("a hook that ignores SIGTERM is killed with SIGKILL after the grace") {
  HookRequest request = request_for("trap '' TERM; echo started; sleep 100");
  request.timeout = 200ms;
  request.kill_grace = 300ms;
  const auto result = run_hook(request);
  CHECK(result.outcome == HookOutcome::timed_out);
  CHECK(result.signal == SIGKILL);
  CHECK(result.output == "started\n");
  CHECK(result.duration >= 500ms);
  CHECK(result.duration < 10s);
}

TEST_CASE("a background process holding the output does not delay the result") {
  const auto result = run_hook(request_for("sleep 100 & echo started"));
  CHECK(result.outcome == HookOutcome::exited);
  CHECK(result.exit_status == 0);
  CHECK(result.output == "started\n");
  CHECK(result.duration < 10s);
  // The hook's background process is its own business; the test cleans it up.
  REQUIRE(result.process_group > 0);
  ::kill(-result.process_group, SIGKILL);
}

TEST_CASE("output beyond the limit is dropped and marked truncated") {
  const auto result = run_hook(request_for("head -c 200000 /dev/zero | tr '\\0' x; echo done"));
  CHECK(result.ok());
  CHECK(result.output.size() == dfhook::io::k_hook_output_limit);
  CHECK(result.output == std::string(dfhook::io::k_hook_output_limit, 'x'));
  CHECK(result.output_truncated);
}

TEST_CASE("the hook reads /dev/null and inherits no descriptor but 0, 1 and 2") {
  const int leaked = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  REQUIRE(leaked > 2);
  // No pipeline: while the shell waits for a simple command it holds no pipe of its own.
  const auto result = run_hook(request_for("cat; ls /proc/$$/fd"));
  ::close(leaked);
  CHECK(result.ok());
  CHECK(result.output == "0\n1\n2\n");
}

TEST_CASE("hooks run from worker threads, several at once") {
  dfhook::io::HookResult first;
  dfhook::io::HookResult second;
  std::thread a([&] { first = run_hook(request_for("sleep 0.2; echo a")); });
  std::thread b([&] { second = run_hook(request_for("echo b; exit 7")); });
  a.join();
  b.join();
  CHECK(first.ok());
  CHECK(first.output == "a\n");
  CHECK(second.exit_status == 7);
  CHECK(second.output == "b\n");
}

TEST_CASE("a zero timeout means no limit") {
  HookRequest request = request_for("sleep 0.1; echo finished");
  request.timeout = 0ms;
  const auto result = run_hook(request);
  CHECK(result.ok());
  CHECK(result.output == "finished\n");
}
