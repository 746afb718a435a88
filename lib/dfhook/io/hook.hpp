#pragma once

#include <sys/types.h>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dfhook::io {

// The reload hook run after a datafile was stored (DESIGN §3, --on-update).
struct HookRequest {
  std::string command;                             // run as /bin/sh -c COMMAND
  std::string datafile;                            // DFHOOK_DATAFILE: the datafile's path
  std::uint64_t revision = 0;                      // DFHOOK_REVISION
  std::optional<std::uint64_t> previous_revision;  // DFHOOK_PREVIOUS_REVISION, empty when none
  std::string project_id;                          // DFHOOK_PROJECT_ID, unset when empty
  std::string environment;                         // DFHOOK_ENVIRONMENT, unset when empty
  // After `timeout` (0: no limit) the hook's process group gets SIGTERM, and SIGKILL once
  // `kill_grace` has passed without all of it being gone.
  std::chrono::milliseconds timeout{60'000};
  std::chrono::milliseconds kill_grace{2'000};
};

enum class HookOutcome {
  exited,       // the shell exited by itself: see exit_status
  signaled,     // the shell was killed by a signal not sent by the timeout: see signal
  timed_out,    // the timeout fired and the process group was killed
  not_started,  // /bin/sh could not be started: see error
};

// The most output kept from a hook; the rest is read and dropped.
inline constexpr std::size_t k_hook_output_limit = std::size_t{64} * 1024;

struct HookResult {
  HookOutcome outcome = HookOutcome::not_started;
  int exit_status = -1;  // when exited
  int signal = 0;        // when signaled, or the signal that ended a timed-out hook
  // stdout and stderr as the hook wrote them, interleaved (one pipe), at most
  // k_hook_output_limit bytes; output_truncated when more was written.
  std::string output;
  bool output_truncated = false;
  std::chrono::milliseconds duration{0};
  std::chrono::milliseconds timeout{0};  // the request's timeout, for describe()
  // The shell's pid, which is also the id of the process group the hook runs in.
  pid_t process_group = 0;
  std::string error;  // when not_started: why

  [[nodiscard]] bool ok() const noexcept {
    return outcome == HookOutcome::exited && exit_status == 0;
  }
  // "exited with status 3", "killed by signal 9 (SIGKILL)", "timed out after 60s",
  // "could not start: …": for logs and error messages.
  [[nodiscard]] std::string describe() const;
};

// Runs the hook and waits for it. The shell is started with posix_spawn in a new process
// group, stdin from /dev/null, stdout and stderr into one pipe, no descriptor but 0-2
// inherited, every signal at its default disposition and none blocked. Its environment is
// hook_environment(request, environ).
//
// When the shell exits the result is returned at once, even if a background process it
// started still holds the output pipe (that process is left alone). On timeout the whole
// process group is killed (SIGTERM, then SIGKILL after kill_grace) and the result says
// timed_out. Waiting uses poll(2) on the pipe and a pidfd: no SIGCHLD handler, no change to
// any signal disposition, so it may be called from any thread while others run (several
// hooks may even run at once). Never throws for a failing hook; std::bad_alloc only.
[[nodiscard]] HookResult run_hook(const HookRequest& request);

// The hook's environment: `base` (a NULL-terminated array like environ) without
// DFHOOK_SECRET, DFHOOK_AUTH_TOKEN and any inherited DFHOOK_DATAFILE, DFHOOK_REVISION,
// DFHOOK_PREVIOUS_REVISION, DFHOOK_PROJECT_ID, DFHOOK_ENVIRONMENT, followed by the request's
// values of those five (project and environment only when not empty).
[[nodiscard]] std::vector<std::string> hook_environment(const HookRequest& request,
                                                        const char* const* base);

}  // namespace dfhook::io
