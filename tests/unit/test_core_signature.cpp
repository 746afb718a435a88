#include "dfhook/core/signature.hpp"

#include <doctest/doctest.h>

#include <array>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using dfhook::core::combine_signature_headers;
using dfhook::core::Digest;
using dfhook::core::digests_equal;
using dfhook::core::format_signature;
using dfhook::core::hmac_sha1;
using dfhook::core::parse_signature_header;
using dfhook::core::SigningKey;

namespace {

constexpr std::string_view k_secret = "test-webhook-secret";

// Expected values computed with `openssl dgst -sha1 -hmac test-webhook-secret FILE` over the
// exact bytes below.
constexpr std::string_view k_seed_payload =
    R"({"project_id":1234,"timestamp":1468447113,"event":"project.datafile_updated","data":{"revision":1,"origin_url":"https://optimizely.s3.amazonaws.com/json/1234.json","cdn_url":"https://cdn.optimizely.com/json/1234.json"}})";

std::string hex(const Digest& digest) {
  return format_signature(digest).substr(5);
}

Digest parsed(std::string_view header) {
  const std::optional<Digest> digest = parse_signature_header(header);
  REQUIRE(digest.has_value());
  return *digest;
}

}  // namespace

TEST_CASE("signs the documented seed payload as Optimizely does") {
  CHECK(k_seed_payload.size() == 219);
  CHECK(format_signature(hmac_sha1(k_secret, k_seed_payload)) ==
        "sha1=e8c4e277c194cf9e38f998e1334028645534b7b2");
}

TEST_CASE("signs the raw bytes, escapes and layout included") {
  SUBCASE("a body with \\/ escapes is not unescaped first") {
    const std::string_view body =
        R"({"project_id":1234,"data":{"cdn_url":"https:\/\/cdn.optimizely.com\/json\/1234.json"}})";
    CHECK(hex(hmac_sha1(k_secret, body)) == "e1438d2ae433042a455353ab00c82cf2c8b6fa35");
  }
  SUBCASE("a pretty-printed body keeps its spaces and trailing newline") {
    const std::string_view body =
        "{\n  \"project_id\": 1234,\n  \"event\": \"project.datafile_updated\"\n}\n";
    CHECK(hex(hmac_sha1(k_secret, body)) == "4fa2191dc870e5fdff46a745c17b94f51141309b");
  }
  SUBCASE("non-ASCII, an emoji and U+2028 are signed as their UTF-8 bytes") {
    const std::string_view body = "{\"note\":\"caf\xc3\xa9 \xf0\x9f\x9a\x80 line\xe2\x80\xa8sep\"}";
    CHECK(hex(hmac_sha1(k_secret, body)) == "52ae54fe2f7c55c28a5c6c80d80a40891abd9cae");
  }
  SUBCASE("an empty body") {
    CHECK(hex(hmac_sha1(k_secret, "")) == "2235dde5ff3e4dc704a66dd6b4620a2eeef5fbce");
  }
  SUBCASE("a key longer than a SHA-1 block is hashed first") {
    CHECK(hex(hmac_sha1(std::string(100, 'k'), "abc")) ==
          "26030f686a1d565e024767e62c960a6434855442");
  }
  SUBCASE("an empty key") {
    CHECK(hex(hmac_sha1("", "x")) == "6244e66451a1c8695db9731ce2c4fd5de25ccf87");
  }
}

TEST_CASE("gives openssl dgst's digests at the SHA-1 block boundaries") {
  // openssl dgst -sha1 -hmac KEY over the same bytes.
  SUBCASE("a key of exactly one block is used as it is") {
    CHECK(hex(hmac_sha1(std::string(64, 'k'), "abc")) ==
          "7c44f6972fe89fcc6df413921b6e3616adffa964");
  }
  SUBCASE("a key one byte longer than a block is hashed first") {
    CHECK(hex(hmac_sha1(std::string(65, 'k'), "abc")) ==
          "5a862526949f6b70acd6243269508b526c52d2a0");
  }
  SUBCASE("a non-ASCII key is used as its UTF-8 bytes") {
    CHECK(hex(hmac_sha1("cl\xc3\xa9 \xf0\x9f\x94\x91", "x")) ==
          "01b6f6c422460a468fffb613d5b6f31f385c14ed");
  }
  SUBCASE("messages around the padding boundaries: 55, 56, 63 and 64 bytes") {
    CHECK(hex(hmac_sha1(k_secret, std::string(55, 'm'))) ==
          "31dd2a4de9eabf8a08ac247aefa4d02229382f5f");
    CHECK(hex(hmac_sha1(k_secret, std::string(56, 'm'))) ==
          "993ac58835721ac4044ac1dc7e60526459366e64");
    CHECK(hex(hmac_sha1(k_secret, std::string(63, 'm'))) ==
          "c79e309c5e7f7f7ceed0816edfacf9bab964934c");
    CHECK(hex(hmac_sha1(k_secret, std::string(64, 'm'))) ==
          "14bb99ad1c9a8e6100ae22bf0d81fe32b5030cbd");
  }
  SUBCASE("a long message") {
    std::string message;
    for (std::size_t i = 0; i < 100000; ++i) {
      message += static_cast<char>('a' + i % 26);
    }
    CHECK(hex(hmac_sha1(k_secret, message)) == "57e76412de621e097adf2cb8fa4e6261db554325");
  }
}

TEST_CASE("one key computes many digests in a row, each from the keyed state") {
  const SigningKey key(k_secret);
  const SigningKey other("another-secret");
  for (int i = 0; i < 3; ++i) {
    CHECK(hex(key.compute(k_seed_payload)) == "e8c4e277c194cf9e38f998e1334028645534b7b2");
    CHECK(hex(key.compute("")) == "2235dde5ff3e4dc704a66dd6b4620a2eeef5fbce");
    CHECK(other.compute(k_seed_payload) == hmac_sha1("another-secret", k_seed_payload));
  }
}

TEST_CASE("a signing key gives the same digest on every call") {
  const SigningKey key(k_secret);
  const Digest first = key.compute(k_seed_payload);
  CHECK(key.compute(k_seed_payload) == first);
  CHECK(key.compute("other") != first);
  CHECK(key.compute(k_seed_payload) == hmac_sha1(k_secret, k_seed_payload));
}

TEST_CASE("verifies a signature against the raw body") {
  const SigningKey key(k_secret);
  const Digest good = parsed("sha1=e8c4e277c194cf9e38f998e1334028645534b7b2");
  CHECK(key.verify(k_seed_payload, good));
  CHECK_FALSE(SigningKey("another-secret").verify(k_seed_payload, good));
  std::string tampered(k_seed_payload);
  tampered[tampered.find("1234")] = '9';
  CHECK_FALSE(key.verify(tampered, good));
  CHECK_FALSE(key.verify(std::string(k_seed_payload) + "\n", good));
}

TEST_CASE("a signing key moves") {
  SigningKey key(k_secret);
  SigningKey moved(std::move(key));
  CHECK(moved.verify(k_seed_payload, parsed("sha1=e8c4e277c194cf9e38f998e1334028645534b7b2")));
  SigningKey assigned("x");
  assigned = std::move(moved);
  CHECK(hex(assigned.compute(k_seed_payload)) == "e8c4e277c194cf9e38f998e1334028645534b7b2");
}

TEST_CASE("two threads verify with one key at once") {
  const SigningKey key(k_secret);
  const Digest good = parsed("sha1=e8c4e277c194cf9e38f998e1334028645534b7b2");
  std::array<int, 2> failures{};
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < failures.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20000; ++i) {
        if (!key.verify(k_seed_payload, good) || key.verify("x", good)) {
          ++failures[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  CHECK(failures[0] == 0);
  CHECK(failures[1] == 0);
}

TEST_CASE("parses a well-formed signature header") {
  const Digest digest = parsed("sha1=e8c4e277c194cf9e38f998e1334028645534b7b2");
  CHECK(digest[0] == 0xe8);
  CHECK(digest[19] == 0xb2);
  CHECK(format_signature(digest) == "sha1=e8c4e277c194cf9e38f998e1334028645534b7b2");
}

TEST_CASE("accepts uppercase hex and surrounding whitespace") {
  const Digest lower = parsed("sha1=e8c4e277c194cf9e38f998e1334028645534b7b2");
  CHECK(parsed("sha1=E8C4E277C194CF9E38F998E1334028645534B7B2") == lower);
  CHECK(parsed("SHA1=e8c4e277c194cf9e38f998e1334028645534b7b2") == lower);
  CHECK(parsed("  sha1=e8c4e277c194cf9e38f998e1334028645534b7b2\t ") == lower);
  CHECK(SigningKey(k_secret).verify(k_seed_payload,
                                    parsed(" sha1=E8c4E277c194cf9e38f998e1334028645534B7B2 ")));
}

TEST_CASE("rejects a malformed signature header") {
  const std::string hex40 = "e8c4e277c194cf9e38f998e1334028645534b7b2";
  CHECK_FALSE(parse_signature_header(""));
  CHECK_FALSE(parse_signature_header("   "));
  CHECK_FALSE(parse_signature_header(hex40));  // missing prefix
  CHECK_FALSE(parse_signature_header("sha1" + hex40));
  CHECK_FALSE(parse_signature_header("sha1:" + hex40));
  CHECK_FALSE(parse_signature_header("sha256=" + hex40));
  CHECK_FALSE(parse_signature_header(
      "sha256=3a9f1f5e2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e"));
  CHECK_FALSE(parse_signature_header("sha1=" + hex40.substr(1)));  // 39 digits
  CHECK_FALSE(parse_signature_header("sha1=" + hex40 + "0"));      // 41 digits
  CHECK_FALSE(parse_signature_header("sha1=" + hex40.substr(2)));  // 38 digits
  CHECK_FALSE(parse_signature_header("sha1=g8c4e277c194cf9e38f998e1334028645534b7b2"));
  CHECK_FALSE(parse_signature_header("sha1=e8c4e277c194cf9e38f998e1334028645534b7b "));
  CHECK_FALSE(parse_signature_header("sha1= e8c4e277c194cf9e38f998e1334028645534b7b2"));
  CHECK_FALSE(parse_signature_header("sha1=e8c4e277c194cf9e38f998e1334028645534b7b2,x"));
  CHECK_FALSE(parse_signature_header("sha1=e8c4e277c194cf9e38f998e1334028645534b7b2\n"));
  CHECK_FALSE(parse_signature_header(
      std::string_view("sha1=e8c4e277c194cf9e38f998e1334028645534b7\0b2", 45)));
}

TEST_CASE("repeated identical signature headers count as one") {
  const std::string a = "sha1=e8c4e277c194cf9e38f998e1334028645534b7b2";
  const std::string a_upper = " sha1=E8C4E277C194CF9E38F998E1334028645534B7B2";
  const std::array<std::string_view, 1> one{a};
  const std::array<std::string_view, 3> same{a, a_upper, a};
  CHECK(combine_signature_headers(one) == parse_signature_header(a));
  CHECK(combine_signature_headers(same) == parse_signature_header(a));
}

TEST_CASE("differing, malformed or missing signature headers combine to nothing") {
  const std::string a = "sha1=e8c4e277c194cf9e38f998e1334028645534b7b2";
  const std::string b = "sha1=0000000000000000000000000000000000000000";
  const std::array<std::string_view, 2> differing{a, b};
  const std::array<std::string_view, 2> malformed{a, "sha1=xyz"};
  CHECK_FALSE(combine_signature_headers(differing));
  CHECK_FALSE(combine_signature_headers(malformed));
  CHECK_FALSE(combine_signature_headers({}));
}

TEST_CASE("compares digests byte for byte") {
  Digest a{};
  Digest b{};
  CHECK(digests_equal(a, b));
  b[19] = 1;
  CHECK_FALSE(digests_equal(a, b));
  b[19] = 0;
  b[0] = 0x80;
  CHECK_FALSE(digests_equal(a, b));
}
