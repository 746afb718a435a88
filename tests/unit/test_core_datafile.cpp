#include "dfhook/core/datafile.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

using dfhook::core::ByteSource;
using dfhook::core::DatafileInfo;
using dfhook::core::k_datafile_max_depth;
using dfhook::core::Parsed;
using dfhook::core::Problem;
using dfhook::core::validate_datafile;

namespace {

std::string read_fixture(const std::string& name) {
  std::ifstream file(std::string(DFHOOK_FIXTURES) + "/" + name, std::ios::binary);
  REQUIRE(file.good());
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

// A valid datafile with every required member, then `extra` members.
std::string datafile(std::string_view extra = {}) {
  std::string text = R"({"version":"4","projectId":"1234","accountId":"10000","revision":"42",)"
                     R"("groups":[],"experiments":[],"events":[],"audiences":[],"attributes":[])";
  if (!extra.empty()) {
    text += ',';
    text += extra;
  }
  text += '}';
  return text;
}

// `text` with the first `from` replaced by `to`.
std::string replaced(std::string text, std::string_view from, std::string_view to) {
  const std::size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), to);
  return text;
}

// Yields the document `chunk` bytes at a time and counts the calls.
class ChunkSource final : public ByteSource {
public:
  ChunkSource(std::string_view bytes, std::size_t chunk) : m_bytes(bytes), m_chunk(chunk) {}

  std::string_view next() override {
    ++calls;
    const std::string_view piece = m_bytes.substr(0, m_chunk);
    m_bytes.remove_prefix(piece.size());
    return piece;
  }

  int calls = 0;

private:
  std::string_view m_bytes;
  std::size_t m_chunk;
};

Problem problem_of(std::string_view text, std::optional<std::string_view> project = std::nullopt) {
  const Parsed<DatafileInfo> result = validate_datafile(text, project);
  REQUIRE_FALSE(result.ok());
  return result.problem();
}

// Checks the problem, and that a document fed one byte at a time fails the same way.
void check_problem(std::string_view text, std::string_view pointer, std::size_t offset,
                   std::string_view reason) {
  CAPTURE(text);
  const Problem problem = problem_of(text);
  CHECK(problem.pointer == pointer);
  CHECK(problem.offset == offset);
  CHECK(problem.reason == reason);
  ChunkSource source(text, 1);
  const Parsed<DatafileInfo> chunked = validate_datafile(source);
  REQUIRE_FALSE(chunked.ok());
  CHECK(chunked.problem().pointer == pointer);
  CHECK(chunked.problem().offset == offset);
  CHECK(chunked.problem().reason == reason);
}

}  // namespace

TEST_CASE("accepts the sample datafiles and reports what they say") {
  const std::string small = read_fixture("datafile-1234-r1.json");
  const Parsed<DatafileInfo> first = validate_datafile(small, "1234");
  REQUIRE(first.ok());
  CHECK(first->version == "4");
  CHECK(first->project_id == "1234");
  CHECK(first->account_id == "10000");
  CHECK(first->revision == 1);
  CHECK_FALSE(first->sdk_key);
  CHECK_FALSE(first->environment_key);
  CHECK(first->size == small.size());

  const std::string large = read_fixture("datafile-TestSdkKey123-r87.json");
  const Parsed<DatafileInfo> second = validate_datafile(large, "10847551550");
  REQUIRE(second.ok());
  CHECK(second->revision == 87);
  CHECK(second->project_id == "10847551550");
  CHECK(second->sdk_key == "TestSdkKey123");
  CHECK(second->environment_key == "production");
  CHECK(second->size == large.size());
}

TEST_CASE("validates a datafile streamed in chunks of any size") {
  const std::string large = read_fixture("datafile-TestSdkKey123-r87.json");
  for (const std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{4096}}) {
    CAPTURE(chunk);
    ChunkSource source(large, chunk);
    const Parsed<DatafileInfo> result = validate_datafile(source, "10847551550");
    REQUIRE(result.ok());
    CHECK(result->revision == 87);
    CHECK(result->sdk_key == "TestSdkKey123");
    CHECK(result->size == large.size());
  }
}

TEST_CASE("accepts versions 2, 3 and 4, optional members and unknown members") {
  for (const char* version : {"2", "3", "4"}) {
    const Parsed<DatafileInfo> result = validate_datafile(
        replaced(datafile(), R"("version":"4")", std::string(R"("version":")") + version + '"'));
    REQUIRE(result.ok());
    CHECK(result->version == version);
  }
  const Parsed<DatafileInfo> result = validate_datafile(datafile(
      R"("featureFlags":[{"id":"1","key":"f"}],"rollouts":[],"typedAudiences":[],)"
      R"("sdkKey":"Key_1","environmentKey":"production","anonymizeIP":true,"botFiltering":false,)"
      R"("integrations":[{"key":"odp","publicKey":"x"}],"future":{"a":[1,2.5e3,null]},)"
      R"("bigNumber":123456789012345678901234567890)"));
  REQUIRE(result.ok());
  CHECK(result->revision == 42);
  CHECK(result->sdk_key == "Key_1");
  CHECK(result->environment_key == "production");
}

TEST_CASE("accepts leading and trailing whitespace and counts it in the size") {
  const std::string text = " \r\n\t" + datafile() + "\n\n";
  const Parsed<DatafileInfo> result = validate_datafile(text);
  REQUIRE(result.ok());
  CHECK(result->size == text.size());
}

TEST_CASE("compares the revision as a 64-bit number") {
  const auto revision_of = [](std::string_view digits) {
    const Parsed<DatafileInfo> result = validate_datafile(
        replaced(datafile(), R"("revision":"42")", R"("revision":")" + std::string(digits) + '"'));
    REQUIRE(result.ok());
    return result->revision;
  };
  CHECK(revision_of("0087") == 87);
  CHECK(revision_of("18446744073709551615") == 18446744073709551615ULL);
}

TEST_CASE("rejects a revision that is not a string of digits") {
  const std::string base = datafile();
  const std::size_t at = base.find(R"("42")");
  check_problem(replaced(base, R"("42")", R"("1.5")"), "/revision", at,
                "expected a string of digits, found '1.5'");
  check_problem(replaced(base, R"("42")", R"("-1")"), "/revision", at,
                "expected a string of digits, found '-1'");
  check_problem(replaced(base, R"("42")", R"("")"), "/revision", at,
                "expected a string of digits, found ''");
  check_problem(replaced(base, R"("42")", R"("18446744073709551616")"), "/revision", at,
                "expected a string of digits, found '18446744073709551616'");
  check_problem(replaced(base, R"("42")", "42"), "/revision", at,
                "expected a string of digits, found a number");
  check_problem(replaced(base, R"("42")", "null"), "/revision", at,
                "expected a string of digits, found null");
}

TEST_CASE("rejects members of the wrong type") {
  const std::string base = datafile();
  check_problem(replaced(base, R"("4")", "4"), "/version", base.find(R"("4")"),
                "expected a string, found a number");
  check_problem(replaced(base, R"("4")", R"("5")"), "/version", base.find(R"("4")"),
                "expected '2', '3' or '4', found '5'");
  check_problem(replaced(base, R"("1234")", "1234"), "/projectId", base.find(R"("1234")"),
                "expected a string, found a number");
  check_problem(replaced(base, R"("10000")", "true"), "/accountId", base.find(R"("10000")"),
                "expected a string, found a boolean");
  check_problem(replaced(base, R"("groups":[])", R"("groups":{})"), "/groups",
                base.find(R"("groups":[])") + 9, "expected an array, found an object");
  check_problem(replaced(base, R"("attributes":[])", R"("attributes":"")"), "/attributes",
                base.find(R"("attributes":[])") + 13, "expected an array, found a string");
  const std::string with_optional = datafile(R"("featureFlags":false)");
  check_problem(with_optional, "/featureFlags", with_optional.find("false"),
                "expected an array, found a boolean");
  const std::string with_key = datafile(R"("sdkKey":["x"])");
  check_problem(with_key, "/sdkKey", with_key.find(R"(["x"])"),
                "expected a string, found an array");
  const std::string with_env = datafile(R"("environmentKey":null)");
  check_problem(with_env, "/environmentKey", with_env.find("null"),
                "expected a string, found null");
}

TEST_CASE("reports a missing required member at the root object") {
  for (const char* member : {"version", "projectId", "accountId", "revision", "groups",
                             "experiments", "events", "audiences", "attributes"}) {
    CAPTURE(member);
    std::string text = datafile();
    const std::size_t at = text.find(std::string("\"") + member + "\"");
    const std::size_t end = text.find_first_of(",}", text.find(':', at) + 1);
    const std::size_t value_end = text[end - 1] == '[' ? end + 1 : end;
    text.erase(at, value_end - at + (text[value_end] == ',' ? 1 : 0));
    if (text[text.size() - 2] == ',') {
      text.erase(text.size() - 2, 1);
    }
    check_problem("\n  " + text, std::string("/") + member, 3, "missing required field");
  }
}

TEST_CASE("checks the project id when one is expected") {
  const std::string text = datafile();
  CHECK(validate_datafile(text, "1234").ok());
  const Problem problem = problem_of(text, "5678");
  CHECK(problem.pointer == "/projectId");
  CHECK(problem.offset == text.find(R"("1234")"));
  CHECK(problem.reason == "expected project '5678', found '1234'");
}

TEST_CASE("the SDK key is not compared with anything") {
  CHECK(validate_datafile(datafile(R"("sdkKey":"SomethingElse")"), "1234").ok());
}

TEST_CASE("rejects a document that is not an object") {
  check_problem("[]", "", 0, "expected an object, found an array");
  check_problem("  \"x\"", "", 2, "expected an object, found a string");
  check_problem("42", "", 0, "expected an object, found a number");
  check_problem("null", "", 0, "expected an object, found null");
  check_problem("", "", 0, "the document is empty");
  check_problem(" \n ", "", 3, "the document is empty");
}

TEST_CASE("rejects a member name given twice at the top level") {
  const std::string text = datafile(R"("revision":"43")");
  check_problem(text, "/revision", text.rfind(R"("revision")"), "duplicate member name 'revision'");
  const std::string unknown = datafile(R"("x":1,"x":2)");
  check_problem(unknown, "/x", unknown.rfind(R"("x")"), "duplicate member name 'x'");
  CHECK(validate_datafile(datafile(R"("nested":{"a":1,"a":2})")).ok());
}

TEST_CASE("rejects bytes after the document") {
  const std::string text = datafile();
  check_problem(text + " x", "", text.size() + 1, "unexpected data after the document");
  check_problem(text + "{}", "", text.size(), "unexpected data after the document");
  check_problem(text + std::string(1, '\0'), "", text.size(), "unexpected data after the document");
}

TEST_CASE("rejects invalid UTF-8 anywhere, at the first bad sequence") {
  const std::string base = datafile(R"("experiments2":[{"key":"caf_"}])");
  const std::size_t at = base.find("caf_") + 3;
  for (const std::string bad : {"\xC3", "\xC0\x80", "\xE0\x80\x80", "\xED\xA0\x80",
                                "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xFF", "\x80"}) {
    CAPTURE(bad);
    check_problem(replaced(base, "caf_", "caf" + bad), "/experiments2/0/key", at, "invalid UTF-8");
  }
  CHECK(
      validate_datafile(replaced(base, "caf_", "caf\xC3\xA9 \xF0\x9F\x9A\x80 \xE2\x80\xA8")).ok());
  check_problem("{\"a\":\"x\xE2\x80", "/a", 7, "invalid UTF-8");
}

TEST_CASE("invalid UTF-8 cut by a chunk boundary fails as it does in one piece") {
  // Found by fuzz_datafile: a lead byte at the end of a chunk used to reach the parser, which
  // reported a syntax error before the next chunk showed the sequence invalid.
  check_problem("{\"version\"\xC8\xC8:\"4\"}", "/version", 10, "invalid UTF-8");
  check_problem("{\"v\":\"\xF0\x9F\x9A\"}", "/v", 6, "invalid UTF-8");
}

TEST_CASE("a UTF-8 sequence split across chunks is read whole") {
  const std::string text = datafile("\"note\":\"\xF0\x9F\x9A\x80\xC3\xA9\"");
  for (std::size_t chunk = 1; chunk < 6; ++chunk) {
    ChunkSource source(text, chunk);
    CHECK(validate_datafile(source).ok());
  }
}

TEST_CASE("rejects NaN and Infinity") {
  for (const char* value : {"NaN", "Infinity", "-Infinity"}) {
    const std::string text = datafile(std::string(R"("x":[1,)") + value + "]");
    CAPTURE(text);
    const Problem problem = problem_of(text);
    CHECK(problem.pointer == "/x/1");
    CHECK(problem.reason == "NaN and Infinity are not JSON numbers");
  }
}

TEST_CASE("rejects nesting deeper than the limit") {
  const std::size_t arrays = k_datafile_max_depth - 1;  // the root object is one level
  const std::string deepest =
      datafile(R"("x":)" + std::string(arrays, '[') + std::string(arrays, ']'));
  CHECK(validate_datafile(deepest).ok());
  const std::string text =
      datafile(R"("x":)" + std::string(arrays + 1, '[') + std::string(arrays + 1, ']'));
  std::string pointer = "/x";
  for (std::size_t i = 0; i < arrays; ++i) {
    pointer += "/0";
  }
  check_problem(text, pointer, text.find('[', text.find("\"x\"")) + arrays,
                "nesting deeper than 256 levels");
  // Far deeper input fails at the limit instead of exhausting the stack.
  CHECK(problem_of(std::string(100000, '[')).reason == "expected an object, found an array");
  CHECK(problem_of("{\"a\":" + std::string(100000, '[')).reason ==
        "nesting deeper than 256 levels");
}

TEST_CASE("a syntax error carries the pointer of where it is") {
  const std::string text = datafile(R"("experiments2":[{"id":"1"},{"id":"2",}])");
  check_problem(text, "/experiments2/1", text.find(",}") + 1,
                "expected a member name in double quotes");
  const std::string missing_comma = datafile(R"("list":[1 2])");
  check_problem(missing_comma, "/list/1", missing_comma.find("1 2") + 2,
                "expected ',' or ']' after an element");
  const std::string escaped = datafile(R"("a/b~":[1,x])");
  check_problem(escaped, "/a~1b~0/1", escaped.find(",x") + 1, "expected a JSON value");
  const std::string control = datafile("\"s\":\"a\tb\"");
  check_problem(control, "/s", control.find('\t'),
                "invalid escape or unescaped control character in a string");
}

TEST_CASE("a cut document ends unexpectedly") {
  const std::string text = datafile();
  check_problem(text.substr(0, text.size() - 1), "", text.size() - 1,
                "unexpected end of the document");
  const std::size_t in_string = text.find("10000") + 2;
  check_problem(text.substr(0, in_string), "/accountId", in_string,
                "unexpected end of the document in a string");
}

TEST_CASE("points at the opening quote of a string with escapes") {
  const std::string text = datafile(R"("k\"\\":1,"k\"\\":2)");
  const Problem problem = problem_of(text);
  CHECK(problem.pointer == "/k\"\\");
  CHECK(problem.offset == text.rfind(R"("k\"\\")"));
  CHECK(problem.reason == "duplicate member name 'k\"\\\\'");
}

TEST_CASE("stops pulling chunks at the first problem") {
  const std::string text = R"({"version":5,)" + std::string(1 << 20, ' ') + datafile().substr(1);
  ChunkSource source(text, 16);
  const Parsed<DatafileInfo> result = validate_datafile(source);
  REQUIRE_FALSE(result.ok());
  CHECK(result.problem().pointer == "/version");
  CHECK(source.calls == 1);
}

TEST_CASE("an exception from the source propagates") {
  class FailingSource final : public ByteSource {
  public:
    std::string_view next() override {
      if (m_sent) {
        throw std::runtime_error("download failed");
      }
      m_sent = true;
      return R"({"version":"4",)";
    }

  private:
    bool m_sent = false;
  };
  FailingSource source;
  CHECK_THROWS_WITH_AS((void)validate_datafile(source), "download failed", std::runtime_error);
}
