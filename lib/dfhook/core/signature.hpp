#pragma once

#include <openssl/types.h>

#include <array>
#include <optional>
#include <span>
#include <string>
#include <string_view>

// The webhook signature (DESIGN §1, §3 step 4): X-Hub-Signature = "sha1=" + the lowercase hex
// HMAC-SHA1 of the raw body bytes, keyed with the webhook's secret.

namespace dfhook::core {

// An HMAC-SHA1 value.
using Digest = std::array<unsigned char, 20>;

// Parses one X-Hub-Signature value: "sha1=" followed by exactly 40 hex digits. The hex digits
// and the prefix may be in either case; spaces and tabs around the value are ignored. Anything
// else (no prefix, another algorithm such as "sha256=", wrong length, a non-hex digit, an empty
// value) gives nullopt.
[[nodiscard]] std::optional<Digest> parse_signature_header(std::string_view value);

// Combines every X-Hub-Signature value of one request: values that parse to the same digest
// count as one. Gives nullopt when there is none, when any value is malformed or when two
// values differ.
[[nodiscard]] std::optional<Digest> combine_signature_headers(
    std::span<const std::string_view> values);

// "sha1=" + 40 lowercase hex digits, the form Optimizely sends.
[[nodiscard]] std::string format_signature(const Digest& digest);

// Compares two digests in constant time (CRYPTO_memcmp).
[[nodiscard]] bool digests_equal(const Digest& a, const Digest& b) noexcept;

// The HMAC-SHA1 of `message` keyed with `key`, one-shot. For repeated use of one key,
// SigningKey avoids redoing the key setup.
[[nodiscard]] Digest hmac_sha1(std::string_view key, std::string_view message);

// One secret's HMAC-SHA1 state, set up once with the key: the SHA-1 states after the inner and
// outer key pads. Each computation continues copies of them in a per-thread context, so
// compute() and verify() are safe to call from several threads at once and allocate no context
// per call.
// Throws std::bad_alloc (or core::Error when OpenSSL refuses HMAC-SHA1, e.g. a FIPS-only
// configuration) from the constructor; compute() throws the same on allocation failure.
class SigningKey {
public:
  explicit SigningKey(std::string_view key);
  // A moved-from key may only be assigned to or destroyed.
  SigningKey(SigningKey&& other) noexcept;
  SigningKey& operator=(SigningKey&& other) noexcept;
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;
  ~SigningKey();

  // The HMAC-SHA1 of the raw bytes of `message`.
  [[nodiscard]] Digest compute(std::string_view message) const;

  // True when `expected` is the HMAC-SHA1 of `message`; the comparison is constant-time.
  [[nodiscard]] bool verify(std::string_view message, const Digest& expected) const;

private:
  EVP_MD_CTX* m_inner = nullptr;
  EVP_MD_CTX* m_outer = nullptr;
};

}  // namespace dfhook::core
