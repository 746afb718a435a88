#include "command.hpp"

#include "dfhook/io/log.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <unistd.h>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <string>

namespace dfhook::app {

namespace {

void print_error(const std::string& message, const std::string& hint) {
  std::string text = fmt::format("dfhook: error: {}\n", message);
  if (!hint.empty()) {
    text += fmt::format("hint: {}\n", hint);
  }
  std::fputs(text.c_str(), stderr);
}

// CLI11 words its messages with capitals and a final period; the project's format has neither.
std::string cli11_message(const CLI::Error& error) {
  std::string message = error.what();
  if (!message.empty() && message.back() == '.') {
    message.pop_back();
  }
  if (!message.empty()) {
    message[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(message[0])));
  }
  return message;
}

// The subcommand named on the command line, found without parsing the options: global
// options may come first, and only --log-format takes a separate value.
std::string_view peek_subcommand(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") {
      return {};
    }
    if (arg == "--log-format") {
      ++i;
      continue;
    }
    if (!arg.empty() && arg[0] == '-') {
      continue;
    }
    return arg;
  }
  return {};
}

// Where to read about the command line that failed to parse.
std::string usage_hint(std::string_view subcommand) {
  for (const Command& command : commands()) {
    if (command.name == subcommand) {
      return fmt::format("run 'dfhook {} --help' for usage", subcommand);
    }
  }
  return "run 'dfhook --help' for usage";
}

// dfhook-net lives next to dfhook in the build tree and in libexec once installed.
std::string network_binary_path() {
  char self[PATH_MAX];
  const ssize_t length = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (length <= 0) {
    return {};
  }
  const std::string path(self, static_cast<std::size_t>(length));
  const std::string dir = path.substr(0, path.rfind('/'));
  for (const std::string& candidate :
       {dir + "/dfhook-net", dir + "/../libexec/dfhook/dfhook-net"}) {
    if (::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return {};
}

// The network commands link libcurl, Asio and libsystemd, which cost milliseconds to load;
// keeping them in a second executable keeps verify-payload and sign as fast as openssl.
int exec_network_binary(std::string_view name, char** argv) {
  const std::string path = network_binary_path();
  if (path.empty()) {
    print_error(fmt::format("'{}' needs the dfhook-net executable, which is not installed", name),
                "reinstall dfhook");
    return static_cast<int>(core::ExitCode::usage);
  }
  ::execv(path.c_str(), argv);
  print_error(fmt::format("cannot run '{}': {}", path, std::strerror(errno)), {});
  return static_cast<int>(core::ExitCode::usage);
}

void configure_logging(const GlobalOptions& global) {
  io::LogFormat format = io::default_log_format();
  if (global.log_format == "text") {
    format = io::LogFormat::text;
  } else if (global.log_format == "json") {
    format = io::LogFormat::json;
  }
  io::LogLevel level = io::LogLevel::info;
  if (global.quiet) {
    level = io::LogLevel::error;
  } else if (global.verbose) {
    level = io::LogLevel::debug;
  }
  io::configure_logging(format, level);
}

}  // namespace

int run(int argc, char** argv, bool network_binary) {
  if (!network_binary) {
    const std::string_view name = peek_subcommand(argc, argv);
    for (const Command& command : commands()) {
      if (command.name == name && command.network) {
        return exec_network_binary(name, argv);
      }
    }
  }

  CLI::App app{"keeps servers' copies of Optimizely datafiles current", "dfhook"};
  app.set_version_flag("--version", std::string("dfhook ") + DFHOOK_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  GlobalOptions global;
  app.add_option("--log-format", global.log_format,
                 "log format on stderr (default: text on a terminal, JSON lines otherwise)")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_flag("-q,--quiet", global.quiet, "print only errors");
  app.add_flag("-v,--verbose", global.verbose, "print debugging detail");

  std::map<std::string, Runner, std::less<>> runners;
  for (const Command& command : commands()) {
    if (command.network != network_binary) {
      // Listed in help; dispatched before parsing.
      app.add_subcommand(std::string(command.name), std::string(command.summary));
      continue;
    }
    CLI::App* sub = app.add_subcommand(std::string(command.name), std::string(command.summary));
    if (command.setup != nullptr) {
      runners.emplace(command.name, command.setup(*sub, global));
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::fputs(app.help("", CLI::AppFormatMode::All).c_str(), stdout);
    return 0;
  } catch (const CLI::CallForVersion&) {
    std::fputs((app.version() + "\n").c_str(), stdout);
    return 0;
  } catch (const CLI::ParseError& error) {
    print_error(cli11_message(error), usage_hint(peek_subcommand(argc, argv)));
    return static_cast<int>(core::ExitCode::usage);
  }
  configure_logging(global);

  for (const CLI::App* sub : app.get_subcommands()) {
    const auto runner = runners.find(sub->get_name());
    if (runner == runners.end()) {
      print_error(fmt::format("'{}' is not available in this build", sub->get_name()), {});
      return static_cast<int>(core::ExitCode::usage);
    }
    try {
      return static_cast<int>(runner->second());
    } catch (const core::Error& error) {
      print_error(error.what(), error.hint());
      return static_cast<int>(error.code());
    }
  }
  return static_cast<int>(core::ExitCode::usage);
}

}  // namespace dfhook::app
