#include "dfhook/core/signature.hpp"

#include "dfhook/core/ascii.hpp"
#include "dfhook/core/error.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace dfhook::core {

namespace {

constexpr std::string_view k_prefix = "sha1=";
constexpr char k_hex_digits[] = "0123456789abcdef";

// Hex digit values by byte, 0xFF for a byte that is not one: a lookup, not comparisons, since
// the digits of a signature are random and branching on each would be mispredicted half the
// time.
constexpr std::array<unsigned char, 256> k_hex_values = [] {
  std::array<unsigned char, 256> values{};
  values.fill(0xFF);
  for (int i = 0; i < 10; ++i) {
    values[static_cast<std::size_t>('0' + i)] = static_cast<unsigned char>(i);
  }
  for (int i = 0; i < 6; ++i) {
    values[static_cast<std::size_t>('a' + i)] = static_cast<unsigned char>(10 + i);
    values[static_cast<std::size_t>('A' + i)] = static_cast<unsigned char>(10 + i);
  }
  return values;
}();

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

const unsigned char* bytes(std::string_view text) {
  return reinterpret_cast<const unsigned char*>(text.data());
}

// SHA-1 is fetched once per process: fetching looks it up in the provider tables under a lock,
// which is the slowest part of a one-shot HMAC.
const EVP_MD* sha1_algorithm() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  if (md == nullptr) {
    throw failure("OpenSSL cannot compute HMAC-SHA1 in this configuration");
  }
  return md;
}

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const noexcept { EVP_MD_CTX_free(ctx); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

constexpr std::size_t k_block = 64;  // SHA-1's block size, HMAC's key pad length

MdCtx new_md_ctx() {
  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx) {
    throw std::bad_alloc();
  }
  return ctx;
}

// A SHA-1 state that has absorbed the 64-byte key pad, for HMAC's inner or outer hash.
MdCtx keyed_state(const std::array<unsigned char, k_block>& pad) {
  MdCtx ctx = new_md_ctx();
  if (EVP_DigestInit_ex2(ctx.get(), sha1_algorithm(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), pad.data(), pad.size()) != 1) {
    throw failure("OpenSSL cannot compute HMAC-SHA1 in this configuration");
  }
  return ctx;
}

// Each thread's working state: a computation copies a keyed state into it, so concurrent calls
// share nothing mutable and no call allocates a context of its own.
EVP_MD_CTX* scratch_state() {
  thread_local const MdCtx scratch = new_md_ctx();
  return scratch.get();
}

// Continues `keyed` (copied into `work`) with `message`, into `out`.
void hash_from(EVP_MD_CTX* work, const EVP_MD_CTX* keyed, const unsigned char* message,
               std::size_t size, Digest& out) {
  unsigned int length = 0;
  if (EVP_MD_CTX_copy_ex(work, keyed) != 1 || EVP_DigestUpdate(work, message, size) != 1 ||
      EVP_DigestFinal_ex(work, out.data(), &length) != 1 || length != out.size()) {
    throw failure("HMAC-SHA1 computation failed in OpenSSL");
  }
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
      !iequals(value.substr(0, k_prefix.size()), k_prefix)) {
    return std::nullopt;
  }
  value.remove_prefix(k_prefix.size());
  unsigned bad = 0;
  for (std::size_t i = 0; i < digest.size(); ++i) {
    const unsigned high = k_hex_values[static_cast<unsigned char>(value[2 * i])];
    const unsigned low = k_hex_values[static_cast<unsigned char>(value[2 * i + 1])];
    bad |= high | low;
    digest[i] = static_cast<unsigned char>((high << 4U) | (low & 0x0FU));
  }
  // A byte that is not a hex digit sets the high bits.
  if ((bad & 0xF0U) != 0) {
    return std::nullopt;
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

// HMAC (RFC 2104) over OpenSSL's SHA-1: H((K ^ opad) || H((K ^ ipad) || message)), the key
// hashed first when it is longer than a block. The states after the two pads are kept, so a
// computation is two state copies and the message's blocks plus one.
SigningKey::SigningKey(std::string_view key) {
  std::array<unsigned char, k_block> pad{};
  if (key.size() > k_block) {
    unsigned int length = 0;
    if (EVP_Digest(key.data(), key.size(), pad.data(), &length, sha1_algorithm(), nullptr) != 1) {
      throw failure("OpenSSL cannot compute HMAC-SHA1 in this configuration");
    }
  } else {
    std::copy(key.begin(), key.end(), pad.begin());
  }
  std::array<unsigned char, k_block> inner_pad{};
  std::array<unsigned char, k_block> outer_pad{};
  for (std::size_t i = 0; i < k_block; ++i) {
    inner_pad[i] = static_cast<unsigned char>(pad[i] ^ 0x36U);
    outer_pad[i] = static_cast<unsigned char>(pad[i] ^ 0x5CU);
  }
  MdCtx inner = keyed_state(inner_pad);
  MdCtx outer = keyed_state(outer_pad);
  OPENSSL_cleanse(pad.data(), pad.size());
  OPENSSL_cleanse(inner_pad.data(), inner_pad.size());
  OPENSSL_cleanse(outer_pad.data(), outer_pad.size());
  m_inner = inner.release();
  m_outer = outer.release();
}

SigningKey::SigningKey(SigningKey&& other) noexcept
    : m_inner(std::exchange(other.m_inner, nullptr)),
      m_outer(std::exchange(other.m_outer, nullptr)) {}

SigningKey& SigningKey::operator=(SigningKey&& other) noexcept {
  if (this != &other) {
    EVP_MD_CTX_free(m_inner);
    EVP_MD_CTX_free(m_outer);
    m_inner = std::exchange(other.m_inner, nullptr);
    m_outer = std::exchange(other.m_outer, nullptr);
  }
  return *this;
}

SigningKey::~SigningKey() {
  EVP_MD_CTX_free(m_inner);
  EVP_MD_CTX_free(m_outer);
}

Digest SigningKey::compute(std::string_view message) const {
  EVP_MD_CTX* const work = scratch_state();
  Digest inner{};
  hash_from(work, m_inner, bytes(message), message.size(), inner);
  Digest digest{};
  hash_from(work, m_outer, inner.data(), inner.size(), digest);
  return digest;
}

bool SigningKey::verify(std::string_view message, const Digest& expected) const {
  return digests_equal(compute(message), expected);
}

}  // namespace dfhook::core
