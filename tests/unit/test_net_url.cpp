#include "dfhook/net/url.hpp"

#include <doctest/doctest.h>

using dfhook::net::check_datafile_url;
using dfhook::net::datafile_name;
using dfhook::net::parse_url;
using dfhook::net::redact_url;

namespace {

std::string reason(std::string_view url, const std::vector<std::string>& hosts = {},
                   bool allow_http = false) {
  return check_datafile_url(url, hosts, allow_http).reason;
}

std::string name_of(std::string_view url) {
  const auto parsed = parse_url(url);
  REQUIRE(parsed.url);
  return datafile_name(*parsed.url);
}

}  // namespace

TEST_CASE("parses the parts of a datafile URL") {
  const auto parsed = parse_url("https://CDN.Optimizely.com:8443/datafiles/Key_1.json?x=1");
  REQUIRE(parsed.url);
  CHECK(parsed.url->scheme == "https");
  CHECK(parsed.url->host == "cdn.optimizely.com");
  CHECK(parsed.url->port == "8443");
  CHECK(parsed.url->path == "/datafiles/Key_1.json");
  CHECK_FALSE(parsed.url->has_credentials);
  CHECK(datafile_name(*parsed.url) == "Key_1.json");
}

TEST_CASE("rejects text that is not an absolute URL") {
  CHECK_FALSE(parse_url("cdn.optimizely.com/json/1234.json").url);
  CHECK_FALSE(parse_url("/json/1234.json").url);
  CHECK_FALSE(parse_url("").url);
  CHECK_FALSE(parse_url("https://").url);
  CHECK_FALSE(parse_url("https://cdn.optimizely.com/json/a b.json").url);
  CHECK_FALSE(parse_url("file:///etc/passwd").url);
  CHECK_FALSE(parse_url(std::string_view("https://cdn.optimizely.com/\0x", 29)).url);
  CHECK(parse_url("https://cdn.optimizely.com/json/1234.json").error.empty());
  CHECK_FALSE(parse_url("no scheme").error.empty());
}

TEST_CASE("the datafile name is the last path segment when it is a safe file name") {
  CHECK(name_of("https://cdn.optimizely.com/json/1234.json") == "1234.json");
  CHECK(name_of("https://cdn.optimizely.com/datafiles/AbC-9_z.json") == "AbC-9_z.json");
  CHECK(name_of("https://cdn.optimizely.com/") == "");
  CHECK(name_of("https://cdn.optimizely.com") == "");
  CHECK(name_of("https://cdn.optimizely.com/json/") == "");
  CHECK(name_of("https://cdn.optimizely.com/json/.hidden") == "");
  CHECK(name_of("https://cdn.optimizely.com/json/a%2Fb.json") == "");
}

TEST_CASE("accepts the default hosts over https, in any case") {
  CHECK(check_datafile_url("https://cdn.optimizely.com/json/1234.json", {}, false).ok());
  CHECK(check_datafile_url("https://optimizely.s3.amazonaws.com/json/1234.json", {}, false).ok());
  CHECK(check_datafile_url("https://config.optimizely.com/datafiles/auth/K.json", {}, false).ok());
  CHECK(check_datafile_url("HTTPS://CDN.OPTIMIZELY.COM/json/1234.json", {}, false).ok());
}

TEST_CASE("refuses hosts outside the list without suffix or userinfo tricks") {
  CHECK(reason("https://evil.example/json/1234.json") == "host 'evil.example' is not allowed");
  CHECK(reason("https://cdn.optimizely.com.evil.example/x.json") ==
        "host 'cdn.optimizely.com.evil.example' is not allowed");
  CHECK(reason("https://evil.cdn.optimizely.com/x.json") ==
        "host 'evil.cdn.optimizely.com' is not allowed");
  CHECK(reason("https://cdn.optimizely.com@evil/x.json") ==
        "credentials in the URL are not allowed");
  CHECK(reason("https://cdn.optimizely.com:pw@evil.example/x.json") ==
        "credentials in the URL are not allowed");
  CHECK(reason("https://cdn.optimizely.com./x.json") ==
        "host 'cdn.optimizely.com.' is not allowed");
}

TEST_CASE("refuses any scheme but https unless http is allowed") {
  CHECK(reason("http://cdn.optimizely.com/json/1234.json") == "only https is allowed");
  CHECK(reason("ftp://cdn.optimizely.com/json/1234.json") == "only https is allowed");
  CHECK(reason("file:///etc/passwd") == "only https is allowed");
  CHECK(check_datafile_url("http://cdn.optimizely.com/json/1234.json", {}, true).ok());
  CHECK(reason("ftp://cdn.optimizely.com/x.json", {}, true) == "only http and https are allowed");
}

TEST_CASE("an allow-list replaces the default hosts") {
  const std::vector<std::string> hosts{"Mirror.Example"};
  CHECK(check_datafile_url("https://mirror.example/x.json", hosts, false).ok());
  CHECK(reason("https://cdn.optimizely.com/x.json", hosts) ==
        "host 'cdn.optimizely.com' is not allowed");
}

TEST_CASE("reports text that is not a URL with curl's reason") {
  const std::string why = reason("not a url");
  CHECK(why.rfind("not a valid URL: ", 0) == 0);
  CHECK(why.size() > std::string_view("not a valid URL: ").size());
}

TEST_CASE("redaction removes user name and password and never echoes garbage") {
  CHECK(redact_url("https://user:secret@cdn.optimizely.com/json/1.json") ==
        "https://cdn.optimizely.com/json/1.json");
  CHECK(redact_url("https://cdn.optimizely.com/json/1.json") ==
        "https://cdn.optimizely.com/json/1.json");
  CHECK(redact_url("secret-token") == "<invalid URL>");
}
