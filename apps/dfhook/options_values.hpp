#pragma once

#include <CLI/CLI.hpp>

#include <sys/types.h>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

// Option values shared by several commands, checked with the option's name in the message
// ("--hook-timeout: …"). Each throws core::usage_error.

namespace dfhook::app {

// A DESIGN §3 duration ("500ms", "30s", "5m", "1h", "0").
[[nodiscard]] std::chrono::milliseconds duration_option(std::string_view name,
                                                        const std::string& value);

// A DESIGN §3 size ("1048576", "64KiB", "1MiB").
[[nodiscard]] std::uint64_t size_option(std::string_view name, const std::string& value);

// Octal permission bits ("0644", "640"), at most 0777.
[[nodiscard]] mode_t file_mode_option(std::string_view name, const std::string& value);

// A CLI11 check that the value is a whole number from `min` to `max`, worded for people
// ("must be a whole number from 1 to 1024"), instead of CLI11's floating-point ranges.
[[nodiscard]] CLI::Validator whole_number(std::uint64_t min, std::uint64_t max);

}  // namespace dfhook::app
