#include "dfhook/core/replay_headers.hpp"

#include "dfhook/core/ascii.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace dfhook::core {

namespace {

constexpr std::string_view k_signature_header = "X-Hub-Signature";

template <std::size_t N>
bool is_one_of(std::string_view name, const std::array<std::string_view, N>& names) {
  return std::any_of(names.begin(), names.end(),
                     [name](std::string_view candidate) { return iequals(name, candidate); });
}

std::string_view trim(std::string_view text) {
  const auto blank = [](char c) { return c == ' ' || c == '\t'; };
  while (!text.empty() && blank(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && blank(text.back())) {
    text.remove_suffix(1);
  }
  return text;
}

void erase_named(std::vector<HeaderField>& headers, std::string_view name) {
  std::erase_if(headers, [name](const HeaderField& field) { return iequals(field.first, name); });
}

bool has_named(const std::vector<HeaderField>& headers, std::string_view name) {
  return std::any_of(headers.begin(), headers.end(),
                     [name](const HeaderField& field) { return iequals(field.first, name); });
}

bool is_credential(std::string_view name) {
  static constexpr std::array<std::string_view, 3> k_names{"Authorization", "Cookie",
                                                           "Proxy-Authorization"};
  return is_one_of(name, k_names);
}

}  // namespace

bool is_hop_by_hop_header(std::string_view name) {
  static constexpr std::array<std::string_view, 10> k_names{
      "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Proxy-Connection",
      "TE",   "Trailer",        "Upgrade",           "Expect"};
  return is_one_of(name, k_names);
}

bool is_proxy_added_header(std::string_view name) {
  static constexpr std::array<std::string_view, 3> k_names{"Forwarded", "Via", "X-Real-IP"};
  return is_one_of(name, k_names) || istarts_with(name, "X-Forwarded-");
}

bool is_header_name(std::string_view name) {
  static constexpr std::string_view k_punctuation = "!#$%&'*+-.^_`|~";
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
           k_punctuation.find(c) != std::string_view::npos;
  });
}

bool is_header_value(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

std::optional<HeaderArgument> parse_header_argument(std::string_view text, std::string& error) {
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    error = "expected 'Name: value'";
    return std::nullopt;
  }
  const std::string_view name = text.substr(0, colon);
  const std::string_view value = trim(text.substr(colon + 1));
  if (!is_header_name(name)) {
    error = "invalid header name '" + std::string(name) + "'";
    return std::nullopt;
  }
  if (!is_header_value(value)) {
    error = "header value contains a line break or a NUL byte";
    return std::nullopt;
  }
  // Host is the one framing header a user may want to choose (a virtual host behind
  // --connect-to); the others would make the request unreadable or are libcurl's job.
  if (is_hop_by_hop_header(name) && !iequals(name, "Host")) {
    error = "'" + std::string(name) + "' is set for each request and cannot be given";
    return std::nullopt;
  }
  HeaderArgument argument{std::string(name), std::nullopt};
  if (!value.empty()) {
    argument.value = std::string(value);
  }
  return argument;
}

ReplayHeaders replay_headers(const std::vector<HeaderField>& saved,
                             const std::optional<std::string>& fresh_signature,
                             std::string_view default_content_type,
                             std::string_view default_user_agent,
                             const std::vector<HeaderArgument>& arguments) {
  ReplayHeaders out;
  bool fresh_placed = false;
  for (std::size_t i = 0; i < saved.size(); ++i) {
    const HeaderField& field = saved[i];
    const std::string_view name = field.first;
    if (!is_header_name(name)) {
      out.error = "saved header " + std::to_string(i + 1) + " has an invalid name '" +
                  std::string(name) + "'";
      return out;
    }
    if (!is_header_value(field.second)) {
      out.error =
          "saved header '" + std::string(name) + "' has a value with a line break or a NUL byte";
      return out;
    }
    if (is_hop_by_hop_header(name) || is_proxy_added_header(name) || is_credential(name)) {
      continue;
    }
    if (fresh_signature && iequals(name, k_signature_header)) {
      if (!fresh_placed) {
        out.headers.emplace_back(k_signature_header, *fresh_signature);
        fresh_placed = true;
      }
      continue;
    }
    out.headers.push_back(field);
  }
  if (fresh_signature && !fresh_placed) {
    out.headers.emplace_back(k_signature_header, *fresh_signature);
  }
  if (!default_content_type.empty() && !has_named(out.headers, "Content-Type")) {
    out.headers.emplace_back("Content-Type", default_content_type);
  }
  if (!default_user_agent.empty() && !has_named(out.headers, "User-Agent")) {
    out.headers.emplace_back("User-Agent", default_user_agent);
  }

  std::vector<std::string_view> overridden;
  bool signature_argument = false;
  for (const HeaderArgument& argument : arguments) {
    const bool seen = std::any_of(overridden.begin(), overridden.end(),
                                  [&](std::string_view n) { return iequals(n, argument.name); });
    if (!seen) {
      erase_named(out.headers, argument.name);
      overridden.push_back(argument.name);
    }
    if (argument.value) {
      out.headers.emplace_back(argument.name, *argument.value);
    }
    signature_argument = signature_argument || iequals(argument.name, k_signature_header);
  }

  if (!has_named(out.headers, k_signature_header)) {
    out.signature = SignatureSource::none;
  } else if (signature_argument) {
    out.signature = SignatureSource::argument;
  } else if (fresh_signature) {
    out.signature = SignatureSource::fresh;
  } else {
    out.signature = SignatureSource::saved;
  }
  return out;
}

}  // namespace dfhook::core
