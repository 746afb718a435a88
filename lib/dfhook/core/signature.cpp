#include "dfhook/core/signature.hpp"

#include "dfhook/core/error.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <memory>
#include <new>
#include <utility>

namespace dfhook::core {

namespace {

constexpr std::string_view k_prefix = "sha1=";
constexpr char k_hex_digits[] = "0123456789abcdef";

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
    if (c != b[i]) {
      return false;
    }
  }
  return true;
}

const unsigned char* bytes(std::string_view text) {
  return reinterpret_cast<const unsigned char*>(text.data());
}

// The HMAC algorithm object is fetched once per process: fetching looks it up in the provider
// tables under a lock, which is the slowest part of a one-shot HMAC.
EVP_MAC* hmac_algorithm() {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) {
    throw failure("OpenSSL offers no HMAC implementation");
  }
  return mac;
}

struct MacCtxDeleter {
  void operator()(EVP_MAC_CTX* ctx) const noexcept { EVP_MAC_CTX_free(ctx); }
};
using MacCtx = std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter>;

Digest finish(EVP_MAC_CTX* ctx, std::string_view message) {
  Digest digest{};
  std::size_t length = 0;
  if (EVP_MAC_update(ctx, bytes(message), message.size()) != 1 ||
      EVP_MAC_final(ctx, digest.data(), &length, digest.size()) != 1 || length != digest.size()) {
    throw failure("HMAC-SHA1 computation failed in OpenSSL");
  }
  return digest;
}

}  // namespace

std::optional<Digest> parse_signature_header(std::string_view value) {
  while (!value.empty() && is_blank(value.front())) {
    value.remove_prefix(1);
  }
  while (!value.empty() && is_blank(value.back())) {
    value.remove_suffix(1);
  }
  Digest digest{};
  if (value.size() != k_prefix.size() + 2 * digest.size() ||
      !equals_ignoring_case(value.substr(0, k_prefix.size()), k_prefix)) {
    return std::nullopt;
  }
  value.remove_prefix(k_prefix.size());
  for (std::size_t i = 0; i < digest.size(); ++i) {
    const int high = hex_value(value[2 * i]);
    const int low = hex_value(value[2 * i + 1]);
    if (high < 0 || low < 0) {
      return std::nullopt;
    }
    digest[i] = static_cast<unsigned char>(high * 16 + low);
  }
  return digest;
}

std::optional<Digest> combine_signature_headers(std::span<const std::string_view> values) {
  std::optional<Digest> combined;
  for (const std::string_view value : values) {
    const std::optional<Digest> digest = parse_signature_header(value);
    if (!digest || (combined && *combined != *digest)) {
      return std::nullopt;
    }
    combined = digest;
  }
  return combined;
}

std::string format_signature(const Digest& digest) {
  std::string text(k_prefix);
  text.reserve(k_prefix.size() + 2 * digest.size());
  for (const unsigned char byte : digest) {
    text += k_hex_digits[byte >> 4];
    text += k_hex_digits[byte & 0x0f];
  }
  return text;
}

bool digests_equal(const Digest& a, const Digest& b) noexcept {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Digest hmac_sha1(std::string_view key, std::string_view message) {
  return SigningKey(key).compute(message);
}

SigningKey::SigningKey(std::string_view key) {
  MacCtx ctx(EVP_MAC_CTX_new(hmac_algorithm()));
  if (!ctx) {
    throw std::bad_alloc();
  }
  char digest_name[] = "SHA1";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
      OSSL_PARAM_construct_end(),
  };
  // An empty key still needs a non-null pointer: OpenSSL reads a null key as "keep the old one".
  static const unsigned char k_empty = 0;
  const unsigned char* key_bytes = key.empty() ? &k_empty : bytes(key);
  if (EVP_MAC_init(ctx.get(), key_bytes, key.size(), params) != 1) {
    throw failure("OpenSSL cannot compute HMAC-SHA1 in this configuration");
  }
  m_ctx = ctx.release();
}

SigningKey::SigningKey(SigningKey&& other) noexcept : m_ctx(std::exchange(other.m_ctx, nullptr)) {}

SigningKey& SigningKey::operator=(SigningKey&& other) noexcept {
  if (this != &other) {
    EVP_MAC_CTX_free(m_ctx);
    m_ctx = std::exchange(other.m_ctx, nullptr);
  }
  return *this;
}

SigningKey::~SigningKey() {
  EVP_MAC_CTX_free(m_ctx);
}

// Duplicating the keyed context copies the precomputed inner and outer SHA-1 states (about
// 0.6 µs) instead of hashing the padded key again, and gives each call its own state, so
// concurrent calls share nothing mutable.
Digest SigningKey::compute(std::string_view message) const {
  const MacCtx ctx(EVP_MAC_CTX_dup(m_ctx));
  if (!ctx) {
    throw std::bad_alloc();
  }
  return finish(ctx.get(), message);
}

bool SigningKey::verify(std::string_view message, const Digest& expected) const {
  return digests_equal(compute(message), expected);
}

}  // namespace dfhook::core
