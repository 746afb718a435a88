#pragma once

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

}  // namespace dfhook::app
