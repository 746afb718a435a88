#include "dfhook/io/log.hpp"

#include <doctest/doctest.h>

using dfhook::io::format_log_line;
using dfhook::io::LogFormat;
using dfhook::io::LogLevel;

TEST_CASE("a text line quotes values with spaces and keeps plain ones bare") {
  CHECK(format_log_line(LogFormat::text, LogLevel::info, "T", "update",
                        {{"name", "1234.json"}, {"error", "bad thing"}}) ==
        "T info: update name=1234.json error=\"bad thing\"\n");
}

TEST_CASE("a JSON line escapes control characters and quotes") {
  CHECK(format_log_line(LogFormat::json, LogLevel::warning, "", "a \"b\"\n", {{"k", "\x01"}}) ==
        "{\"level\":\"warning\",\"msg\":\"a \\\"b\\\"\\n\",\"k\":\"\\u0001\"}\n");
}
