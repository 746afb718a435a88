#include "options_tokens.hpp"

#include "dfhook/core/error.hpp"
#include "dfhook/io/file.hpp"

#include <CLI/CLI.hpp>

#include <cstdlib>

namespace dfhook::app {

void add_token_options(CLI::App& sub, TokenOptions& options) {
  sub.add_option("--auth-token-file", options.files,
                 "a file of auth tokens for authenticated datafiles: 'TOKEN' or 'SDK_KEY TOKEN' "
                 "per line (repeatable)")
      ->type_name("FILE")
      ->allow_extra_args(false);
}

std::vector<core::AuthToken> load_tokens(const TokenOptions& options) {
  std::vector<core::AuthToken> tokens;
  for (const std::string& file : options.files) {
    std::vector<core::AuthToken> parsed = core::parse_token_lines(io::read_file(file), file);
    tokens.insert(tokens.end(), std::make_move_iterator(parsed.begin()),
                  std::make_move_iterator(parsed.end()));
  }
  if (const char* env = std::getenv(k_token_env); env != nullptr) {
    if (*env == '\0') {
      throw core::usage_error(std::string("empty auth token from ") + k_token_env,
                              "unset it or give a token");
    }
    core::check_token(env, k_token_env);
    tokens.push_back(core::AuthToken{env, std::nullopt, k_token_env});
  }
  return tokens;
}

}  // namespace dfhook::app
