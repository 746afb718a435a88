#include "command.hpp"
#include "options_secrets.hpp"

#include "dfhook/core/error.hpp"
#include "dfhook/core/signature.hpp"
#include "dfhook/io/file.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <string>

namespace dfhook::app {

namespace {

struct SignOptions {
  std::string file = "-";
  SecretOptions secrets;
};

core::ExitCode run_sign(const SignOptions& options) {
  // The secret is checked before reading, so a forgotten secret does not wait on a terminal.
  const core::SecretSet secrets = load_secrets(options.secrets);
  if (secrets.empty()) {
    throw core::usage_error("no secret to sign with", std::string(k_no_secret_hint));
  }
  const std::string body = io::read_file(options.file);
  const std::string line =
      core::format_signature(core::hmac_sha1(secrets.first().value, body)) + "\n";
  if (std::fputs(line.c_str(), stdout) == EOF || std::fflush(stdout) != 0) {
    throw core::failure("cannot write the signature to standard output");
  }
  return core::ExitCode::ok;
}

}  // namespace

Runner setup_sign(CLI::App& sub, const GlobalOptions& /*global*/) {
  auto options = std::make_shared<SignOptions>();
  sub.add_option("file", options->file, "the body to sign, byte for byte ('-': standard input)")
      ->type_name("FILE|-");
  add_secret_options(sub, options->secrets);
  sub.footer("Prints sha1=HEX, the X-Hub-Signature of the raw bytes, with the first secret.");
  return [options] { return run_sign(*options); };
}

}  // namespace dfhook::app
