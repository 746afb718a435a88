#include "options_secrets.hpp"

#include "dfhook/io/file.hpp"

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <utility>

namespace dfhook::app {

void add_secret_options(CLI::App& sub, SecretOptions& options) {
  // allow_extra_args(false): each --secret takes one value, so a positional FILE after it is
  // not swallowed as a second secret.
  sub.add_option("--secret", options.values,
                 "a webhook secret (repeatable); visible to other users in ps, prefer "
                 "--secret-file or DFHOOK_SECRET")
      ->type_name("VALUE")
      ->allow_extra_args(false);
  sub.add_option("--secret-file", options.files,
                 "a file of secrets, one per line, or 'PROJECT_ID SECRET' to bind one to a "
                 "project (repeatable)")
      ->type_name("FILE")
      ->allow_extra_args(false);
}

core::SecretSet load_secrets(const SecretOptions& options) {
  core::SecretSet secrets;
  if (const char* env = std::getenv(k_secret_env); env != nullptr) {
    secrets.add(core::Secret{env, std::nullopt, k_secret_env});
  }
  for (const std::string& value : options.values) {
    secrets.add(core::Secret{value, std::nullopt, "--secret"});
  }
  for (const std::string& file : options.files) {
    secrets.add(core::parse_secret_lines(io::read_file(file), file));
  }
  return secrets;
}

}  // namespace dfhook::app
