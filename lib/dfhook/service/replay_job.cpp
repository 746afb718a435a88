#include "dfhook/service/replay_job.hpp"

#include "dfhook/core/document_stream.hpp"
#include "dfhook/core/envelope.hpp"
#include "dfhook/core/error.hpp"
#include "dfhook/core/signature.hpp"
#include "dfhook/io/file.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <system_error>

namespace dfhook::service {

namespace {

using Clock = std::chrono::steady_clock;

std::string display_name(const std::string& path) {
  return path == "-" ? std::string("standard input") : path;
}

std::string with_pointer(const core::Problem& problem) {
  return problem.pointer.empty() ? problem.reason : problem.pointer + ": " + problem.reason;
}

}  // namespace

std::vector<std::string> LocalReplayFiles::expand(const std::string& argument) {
  if (argument == "-") {
    return {argument};
  }
  struct stat info {};
  if (::stat(argument.c_str(), &info) != 0) {
    throw core::usage_error("cannot read '" + argument + "': " + std::strerror(errno));
  }
  if (!S_ISDIR(info.st_mode)) {
    return {argument};
  }
  std::vector<std::string> names;
  std::error_code error;
  std::filesystem::directory_iterator it(argument, error);
  for (; !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
    const std::string name = it->path().filename().string();
    std::error_code ignored;
    if (name.empty() || name[0] == '.' || !name.ends_with(".json") ||
        !it->is_regular_file(ignored)) {
      continue;
    }
    names.push_back(name);
  }
  if (error) {
    throw core::usage_error("cannot read '" + argument + "': " + error.message());
  }
  if (names.empty()) {
    throw core::usage_error("'" + argument + "' holds no delivery (no *.json file)");
  }
  std::sort(names.begin(), names.end());
  const std::string prefix = argument.ends_with('/') ? argument : argument + "/";
  for (std::string& name : names) {
    name.insert(0, prefix);
  }
  return names;
}

namespace {

[[noreturn]] void throw_unreadable(const std::string& path, int error) {
  throw core::usage_error(io::unreadable_message(path, error));
}

class FileInput final : public ReplayInput {
public:
  explicit FileInput(const std::string& path) : m_path(path) {
    if (path != "-") {
      m_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (m_fd < 0) {
        throw_unreadable(path, errno);
      }
    }
  }
  ~FileInput() override {
    if (m_fd != STDIN_FILENO) {
      ::close(m_fd);
    }
  }
  FileInput(const FileInput&) = delete;
  FileInput& operator=(const FileInput&) = delete;

  std::size_t read(std::span<char> buffer) override {
    for (;;) {
      const ssize_t got = ::read(m_fd, buffer.data(), buffer.size());
      if (got >= 0) {
        return static_cast<std::size_t>(got);
      }
      if (errno != EINTR) {
        throw_unreadable(m_path, errno);
      }
    }
  }

  bool ready() override {
    pollfd waiting{m_fd, POLLIN, 0};
    return ::poll(&waiting, 1, 0) != 0;
  }

private:
  std::string m_path;
  int m_fd = STDIN_FILENO;
};

}  // namespace

std::unique_ptr<ReplayInput> LocalReplayFiles::open(const std::string& path) {
  return std::make_unique<FileInput>(path);
}

core::ExitCode ReplaySummary::exit_code(bool dry_run) const {
  if (problems > 0) {
    return core::ExitCode::usage;
  }
  if (!dry_run && (failed() > 0 || stopped)) {
    return core::ExitCode::failed;
  }
  return core::ExitCode::ok;
}

struct DeliveryReader::State {
  const ReplayJobOptions& options;
  std::optional<core::SigningKey> key;
  std::string input;
  std::unique_ptr<ReplayInput> source;  // null once the input ended or failed
  std::string chunk;
  core::DocumentStream stream;
  bool finished = false;  // the input's end was fed to the stream
  std::size_t documents = 0;
  bool active = false;
  core::EnvelopeView view;
  std::string body_buffer;
  std::vector<core::HeaderField> saved;

  explicit State(const ReplayJobOptions& o) : options(o), stream(o.max_document) {
    if (options.secret) {
      key.emplace(*options.secret);
    }
  }

  ReplayInputProblem problem_at(const core::StreamItem& item, std::size_t offset,
                                std::string reason) const {
    return ReplayInputProblem{input, item.number, core::line_column(item.text, offset, item.start),
                              std::move(reason)};
  }

  // Fills `out` from the document of `item`; a problem when it cannot be replayed.
  std::optional<ReplayInputProblem> prepare(const core::StreamItem& item, ReplayDelivery& out) {
    const core::JsonValue root = stream.json().root();
    out = ReplayDelivery{};
    out.input = input;
    out.document = item.number;
    out.start = item.start;
    saved.clear();
    std::string_view content_type;
    std::string_view user_agent;
    if (core::is_envelope(root)) {
      core::EnvelopeBodySource body_source;
      if (auto problem = core::read_envelope(root, view, body_buffer, &body_source)) {
        return problem_at(item, problem->offset, with_pointer(*problem));
      }
      out.envelope = true;
      out.id = std::string(view.id);
      out.request.body = std::string(view.body);
      for (const core::JsonValue pair : view.headers->children()) {
        auto child = pair.children().begin();
        const std::string_view name = (*child).string();
        ++child;
        saved.emplace_back(std::string(name), std::string((*child).string()));
      }
    } else {
      out.request.body = std::string(item.text);
      content_type = options.payload_content_type;
      user_agent = options.payload_user_agent;
    }
    std::optional<std::string> fresh;
    if (key) {
      fresh = core::format_signature(key->compute(out.request.body));
    }
    core::ReplayHeaders headers =
        core::replay_headers(saved, fresh, content_type, user_agent, options.headers);
    if (!headers.error.empty()) {
      return problem_at(item, 0, headers.error);
    }
    out.request.headers = std::move(headers.headers);
    out.signature = headers.signature;
    out.body_size = out.request.body.size();
    return std::nullopt;
  }

  // Feeds the stream the next chunk of the input, or its end. Throws what the input's read
  // throws.
  void feed() {
    if (chunk.empty()) {
      chunk.resize(k_chunk);
    }
    const std::size_t got = source->read(chunk);
    if (got == 0) {
      stream.finish();
      finished = true;
      source.reset();
    } else {
      stream.feed(std::string_view(chunk.data(), got));
    }
  }

  void stop() {
    active = false;
    source.reset();
  }
};

DeliveryReader::DeliveryReader(const ReplayJobOptions& options)
    : m_state(std::make_unique<State>(options)) {}

DeliveryReader::~DeliveryReader() = default;

void DeliveryReader::start(std::string input, std::unique_ptr<ReplayInput> source) {
  State& s = *m_state;
  s.input = std::move(input);
  s.source = std::move(source);
  s.stream.reset();
  s.finished = false;
  s.documents = 0;
  s.active = true;
}

bool DeliveryReader::next(ReplayDelivery& out,
                          const std::function<void(ReplayInputProblem&&)>& on_problem) {
  State& s = *m_state;
  while (s.active) {
    core::StreamItem item;
    const core::DocumentStream::Status status = s.stream.next(item);
    if (status == core::DocumentStream::Status::need_more) {
      try {
        s.feed();
      } catch (const core::Error& error) {
        s.stop();
        on_problem(ReplayInputProblem{s.input, std::nullopt, {}, error.what()});
        return false;
      }
      continue;
    }
    if (status == core::DocumentStream::Status::end) {
      s.stop();
      if (s.documents == 0) {
        const std::string name = s.input == "standard input" ? s.input : "'" + s.input + "'";
        on_problem(ReplayInputProblem{s.input, std::nullopt, {}, name + " holds no delivery"});
      }
      return false;
    }
    ++s.documents;
    if (item.problem) {
      on_problem(s.problem_at(item, item.problem->offset, with_pointer(*item.problem)));
      continue;
    }
    if (auto problem = s.prepare(item, out)) {
      on_problem(std::move(*problem));
      continue;
    }
    return true;
  }
  return false;
}

bool DeliveryReader::more() {
  State& s = *m_state;
  while (s.active && s.stream.between_documents()) {
    if (s.finished) {
      return false;
    }
    if (!s.source->ready()) {
      return true;
    }
    try {
      s.feed();
    } catch (const core::Error&) {
      return true;
    }
  }
  return s.active;
}

ReplayJob::ReplayJob(ReplayJobOptions options, ReplayFiles& files, ReplayTransport* transport)
    : m_options(std::move(options)), m_files(files), m_transport(transport) {}

ReplaySummary ReplayJob::run(const ReplayEvents& events) {
  const Clock::time_point started = Clock::now();
  ReplaySummary summary;
  const auto problem = [&](ReplayInputProblem&& p) {
    ++summary.problems;
    if (events.on_problem) {
      events.on_problem(p);
    }
  };

  std::vector<std::string> files;
  const std::vector<std::string> inputs =
      m_options.inputs.empty() ? std::vector<std::string>{"-"} : m_options.inputs;
  for (const std::string& argument : inputs) {
    try {
      std::vector<std::string> expanded = m_files.expand(argument);
      files.insert(files.end(), std::make_move_iterator(expanded.begin()),
                   std::make_move_iterator(expanded.end()));
    } catch (const core::Error& error) {
      problem(ReplayInputProblem{display_name(argument), std::nullopt, {}, error.what()});
    }
  }
  if (summary.problems > 0) {
    return summary;
  }
  if (events.on_expanded) {
    events.on_expanded(files.size());
  }

  DeliveryReader reader(m_options);
  std::size_t file_index = 0;
  bool reading = false;
  const auto pull = [&](ReplayDelivery& delivery) {
    for (;;) {
      if (reading && reader.next(delivery, problem)) {
        delivery.input_index = file_index - 1;
        ++summary.deliveries;
        if (delivery.signature == core::SignatureSource::none) {
          ++summary.unsigned_sent;
        }
        if (events.on_prepared) {
          events.on_prepared(delivery);
        }
        return true;
      }
      reading = false;
      if (file_index == files.size()) {
        return false;
      }
      const std::string& path = files[file_index++];
      std::unique_ptr<ReplayInput> source;
      try {
        source = m_files.open(path);
      } catch (const core::Error& error) {
        problem(ReplayInputProblem{display_name(path), std::nullopt, {}, error.what()});
        continue;
      }
      reader.start(display_name(path), std::move(source));
      reading = true;
    }
  };

  if (m_options.dry_run || m_transport == nullptr) {
    ReplayDelivery delivery;
    while (pull(delivery)) {
    }
  } else {
    // Deliveries in flight, oldest first: results come back in input order.
    std::deque<ReplayDelivery> pending;
    bool stop = false;
    const auto next = [&](net::ReplayRequest& request) {
      ReplayDelivery delivery;
      if (!pull(delivery)) {
        return false;
      }
      request.body = std::move(delivery.request.body);
      request.headers = delivery.request.headers;
      pending.push_back(std::move(delivery));
      return true;
    };
    const auto on_result = [&](const net::ReplayResult& result) {
      const ReplayDelivery& delivery = pending.front();
      switch (result.outcome) {
      case net::ReplayOutcome::ok:
        ++summary.ok;
        break;
      case net::ReplayOutcome::redirect:
        ++summary.redirects;
        break;
      case net::ReplayOutcome::http_status:
        ++summary.http_errors;
        break;
      case net::ReplayOutcome::network:
        ++summary.network_errors;
        break;
      }
      if (events.on_result) {
        events.on_result(delivery, result);
      }
      pending.pop_front();
      if (m_options.stop_when_unreachable && result.outcome == net::ReplayOutcome::network &&
          result.unreachable) {
        stop = true;
      }
      return !stop;
    };
    m_transport->run(next, on_result);
    summary.stopped =
        stop && (!pending.empty() || (reading && reader.more()) || file_index < files.size());
  }
  summary.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started);
  return summary;
}

}  // namespace dfhook::service
