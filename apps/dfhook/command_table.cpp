#include "command.hpp"

#include <array>

namespace dfhook::app {

// Each cmd_<name>.cpp defines its setup function; this file is compiled into both executables,
// and each sees only the setups it links.
Runner setup_verify_payload(CLI::App& sub, const GlobalOptions& global);
Runner setup_sign(CLI::App& sub, const GlobalOptions& global);

#ifdef DFHOOK_NETWORK_BINARY
Runner setup_listen(CLI::App& sub, const GlobalOptions& global);
Runner setup_fetch_datafile(CLI::App& sub, const GlobalOptions& global);
Runner setup_replay(CLI::App& sub, const GlobalOptions& global);
#define DFHOOK_NET_SETUP(fn) (fn)
#define DFHOOK_LOCAL_SETUP(fn) nullptr
#else
#define DFHOOK_NET_SETUP(fn) nullptr
#define DFHOOK_LOCAL_SETUP(fn) (fn)
#endif

namespace {

const std::array k_commands{
    Command{"listen", "receive Optimizely webhooks and keep datafiles current", true,
            DFHOOK_NET_SETUP(setup_listen)},
    Command{"fetch-datafile", "download a datafile if it changed (the cron fallback)", true,
            DFHOOK_NET_SETUP(setup_fetch_datafile)},
    Command{"verify-payload", "check saved webhook payloads and their signatures", false,
            DFHOOK_LOCAL_SETUP(setup_verify_payload)},
    Command{"replay", "re-send saved deliveries to a webhook receiver", true,
            DFHOOK_NET_SETUP(setup_replay)},
    Command{"sign", "print the X-Hub-Signature of a body", false, DFHOOK_LOCAL_SETUP(setup_sign)},
};

}  // namespace

std::span<const Command> commands() {
  return k_commands;
}

}  // namespace dfhook::app
