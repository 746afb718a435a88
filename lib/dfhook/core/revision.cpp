#include "dfhook/core/revision.hpp"

#include <charconv>

namespace dfhook::core {

std::optional<Revision> parse_revision(std::string_view digits) {
  if (digits.empty()) {
    return std::nullopt;
  }
  for (const char c : digits) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
  }
  Revision value = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (error != std::errc() || end != digits.data() + digits.size()) {
    return std::nullopt;
  }
  return value;
}

}  // namespace dfhook::core
