#pragma once

#include "dfhook/core/signature.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// Webhook secrets and download auth tokens (DESIGN §3 "Secrets", "Auth tokens").
//
// Secret and token files share one line format: one entry per line, CR/LF stripped, spaces and
// tabs around the line ignored, blank lines skipped. For secrets, a line "PROJECT_ID SECRET"
// (a first word of digits, a run of spaces or tabs, then the secret) binds the secret to one
// project; any other line is the secret, whole. For tokens, a line is "TOKEN" or
// "SDK_KEY TOKEN". Error messages name the source and line ("'keys.txt':3: …") and never the
// secret or token.

namespace dfhook::core {

struct Secret {
  std::string value;
  std::optional<std::uint64_t> project_id;  // set when the secret is bound to one project
  std::string origin;                       // for messages: "'keys.txt':3", "--secret", …
};

// Parses the text of a secret file; `source` names it in origins and messages (the file name,
// unquoted; it is quoted here). Throws core::usage_error when a line binds a project id out of
// 1..2^63-1 ("'keys.txt':3: project id '0' is out of range 1..9223372036854775807") or when
// the text holds no secret at all ("'keys.txt' holds no secret").
[[nodiscard]] std::vector<Secret> parse_secret_lines(std::string_view text,
                                                     std::string_view source);

// The secrets a command checks signatures with, from every source combined, in the order
// added. Holds each distinct secret's HMAC key state, set up once when it is added.
// verify() is safe to call from several threads at once; adding is not.
class SecretSet {
public:
  // Which secret a signature was made with.
  struct Match {
    std::size_t index = 0;                    // into secrets(): the first secret with that value
    std::string_view origin;                  // that secret's origin
    std::optional<std::uint64_t> project_id;  // nullopt: the secret serves every project
    std::span<const std::uint64_t> projects;  // every project it is bound to; empty: all

    // False when the secret is bound and `project` is not one of its projects. (The same secret
    // may be listed several times, bound to different projects or to none; one unbound listing
    // makes it serve every project.)
    [[nodiscard]] bool allows_project(std::uint64_t project) const;
  };

  // Adds one secret. Throws core::usage_error("empty secret from ORIGIN") for an empty value.
  void add(Secret secret);
  void add(std::vector<Secret> secrets);

  [[nodiscard]] bool empty() const noexcept { return m_secrets.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return m_secrets.size(); }
  [[nodiscard]] std::span<const Secret> secrets() const noexcept { return m_secrets; }

  // The secret added first (the one `sign` uses). Precondition: !empty().
  [[nodiscard]] const Secret& first() const { return m_secrets.front(); }

  // The secret whose HMAC-SHA1 of `body` equals `signature`, compared in constant time against
  // every configured secret; nullopt when none does.
  [[nodiscard]] std::optional<Match> verify(std::string_view body, const Digest& signature) const;

private:
  // One distinct secret value.
  struct Key {
    SigningKey key;
    std::size_t first_index;
    bool any_project;
    std::vector<std::uint64_t> projects;
  };

  std::vector<Secret> m_secrets;
  std::vector<Key> m_keys;
};

// One auth token for authenticated datafiles.
struct AuthToken {
  std::string token;
  std::optional<std::string> sdk_key;  // set when the token serves this SDK key only
  std::string origin;                  // for messages: "'tokens.txt':2", "DFHOOK_AUTH_TOKEN"
};

// Parses the text of a token file, like parse_secret_lines(). Throws core::usage_error naming
// the line when it holds more than two words ("'tokens.txt':2: expected 'TOKEN' or
// 'SDK_KEY TOKEN'"), when a token cannot be sent (check_token) or when the text holds no
// token ("'tokens.txt' holds no token").
[[nodiscard]] std::vector<AuthToken> parse_token_lines(std::string_view text,
                                                       std::string_view source);

// True when `token` can be sent as "Authorization: Bearer <token>": visible ASCII only.
[[nodiscard]] bool is_sendable_token(std::string_view token);

// Throws core::usage_error("ORIGIN: the token holds a character that cannot be sent …") when
// !is_sendable_token(token); the message never holds the token.
void check_token(std::string_view token, const std::string& origin);

// The token to send for `sdk_key`: the first token bound to that key, else the first token
// bound to no key; nullopt when neither exists.
[[nodiscard]] std::optional<std::string_view> find_token(std::span<const AuthToken> tokens,
                                                         std::string_view sdk_key);

}  // namespace dfhook::core
