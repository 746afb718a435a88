#include "dfhook/core/problem.hpp"

#include <doctest/doctest.h>

using dfhook::core::Parsed;
using dfhook::core::Problem;

TEST_CASE("pointer tokens escape '~' and '/'") {
  std::string pointer;
  dfhook::core::append_pointer_token(pointer, "data");
  dfhook::core::append_pointer_token(pointer, "a/b~c");
  dfhook::core::append_pointer_token(pointer, "");
  CHECK(pointer == "/data/a~1b~0c/");
}

TEST_CASE("quoted values stay on one line and short") {
  using dfhook::core::quote;
  CHECK(quote("abc") == "'abc'");
  CHECK(quote("it's \\") == "'it\\'s \\\\'");
  CHECK(quote("a\nb\tc\x01") == "'a\\nb\\tc\\x01'");
  CHECK(quote(std::string(100, 'x')) == "'" + std::string(60, 'x') + "...'");
  // A cut never splits a UTF-8 sequence: é at bytes 59..60 is dropped whole.
  CHECK(quote(std::string(59, 'x') + "\xC3\xA9" + "yyy") == "'" + std::string(59, 'x') + "...'");
}

TEST_CASE("a parsed outcome holds a value or a problem") {
  const Parsed<int> ok(42);
  CHECK(ok.ok());
  CHECK(ok.value() == 42);
  const Parsed<int> bad(Problem{"/a", 3, "wrong"});
  CHECK_FALSE(bad);
  CHECK(bad.problem().pointer == "/a");
  CHECK(bad.problem().offset == 3);
}
