#pragma once

#include "dfhook/core/secrets.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
}

namespace dfhook::app {

// The secret options shared by verify-payload, sign, listen and replay (DESIGN §3 "Secrets").
struct SecretOptions {
  std::vector<std::string> values;  // --secret VALUE, in command-line order
  std::vector<std::string> files;   // --secret-file FILE, in command-line order
};

// The environment variable that holds one more secret, whole (no PROJECT_ID form).
inline constexpr const char* k_secret_env = "DFHOOK_SECRET";

// What to say when a command needs a secret and none was given.
inline constexpr std::string_view k_no_secret_hint =
    "give one with --secret-file FILE, DFHOOK_SECRET or --secret VALUE";

// Registers --secret (repeatable) and --secret-file (repeatable) on `sub`, storing into
// `options`, which must outlive parsing.
void add_secret_options(CLI::App& sub, SecretOptions& options);

// Every secret, in this order: DFHOOK_SECRET, each --secret, each line of each --secret-file.
// Reads the files (and the environment) again at every call, so listen can call it on SIGHUP
// and swap the result in. Throws core::usage_error for an empty secret, an unreadable file or
// a file line that cannot be used. Gives an empty set when no source holds a secret.
[[nodiscard]] core::SecretSet load_secrets(const SecretOptions& options);

}  // namespace dfhook::app
