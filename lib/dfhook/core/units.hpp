#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

// The value formats of the command line (DESIGN §3): durations, sizes and rates. Parsers take
// the text as given (no surrounding spaces, no sign, no fraction) and throw core::usage_error
// naming the value and saying what to write.

namespace dfhook::core {

// "<n>ms", "<n>s", "<n>m", "<n>h", or "0" alone. Throws core::usage_error
// ("invalid duration '5x': use a number with ms, s, m or h, e.g. 30s"), also when the value
// does not fit in milliseconds.
[[nodiscard]] std::chrono::milliseconds parse_duration(std::string_view text);

// "<n>" bytes, or "<n>KiB", "<n>MiB", "<n>GiB". Throws core::usage_error
// ("invalid size '5MB': use a number of bytes or a number with KiB, MiB or GiB, e.g. 64MiB"),
// also when the value overflows 64 bits.
[[nodiscard]] std::uint64_t parse_size(std::string_view text);

// "<n>" per second. Throws core::usage_error
// ("invalid rate '1.5': use a whole number per second, e.g. 10").
[[nodiscard]] std::uint64_t parse_rate(std::string_view text);

// A human-readable size: "812 B", "12.3 KiB", "4.0 MiB", "1.2 GiB" (binary units, one decimal,
// rounded to nearest).
[[nodiscard]] std::string format_size(std::uint64_t bytes);

// The inverse of parse_duration for messages and help: the largest unit that divides it
// exactly ("30s", "5m", "250ms", "0").
[[nodiscard]] std::string format_duration(std::chrono::milliseconds duration);

}  // namespace dfhook::core
