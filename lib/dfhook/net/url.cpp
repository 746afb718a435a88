#include "dfhook/net/url.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <memory>

namespace dfhook::net {

namespace {

struct UrlDeleter {
  void operator()(CURLU* handle) const noexcept { curl_url_cleanup(handle); }
};
using UrlHandle = std::unique_ptr<CURLU, UrlDeleter>;

struct CurlFree {
  void operator()(char* text) const noexcept { curl_free(text); }
};
using CurlString = std::unique_ptr<char, CurlFree>;

constexpr std::array<std::string_view, 3> k_default_hosts{
    "cdn.optimizely.com", "optimizely.s3.amazonaws.com", "config.optimizely.com"};

// Host names are ASCII once curl has accepted them; anything else never matches an allow-list
// entry, so a byte-wise fold is all the comparison needs.
std::string ascii_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

std::string lowercase_first(std::string text) {
  if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z') {
    text[0] = static_cast<char>(text[0] - 'A' + 'a');
  }
  return text;
}

// One part of a parsed URL; empty when the URL has no such part.
std::string get_part(CURLU* handle, CURLUPart part, unsigned int flags = 0) {
  char* raw = nullptr;
  if (curl_url_get(handle, part, &raw, flags) != CURLUE_OK || raw == nullptr) {
    return {};
  }
  const CurlString owned(raw);
  return owned.get();
}

// curl_url_set wants a NUL-terminated string; a URL containing a NUL byte is not a URL.
UrlHandle parse_handle(std::string_view text, std::string& error) {
  UrlHandle handle(curl_url());
  if (!handle) {
    error = "out of memory";
    return {};
  }
  if (text.find('\0') != std::string_view::npos) {
    error = "malformed input to a URL function";
    return {};
  }
  const std::string terminated(text);
  const CURLUcode code = curl_url_set(handle.get(), CURLUPART_URL, terminated.c_str(), 0);
  if (code != CURLUE_OK) {
    error = lowercase_first(curl_url_strerror(code));
    return {};
  }
  return handle;
}

bool is_name_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// The parts of a URL, which may lack a host ("file:///etc/passwd").
UrlParse split_url(std::string_view text) {
  UrlParse result;
  const UrlHandle handle = parse_handle(text, result.error);
  if (!handle) {
    return result;
  }
  Url url;
  url.text = get_part(handle.get(), CURLUPART_URL);
  url.scheme = ascii_lower(get_part(handle.get(), CURLUPART_SCHEME));
  url.host = ascii_lower(get_part(handle.get(), CURLUPART_HOST));
  url.port = get_part(handle.get(), CURLUPART_PORT);
  url.path = get_part(handle.get(), CURLUPART_PATH);
  url.has_credentials = !get_part(handle.get(), CURLUPART_USER).empty() ||
                        !get_part(handle.get(), CURLUPART_PASSWORD).empty();
  if (url.path.empty()) {
    url.path = "/";
  }
  result.url = std::move(url);
  return result;
}

}  // namespace

UrlParse parse_url(std::string_view text) {
  UrlParse result = split_url(text);
  if (result.url && result.url->host.empty()) {
    result.url.reset();
    result.error = "no host part in the URL";
  }
  return result;
}

std::string redact_url(std::string_view text) {
  std::string error;
  const UrlHandle handle = parse_handle(text, error);
  if (!handle) {
    return "<invalid URL>";
  }
  curl_url_set(handle.get(), CURLUPART_USER, nullptr, 0);
  curl_url_set(handle.get(), CURLUPART_PASSWORD, nullptr, 0);
  curl_url_set(handle.get(), CURLUPART_OPTIONS, nullptr, 0);
  std::string out = get_part(handle.get(), CURLUPART_URL);
  return out.empty() ? std::string("<invalid URL>") : out;
}

std::string datafile_name(const Url& url) {
  const std::string_view path = url.path;
  const std::size_t slash = path.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  if (name.empty() || name.size() > 255 || name.front() == '.' ||
      !std::all_of(name.begin(), name.end(), is_name_byte)) {
    return {};
  }
  return std::string(name);
}

std::span<const std::string_view> default_allowed_hosts() {
  return k_default_hosts;
}

UrlCheck check_datafile_url(std::string_view url, const std::vector<std::string>& allowed_hosts,
                            bool allow_http) {
  const UrlParse parsed = split_url(url);
  if (!parsed.url) {
    return {"not a valid URL: " + parsed.error};
  }
  const Url& u = *parsed.url;
  if (u.scheme != "https" && !(allow_http && u.scheme == "http")) {
    return {allow_http ? "only http and https are allowed" : "only https is allowed"};
  }
  if (u.host.empty()) {
    return {"not a valid URL: no host part in the URL"};
  }
  if (u.has_credentials) {
    return {"credentials in the URL are not allowed"};
  }
  bool allowed = false;
  if (allowed_hosts.empty()) {
    allowed =
        std::find(k_default_hosts.begin(), k_default_hosts.end(), u.host) != k_default_hosts.end();
  } else {
    allowed = std::any_of(allowed_hosts.begin(), allowed_hosts.end(),
                          [&](const std::string& host) { return ascii_lower(host) == u.host; });
  }
  if (!allowed) {
    return {"host '" + u.host + "' is not allowed"};
  }
  return {};
}

}  // namespace dfhook::net
