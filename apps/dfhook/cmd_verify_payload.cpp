#include "command.hpp"
#include "options_secrets.hpp"
#include "options_values.hpp"

#include "dfhook/core/document_stream.hpp"
#include "dfhook/core/error.hpp"
#include "dfhook/core/units.hpp"
#include "dfhook/core/verification.hpp"
#include "dfhook/io/document_batches.hpp"
#include "dfhook/io/file.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dfhook::app {

namespace {

struct VerifyPayloadOptions {
  std::vector<std::string> files;
  SecretOptions secrets;
  std::optional<std::string> signature;
  std::string max_age;
  std::vector<std::uint64_t> project_ids;
  std::string format = "text";
};

// Output is written when this much is pending (or when the reader has nothing ready).
constexpr std::size_t k_output_flush = 64 * 1024;
// A prepared document that grew beyond this gives its memory back after use.
constexpr std::size_t k_keep_capacity = 1024 * 1024;

void write_out(std::string& out) {
  if (out.empty()) {
    return;
  }
  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0) {
    throw core::failure("cannot write to standard output");
  }
  out.clear();
}

void print_error(const std::string& message) {
  std::fputs(fmt::format("dfhook: error: {}\n", message).c_str(), stderr);
}

// Tallies the verdicts and prints them.
class Report {
public:
  Report(bool quiet, bool json) : m_quiet(quiet), m_json(json) {}

  void add(const std::string& file, const core::Verdict& verdict) {
    if (verdict.status == core::VerdictStatus::invalid) {
      m_invalid = true;
    }
    if (m_quiet) {
      return;
    }
    const std::string_view name = file;
    if (m_json) {
      core::append_verdict_json(m_out, name, verdict);
    } else {
      core::append_verdict_text(m_out, name, verdict);
    }
  }
  void unreadable(const std::string& message) {
    write_out(m_out);
    print_error(message);
    m_unreadable = true;
  }
  [[nodiscard]] std::size_t pending() const { return m_out.size(); }
  void flush() { write_out(m_out); }

  [[nodiscard]] core::ExitCode exit_code() const {
    if (m_unreadable) {
      return core::ExitCode::usage;
    }
    return m_invalid ? core::ExitCode::failed : core::ExitCode::ok;
  }

private:
  bool m_quiet;
  bool m_json;
  bool m_invalid = false;
  bool m_unreadable = false;
  std::string m_out;
};

// --signature: the one document of the one input, its signature over the input's bytes.
core::ExitCode verify_with_signature(const std::string& file, const core::VerifyOptions& settings,
                                     Report& report) {
  std::string input = io::read_file(file);
  core::DocumentStream stream;
  stream.feed(input);
  stream.finish();
  core::StreamItem item;
  core::PreparedDocument document;
  std::size_t count = 0;
  while (stream.next(item) == core::DocumentStream::Status::item) {
    if (++count == 1) {
      core::prepare_document(item, stream.json(), document);
    }
  }
  if (count > 1) {
    throw core::usage_error(
        fmt::format("--signature: {} holds {} documents, --signature belongs to one",
                    io::input_name(file), count),
        "verify saved envelopes, which carry their own signature, or one payload at a time");
  }
  core::Verifier verifier(settings);
  core::Verdict verdict = core::empty_input_verdict();
  if (count == 1) {
    document.signed_bytes = std::move(input);
    verifier.judge(document, verdict);
  }
  report.add(file, verdict);
  report.flush();
  return report.exit_code();
}

core::ExitCode run_verify_payload(VerifyPayloadOptions& options, const GlobalOptions& global) {
  if (options.files.empty()) {
    options.files.emplace_back("-");
  }
  const core::SecretSet secrets = load_secrets(options.secrets);
  core::VerifyOptions settings;
  settings.secrets = &secrets;
  settings.signature = options.signature;
  settings.now = std::chrono::system_clock::now();
  if (!options.max_age.empty()) {
    const std::chrono::milliseconds max_age = duration_option("--max-age", options.max_age);
    if (max_age.count() > 0) {
      settings.max_age = max_age;
    }
  }
  settings.project_ids = options.project_ids;

  Report report(global.quiet, options.format == "json");
  if (options.signature) {
    if (secrets.empty()) {
      throw core::usage_error("--signature needs a secret to check it with",
                              std::string(k_no_secret_hint));
    }
    if (options.files.size() > 1) {
      throw core::usage_error("--signature belongs to one document, and several inputs are given",
                              "verify one payload at a time");
    }
    return verify_with_signature(options.files.front(), settings, report);
  }

  // A reader thread frames and prepares documents while this one judges and prints them;
  // batches go round between the two, so memory stays flat however many documents come.
  io::DocumentBatchReader reader(options.files);
  core::Verifier verifier(settings);
  core::Verdict verdict;
  while (io::DocumentBatch* batch = reader.next()) {
    const std::string& file = options.files[batch->input];
    for (std::size_t i = 0; i < batch->count; ++i) {
      core::PreparedDocument& document = batch->documents[i];
      verifier.judge(document, verdict);
      report.add(file, verdict);
      if (document.text.capacity() > k_keep_capacity) {
        document.text = std::string();
      }
      if (document.body.capacity() > k_keep_capacity) {
        document.body = std::string();
      }
    }
    if (batch->empty_input) {
      report.add(file, core::empty_input_verdict());
    }
    if (!batch->error.empty()) {
      report.unreadable(batch->error);
    }
    reader.give_back(batch);
    if (report.pending() >= k_output_flush || !reader.ready()) {
      report.flush();
    }
  }
  report.flush();
  return report.exit_code();
}

}  // namespace

Runner setup_verify_payload(CLI::App& sub, const GlobalOptions& global) {
  auto options = std::make_shared<VerifyPayloadOptions>();
  sub.add_option("file", options->files,
                 "payloads or saved envelopes, one or many JSON documents each ('-' or none: "
                 "standard input)")
      ->type_name("FILE|-");
  add_secret_options(sub, options->secrets);
  sub.add_option("--signature", options->signature,
                 "the X-Hub-Signature of a single bare payload, e.g. 'sha1=...'")
      ->type_name("SIG");
  sub.add_option("--max-age", options->max_age,
                 "a datafile update whose timestamp is older than this is invalid")
      ->type_name("DUR");
  sub.add_option("--project-id", options->project_ids,
                 "a datafile update of another project is invalid (repeatable)")
      ->type_name("ID")
      ->check(whole_number(1, 9'223'372'036'854'775'807))
      ->allow_extra_args(false);
  sub.add_option("--format", options->format, "output format")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  sub.footer(
      "Exit status: 0 every document ok or ignored, 1 any invalid, 2 usage error or unreadable "
      "input.");
  const GlobalOptions* global_options = &global;
  return [options, global_options] { return run_verify_payload(*options, *global_options); };
}

}  // namespace dfhook::app
