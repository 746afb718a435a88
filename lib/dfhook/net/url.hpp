#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dfhook::net {

// An absolute URL split by libcurl's URL parser (curl_url), never by hand.
struct Url {
  std::string text;        // the URL as curl normalises it (what is requested)
  std::string scheme;      // lowercase: "https", "http", "ftp" …
  std::string host;        // lowercase; IPv6 literals keep their brackets: "[::1]"
  std::string port;        // as written; empty when the URL has none
  std::string path;        // "/datafiles/KEY.json"; "/" at least
  bool has_credentials{};  // the URL carries a user name or password ("https://u:p@host/")
};

// A URL, or why it is not one.
struct UrlParse {
  std::optional<Url> url;
  std::string error;  // curl's reason, lowercase: "bad scheme", "no host part in the URL" …
};

// Parses an absolute URL ("scheme://host/path"); relative references and URLs without a host
// are errors.
[[nodiscard]] UrlParse parse_url(std::string_view text);

// The URL with any user name and password removed, for messages and logs. Text that is not a
// URL is returned as "<invalid URL>", never echoed (it might hold a credential).
[[nodiscard]] std::string redact_url(std::string_view text);

// The last segment of the URL's path when it can name a file in an out-dir: 1 to 255 bytes of
// [A-Za-z0-9._-], not starting with '.'. Empty otherwise ("/", "/json/", "/a/..", "%2F" …).
[[nodiscard]] std::string datafile_name(const Url& url);

// The hosts a datafile may be downloaded from when --allow-host is not given.
[[nodiscard]] std::span<const std::string_view> default_allowed_hosts();

// Outcome of check_datafile_url(): ok, or the reason it is refused.
struct UrlCheck {
  std::string reason;  // empty when allowed

  [[nodiscard]] bool ok() const noexcept { return reason.empty(); }
};

// May a datafile be downloaded from `url`? Refused, in this order of checks:
//   not a URL                   → "not a valid URL: <curl's reason>"
//   scheme not https (or http when allow_http) → "only https is allowed"
//                                 ("only http and https are allowed" with allow_http)
//   user name or password in it → "credentials in the URL are not allowed"
//   host not in allowed_hosts   → "host 'evil.example' is not allowed"
// Hosts compare exactly and case-insensitively: no suffix or subdomain matching, so
// "cdn.optimizely.com.evil.example" and "https://cdn.optimizely.com@evil/" are refused.
// An empty `allowed_hosts` means default_allowed_hosts().
[[nodiscard]] UrlCheck check_datafile_url(std::string_view url,
                                          const std::vector<std::string>& allowed_hosts,
                                          bool allow_http);

}  // namespace dfhook::net
