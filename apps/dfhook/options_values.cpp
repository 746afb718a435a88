#include "options_values.hpp"

#include "dfhook/core/error.hpp"
#include "dfhook/core/units.hpp"

#include <fmt/format.h>

#include <charconv>

namespace dfhook::app {

std::chrono::milliseconds duration_option(std::string_view name, const std::string& value) {
  try {
    return core::parse_duration(value);
  } catch (const core::Error& error) {
    throw core::usage_error(fmt::format("{}: {}", name, error.what()), error.hint());
  }
}

std::uint64_t size_option(std::string_view name, const std::string& value) {
  try {
    return core::parse_size(value);
  } catch (const core::Error& error) {
    throw core::usage_error(fmt::format("{}: {}", name, error.what()), error.hint());
  }
}

mode_t file_mode_option(std::string_view name, const std::string& value) {
  const bool octal = !value.empty() && value.size() <= 4 &&
                     value.find_first_not_of("01234567") == std::string::npos;
  if (!octal || std::stoul(value, nullptr, 8) > 0777) {
    throw core::usage_error(fmt::format("{}: invalid mode '{}'", name, value),
                            "give octal permission bits such as 0644 or 640");
  }
  return static_cast<mode_t>(std::stoul(value, nullptr, 8));
}

CLI::Validator whole_number(std::uint64_t min, std::uint64_t max) {
  return CLI::Validator(
      [min, max](const std::string& value) -> std::string {
        std::uint64_t number = 0;
        const char* end = value.data() + value.size();
        const auto [stop, error] = std::from_chars(value.data(), end, number);
        if (value.empty() || error != std::errc() || stop != end || number < min || number > max) {
          return fmt::format("must be a whole number from {} to {}", min, max);
        }
        return {};
      },
      fmt::format("{}-{}", min, max));
}

}  // namespace dfhook::app
