#include "options_values.hpp"

#include "dfhook/core/error.hpp"
#include "dfhook/core/units.hpp"

#include <fmt/format.h>

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

}  // namespace dfhook::app
