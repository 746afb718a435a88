#include "dfhook/core/units.hpp"

#include "dfhook/core/error.hpp"

#include <array>
#include <charconv>
#include <cstdio>
#include <limits>
#include <optional>

namespace dfhook::core {

namespace {

constexpr std::uint64_t k_ms_per_second = 1000;
constexpr std::uint64_t k_ms_per_minute = 60 * k_ms_per_second;
constexpr std::uint64_t k_ms_per_hour = 60 * k_ms_per_minute;

// The leading run of digits and what follows it.
struct Number {
  std::uint64_t value = 0;
  std::string_view unit;
};

// nullopt when `text` does not start with a digit or the digits overflow 64 bits.
std::optional<Number> split_number(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
    ++digits;
  }
  if (digits == 0) {
    return std::nullopt;
  }
  Number number;
  const auto [end, error] = std::from_chars(text.data(), text.data() + digits, number.value);
  if (error != std::errc()) {
    return std::nullopt;
  }
  number.unit = text.substr(digits);
  return number;
}

std::optional<std::uint64_t> multiply(std::uint64_t value, std::uint64_t factor) {
  if (value > std::numeric_limits<std::uint64_t>::max() / factor) {
    return std::nullopt;
  }
  return value * factor;
}

std::string quoted(std::string_view text) {
  std::string out = "'";
  out += text;
  out += '\'';
  return out;
}

}  // namespace

std::chrono::milliseconds parse_duration(std::string_view text) {
  const auto invalid = [&] {
    return usage_error("invalid duration " + quoted(text) +
                       ": use a number with ms, s, m or h, e.g. 30s");
  };
  const std::optional<Number> number = split_number(text);
  if (!number) {
    throw invalid();
  }
  if (number->unit.empty() && number->value == 0) {
    return std::chrono::milliseconds(0);
  }
  std::uint64_t factor = 0;
  if (number->unit == "ms") {
    factor = 1;
  } else if (number->unit == "s") {
    factor = k_ms_per_second;
  } else if (number->unit == "m") {
    factor = k_ms_per_minute;
  } else if (number->unit == "h") {
    factor = k_ms_per_hour;
  } else {
    throw invalid();
  }
  const std::optional<std::uint64_t> ms = multiply(number->value, factor);
  using Rep = std::chrono::milliseconds::rep;
  if (!ms || *ms > static_cast<std::uint64_t>(std::numeric_limits<Rep>::max())) {
    throw invalid();
  }
  return std::chrono::milliseconds(static_cast<Rep>(*ms));
}

std::uint64_t parse_size(std::string_view text) {
  const auto invalid = [&] {
    return usage_error("invalid size " + quoted(text) +
                       ": use a number of bytes or a number with KiB, MiB or GiB, e.g. 64MiB");
  };
  const std::optional<Number> number = split_number(text);
  if (!number) {
    throw invalid();
  }
  std::uint64_t factor = 0;
  if (number->unit.empty()) {
    factor = 1;
  } else if (number->unit == "KiB") {
    factor = std::uint64_t{1} << 10;
  } else if (number->unit == "MiB") {
    factor = std::uint64_t{1} << 20;
  } else if (number->unit == "GiB") {
    factor = std::uint64_t{1} << 30;
  } else {
    throw invalid();
  }
  const std::optional<std::uint64_t> bytes = multiply(number->value, factor);
  if (!bytes) {
    throw invalid();
  }
  return *bytes;
}

std::uint64_t parse_rate(std::string_view text) {
  const std::optional<Number> number = split_number(text);
  if (!number || !number->unit.empty()) {
    throw usage_error("invalid rate " + quoted(text) + ": use a whole number per second, e.g. 10");
  }
  return number->value;
}

std::string format_size(std::uint64_t bytes) {
  if (bytes < 1024) {
    return std::to_string(bytes) + " B";
  }
  static constexpr std::array<const char*, 5> k_units{"KiB", "MiB", "GiB", "TiB", "PiB"};
  // Tenths of the unit, rounded; move up a unit when rounding reaches 1024.0.
  std::size_t unit = 0;
  double value = static_cast<double>(bytes) / 1024.0;
  while (value >= 1023.95 && unit + 1 < k_units.size()) {
    value /= 1024.0;
    ++unit;
  }
  std::array<char, 32> text{};
  std::snprintf(text.data(), text.size(), "%.1f %s", value, k_units[unit]);
  return text.data();
}

std::string format_duration(std::chrono::milliseconds duration) {
  const auto ms = static_cast<std::uint64_t>(duration.count());
  if (duration.count() <= 0) {
    return std::to_string(duration.count()) + (duration.count() == 0 ? "" : "ms");
  }
  if (ms % k_ms_per_hour == 0) {
    return std::to_string(ms / k_ms_per_hour) + "h";
  }
  if (ms % k_ms_per_minute == 0) {
    return std::to_string(ms / k_ms_per_minute) + "m";
  }
  if (ms % k_ms_per_second == 0) {
    return std::to_string(ms / k_ms_per_second) + "s";
  }
  return std::to_string(ms) + "ms";
}

}  // namespace dfhook::core
