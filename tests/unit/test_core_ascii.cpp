#include "dfhook/core/ascii.hpp"

#include <doctest/doctest.h>

using dfhook::core::iequals;
using dfhook::core::istarts_with;

TEST_CASE("ASCII letters compare without case, every other byte as it is") {
  CHECK(iequals("X-Hub-Signature", "x-hub-SIGNATURE"));
  CHECK_FALSE(iequals("X-Hub-Signature", "X-Hub-Signatur"));
  CHECK_FALSE(iequals("[", "{"));                // 0x5b and 0x7b differ by 0x20 but are not letters
  CHECK_FALSE(iequals("\xc3\x89", "\xc3\xa9"));  // É and é: not ASCII, not folded
  CHECK(istarts_with("Authorization: Bearer x", "authorization:"));
  CHECK_FALSE(istarts_with("Auth", "authorization:"));
  static_assert(iequals("Chunked", "chunked"));
}
