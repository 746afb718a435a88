#include "dfhook/core/error.hpp"

#include <doctest/doctest.h>

using dfhook::core::Error;
using dfhook::core::ExitCode;

TEST_CASE("exit codes keep the numbers of the contract") {
  CHECK(static_cast<int>(ExitCode::ok) == 0);
  CHECK(static_cast<int>(ExitCode::failed) == 1);
  CHECK(static_cast<int>(ExitCode::usage) == 2);
  CHECK(static_cast<int>(ExitCode::lock_timeout) == 3);
  CHECK(static_cast<int>(ExitCode::hook_failed) == 4);
}

TEST_CASE("an error carries its message, hint and exit code") {
  const Error error = dfhook::core::usage_error("'--secret' is empty", "give a non-empty secret");
  CHECK(std::string(error.what()) == "'--secret' is empty");
  CHECK(error.hint() == "give a non-empty secret");
  CHECK(error.code() == ExitCode::usage);
  CHECK(dfhook::core::failure("x").code() == ExitCode::failed);
}
