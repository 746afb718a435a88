#include "dfhook/core/json.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using dfhook::core::JsonDocument;
using dfhook::core::JsonType;
using dfhook::core::JsonValue;
using dfhook::core::Problem;

namespace {

// The problem a strict parse of `text` reports; fails the test when it parses.
Problem problem_of(std::string_view text) {
  JsonDocument document;
  std::optional<Problem> problem = document.parse(text);
  REQUIRE_MESSAGE(problem.has_value(), "parsed: " << text);
  return *problem;
}

}  // namespace

TEST_CASE("parses every kind of value with its byte offset") {
  JsonDocument document;
  const std::string text = R"( {"a": [1, -2, 3.5, "x\ny", true, false, null], "b" : {}} )";
  REQUIRE_FALSE(document.parse(text));
  const JsonValue root = document.root();
  CHECK(root.type() == JsonType::object);
  CHECK(root.offset() == 1);
  CHECK(root.size() == 2);
  const JsonValue a = *root.find("a");
  CHECK(a.key() == "a");
  CHECK(a.offset() == 7);
  std::vector<JsonValue> items;
  for (const JsonValue item : a.children()) {
    items.push_back(item);
  }
  REQUIRE(items.size() == 7);
  CHECK(*items[0].uint64() == 1);
  CHECK(items[0].offset() == 8);
  CHECK(*items[1].int64() == -2);
  CHECK_FALSE(items[1].uint64());
  CHECK(items[1].offset() == 11);
  CHECK(items[2].type() == JsonType::number);
  CHECK(items[2].number_text() == "3.5");
  CHECK_FALSE(items[2].int64());
  CHECK(items[3].string() == "x\ny");
  CHECK(items[3].offset() == 20);
  CHECK(items[4].boolean());
  CHECK(items[5].type() == JsonType::boolean);
  CHECK_FALSE(items[5].boolean());
  CHECK(items[6].type() == JsonType::null);
  CHECK(items[6].offset() == 41);
  const JsonValue b = *root.find("b");
  CHECK(b.is_object());
  CHECK(b.size() == 0);
  CHECK(b.offset() == 54);
  CHECK_FALSE(root.find("c"));
}

TEST_CASE("decodes escapes and keeps strings without escapes as they are") {
  JsonDocument document;
  REQUIRE_FALSE(document.parse(R"({"k\u00e9y":"\u20ac \ud83d\ude00 \/ \"","plain":"abc"})"));
  const JsonValue member = *document.root().find("k\xC3\xA9y");
  CHECK(member.string() == "\xE2\x82\xAC \xF0\x9F\x98\x80 / \"");
  CHECK(document.root().find("plain")->string() == "abc");
}

TEST_CASE("reads 64-bit integers at both ends of their range") {
  JsonDocument document;
  REQUIRE_FALSE(document.parse(
      R"([18446744073709551615, 9223372036854775807, -9223372036854775808, 10847551550, -0])"));
  std::vector<JsonValue> items;
  for (const JsonValue item : document.root().children()) {
    items.push_back(item);
  }
  CHECK(*items[0].uint64() == 18446744073709551615ULL);
  CHECK_FALSE(items[0].int64());
  CHECK(*items[1].int64() == 9223372036854775807LL);
  CHECK(*items[2].int64() == INT64_MIN);
  CHECK_FALSE(items[2].uint64());
  CHECK(*items[3].uint64() == 10847551550ULL);
  CHECK(*items[4].uint64() == 0);
}

TEST_CASE("rejects integers that overflow 64 bits with the pointer of the value") {
  const Problem problem = problem_of(R"({"data":{"revision":18446744073709551617}})");
  CHECK(problem.pointer == "/data/revision");
  CHECK(problem.offset == 20);
  CHECK(problem.reason == "integer '18446744073709551617' does not fit in 64 bits");
  CHECK(problem_of("[-9223372036854775809]").pointer == "/0");
}

TEST_CASE("rejects invalid UTF-8 in strings and names") {
  CHECK(problem_of("{\"a\":\"\xFF\"}").reason == "invalid UTF-8");
  CHECK(problem_of("{\"a\":\"\xFF\"}").pointer == "/a");
  CHECK(problem_of("{\"a\":\"\xFF\"}").offset == 6);
  // Overlong '/', an encoded surrogate, a truncated sequence, a name.
  CHECK(problem_of("[\"\xC0\xAF\"]").reason == "invalid UTF-8");
  CHECK(problem_of("[\"\xED\xA0\x80\"]").reason == "invalid UTF-8");
  CHECK(problem_of("[\"\xE2\x82\"]").reason == "invalid UTF-8");
  CHECK(problem_of("{\"\xFE\":1}").reason == "invalid UTF-8");
  CHECK(problem_of("\xEF\xBB\xBF{}").offset == 0);
}

TEST_CASE("rejects escapes of lone surrogates") {
  CHECK(problem_of(R"(["\udc00"])").reason ==
        "string holds a \\u escape of a lone UTF-16 surrogate");
  CHECK(problem_of(R"(["\ud800x"])").reason ==
        "\\u escape of a UTF-16 high surrogate not followed by a low surrogate");
  CHECK(problem_of(R"({"\udfff":1})").pointer == "/\xED\xBF\xBF");
}

TEST_CASE("rejects duplicate names at every level") {
  Problem problem = problem_of(R"({"a":1,"b":2,"a":3})");
  CHECK(problem.pointer == "/a");
  CHECK(problem.offset == 13);
  CHECK(problem.reason == "duplicate member name 'a'");
  problem = problem_of(R"({"x":[{"ok":1},{"y":{"z":1,"z":2}}]})");
  CHECK(problem.pointer == "/x/1/y/z");
  // The same name in sibling or nested objects is fine.
  JsonDocument document;
  CHECK_FALSE(document.parse(R"({"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]})"));
}

TEST_CASE("finds a duplicate among 100000 names without quadratic time") {
  std::string text = "{";
  for (int i = 0; i < 100000; ++i) {
    text += "\"k" + std::to_string(i) + "\":0,";
  }
  text += "\"k99999\":1}";
  const Problem problem = problem_of(text);
  CHECK(problem.pointer == "/k99999");
  CHECK(problem.offset == text.size() - 11);
  // And the same object without the duplicate parses, with many objects of many names.
  text.resize(text.size() - 12);
  text += "}";
  JsonDocument document;
  CHECK_FALSE(document.parse(text));
  CHECK(document.root().size() == 100000);
}

TEST_CASE("rejects bytes after the document") {
  const Problem problem = problem_of("{\"a\":1} \n x");
  CHECK(problem.pointer.empty());
  CHECK(problem.offset == 10);
  CHECK(problem.reason == "unexpected data after the document");
  CHECK(problem_of("{}{}").offset == 2);
  CHECK(problem_of(std::string("{}\0", 3)).offset == 2);
  JsonDocument document;
  CHECK_FALSE(document.parse(" {} \r\n\t"));
}

TEST_CASE("rejects NaN and Infinity") {
  for (const char* text : {R"({"a":NaN})", R"({"a":Infinity})", R"({"a":-Infinity})"}) {
    const Problem problem = problem_of(text);
    CHECK(problem.reason == "NaN and Infinity are not JSON numbers");
    CHECK(problem.pointer == "/a");
    CHECK(problem.offset == 5);
  }
}

TEST_CASE("accepts 64 levels of nesting and rejects 65") {
  JsonDocument document;
  CHECK_FALSE(document.parse(std::string(64, '[') + std::string(64, ']')));
  const Problem problem = problem_of(std::string(65, '[') + std::string(65, ']'));
  CHECK(problem.reason == "nesting deeper than 64 levels");
  CHECK(problem.offset == 64);
  std::string pointer;
  for (int i = 0; i < 64; ++i) {
    pointer += "/0";
  }
  CHECK(problem.pointer == pointer);
  // A hostile depth stops early, without recursing through it.
  CHECK(problem_of(std::string(1000000, '[')).offset == 64);
}

TEST_CASE("reports syntax errors with their offset and pointer") {
  Problem problem = problem_of(R"({"a":[1,2 3]})");
  CHECK(problem.reason == "expected ',' or ']' after an element");
  CHECK(problem.offset == 10);
  CHECK(problem.pointer == "/a/2");
  problem = problem_of(R"({"a":1,})");
  CHECK(problem.reason == "expected a member name in double quotes");
  CHECK(problem.pointer.empty());
  CHECK(problem_of(R"({"a" 1})").reason == "expected ':' after the member name");
  CHECK(problem_of(R"({"a":1 "b":2})").reason == "expected ',' or '}' after a member");
  CHECK(problem_of(R"({"a":tru})").reason == "expected a JSON value");
  CHECK(problem_of(R"({"a":01})").reason == "expected ',' or '}' after a member");
  CHECK(problem_of(R"(["\x"])").reason ==
        "invalid escape or unescaped control character in a string");
  CHECK(problem_of("[\"a\nb\"]").reason ==
        "invalid escape or unescaped control character in a string");
  CHECK(problem_of(R"(["\u12"])").reason == "\\u must be followed by 4 hex digits");
  CHECK(problem_of("[1.]").reason == "expected digits after the decimal point");
  CHECK(problem_of("[1e]").reason == "expected digits in the exponent");
  CHECK(problem_of("[1e999]").reason == "number too big");
  CHECK(problem_of("").reason == "the document is empty");
  CHECK(problem_of("  ").reason == "the document is empty");
  problem = problem_of(R"({"a":{"b":)");
  CHECK(problem.reason == "unexpected end of the document");
  CHECK(problem.offset == 10);
  CHECK(problem.pointer == "/a/b");
  CHECK(problem_of(R"({"a":"abc)").reason == "unexpected end of the document in a string");
}

TEST_CASE("escapes '~' and '/' in pointers") {
  CHECK(problem_of(R"({"a/b":{"c~d":[1e999]}})").pointer == "/a~1b/c~0d/0");
}

TEST_CASE("parse_prefix stops at the end of the first document") {
  JsonDocument document;
  const std::string_view text = R"( {"a":1} {"b":2})";
  const dfhook::core::JsonPrefix prefix = document.parse_prefix(text);
  CHECK_FALSE(prefix.problem);
  CHECK(prefix.framed);
  CHECK(prefix.end == 8);
  CHECK(*document.root().find("a")->uint64() == 1);
}

TEST_CASE("parse_prefix frames a document that breaks a rule but not one with a syntax error") {
  JsonDocument document;
  dfhook::core::JsonPrefix prefix = document.parse_prefix(R"({"a":1,"a":[[2]]} {})");
  REQUIRE(prefix.problem);
  CHECK(prefix.problem->reason == "duplicate member name 'a'");
  CHECK(prefix.framed);
  CHECK(prefix.end == 17);
  prefix = document.parse_prefix(R"({"a":1,"a":2,"b" {})");
  REQUIRE(prefix.problem);
  CHECK(prefix.problem->reason == "duplicate member name 'a'");
  CHECK_FALSE(prefix.framed);
  CHECK(prefix.end == 17);
  prefix = document.parse_prefix(R"({"a":)");
  CHECK_FALSE(prefix.framed);
  CHECK(prefix.end == 5);
}

TEST_CASE("a document can be reused for documents of any size") {
  JsonDocument document;
  std::string big = "[";
  for (int i = 0; i < 1000; ++i) {
    big += "\"\\u00e9" + std::to_string(i) + "\",";
  }
  big += "0]";
  REQUIRE_FALSE(document.parse(big));
  CHECK(document.root().size() == 1001);
  const std::string small = R"({"s":"\u00e9"})";
  REQUIRE_FALSE(document.parse(small));
  CHECK(document.root().find("s")->string() == "\xC3\xA9");
}

TEST_CASE("validates UTF-8 on its own") {
  CHECK(dfhook::core::is_valid_utf8(""));
  CHECK(dfhook::core::is_valid_utf8("a\xC3\xA9\xE2\x80\xA8\xF0\x9F\x98\x80"));
  CHECK(dfhook::core::is_valid_utf8(std::string_view("\0", 1)));
  CHECK_FALSE(dfhook::core::is_valid_utf8("\xC3"));
  CHECK_FALSE(dfhook::core::is_valid_utf8("\x80"));
  CHECK_FALSE(dfhook::core::is_valid_utf8("\xED\xB0\x80"));
  CHECK_FALSE(dfhook::core::is_valid_utf8("\xF4\x90\x80\x80"));
}

TEST_CASE("names JSON types for messages") {
  CHECK(dfhook::core::json_type_name(JsonType::string) == "a string");
  CHECK(dfhook::core::json_type_name(JsonType::object) == "an object");
  CHECK(dfhook::core::json_type_name(JsonType::null) == "null");
}

TEST_CASE("rejects control characters 0x1a..0x1f that RapidJSON's SSE2 scan lets through") {
  // Found by fuzz_document_stream: inside a long string, at any alignment, on every path.
  for (char control = '\x01'; control < '\x20'; ++control) {
    for (std::size_t before = 0; before < 40; ++before) {
      const std::string text =
          "{\"a\":\"" + std::string(before, 'x') + control + std::string(40, 'y') + "\"}";
      INFO("control " << static_cast<int>(control) << " after " << before);
      JsonDocument document;
      const std::optional<Problem> problem = document.parse(text);
      REQUIRE(problem.has_value());
      CHECK(problem->pointer == "/a");
      CHECK(problem->reason == "invalid escape or unescaped control character in a string");
      std::string line = text + "\n";
      line.resize(line.size() + dfhook::core::k_json_padding);
      CHECK(document.parse_prefix_in_place(line.data(), text.size() + 1).problem.has_value());
    }
  }
}

TEST_CASE("checks the encoding of non-ASCII bytes at every alignment of a long document") {
  // The fast paths look at 16 bytes at a time for the plain-ASCII case; a UTF-8 sequence or a
  // stray byte anywhere in a block, or in the tail after the last block, decides on its own.
  for (std::size_t before = 0; before < 40; ++before) {
    INFO("after " << before);
    const std::string head = "{\"a\":\"" + std::string(before, 'x');
    const std::string tail = std::string(40 - before, 'y') + "\"}";
    JsonDocument document;
    REQUIRE_FALSE(document.parse(head + "caf\xC3\xA9 \xF0\x9F\x9A\x80" + tail));
    CHECK(document.root().find("a")->string() == std::string(before, 'x') +
                                                     "caf\xC3\xA9 \xF0\x9F\x9A\x80" +
                                                     std::string(40 - before, 'y'));
    const std::optional<Problem> stray = document.parse(head + "\xC3(" + tail);
    REQUIRE(stray.has_value());
    CHECK(stray->reason == "invalid UTF-8");
    CHECK(stray->offset == head.size());
    // The bytes around the range 0x1a..0x1f are ordinary: 0x20 inside, DEL too.
    REQUIRE_FALSE(document.parse(head + " \x7F" + tail));
  }
}
