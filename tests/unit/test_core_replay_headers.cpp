#include "dfhook/core/replay_headers.hpp"

#include <doctest/doctest.h>

using dfhook::core::HeaderArgument;
using dfhook::core::HeaderField;
using dfhook::core::parse_header_argument;
using dfhook::core::replay_headers;
using dfhook::core::SignatureSource;

namespace {

using Headers = std::vector<HeaderField>;

const Headers k_saved{
    {"Host", "hooks.example.com"},
    {"User-Agent", "AHC/2.1"},
    {"Content-Length", "219"},
    {"Content-Type", "application/json"},
    {"X-Hub-Signature", "sha1=e8c4e277c194cf9e38f998e1334028645534b7b2"},
    {"Accept", "*/*"},
    {"X-Forwarded-For", "203.0.113.9"},
    {"Connection", "keep-alive"},
};

HeaderArgument argument(const char* text) {
  std::string error;
  const auto parsed = parse_header_argument(text, error);
  REQUIRE_MESSAGE(parsed.has_value(), error);
  return *parsed;
}

}  // namespace

TEST_CASE("saved headers are kept in order without hop-by-hop and proxy-added ones") {
  const auto out = replay_headers(k_saved, std::nullopt, "", "", {});
  CHECK(out.error.empty());
  CHECK(out.headers == Headers{{"User-Agent", "AHC/2.1"},
                               {"Content-Type", "application/json"},
                               {"X-Hub-Signature", "sha1=e8c4e277c194cf9e38f998e1334028645534b7b2"},
                               {"Accept", "*/*"}});
  CHECK(out.signature == SignatureSource::saved);
}

TEST_CASE("every framing header is dropped whatever its case") {
  const Headers saved{{"transfer-encoding", "chunked"},
                      {"EXPECT", "100-continue"},
                      {"keep-alive", "timeout=5"},
                      {"te", "trailers"},
                      {"Upgrade", "h2c"},
                      {"Trailer", "X"},
                      {"Proxy-Connection", "close"},
                      {"X-Custom", "kept"}};
  const auto out = replay_headers(saved, std::nullopt, "", "", {});
  CHECK(out.headers == Headers{{"X-Custom", "kept"}});
}

TEST_CASE("credentials and forwarding headers are never replayed") {
  const Headers saved{
      {"Authorization", "Bearer x"}, {"cookie", "a=b"},    {"Proxy-Authorization", "Basic y"},
      {"Forwarded", "for=1.2.3.4"},  {"Via", "1.1 proxy"}, {"X-Real-IP", "1.2.3.4"},
      {"x-forwarded-proto", "https"}};
  CHECK(replay_headers(saved, std::nullopt, "", "", {}).headers.empty());
}

TEST_CASE("a fresh signature replaces every saved one at the place of the first") {
  const Headers saved{{"Content-Type", "application/json"},
                      {"X-Hub-Signature", "sha1=1111111111111111111111111111111111111111"},
                      {"User-Agent", "AHC/2.1"},
                      {"x-hub-signature", "sha1=2222222222222222222222222222222222222222"}};
  const auto out = replay_headers(saved, std::string("sha1=fresh"), "", "", {});
  CHECK(out.headers == Headers{{"Content-Type", "application/json"},
                               {"X-Hub-Signature", "sha1=fresh"},
                               {"User-Agent", "AHC/2.1"}});
  CHECK(out.signature == SignatureSource::fresh);
}

TEST_CASE("a fresh signature is added last when none was saved") {
  const auto out = replay_headers({}, std::string("sha1=fresh"), "application/json", "", {});
  CHECK(out.headers ==
        Headers{{"X-Hub-Signature", "sha1=fresh"}, {"Content-Type", "application/json"}});
}

TEST_CASE("repeated saved signatures are all kept without a secret") {
  const Headers saved{{"X-Hub-Signature", "sha1=a"}, {"X-Hub-Signature", "sha1=b"}};
  const auto out = replay_headers(saved, std::nullopt, "", "", {});
  CHECK(out.headers == saved);
  CHECK(out.signature == SignatureSource::saved);
}

TEST_CASE("nothing to sign with and nothing saved means unsigned") {
  const auto out = replay_headers({}, std::nullopt, "application/json", "dfhook/1", {});
  CHECK(out.signature == SignatureSource::none);
  CHECK(out.headers == Headers{{"Content-Type", "application/json"}, {"User-Agent", "dfhook/1"}});
}

TEST_CASE("defaults apply only when the header was not saved") {
  const Headers saved{{"content-type", "application/json; charset=utf-8"},
                      {"user-agent", "Optimizely"}};
  const auto out = replay_headers(saved, std::nullopt, "application/json", "dfhook/1", {});
  CHECK(out.headers == saved);
}

TEST_CASE("a --header overrides every saved header of that name and adds its value last") {
  const Headers saved{{"X-A", "1"}, {"User-Agent", "AHC/2.1"}, {"x-a", "2"}};
  const auto out =
      replay_headers(saved, std::nullopt, "", "", {argument("X-A: 3"), argument("X-B: 4")});
  CHECK(out.headers == Headers{{"User-Agent", "AHC/2.1"}, {"X-A", "3"}, {"X-B", "4"}});
}

TEST_CASE("repeating a --header name sends every value given") {
  const auto out = replay_headers({{"X-A", "0"}}, std::nullopt, "", "",
                                  {argument("X-A: 1"), argument("x-a: 2")});
  CHECK(out.headers == Headers{{"X-A", "1"}, {"x-a", "2"}});
}

TEST_CASE("a --header with no value removes the header, defaults included") {
  const auto out = replay_headers({{"User-Agent", "AHC/2.1"}}, std::nullopt, "application/json",
                                  "dfhook/1", {argument("User-Agent:"), argument("Content-Type:")});
  CHECK(out.headers.empty());
}

TEST_CASE("a --header signature overrides the fresh one and is reported as such") {
  const auto out = replay_headers({}, std::string("sha1=fresh"), "", "",
                                  {argument("X-Hub-Signature: sha1=given")});
  CHECK(out.headers == Headers{{"X-Hub-Signature", "sha1=given"}});
  CHECK(out.signature == SignatureSource::argument);
}

TEST_CASE("removing the signature with --header leaves the delivery unsigned") {
  const auto out = replay_headers({{"X-Hub-Signature", "sha1=a"}}, std::nullopt, "", "",
                                  {argument("X-Hub-Signature:")});
  CHECK(out.signature == SignatureSource::none);
}

TEST_CASE("a saved header with a line break in its value refuses the delivery") {
  const auto out = replay_headers({{"X-A", "1\r\nX-Injected: 1"}}, std::nullopt, "", "", {});
  CHECK(out.error == "saved header 'X-A' has a value with a line break or a NUL byte");
}

TEST_CASE("a saved header with an invalid name refuses the delivery") {
  const auto out = replay_headers({{"Ok", "1"}, {"a b", "1"}}, std::nullopt, "", "", {});
  CHECK(out.error == "saved header 2 has an invalid name 'a b'");
}

TEST_CASE("parse_header_argument trims the value and keeps the name as written") {
  const auto parsed = argument("x-Trace-Id:   abc def \t");
  CHECK(parsed.name == "x-Trace-Id");
  CHECK(parsed.value == std::optional<std::string>("abc def"));
  CHECK_FALSE(argument("X-Gone:  ").value.has_value());
}

TEST_CASE("parse_header_argument rejects malformed arguments with a reason") {
  std::string error;
  CHECK_FALSE(parse_header_argument("no colon", error));
  CHECK(error == "expected 'Name: value'");
  CHECK_FALSE(parse_header_argument(": v", error));
  CHECK(error == "invalid header name ''");
  CHECK_FALSE(parse_header_argument("a b: v", error));
  CHECK(error == "invalid header name 'a b'");
  CHECK_FALSE(parse_header_argument("X-A: 1\nX-B: 2", error));
  CHECK(error == "header value contains a line break or a NUL byte");
  CHECK_FALSE(parse_header_argument("Content-Length: 5", error));
  CHECK(error == "'Content-Length' is set for each request and cannot be given");
  CHECK_FALSE(parse_header_argument("transfer-encoding: chunked", error));
  CHECK(error == "'transfer-encoding' is set for each request and cannot be given");
}

TEST_CASE("parse_header_argument accepts Host for a virtual host") {
  CHECK(argument("Host: hooks.example.com").value ==
        std::optional<std::string>("hooks.example.com"));
}
