#pragma once

#include "dfhook/core/document_stream.hpp"
#include "dfhook/core/error.hpp"
#include "dfhook/core/location.hpp"
#include "dfhook/core/replay_headers.hpp"
#include "dfhook/net/replay_sender.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

// The replay job (DESIGN §3 "dfhook replay"): reads saved deliveries (§6 envelopes and bare
// payloads) from files, directories and standard input in delivery order, chooses each one's
// headers and signature, hands them to a sender and collects what each got.

namespace dfhook::service {

// One input being read, a chunk at a time.
class ReplayInput {
public:
  virtual ~ReplayInput() = default;
  // Reads the next bytes of the input into `buffer`, at most buffer.size(), waiting until some
  // arrive; 0 at the input's end. Throws core::usage_error("cannot read 'PATH': <reason>")
  // when the input cannot be read further.
  [[nodiscard]] virtual std::size_t read(std::span<char> buffer) = 0;
  // False when read() would wait: nothing has arrived yet on a pipe or terminal.
  [[nodiscard]] virtual bool ready() { return true; }
};

// Where the inputs come from; LocalReplayFiles reads the real file system.
class ReplayFiles {
public:
  virtual ~ReplayFiles() = default;
  // The files one argument stands for: "-" (standard input) and a file stand for themselves; a
  // directory for its regular files whose names end in ".json" and do not start with '.', in
  // byte order of their names (the spool's names sort in delivery order), not recursing.
  // Throws core::usage_error("cannot read 'PATH': <reason>") when the argument cannot be read.
  [[nodiscard]] virtual std::vector<std::string> expand(const std::string& argument) = 0;
  // Opens one file given by expand() for reading ("-": standard input, left open at the end).
  // Throws core::usage_error("cannot read 'PATH': <reason>") when it cannot be opened.
  [[nodiscard]] virtual std::unique_ptr<ReplayInput> open(const std::string& path) = 0;
};

class LocalReplayFiles final : public ReplayFiles {
public:
  [[nodiscard]] std::vector<std::string> expand(const std::string& argument) override;
  [[nodiscard]] std::unique_ptr<ReplayInput> open(const std::string& path) override;
};

// What sends the requests; SenderTransport is net::ReplaySender.
class ReplayTransport {
public:
  virtual ~ReplayTransport() = default;
  // Sends what `next` supplies and reports each result in input order, with the contract of
  // net::ReplaySender::run.
  virtual void run(const net::ReplaySender::NextRequest& next,
                   const net::ReplaySender::OnResult& on_result) = 0;
};

class SenderTransport final : public ReplayTransport {
public:
  explicit SenderTransport(net::ReplaySenderOptions options) : m_sender(std::move(options)) {}
  void run(const net::ReplaySender::NextRequest& next,
           const net::ReplaySender::OnResult& on_result) override {
    (void)m_sender.run(next, on_result);
  }

private:
  net::ReplaySender m_sender;
};

// One delivery as read from its input.
struct ReplayDelivery {
  std::string input;            // the file's name, "standard input" for "-"
  std::size_t input_index = 0;  // among the files the inputs stand for, from 0
  std::size_t document = 0;     // 1-based among the documents of its input
  core::LineColumn start;       // where the document starts in its input
  std::string id;               // the envelope's id; empty for a bare payload
  bool envelope = false;
  core::SignatureSource signature = core::SignatureSource::none;
  std::size_t body_size = 0;
  // The request to send: the body bytes exactly as saved (an envelope's decoded body, a bare
  // payload's document text without the whitespace around it) and the headers of
  // core::replay_headers. By the time on_result sees it, the body has gone to the sender and
  // is empty.
  net::ReplayRequest request;
};

// A document or input that cannot be replayed; it is not sent, and the job's exit code is
// usage (2: unreadable input).
struct ReplayInputProblem {
  std::string input;  // as in ReplayDelivery; the argument for an argument that cannot be read
  std::optional<std::size_t> document;  // none: the whole input
  core::LineColumn start;               // of the problem, when `document` is set
  // With `document`: what is wrong with it ("/headers/1/0: expected a string …"); without: the
  // whole message ("cannot read 'x': No such file or directory", "'x' holds no delivery").
  std::string reason;
};

struct ReplayJobOptions {
  std::vector<std::string> inputs;  // files, directories and "-", in the order given
  // Signs every body afresh when set (the first secret); else the saved signature is sent.
  std::optional<std::string> secret;
  std::vector<core::HeaderArgument> headers;  // --header arguments, in order
  // Sent with a bare payload (an envelope keeps what was saved, or nothing).
  std::string payload_content_type = "application/json";
  std::string payload_user_agent;
  bool dry_run = false;  // read and prepare everything, send nothing
  // A document larger than this is a problem of that document; reading resumes after it.
  std::size_t max_document = core::k_default_max_document;
  // When a delivery gets no answer because the receiver cannot be reached (connection
  // refused, host not resolved) after every retry, take no further delivery: the rest would
  // meet the same fate, each after its retries.
  bool stop_when_unreachable = true;
};

// Counts, once the job ran.
struct ReplaySummary {
  std::size_t deliveries = 0;      // read and prepared (sent, or shown in a dry run)
  std::size_t ok = 0;              // got a 2xx
  std::size_t redirects = 0;       // got a 3xx (never followed)
  std::size_t http_errors = 0;     // got another final status
  std::size_t network_errors = 0;  // got no answer
  std::size_t unsigned_sent = 0;   // sent without a signature
  std::size_t problems = 0;        // documents or inputs not sent because they cannot be read
  bool stopped = false;  // stopped early (stop_when_unreachable) with deliveries left unsent
  std::chrono::microseconds elapsed{0};

  [[nodiscard]] std::size_t failed() const { return redirects + http_errors + network_errors; }
  // usage when any input could not be read, else failed when any delivery got no 2xx, else ok.
  [[nodiscard]] core::ExitCode exit_code(bool dry_run) const;
};

// What the job tells its caller as it goes, on the calling thread, in input order for
// deliveries. Each may be empty.
struct ReplayEvents {
  // Every input expanded: how many files will be read.
  std::function<void(std::size_t files)> on_expanded;
  std::function<void(const ReplayInputProblem&)> on_problem;
  // A delivery about to be taken by the sender (or, in a dry run, instead of sending it).
  std::function<void(const ReplayDelivery&)> on_prepared;
  // A delivery's result; not called in a dry run.
  std::function<void(const ReplayDelivery&, const net::ReplayResult&)> on_result;
};

class ReplayJob {
public:
  // `transport` may be null for a dry run.
  ReplayJob(ReplayJobOptions options, ReplayFiles& files, ReplayTransport* transport);

  // Expands every input first (so a missing file or directory is found before anything is
  // sent: it is reported through on_problem and nothing is sent), then reads the documents one
  // input at a time, a chunk at a time, as the sender takes them. Memory holds the unread part
  // of the input being read (at most max_document and one chunk) and the deliveries in
  // flight, whatever the size of the inputs. An input that cannot be opened or read to its end
  // is reported through on_problem (what was read of it before is sent).
  // Throws core::Error only when the sender cannot be set up.
  ReplaySummary run(const ReplayEvents& events);

private:
  ReplayJobOptions m_options;
  ReplayFiles& m_files;
  ReplayTransport* m_transport;
};

// Reads the deliveries of one input, one at a time, reading it in chunks as they are asked
// for: every JSON document in it (concatenated or one per line); an object with
// "dfhook_envelope" is read as an envelope (and is a problem if it is not a good one), anything
// else is sent as a bare payload.
class DeliveryReader {
public:
  // Bytes asked of the input at a time.
  static constexpr std::size_t k_chunk = 64 * 1024;

  explicit DeliveryReader(const ReplayJobOptions& options);
  ~DeliveryReader();
  DeliveryReader(const DeliveryReader&) = delete;
  DeliveryReader& operator=(const DeliveryReader&) = delete;

  // Starts reading `source`, the input named `input`; drops the previous one.
  void start(std::string input, std::unique_ptr<ReplayInput> source);
  // The next delivery of the input into `out`; false when the input holds no more. Documents
  // that cannot be replayed are passed to `on_problem` and skipped; so is an input that holds
  // no document at all ("holds no delivery"), and one that cannot be read to its end (the
  // reason of ReplayInput::read; nothing more is read of it).
  bool next(ReplayDelivery& out, const std::function<void(ReplayInputProblem&&)>& on_problem);
  // True when the input holds more than whitespace after what next() returned. Reads on to find
  // out as long as that needs no waiting; an input that would make it wait, or that cannot be
  // read further, counts as holding more.
  [[nodiscard]] bool more();

private:
  struct State;
  std::unique_ptr<State> m_state;
};

}  // namespace dfhook::service
