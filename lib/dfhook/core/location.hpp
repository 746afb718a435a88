#pragma once

#include <cstddef>
#include <string_view>

namespace dfhook::core {

// A position in a text as people count it: both 1-based, the column in bytes (a tab or a
// multi-byte character counts as its bytes), lines separated by '\n'.
struct LineColumn {
  std::size_t line = 1;
  std::size_t column = 1;

  friend bool operator==(const LineColumn&, const LineColumn&) = default;
};

// The line and column of byte `offset` of `text` (an offset past the end counts as the end).
// `origin` is the position of text[0] when text is a part of a larger input, so that an
// offset within a document of a stream becomes a position within the whole input.
[[nodiscard]] LineColumn line_column(std::string_view text, std::size_t offset,
                                     LineColumn origin = {});

}  // namespace dfhook::core
