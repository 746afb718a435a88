#include "dfhook/core/secrets.hpp"

#include "dfhook/core/error.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <utility>

namespace dfhook::core {

namespace {

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_blank(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && is_blank(text.back())) {
    text.remove_suffix(1);
  }
  return text;
}

bool all_digits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string quoted(std::string_view text) {
  std::string out = "'";
  out += text;
  out += '\'';
  return out;
}

std::string line_origin(std::string_view source, std::size_t line) {
  return quoted(source) + ":" + std::to_string(line);
}

// One entry line cut at its first run of blanks: "WORD REST" or just "WORD".
struct Words {
  std::string_view first;
  std::string_view rest;  // empty when the line is one word
};

Words split_first_word(std::string_view line) {
  const std::size_t blank = line.find_first_of(" \t");
  if (blank == std::string_view::npos) {
    return {line, {}};
  }
  return {line.substr(0, blank), trim(line.substr(blank))};
}

// Calls `on_line(number, text)` for each non-blank line, trimmed, CR/LF stripped. A lone CR
// also ends a line, so files saved with old Mac endings behave like the others.
template <typename OnLine>
void for_each_entry_line(std::string_view text, OnLine on_line) {
  std::size_t number = 0;
  while (!text.empty()) {
    const std::size_t end = text.find_first_of("\r\n");
    std::string_view line = text.substr(0, end);
    if (end == std::string_view::npos) {
      text = {};
    } else {
      const bool crlf = text[end] == '\r' && end + 1 < text.size() && text[end + 1] == '\n';
      text.remove_prefix(end + (crlf ? 2 : 1));
    }
    ++number;
    line = trim(line);
    if (!line.empty()) {
      on_line(number, line);
    }
  }
}

}  // namespace

std::vector<Secret> parse_secret_lines(std::string_view text, std::string_view source) {
  std::vector<Secret> secrets;
  for_each_entry_line(text, [&](std::size_t number, std::string_view line) {
    Secret secret;
    secret.origin = line_origin(source, number);
    const Words words = split_first_word(line);
    if (!words.rest.empty() && all_digits(words.first)) {
      std::uint64_t project = 0;
      const auto [end, error] =
          std::from_chars(words.first.data(), words.first.data() + words.first.size(), project);
      if (error != std::errc() || project == 0 ||
          project > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        throw usage_error(secret.origin + ": project id " + quoted(words.first) +
                              " is out of range 1..9223372036854775807",
                          "write 'PROJECT_ID SECRET' to bind a secret to a project");
      }
      secret.project_id = project;
      secret.value = std::string(words.rest);
    } else {
      secret.value = std::string(line);
    }
    secrets.push_back(std::move(secret));
  });
  if (secrets.empty()) {
    throw usage_error(quoted(source) + " holds no secret",
                      "write one secret per line, or 'PROJECT_ID SECRET' to bind it to a project");
  }
  return secrets;
}

bool SecretSet::Match::allows_project(std::uint64_t project) const {
  return projects.empty() || std::find(projects.begin(), projects.end(), project) != projects.end();
}

void SecretSet::add(Secret secret) {
  if (secret.value.empty()) {
    throw usage_error("empty secret from " + secret.origin,
                      "give the webhook's secret as shown in Optimizely's settings");
  }
  const auto same_value = std::find_if(m_keys.begin(), m_keys.end(), [&](const Key& key) {
    return m_secrets[key.first_index].value == secret.value;
  });
  if (same_value == m_keys.end()) {
    Key key{SigningKey(secret.value), m_secrets.size(), !secret.project_id, {}};
    if (secret.project_id) {
      key.projects.push_back(*secret.project_id);
    }
    m_keys.push_back(std::move(key));
  } else if (!secret.project_id) {
    same_value->any_project = true;
    same_value->projects.clear();
  } else if (!same_value->any_project) {
    same_value->projects.push_back(*secret.project_id);
  }
  m_secrets.push_back(std::move(secret));
}

void SecretSet::add(std::vector<Secret> secrets) {
  for (Secret& secret : secrets) {
    add(std::move(secret));
  }
}

// Every key is tried even after a match, so the time taken does not tell which secret (or
// whether an early one) matched.
std::optional<SecretSet::Match> SecretSet::verify(std::string_view body,
                                                  const Digest& signature) const {
  const Key* matched = nullptr;
  for (const Key& key : m_keys) {
    if (key.key.verify(body, signature) && matched == nullptr) {
      matched = &key;
    }
  }
  if (matched == nullptr) {
    return std::nullopt;
  }
  Match match;
  match.index = matched->first_index;
  match.origin = m_secrets[matched->first_index].origin;
  if (!matched->any_project) {
    match.project_id = matched->projects.front();
    match.projects = matched->projects;
  }
  return match;
}

bool is_sendable_token(std::string_view token) {
  return !token.empty() &&
         std::all_of(token.begin(), token.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

void check_token(std::string_view token, const std::string& origin) {
  if (!is_sendable_token(token)) {
    throw usage_error(origin +
                          ": the token holds a character that cannot be sent in an HTTP "
                          "header (a space, a control character or a non-ASCII byte)",
                      "copy the token again from Optimizely's environment settings");
  }
}

std::vector<AuthToken> parse_token_lines(std::string_view text, std::string_view source) {
  std::vector<AuthToken> tokens;
  for_each_entry_line(text, [&](std::size_t number, std::string_view line) {
    AuthToken token;
    token.origin = line_origin(source, number);
    const Words words = split_first_word(line);
    if (words.rest.empty()) {
      token.token = std::string(words.first);
    } else if (words.rest.find_first_of(" \t") != std::string_view::npos) {
      throw usage_error(token.origin + ": expected 'TOKEN' or 'SDK_KEY TOKEN'",
                        "write one token per line, optionally after the SDK key it serves");
    } else {
      token.sdk_key = std::string(words.first);
      token.token = std::string(words.rest);
    }
    check_token(token.token, token.origin);
    tokens.push_back(std::move(token));
  });
  if (tokens.empty()) {
    throw usage_error(quoted(source) + " holds no token",
                      "write one token per line, optionally after the SDK key it serves");
  }
  return tokens;
}

std::optional<std::string_view> find_token(std::span<const AuthToken> tokens,
                                           std::string_view sdk_key) {
  const AuthToken* fallback = nullptr;
  for (const AuthToken& token : tokens) {
    if (token.sdk_key && *token.sdk_key == sdk_key) {
      return token.token;
    }
    if (!token.sdk_key && fallback == nullptr) {
      fallback = &token;
    }
  }
  if (fallback == nullptr) {
    return std::nullopt;
  }
  return fallback->token;
}

}  // namespace dfhook::core
