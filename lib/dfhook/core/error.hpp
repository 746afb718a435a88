#pragma once

#include <stdexcept>
#include <string>

namespace dfhook::core {

// The exit status of every command (DESIGN §3). listen uses ok, failed and usage only.
enum class ExitCode : int {
  ok = 0,
  failed = 1,        // the work failed: invalid input, failed download, non-2xx replay
  usage = 2,         // usage error or unreadable input
  lock_timeout = 3,  // the store's lock was not obtained in time
  hook_failed = 4,   // the datafile was updated but the hook failed
};

// The one way an operation fails across layers: a message in the project's format
// ("<input>:<line>:<col>: <what is wrong>", lowercase, values quoted, no final period),
// an optional hint saying what to do, and the exit code the failure maps to.
// Expected outcomes of validating a document are values, not Errors.
class Error : public std::runtime_error {
public:
  explicit Error(ExitCode code, const std::string& message, std::string hint = {});

  [[nodiscard]] ExitCode code() const noexcept { return m_code; }
  [[nodiscard]] const std::string& hint() const noexcept { return m_hint; }

private:
  ExitCode m_code;
  std::string m_hint;
};

// Shorthands for the two most common kinds.
[[nodiscard]] Error usage_error(const std::string& message, std::string hint = {});
[[nodiscard]] Error failure(const std::string& message, std::string hint = {});

}  // namespace dfhook::core
