#include "options_network.hpp"
#include "options_values.hpp"

#include "dfhook/core/error.hpp"
#include "dfhook/core/units.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

namespace dfhook::app {

namespace {

bool is_digits(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_host_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

// A host as curl's --connect-to takes it: a name, an IPv4 address, a bracketed IPv6 address,
// or empty (any host).
bool is_connect_host(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    const std::string_view inside = host.substr(1, host.size() - 2);
    return !inside.empty() && std::all_of(inside.begin(), inside.end(), [](char c) {
      return std::isxdigit(static_cast<unsigned char>(c)) != 0 || c == ':' || c == '.';
    });
  }
  return std::all_of(host.begin(), host.end(), is_host_byte);
}

// HOST:PORT:HOST2:PORT2, with colons inside brackets belonging to an IPv6 address.
bool is_connect_to(std::string_view entry) {
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  bool in_brackets = false;
  for (std::size_t i = 0; i < entry.size(); ++i) {
    if (entry[i] == '[') {
      in_brackets = true;
    } else if (entry[i] == ']') {
      in_brackets = false;
    } else if (entry[i] == ':' && !in_brackets) {
      fields.push_back(entry.substr(start, i - start));
      start = i + 1;
    }
  }
  fields.push_back(entry.substr(start));
  if (fields.size() != 4 || fields[2].empty()) {
    return false;
  }
  const auto is_port = [](std::string_view port) {
    return port.empty() ||
           (port.size() <= 5 && is_digits(port) && std::stoi(std::string(port)) <= 65535);
  };
  return is_connect_host(fields[0]) && is_port(fields[1]) && is_connect_host(fields[2]) &&
         is_port(fields[3]);
}

}  // namespace

void add_network_options(CLI::App& sub, NetworkOptions& options, NetworkUse use) {
  sub.add_option("--cacert", options.cacert,
                 "trust the certificate authorities in FILE instead of the system's")
      ->option_text("FILE");
  sub.add_option("--connect-to", options.connect_to,
                 "connect to HOST2:PORT2 instead of HOST:PORT, keeping TLS checks for HOST "
                 "(repeatable)")
      ->option_text("HOST:PORT:HOST2:PORT2");
  sub.add_option("--timeout", options.timeout, "time allowed for one attempt (0: no limit)")
      ->option_text("DUR")
      ->capture_default_str();
  sub.add_option("--connect-timeout", options.connect_timeout, "time allowed to connect")
      ->option_text("DUR")
      ->capture_default_str();
  sub.add_option("--retries", options.retries,
                 "further attempts on network errors, 429 and 5xx, with backoff")
      ->option_text("N")
      ->check(whole_number(0, 100))
      ->capture_default_str();
  if (use == NetworkUse::downloads) {
    sub.add_option("--max-datafile-size", options.max_datafile_size, "largest datafile accepted")
        ->option_text("SIZE")
        ->capture_default_str();
    sub.add_option("--allow-host", options.allow_host,
                   "a host datafiles may come from (repeatable; replaces the default list)")
        ->option_text("HOST");
    sub.add_flag("--allow-http", options.allow_http, "allow plain http URLs");
  }
}

net::ClientOptions client_options(const NetworkOptions& options) {
  net::ClientOptions client;
  client.timeout = duration_option("--timeout", options.timeout);
  client.connect_timeout = duration_option("--connect-timeout", options.connect_timeout);
  client.retries = options.retries;
  client.max_body_size = size_option("--max-datafile-size", options.max_datafile_size);
  if (client.max_body_size == 0) {
    throw core::usage_error("--max-datafile-size must be above 0");
  }
  for (const std::string& entry : options.connect_to) {
    if (!is_connect_to(entry)) {
      throw core::usage_error(
          fmt::format("invalid --connect-to '{}'", entry),
          "use HOST:PORT:HOST2:PORT2, e.g. cdn.optimizely.com:443:127.0.0.1:8443");
    }
  }
  client.connect_to = options.connect_to;
  for (const std::string& host : options.allow_host) {
    if (host.empty() || !std::all_of(host.begin(), host.end(), is_host_byte)) {
      throw core::usage_error(fmt::format("invalid --allow-host '{}'", host),
                              "give a host name alone, e.g. cdn.optimizely.com");
    }
  }
  client.allowed_hosts = options.allow_host;
  client.allow_http = options.allow_http;
  if (!options.cacert.empty()) {
    const int fd = ::open(options.cacert.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      throw core::usage_error(
          fmt::format("cannot read '{}': {}", options.cacert, std::strerror(errno)));
    }
    ::close(fd);
    client.cacert = options.cacert;
  }
  return client;
}

}  // namespace dfhook::app
