#include "dfhook/core/revision.hpp"

#include <doctest/doctest.h>

#include <string>

using dfhook::core::parse_revision;

TEST_CASE("parses a revision of digits") {
  CHECK(parse_revision("87") == 87U);
  CHECK(parse_revision("0") == 0U);
  CHECK(parse_revision("007") == 7U);
  CHECK(parse_revision("18446744073709551615") == 18446744073709551615ULL);
}

TEST_CASE("rejects anything but digits that fit 64 bits") {
  for (const std::string text : {"", "-1", "+1", " 1", "1 ", "1.0", "1e3", "0x10", "abc",
                                 "18446744073709551616", "99999999999999999999999"}) {
    CAPTURE(text);
    CHECK_FALSE(parse_revision(text));
  }
  CHECK_FALSE(parse_revision(std::string_view("1\0", 2)));
}

TEST_CASE("revisions compare as numbers, not as text") {
  CHECK(*parse_revision("10") > *parse_revision("9"));
  CHECK(*parse_revision("0100") == *parse_revision("100"));
  CHECK(*parse_revision("10000000000") > *parse_revision("4294967295"));
}
