#include "command.hpp"
#include "options_secrets.hpp"

#include "dfhook/core/document_stream.hpp"
#include "dfhook/core/error.hpp"
#include "dfhook/core/units.hpp"
#include "dfhook/core/verification.hpp"
#include "dfhook/io/file.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <unistd.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
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

// Inputs are read in chunks of this size, so memory does not depend on the input's size.
constexpr std::size_t k_read_chunk = 64 * 1024;
// A batch is handed over when it holds this many documents or bytes.
constexpr std::size_t k_batch_documents = 256;
constexpr std::size_t k_batch_bytes = 256 * 1024;
// Batches in flight between the reader and the judge; bounds the memory of the pipeline.
constexpr std::size_t k_batches = 4;
// Output is written when this much is pending (or when the reader has nothing ready).
constexpr std::size_t k_output_flush = 64 * 1024;
// A prepared document that grew beyond this gives its memory back after use.
constexpr std::size_t k_keep_capacity = 1024 * 1024;

std::string input_name(const std::string& file) {
  return file == "-" ? std::string("standard input") : "'" + file + "'";
}

std::string unreadable(const std::string& file, int error) {
  return "cannot read " + input_name(file) + ": " + std::strerror(error);
}

// Documents of one input handed from the reader thread to the judging thread.
struct Batch {
  std::size_t input = 0;
  std::vector<core::PreparedDocument> documents;
  std::size_t count = 0;
  std::size_t bytes = 0;
  bool input_end = false;    // the last batch of its input
  bool empty_input = false;  // input_end: the input held no document
  std::string error;         // input_end: why the input could not be read to its end
  bool last = false;         // no batch follows

  core::PreparedDocument& next_slot() {
    if (count == documents.size()) {
      documents.emplace_back();
    }
    return documents[count++];
  }
  void clear(std::size_t new_input) {
    input = new_input;
    count = 0;
    bytes = 0;
    input_end = false;
    empty_input = false;
    error.clear();
    last = false;
  }
};

// A queue of batches between two threads; never holds more than the k_batches that exist.
class BatchQueue {
public:
  void push(Batch* batch) {
    {
      const std::lock_guard lock(m_mutex);
      m_batches.push_back(batch);
    }
    m_ready.notify_one();
  }
  // Null once stop() was called and the queue is empty.
  Batch* pop() {
    std::unique_lock lock(m_mutex);
    m_ready.wait(lock, [&] { return !m_batches.empty() || m_stopped; });
    if (m_batches.empty()) {
      return nullptr;
    }
    Batch* batch = m_batches.front();
    m_batches.pop_front();
    return batch;
  }
  [[nodiscard]] bool empty() {
    const std::lock_guard lock(m_mutex);
    return m_batches.empty();
  }
  void stop() {
    {
      const std::lock_guard lock(m_mutex);
      m_stopped = true;
    }
    m_ready.notify_all();
  }

private:
  std::mutex m_mutex;
  std::condition_variable m_ready;
  std::deque<Batch*> m_batches;
  bool m_stopped = false;
};

// Reads every input in chunks, frames its documents and prepares them for judging, in input
// order, on its own thread; the judge gets them through `ready` and gives them back through
// `free`.
class Reader {
public:
  Reader(const std::vector<std::string>& files, BatchQueue& ready, BatchQueue& free)
      : m_files(files), m_ready(ready), m_free(free), m_chunk(k_read_chunk, '\0') {}

  void run() {
    m_batch = m_free.pop();
    for (std::size_t input = 0; input < m_files.size() && m_batch != nullptr; ++input) {
      m_batch->clear(input);
      read_input(input);
    }
    if (m_batch != nullptr) {
      m_batch->last = true;
      m_ready.push(m_batch);
    }
  }

private:
  void hand_over() {
    const std::size_t input = m_batch->input;
    m_ready.push(m_batch);
    m_batch = m_free.pop();
    if (m_batch != nullptr) {
      m_batch->clear(input);
    }
  }

  // False when the judge stopped.
  bool drain() {
    core::StreamItem item;
    while (m_stream.next(item) == core::DocumentStream::Status::item) {
      ++m_documents;
      core::PreparedDocument& document = m_batch->next_slot();
      core::prepare_document(item, m_stream.json(), document);
      m_batch->bytes += document.text.size();
      if (m_batch->count == k_batch_documents || m_batch->bytes >= k_batch_bytes) {
        hand_over();
        if (m_batch == nullptr) {
          return false;
        }
      }
    }
    return true;
  }

  void read_input(std::size_t input) {
    const std::string& file = m_files[input];
    m_stream.reset();
    m_documents = 0;
    int fd = STDIN_FILENO;
    if (file != "-") {
      fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        finish_input(unreadable(file, errno));
        return;
      }
    }
    std::string error;
    for (;;) {
      const ssize_t got = ::read(fd, m_chunk.data(), m_chunk.size());
      if (got < 0 && errno == EINTR) {
        continue;
      }
      if (got < 0) {
        error = unreadable(file, errno);
        break;
      }
      if (got == 0) {
        m_stream.finish();
      } else {
        m_stream.feed(std::string_view(m_chunk.data(), static_cast<std::size_t>(got)));
      }
      if (!drain()) {
        break;
      }
      if (got == 0) {
        break;
      }
      // Whatever a short read completed is judged now: a terminal or a slow pipe gets its answer
      // as soon as a document is complete. A full read means more input is waiting, and the
      // batch fills up first (fewer hand-overs, and fewer wake-ups of the judge).
      if (m_batch->count > 0 && static_cast<std::size_t>(got) < m_chunk.size()) {
        hand_over();
        if (m_batch == nullptr) {
          break;
        }
      }
    }
    if (fd != STDIN_FILENO) {
      ::close(fd);
    }
    if (m_batch != nullptr) {
      finish_input(std::move(error));
    }
  }

  void finish_input(std::string error) {
    m_batch->input_end = true;
    m_batch->empty_input = error.empty() && m_documents == 0;
    m_batch->error = std::move(error);
    hand_over();
  }

  const std::vector<std::string>& m_files;
  BatchQueue& m_ready;
  BatchQueue& m_free;
  core::DocumentStream m_stream;
  std::string m_chunk;
  Batch* m_batch = nullptr;
  std::size_t m_documents = 0;
};

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
                    input_name(file), count),
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
    try {
      const std::chrono::milliseconds max_age = core::parse_duration(options.max_age);
      if (max_age.count() > 0) {
        settings.max_age = max_age;
      }
    } catch (const core::Error& error) {
      throw core::usage_error(fmt::format("--max-age: {}", error.what()), error.hint());
    }
  }
  for (const std::uint64_t id : options.project_ids) {
    if (id == 0 || id > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      throw core::usage_error(
          fmt::format("--project-id: '{}' is out of range 1..9223372036854775807", id));
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
  std::vector<Batch> batches(k_batches);
  BatchQueue ready;
  BatchQueue free;
  for (Batch& batch : batches) {
    free.push(&batch);
  }
  Reader reader(options.files, ready, free);
  std::exception_ptr reader_error;
  std::thread reader_thread([&] {
    try {
      reader.run();
    } catch (...) {
      reader_error = std::current_exception();
      ready.stop();
    }
  });

  core::Verifier verifier(settings);
  core::Verdict verdict;
  std::exception_ptr error;
  try {
    for (;;) {
      Batch* batch = ready.pop();
      if (batch == nullptr) {
        break;
      }
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
      const bool last = batch->last;
      free.push(batch);
      if (last) {
        break;
      }
      if (report.pending() >= k_output_flush || ready.empty()) {
        report.flush();
      }
    }
    report.flush();
  } catch (...) {
    error = std::current_exception();
  }
  free.stop();
  reader_thread.join();
  if (error) {
    std::rethrow_exception(error);
  }
  if (reader_error) {
    std::rethrow_exception(reader_error);
  }
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
