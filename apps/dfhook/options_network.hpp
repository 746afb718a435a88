#pragma once

#include "dfhook/net/http_client.hpp"

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace dfhook::app {

// The network options of DESIGN §3 as given on the command line, before checking.
struct NetworkOptions {
  std::string cacert;
  std::vector<std::string> connect_to;
  std::string timeout = "30s";
  std::string connect_timeout = "10s";
  int retries = 2;
  // Downloads only:
  std::string max_datafile_size = "64MiB";
  std::vector<std::string> allow_host;
  bool allow_http = false;
};

// What the network options apply to: a command that downloads datafiles (listen,
// fetch-datafile) also gets --max-datafile-size, --allow-host and --allow-http.
enum class NetworkUse { downloads, sends };

// Registers the network options on `sub`, writing into `options` (which must outlive parsing).
void add_network_options(CLI::App& sub, NetworkOptions& options, NetworkUse use);

// The client options for the parsed values. Throws core::usage_error for a value that is not
// a duration or size, a zero --max-datafile-size, a malformed --connect-to or --allow-host,
// or a --cacert file that cannot be read ("cannot read 'ca.pem': No such file or directory").
[[nodiscard]] net::ClientOptions client_options(const NetworkOptions& options);

}  // namespace dfhook::app
