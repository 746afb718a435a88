#pragma once

#include "dfhook/core/secrets.hpp"

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace dfhook::app {

// The auth token options shared by listen and fetch-datafile (DESIGN §3 "Auth tokens").
struct TokenOptions {
  std::vector<std::string> files;  // --auth-token-file FILE, in command-line order
};

// The environment variable that holds one more token, for every SDK key.
inline constexpr const char* k_token_env = "DFHOOK_AUTH_TOKEN";

// Registers --auth-token-file (repeatable) on `sub`, storing into `options`.
void add_token_options(CLI::App& sub, TokenOptions& options);

// Every token: each line of each --auth-token-file, then DFHOOK_AUTH_TOKEN (so a token bound
// to an SDK key in a file wins over the catch-all of the environment). Reads the files again
// at every call (listen calls it on SIGHUP). Throws core::usage_error for an unreadable file,
// a malformed line or an empty DFHOOK_AUTH_TOKEN; never names a token.
[[nodiscard]] std::vector<core::AuthToken> load_tokens(const TokenOptions& options);

}  // namespace dfhook::app
