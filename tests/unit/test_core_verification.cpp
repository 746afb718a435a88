#include "dfhook/core/verification.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using dfhook::core::DocumentStream;
using dfhook::core::Envelope;
using dfhook::core::LineColumn;
using dfhook::core::PreparedDocument;
using dfhook::core::Secret;
using dfhook::core::SecretSet;
using dfhook::core::SignatureCheck;
using dfhook::core::StreamItem;
using dfhook::core::Verdict;
using dfhook::core::VerdictStatus;
using dfhook::core::Verifier;
using dfhook::core::VerifyOptions;

namespace {

constexpr std::string_view k_secret = "test-webhook-secret";
constexpr std::string_view k_seed =
    R"({"project_id":1234,"timestamp":1468447113,"event":"project.datafile_updated","data":{"revision":1,"origin_url":"https://optimizely.s3.amazonaws.com/json/1234.json","cdn_url":"https://cdn.optimizely.com/json/1234.json"}})";
constexpr std::string_view k_seed_signature = "sha1=e8c4e277c194cf9e38f998e1334028645534b7b2";

std::string signature_of(std::string_view body, std::string_view secret = k_secret) {
  return dfhook::core::format_signature(dfhook::core::hmac_sha1(secret, body));
}

// A §6 envelope of `body` with the given X-Hub-Signature headers.
std::string envelope_of(std::string_view body, const std::vector<std::string>& signatures) {
  Envelope envelope;
  envelope.id = "0123456789abcdef";
  envelope.received_at = "2025-12-03T10:00:00.123456Z";
  envelope.remote_addr = "192.0.2.7:43210";
  envelope.method = "POST";
  envelope.path = "/webhooks/optimizely";
  envelope.headers.push_back({"Content-Type", "application/json"});
  for (const std::string& signature : signatures) {
    envelope.headers.push_back({"X-Hub-Signature", signature});
  }
  envelope.body = std::string(body);
  return dfhook::core::serialize_envelope(envelope);
}

std::string signed_envelope(std::string_view body) {
  return envelope_of(body, {signature_of(body)});
}

// Every verdict of `input`, fed in chunks of `chunk` bytes.
std::vector<Verdict> verify_all(std::string_view input, const VerifyOptions& options,
                                std::size_t chunk = 1 << 16) {
  DocumentStream stream;
  Verifier verifier(options);
  std::vector<Verdict> verdicts;
  StreamItem item;
  const auto collect = [&] {
    while (stream.next(item) == DocumentStream::Status::item) {
      Verdict verdict;
      verifier.verify(item, stream.json(), verdict);
      verdicts.push_back(verdict);
    }
  };
  for (std::size_t at = 0; at < input.size(); at += chunk) {
    stream.feed(input.substr(at, chunk));
    collect();
  }
  stream.finish();
  collect();
  return verdicts;
}

Verdict verify_one(std::string_view input, const VerifyOptions& options = {}) {
  const std::vector<Verdict> verdicts = verify_all(input, options);
  REQUIRE(verdicts.size() == 1);
  return verdicts.front();
}

struct WithSecret {
  SecretSet secrets;
  VerifyOptions options;
  explicit WithSecret(std::string_view secret = k_secret,
                      std::optional<std::uint64_t> project = std::nullopt) {
    secrets.add(Secret{std::string(secret), project, "--secret"});
    options.secrets = &secrets;
  }
};

std::string text_of(const Verdict& verdict, std::string_view file = "saved.json") {
  std::string out;
  dfhook::core::append_verdict_text(out, file, verdict);
  return out;
}

std::string json_of(const Verdict& verdict, std::string_view file = "saved.json") {
  std::string out;
  dfhook::core::append_verdict_json(out, file, verdict);
  return out;
}

// The seed payload with one member's value replaced ("revision" → `"1"` …).
std::string seed_with(std::string_view from, std::string_view to) {
  std::string body(k_seed);
  const std::size_t at = body.find(from);
  REQUIRE(at != std::string::npos);
  body.replace(at, from.size(), to);
  return body;
}

void check_invalid(std::string_view input, std::string_view pointer, std::string_view reason,
                   const VerifyOptions& options = {}) {
  const Verdict verdict = verify_one(input, options);
  CHECK(verdict.status == VerdictStatus::invalid);
  CHECK(verdict.pointer == pointer);
  CHECK(verdict.reason == reason);
}

}  // namespace

TEST_CASE("a bare payload without a secret is ok with its signature unchecked") {
  const Verdict verdict = verify_one(k_seed);
  CHECK(verdict.status == VerdictStatus::ok);
  CHECK(verdict.signature == SignatureCheck::unchecked);
  CHECK(verdict.project_id == 1234U);
  CHECK(verdict.revision == 1U);
  CHECK(verdict.event == "project.datafile_updated");
  CHECK(text_of(verdict) ==
        "saved.json:1:1: document 1: ok project=1234 revision=1 signature=unchecked\n");
  CHECK(json_of(verdict) ==
        R"({"file":"saved.json","document":1,"line":1,"column":1,"status":"ok",)"
        R"("event":"project.datafile_updated","project_id":1234,"revision":1,)"
        R"("signature":"unchecked","pointer":null,"reason":null})"
        "\n");
}

TEST_CASE("an envelope's signature is checked over the raw body bytes") {
  WithSecret with;
  SUBCASE("the seed payload") {
    CHECK(signature_of(k_seed) == k_seed_signature);
  }
  SUBCASE("a body with \\/ escapes") {
    const std::string body = seed_with("https://cdn.optimizely.com/json/1234.json",
                                       R"(https:\/\/cdn.optimizely.com\/json\/1234.json)");
    const Verdict verdict = verify_one(signed_envelope(body), with.options);
    CHECK(verdict.status == VerdictStatus::ok);
    CHECK(verdict.signature == SignatureCheck::valid);
    // Signed as decoded JSON instead of raw bytes, it fails.
    CHECK(verify_one(envelope_of(body, {signature_of(k_seed)}), with.options).status ==
          VerdictStatus::invalid);
  }
  SUBCASE("a pretty-printed body with a trailing newline") {
    const std::string body =
        "{\n  \"project_id\": 1234,\n  \"timestamp\": 1468447113,\n  \"event\": "
        "\"project.datafile_updated\",\n  \"data\": {\n    \"revision\": 7,\n    "
        "\"origin_url\": \"https://optimizely.s3.amazonaws.com/json/1234.json\",\n    "
        "\"cdn_url\": \"https://cdn.optimizely.com/json/1234.json\"\n  }\n}\n";
    const Verdict verdict = verify_one(signed_envelope(body), with.options);
    CHECK(verdict.status == VerdictStatus::ok);
    CHECK(verdict.signature == SignatureCheck::valid);
    CHECK(verdict.revision == 7U);
  }
  SUBCASE("non-ASCII, an emoji and U+2028") {
    const std::string body = seed_with(R"("event")",
                                       "\"note\":\"h\xC3\xA9llo \xF0\x9F\x98\x80 "
                                       "\xE2\x80\xA8 \\u00e9\",\"event\"");
    const Verdict verdict = verify_one(signed_envelope(body), with.options);
    CHECK(verdict.status == VerdictStatus::ok);
    CHECK(verdict.signature == SignatureCheck::valid);
  }
}

TEST_CASE("a signature in uppercase hex or with surrounding whitespace verifies") {
  WithSecret with;
  std::string upper(k_seed_signature);
  for (char& c : upper) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  CHECK(verify_one(envelope_of(k_seed, {upper}), with.options).signature == SignatureCheck::valid);
  CHECK(
      verify_one(envelope_of(k_seed, {" \t" + std::string(k_seed_signature) + "  "}), with.options)
          .signature == SignatureCheck::valid);
}

TEST_CASE("a malformed signature header fails cleanly, naming the header") {
  WithSecret with;
  const std::string hex(k_seed_signature.substr(5));
  for (const std::string& value :
       {hex, "sha256=" + hex, "sha1=" + hex.substr(1), "sha1=" + hex + "0",
        "sha1=" + hex.substr(1) + "g", std::string("sha1="), std::string()}) {
    INFO(value);
    const Verdict verdict = verify_one(envelope_of(k_seed, {value}), with.options);
    CHECK(verdict.status == VerdictStatus::invalid);
    CHECK(verdict.signature == SignatureCheck::invalid);
    CHECK(verdict.pointer == "/headers/1/1");
    CHECK(verdict.reason ==
          "X-Hub-Signature " + dfhook::core::quote(value) + " is not 'sha1=' and 40 hex digits");
  }
}

TEST_CASE("a wrong signature is invalid and no computed digest is shown") {
  WithSecret with("another-secret");
  const Verdict verdict = verify_one(signed_envelope(k_seed), with.options);
  CHECK(verdict.status == VerdictStatus::invalid);
  CHECK(verdict.pointer == "/headers/1/1");
  CHECK(verdict.reason == "the signature does not match any secret");
  const std::string computed = signature_of(k_seed, "another-secret");
  CHECK(text_of(verdict).find(computed.substr(5)) == std::string::npos);
  CHECK(json_of(verdict).find(computed.substr(5)) == std::string::npos);
}

TEST_CASE("repeated identical signature headers are one, differing ones fail") {
  WithSecret with;
  const std::string good(k_seed_signature);
  CHECK(verify_one(envelope_of(k_seed, {good, good}), with.options).signature ==
        SignatureCheck::valid);
  const Verdict verdict =
      verify_one(envelope_of(k_seed, {good, signature_of(k_seed, "other")}), with.options);
  CHECK(verdict.status == VerdictStatus::invalid);
  CHECK(verdict.pointer == "/headers/2/1");
  CHECK(verdict.reason == "X-Hub-Signature headers with different values");
}

TEST_CASE("a secret with nothing to check it against is invalid") {
  WithSecret with;
  check_invalid(envelope_of(k_seed, {}), "/headers",
                "no X-Hub-Signature header to check the secret against", with.options);
  check_invalid(k_seed, "",
                "no signature to check the secret against: give --signature, or check the saved "
                "envelope",
                with.options);
}

TEST_CASE("--signature checks a bare payload over the bytes given") {
  WithSecret with;
  with.options.signature = std::string(k_seed_signature);
  CHECK(verify_one(k_seed, with.options).signature == SignatureCheck::valid);

  SUBCASE("the whole input, final newline included") {
    const std::string input = std::string(k_seed) + "\n";
    DocumentStream stream;
    stream.feed(input);
    stream.finish();
    StreamItem item;
    REQUIRE(stream.next(item) == DocumentStream::Status::item);
    PreparedDocument document;
    dfhook::core::prepare_document(item, stream.json(), document);
    document.signed_bytes = input;
    with.options.signature = signature_of(input);
    Verifier verifier(with.options);
    Verdict verdict;
    verifier.judge(document, verdict);
    CHECK(verdict.signature == SignatureCheck::valid);
  }
  SUBCASE("a wrong or malformed one") {
    with.options.signature = signature_of(k_seed, "other");
    check_invalid(k_seed, "", "--signature does not match any secret", with.options);
    with.options.signature = "sha256=abc";
    check_invalid(k_seed, "", "--signature 'sha256=abc' is not 'sha1=' and 40 hex digits",
                  with.options);
  }
}

TEST_CASE("a secret bound to another project is invalid") {
  WithSecret bound(k_secret, 99);
  const std::string envelope = signed_envelope(k_seed);
  const Verdict verdict = verify_one(envelope, bound.options);
  CHECK(verdict.status == VerdictStatus::invalid);
  CHECK(verdict.pointer == "/project_id");
  CHECK(verdict.reason ==
        "signed with the secret from --secret, which is bound to another project");
  CHECK(verdict.at == dfhook::core::line_column(envelope, envelope.find(":1234,") + 1));

  WithSecret same(k_secret, 1234);
  CHECK(verify_one(envelope, same.options).signature == SignatureCheck::valid);
}

TEST_CASE("the payload rules reject each fault with the field's pointer") {
  check_invalid(seed_with("\"event\"", "\"ev\xFFnt\""), "", "invalid UTF-8");
  check_invalid(seed_with("\"timestamp\"", "\"event\":\"x\",\"timestamp\""), "/event",
                "duplicate member name 'event'");
  check_invalid(seed_with(R"("revision":1)", R"("revision":NaN)"), "/data/revision",
                "NaN and Infinity are not JSON numbers");
  check_invalid(seed_with(R"("revision":1)", R"("revision":18446744073709551617)"),
                "/data/revision", "integer '18446744073709551617' does not fit in 64 bits");
  check_invalid(seed_with(R"("revision":1)", R"("revision":"1")"), "/data/revision",
                "expected an integer, found a string");
  check_invalid(seed_with(R"("revision":1,)", ""), "/data/revision", "missing required field");
  check_invalid(seed_with(R"("project_id":1234)", R"("project_id":true)"), "/project_id",
                "expected an integer, found a boolean");
  check_invalid(seed_with(R"("timestamp":1468447113,)", ""), "/timestamp",
                "missing required field");
  std::string deep(65, '[');
  deep += std::string(65, ']');
  const Verdict too_deep = verify_one(seed_with(R"("revision":1)", R"("revision":1,"x":)" + deep));
  CHECK(too_deep.status == VerdictStatus::invalid);
  CHECK(too_deep.pointer.substr(0, 10) == "/data/x/0/");
  CHECK(too_deep.reason == "nesting deeper than 64 levels");
}

TEST_CASE("trailing bytes after an envelope's body are rejected at their place") {
  const std::string body = std::string(k_seed) + " x";
  const std::string envelope = envelope_of(body, {});
  const Verdict verdict = verify_one(envelope);
  CHECK(verdict.status == VerdictStatus::invalid);
  CHECK(verdict.reason == "unexpected data after the document");
  CHECK(verdict.at == dfhook::core::line_column(envelope, envelope.find(" x\"") + 1));
}

TEST_CASE("a problem inside an envelope's body is located in the envelope") {
  const std::string body = seed_with(R"("revision":1)", R"("revision":"1")");
  const std::string envelope = "\n\n" + envelope_of(body, {});
  const Verdict verdict = verify_one(envelope);
  CHECK(verdict.pointer == "/data/revision");
  const std::size_t at = envelope.find(R"(\"1\")");
  CHECK(verdict.at == dfhook::core::line_column(envelope, at));
  CHECK(verdict.at.line == 3);
}

TEST_CASE("a project id above 2^31 is fine") {
  const Verdict verdict =
      verify_one(seed_with(R"("project_id":1234)", R"("project_id":10847551550)"));
  CHECK(verdict.status == VerdictStatus::ok);
  CHECK(verdict.project_id == 10847551550U);
}

TEST_CASE("another event with array data is ok, ignored") {
  const std::string body =
      R"({"project_id":1234,"timestamp":1468447113,"event":"project.flag_updated","data":[{"id":1}]})";
  const Verdict verdict = verify_one(body);
  CHECK(verdict.status == VerdictStatus::ignored);
  CHECK(text_of(verdict) ==
        "saved.json:1:1: document 1: ok (ignored event \"project.flag_updated\")\n");
  CHECK(
      json_of(verdict) ==
      R"({"file":"saved.json","document":1,"line":1,"column":1,"status":"ignored",)"
      R"("event":"project.flag_updated","project_id":1234,"revision":null,)"
      R"("signature":"unchecked","pointer":null,"reason":"event 'project.flag_updated' is not handled"})"
      "\n");
  WithSecret with;
  CHECK(verify_one(signed_envelope(body), with.options).status == VerdictStatus::ignored);
  CHECK(verify_one(envelope_of(body, {signature_of(body, "x")}), with.options).status ==
        VerdictStatus::invalid);
}

TEST_CASE("one bad document in the middle of a stream is reported and the rest checked") {
  const std::string input = std::string(k_seed) + "\n" +
                            seed_with(R"("revision":1)", R"("revision":"1")") + "\n" +
                            R"({"project_id":1234,"timestamp":)" + "\n" + std::string(k_seed) +
                            "\n" + signed_envelope(k_seed) + "\n";
  for (const std::size_t chunk : {std::size_t{1} << 16, std::size_t{7}}) {
    INFO("chunk " << chunk);
    const std::vector<Verdict> verdicts = verify_all(input, {}, chunk);
    REQUIRE(verdicts.size() == 5);
    CHECK(verdicts[0].status == VerdictStatus::ok);
    CHECK(verdicts[1].status == VerdictStatus::invalid);
    CHECK(verdicts[1].number == 2);
    CHECK(verdicts[1].at == LineColumn{2, k_seed.find(R"("revision":1)") + 12});
    CHECK(verdicts[2].status == VerdictStatus::invalid);
    // The cut document goes on at the next line, so its syntax error shows on line 5; reading
    // resumes at line 4, the next line that starts with '{'.
    CHECK(verdicts[2].at.line == 5);
    CHECK(verdicts[3].status == VerdictStatus::ok);
    CHECK(verdicts[3].at == LineColumn{4, 1});
    CHECK(verdicts[4].status == VerdictStatus::ok);
    CHECK(verdicts[4].number == 5);
  }
}

TEST_CASE("--project-id and --max-age make a datafile update invalid") {
  VerifyOptions options;
  options.project_ids = {99, 100};
  check_invalid(k_seed, "/project_id", "project 1234 is not one of --project-id", options);
  options.project_ids.push_back(1234);
  CHECK(verify_one(k_seed, options).status == VerdictStatus::ok);

  options.now = std::chrono::system_clock::time_point(std::chrono::seconds(1468447113 + 300));
  options.max_age = std::chrono::minutes(5);
  CHECK(verify_one(k_seed, options).status == VerdictStatus::ok);
  options.max_age = std::chrono::seconds(299);
  check_invalid(k_seed, "/timestamp", "sent 2016-07-13T21:58:33Z, more than --max-age 299s ago",
                options);

  // A timestamp in the future passes only within the same bound (clock skew), not forever.
  options.now = std::chrono::system_clock::time_point(std::chrono::seconds(1468447113 - 299));
  CHECK(verify_one(k_seed, options).status == VerdictStatus::ok);
  options.now = std::chrono::system_clock::time_point(std::chrono::seconds(1468447113 - 300));
  check_invalid(k_seed, "/timestamp",
                "sent 2016-07-13T21:58:33Z, more than --max-age 299s in the future", options);
}

TEST_CASE("an input without documents has a verdict without a number") {
  const Verdict verdict = dfhook::core::empty_input_verdict();
  CHECK(text_of(verdict, "-") == "-:1:1: invalid: no document\n");
  CHECK(json_of(verdict, "-") ==
        R"({"file":"-","document":null,"line":1,"column":1,"status":"invalid","event":null,)"
        R"("project_id":null,"revision":null,"signature":"unchecked","pointer":"",)"
        R"("reason":"no document"})"
        "\n");
}

TEST_CASE("control characters of the input stay escaped in text output") {
  const Verdict verdict = verify_one(R"({"a\n":1,"a\n":2})");
  CHECK(text_of(verdict) ==
        "saved.json:1:10: document 1: invalid: /a\\x0a: duplicate member "
        "name 'a\\n'\n");
}
