#include "dfhook/core/units.hpp"

#include "dfhook/core/error.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace std::chrono_literals;
using dfhook::core::Error;
using dfhook::core::format_duration;
using dfhook::core::format_size;
using dfhook::core::parse_duration;
using dfhook::core::parse_rate;
using dfhook::core::parse_size;

namespace {

template <typename Fn>
std::string usage_message(Fn fn) {
  try {
    fn();
  } catch (const Error& error) {
    CHECK(error.code() == dfhook::core::ExitCode::usage);
    return error.what();
  }
  FAIL("no error thrown");
  return {};
}

}  // namespace

TEST_CASE("parses durations in ms, s, m and h") {
  CHECK(parse_duration("250ms") == 250ms);
  CHECK(parse_duration("30s") == 30s);
  CHECK(parse_duration("5m") == 5min);
  CHECK(parse_duration("2h") == 2h);
  CHECK(parse_duration("0") == 0ms);
  CHECK(parse_duration("0s") == 0ms);
  CHECK(parse_duration("007s") == 7s);
}

TEST_CASE("rejects a duration without a known unit") {
  CHECK(usage_message([] { (void)parse_duration("5x"); }) ==
        "invalid duration '5x': use a number with ms, s, m or h, e.g. 30s");
  for (const std::string text :
       {"30", "", "s", "-1s", "1.5s", " 30s", "30s ", "30S", "30sec", "1d", "+5s"}) {
    CAPTURE(text);
    CHECK_THROWS_AS((void)parse_duration(text), Error);
  }
}

TEST_CASE("rejects a duration too long for milliseconds") {
  CHECK(parse_duration("2562047788015h") == std::chrono::hours(2562047788015));
  CHECK_THROWS_AS((void)parse_duration("2562047788016h"), Error);
  CHECK_THROWS_AS((void)parse_duration("99999999999999999999ms"), Error);
}

TEST_CASE("parses sizes in bytes, KiB, MiB and GiB") {
  CHECK(parse_size("0") == 0);
  CHECK(parse_size("812") == 812);
  CHECK(parse_size("1KiB") == 1024);
  CHECK(parse_size("64MiB") == 64ULL * 1024 * 1024);
  CHECK(parse_size("2GiB") == 2ULL * 1024 * 1024 * 1024);
  CHECK(parse_size("18446744073709551615") == 18446744073709551615ULL);
}

TEST_CASE("rejects other size units and overflow") {
  CHECK(usage_message([] { (void)parse_size("5MB"); }) ==
        "invalid size '5MB': use a number of bytes or a number with KiB, MiB or GiB, e.g. 64MiB");
  for (const std::string text : {"", "KiB", "1kib", "1 KiB", "1.5MiB", "-1", "1k", "1TiB",
                                 "18446744073709551616", "17179869184GiB"}) {
    CAPTURE(text);
    CHECK_THROWS_AS((void)parse_size(text), Error);
  }
  CHECK(parse_size("17179869183GiB") == 17179869183ULL << 30);
}

TEST_CASE("parses a rate as a whole number per second") {
  CHECK(parse_rate("10") == 10);
  CHECK(parse_rate("0") == 0);
  CHECK(usage_message([] { (void)parse_rate("1.5"); }) ==
        "invalid rate '1.5': use a whole number per second, e.g. 10");
  CHECK_THROWS_AS((void)parse_rate("10/s"), Error);
  CHECK_THROWS_AS((void)parse_rate(""), Error);
}

TEST_CASE("formats sizes with binary units and one decimal") {
  CHECK(format_size(0) == "0 B");
  CHECK(format_size(812) == "812 B");
  CHECK(format_size(1023) == "1023 B");
  CHECK(format_size(1024) == "1.0 KiB");
  CHECK(format_size(12595) == "12.3 KiB");
  CHECK(format_size(4 * 1024 * 1024) == "4.0 MiB");
  CHECK(format_size(258418) == "252.4 KiB");
  CHECK(format_size(1024 * 1024 - 1) == "1.0 MiB");
  CHECK(format_size(5ULL * 1024 * 1024 * 1024 / 4) == "1.2 GiB");
}

TEST_CASE("formats durations with the largest exact unit") {
  CHECK(format_duration(0ms) == "0");
  CHECK(format_duration(250ms) == "250ms");
  CHECK(format_duration(1500ms) == "1500ms");
  CHECK(format_duration(30s) == "30s");
  CHECK(format_duration(5min) == "5m");
  CHECK(format_duration(90s) == "90s");
  CHECK(format_duration(2h) == "2h");
  CHECK(parse_duration(format_duration(1500ms)) == 1500ms);
}
