#include "dfhook/core/location.hpp"

#include <algorithm>

namespace dfhook::core {

LineColumn line_column(std::string_view text, std::size_t offset, LineColumn origin) {
  const std::string_view before = text.substr(0, std::min(offset, text.size()));
  const std::size_t last_newline = before.rfind('\n');
  if (last_newline == std::string_view::npos) {
    return {origin.line, origin.column + before.size()};
  }
  const auto newlines = static_cast<std::size_t>(std::count(before.begin(), before.end(), '\n'));
  return {origin.line + newlines, before.size() - last_newline};
}

}  // namespace dfhook::core
