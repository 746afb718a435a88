#pragma once

#include "dfhook/core/error.hpp"

#include <functional>
#include <span>
#include <string_view>

namespace CLI {
class App;
}

namespace dfhook::app {

// Set by the global options, read by commands after parsing.
struct GlobalOptions {
  std::string log_format;  // "", "text" or "json"
  bool quiet = false;
  bool verbose = false;
};

// What a subcommand does once its options are parsed.
using Runner = std::function<core::ExitCode()>;

// Registers a subcommand's options on `sub` and returns what runs it.
using Setup = Runner (*)(CLI::App& sub, const GlobalOptions& global);

// Each cmd_<name>.cpp defines its command's setup (declared here so that the definitions have
// a prototype); an executable links only the commands it holds.
Runner setup_verify_payload(CLI::App& sub, const GlobalOptions& global);
Runner setup_sign(CLI::App& sub, const GlobalOptions& global);
Runner setup_listen(CLI::App& sub, const GlobalOptions& global);
Runner setup_fetch_datafile(CLI::App& sub, const GlobalOptions& global);
Runner setup_replay(CLI::App& sub, const GlobalOptions& global);

// One row of the table that drives help, dispatch and completions.
struct Command {
  std::string_view name;
  std::string_view summary;
  bool network;  // lives in the dfhook-net executable (links libcurl, Asio, libsystemd)
  Setup setup;   // null in the executable that does not hold the command
};

// Every subcommand, in the order help lists them.
[[nodiscard]] std::span<const Command> commands();

// Runs the command line; returns the process exit status. `network_binary` is true in
// dfhook-net, which holds the network commands.
[[nodiscard]] int run(int argc, char** argv, bool network_binary);

}  // namespace dfhook::app
