#include "dfhook/core/envelope.hpp"

#include <doctest/doctest.h>

#include <string>

using dfhook::core::Envelope;
using dfhook::core::EnvelopeBodySource;
using dfhook::core::JsonDocument;
using dfhook::core::parse_envelope;
using dfhook::core::Parsed;
using dfhook::core::Problem;
using dfhook::core::serialize_envelope;

namespace {

constexpr std::string_view k_body =
    R"({"project_id":1234,"timestamp":1468447113,"event":"project.datafile_updated","data":{"revision":1,"origin_url":"https://optimizely.s3.amazonaws.com/json/1234.json","cdn_url":"https://cdn.optimizely.com/json/1234.json"}})";

Envelope sample(std::string body) {
  Envelope envelope;
  envelope.id = "0123456789abcdef";
  envelope.received_at = "2025-12-03T10:00:00.123456Z";
  envelope.remote_addr = "192.0.2.7:43210";
  envelope.method = "POST";
  envelope.path = "/webhooks/optimizely?x=1";
  envelope.headers = {{"Host", "hooks.example.com"},
                      {"Content-Type", "application/json"},
                      {"X-Hub-Signature", "sha1=e8c4e277c194cf9e38f998e1334028645534b7b2"},
                      {"X-Forwarded-For", "198.51.100.1"},
                      {"X-Forwarded-For", "203.0.113.9"}};
  envelope.body = std::move(body);
  return envelope;
}

Envelope round_trip(const Envelope& envelope) {
  const std::string text = serialize_envelope(envelope);
  const Parsed<Envelope> parsed = parse_envelope(text);
  REQUIRE_MESSAGE(parsed.ok(), text << "\n" << (parsed.ok() ? "" : parsed.problem().reason));
  return parsed.value();
}

// The envelope text with `member` ("\"name\":value") in place of the given one.
std::string with_member(std::string_view name, std::string_view value) {
  std::string text = serialize_envelope(sample(std::string(k_body)));
  const std::string key = "\"" + std::string(name) + "\":";
  const std::size_t at = text.find(key);
  REQUIRE(at != std::string::npos);
  JsonDocument document;
  const auto prefix = document.parse_prefix(std::string_view(text).substr(at + key.size()));
  REQUIRE(prefix.framed);
  text.replace(at + key.size(), prefix.end, value);
  return text;
}

Problem problem_of(std::string_view text) {
  const Parsed<Envelope> parsed = parse_envelope(text);
  REQUIRE_MESSAGE(!parsed.ok(), "accepted: " << text);
  return parsed.problem();
}

}  // namespace

TEST_CASE("writes exactly the format of DESIGN §6") {
  Envelope envelope = sample("{\"a\":\"b\"}");
  envelope.headers = {{"Content-Type", "application/json"}, {"X-Hub-Signature", "sha1=00"}};
  CHECK(
      serialize_envelope(envelope) ==
      R"({"dfhook_envelope":1,"id":"0123456789abcdef","received_at":"2025-12-03T10:00:00.123456Z",)"
      R"("remote_addr":"192.0.2.7:43210","method":"POST","path":"/webhooks/optimizely?x=1",)"
      R"("headers":[["Content-Type","application/json"],["X-Hub-Signature","sha1=00"]],)"
      R"("body":"{\"a\":\"b\"}"})");
}

TEST_CASE("round-trips every field, header order and repeats") {
  const Envelope envelope = sample(std::string(k_body));
  const Envelope back = round_trip(envelope);
  CHECK(back.id == envelope.id);
  CHECK(back.received_at == envelope.received_at);
  CHECK(back.remote_addr == envelope.remote_addr);
  CHECK(back.method == envelope.method);
  CHECK(back.path == envelope.path);
  REQUIRE(back.headers.size() == 5);
  for (std::size_t i = 0; i < 5; ++i) {
    CHECK(back.headers[i].name == envelope.headers[i].name);
    CHECK(back.headers[i].value == envelope.headers[i].value);
  }
  CHECK(back.body == envelope.body);
}

TEST_CASE("round-trips bodies byte for byte") {
  const std::string bodies[] = {
      "",
      R"({"url":"https:\/\/cdn.optimizely.com\/json\/1.json"})",  // escaped slashes stay escaped
      "{\"s\":\"line\xE2\x80\xA8separator\xE2\x80\xA9\"}",        // U+2028, U+2029
      std::string("nul\0byte\x01\x1F\x7F\"\\", 13),
      "\xFF\xFE not UTF-8 \xC3",
      "\xED\xA0\x80",  // an encoded surrogate
      "a",
      "ab",
      "abc",
      "abcd",
  };
  for (const std::string& body : bodies) {
    CHECK(round_trip(sample(body)).body == body);
  }
}

TEST_CASE("puts a body that is not valid UTF-8 in body_base64") {
  const std::string text = serialize_envelope(sample(std::string("\xFF\x00\x01", 3)));
  CHECK(text.find(R"("body_base64":"/wAB")") != std::string::npos);
  CHECK(text.find(R"("body":)") == std::string::npos);
  CHECK(serialize_envelope(sample("ok")).find(R"("body":"ok")") != std::string::npos);
}

TEST_CASE("never writes credential headers") {
  Envelope envelope = sample("{}");
  envelope.headers = {{"Authorization", "Bearer t"},
                      {"cookie", "c=1"},
                      {"PROXY-AUTHORIZATION", "Basic x"},
                      {"Accept", "*/*"}};
  const std::string text = serialize_envelope(envelope);
  CHECK(text.find(R"("headers":[["Accept","*/*"]])") != std::string::npos);
  CHECK(text.find("Bearer") == std::string::npos);
  CHECK(text.find("c=1") == std::string::npos);
}

TEST_CASE("replaces bytes that are not UTF-8 in header values") {
  Envelope envelope = sample("{}");
  envelope.headers = {{"User-Agent", "caf\xE9 \xC3\xA9"}};
  CHECK(round_trip(envelope).headers[0].value == "caf\xEF\xBF\xBD \xC3\xA9");
}

TEST_CASE("finds header values case-insensitively, in order") {
  const Envelope envelope = sample("{}");
  const auto values = dfhook::core::header_values(envelope, "x-forwarded-for");
  REQUIRE(values.size() == 2);
  CHECK(values[0] == "198.51.100.1");
  CHECK(values[1] == "203.0.113.9");
  CHECK(dfhook::core::header_values(envelope, "X-HUB-SIGNATURE").size() == 1);
  CHECK(dfhook::core::header_values(envelope, "X-Hub-Signatur").empty());
}

TEST_CASE("tells envelopes from bare payloads") {
  JsonDocument document;
  REQUIRE_FALSE(document.parse(k_body));
  CHECK_FALSE(dfhook::core::is_envelope(document.root()));
  REQUIRE_FALSE(document.parse(R"({"dfhook_envelope":2})"));
  CHECK(dfhook::core::is_envelope(document.root()));
  REQUIRE_FALSE(document.parse("[1]"));
  CHECK_FALSE(dfhook::core::is_envelope(document.root()));
}

TEST_CASE("rejects envelopes that break the format, with the pointer of the member") {
  Problem problem = problem_of(with_member("dfhook_envelope", "2"));
  CHECK(problem.pointer == "/dfhook_envelope");
  CHECK(problem.reason == "unsupported envelope version 2 (this dfhook reads version 1)");
  CHECK(problem_of(with_member("dfhook_envelope", "\"1\"")).reason ==
        "unsupported envelope version a string (this dfhook reads version 1)");
  problem = problem_of(with_member("id", "\"0123456789ABCDEF\""));
  CHECK(problem.pointer == "/id");
  CHECK(problem.reason == "expected 16 lowercase hex digits, found '0123456789ABCDEF'");
  CHECK(problem_of(with_member("id", "\"abc\"")).pointer == "/id");
  problem = problem_of(with_member("method", "1"));
  CHECK(problem.pointer == "/method");
  CHECK(problem.reason == "expected a string, found an integer");
  problem = problem_of(with_member("headers", R"([["A","b"],["C"]])"));
  CHECK(problem.pointer == "/headers/1");
  CHECK(problem.reason == "expected a [name, value] pair of strings, found an array of 1");
  problem = problem_of(with_member("headers", R"([["A",1]])"));
  CHECK(problem.pointer == "/headers/0/1");
  CHECK(problem.reason == "expected a string, found an integer");
  CHECK(problem_of(with_member("headers", R"([["","x"]])")).pointer == "/headers/0/0");
  CHECK(problem_of(with_member("headers", R"({})")).pointer == "/headers");
  problem = problem_of(with_member("body", "{}"));
  CHECK(problem.pointer == "/body");
  CHECK(problem.reason == "expected a string, found an object");
}

TEST_CASE("rejects a missing member or both bodies") {
  Problem problem = problem_of(R"({"dfhook_envelope":1})");
  CHECK(problem.pointer == "/id");
  CHECK(problem.reason == "missing required field");
  problem = problem_of(with_member("body", R"("x","body_base64":"eA==")"));
  CHECK(problem.pointer == "/body_base64");
  CHECK(problem.reason == "an envelope holds either body or body_base64, not both");
  std::string no_body = with_member("body", R"("x")");
  no_body.erase(no_body.find(R"(,"body":"x")"), 11);
  problem = problem_of(no_body);
  CHECK(problem.pointer == "/body");
  CHECK(problem.reason == "missing required field");
}

TEST_CASE("reads body_base64 strictly") {
  const std::string prefix = with_member("body", "0");
  const auto with_base64 = [&](std::string_view value) {
    std::string text = prefix;
    text.replace(text.find(R"("body":0)"), 8,
                 std::string(R"("body_base64":")") + std::string(value) + "\"");
    return text;
  };
  CHECK(parse_envelope(with_base64("")).value().body.empty());
  CHECK(parse_envelope(with_base64("eA==")).value().body == "x");
  CHECK(parse_envelope(with_base64("eHk=")).value().body == "xy");
  CHECK(parse_envelope(with_base64("eHl6")).value().body == "xyz");
  for (const char* bad : {"eA=", "e===", "eA=A", " eA=", R"(eA\n=)", "e!A=", "====", "eA==eA=="}) {
    const Problem problem = problem_of(with_base64(bad));
    CHECK(problem.pointer == "/body_base64");
    CHECK(problem.reason == "invalid base64");
  }
}

TEST_CASE("locates a byte of the body in the envelope's text") {
  const Envelope envelope = sample("{\"a\":\"\xC3\xA9\",\n\"b\":1}");
  const std::string text = serialize_envelope(envelope);
  JsonDocument document;
  REQUIRE_FALSE(document.parse(text));
  Envelope read;
  EnvelopeBodySource source;
  REQUIRE_FALSE(dfhook::core::read_envelope(document.root(), read, &source));
  CHECK_FALSE(source.base64);
  CHECK(text[source.offset] == '"');
  // body: {"a":"é",\n"b":1}  source: "{\"a\":\"é\",\n\"b\":1}"
  const std::size_t b = read.body.find("\"b\"");
  const std::size_t at = dfhook::core::envelope_offset_of_body(text, source, b);
  CHECK(text.substr(at, 4) == "\\\"b\\");
  CHECK(dfhook::core::envelope_offset_of_body(text, source, 0) == source.offset + 1);
  // \u escapes: "\u00e9" is two decoded bytes, a surrogate pair four.
  const std::string escaped = R"({"dfhook_envelope":1,"id":"0123456789abcdef","received_at":"t",)"
                              R"("remote_addr":"a","method":"POST","path":"/","headers":[],)"
                              R"("body":"\u00e9\ud83d\ude00x"})";
  REQUIRE_FALSE(document.parse(escaped));
  REQUIRE_FALSE(dfhook::core::read_envelope(document.root(), read, &source));
  CHECK(read.body == "\xC3\xA9\xF0\x9F\x98\x80x");
  CHECK(escaped.substr(dfhook::core::envelope_offset_of_body(escaped, source, 6), 2) == "x\"");
  CHECK(escaped.substr(dfhook::core::envelope_offset_of_body(escaped, source, 3), 2) == "\\u");
}
