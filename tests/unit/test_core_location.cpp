#include "dfhook/core/location.hpp"

#include <doctest/doctest.h>

using dfhook::core::line_column;
using dfhook::core::LineColumn;

TEST_CASE("counts lines and byte columns from 1") {
  const std::string_view text = "ab\ncd\n\xC3\xA9x";
  CHECK(line_column(text, 0) == LineColumn{1, 1});
  CHECK(line_column(text, 1) == LineColumn{1, 2});
  CHECK(line_column(text, 2) == LineColumn{1, 3});
  CHECK(line_column(text, 3) == LineColumn{2, 1});
  CHECK(line_column(text, 6) == LineColumn{3, 1});
  // é is two bytes: x is in column 3.
  CHECK(line_column(text, 8) == LineColumn{3, 3});
}

TEST_CASE("an offset past the end is the end") {
  CHECK(line_column("ab\nc", 100) == LineColumn{2, 2});
  CHECK(line_column("", 0) == LineColumn{1, 1});
}

TEST_CASE("a carriage return counts as a byte of its line") {
  CHECK(line_column("a\r\nb", 1) == LineColumn{1, 2});
  CHECK(line_column("a\r\nb", 3) == LineColumn{2, 1});
}

TEST_CASE("positions within a part are shifted by the part's origin") {
  // The part starts at line 5, column 10 of the whole input.
  CHECK(line_column("abc", 2, {5, 10}) == LineColumn{5, 12});
  CHECK(line_column("a\nbc", 3, {5, 10}) == LineColumn{6, 2});
}
