#include "dfhook/service/datafile_update.hpp"

#include "dfhook/core/datafile.hpp"
#include "dfhook/core/error.hpp"
#include "dfhook/core/location.hpp"
#include "dfhook/net/url.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>

namespace dfhook::service {

namespace {

// The body of a 200 as it downloads: copied into blocks that never move (they bound the
// memory like the client's size limit and give the line:column of a problem), written to the
// pending datafile (which hashes it) and validated on a second thread. When the last byte
// arrives only the verdict, the fsync and the rename are left; nothing of it becomes the
// datafile before commit().
class StreamingSink final : public net::BodySink {
public:
  StreamingSink(io::DatafileStore& store, std::string name,
                std::optional<std::string> expected_project)
      : m_store(store), m_name(std::move(name)), m_expected(std::move(expected_project)) {}
  ~StreamingSink() override { stop_validator(); }
  StreamingSink(const StreamingSink&) = delete;
  StreamingSink& operator=(const StreamingSink&) = delete;

  void reset() override {
    stop_validator();
    m_blocks.clear();
    m_size = 0;
    m_pending.reset();
    m_failure = nullptr;
    m_abandoned = false;
    m_ended = false;
  }

  bool write(std::string_view chunk) override {
    try {
      append(chunk);
      if (!m_pending) {
        m_pending = m_store.begin(m_name);
      }
      m_pending->write(chunk);
      return true;
    } catch (...) {
      // An exception must not cross libcurl's C frames; rethrow_failure() reports it.
      m_failure = std::current_exception();
      return false;
    }
  }

  // What write() failed with (a store error, std::bad_alloc), rethrown; nothing when it did not.
  void rethrow_failure() const {
    if (m_failure) {
      std::rethrow_exception(m_failure);
    }
  }

  // The body is complete: the validator's verdict on it.
  core::Parsed<core::DatafileInfo> finish() {
    start_validator();
    {
      const std::lock_guard lock(m_mutex);
      m_ended = true;
    }
    m_more.notify_one();
    m_validator.join();
    if (m_validator_failure) {
      std::rethrow_exception(m_validator_failure);
    }
    if (!m_verdict) {
      throw std::logic_error("the datafile validator ended without a verdict");
    }
    return std::move(*m_verdict);
  }

  [[nodiscard]] std::uint64_t size() const noexcept { return m_size; }

  // The pending datafile holding the body (begun now if the body was empty).
  std::unique_ptr<io::PendingDatafile> take_pending() {
    return m_pending ? std::move(m_pending) : m_store.begin(m_name);
  }

  [[nodiscard]] core::LineColumn line_column(std::size_t offset) const {
    core::LineColumn origin;
    for (std::size_t i = 0; i < m_blocks.size(); ++i) {
      const std::size_t start = i * k_block_size;
      const std::string_view block(m_blocks[i].get(), std::min(k_block_size, m_size - start));
      if (offset < start + block.size()) {
        return core::line_column(block, offset - start, origin);
      }
      origin = core::line_column(block, block.size(), origin);
    }
    return origin;
  }

private:
  static constexpr std::size_t k_block_size = std::size_t{1} << 20;

  struct Abandoned {};

  // Reads the blocks in order as write() fills them, waiting for more.
  class Source final : public core::ByteSource {
  public:
    explicit Source(StreamingSink& sink) : m_sink(sink) {}
    std::string_view next() override {
      std::unique_lock lock(m_sink.m_mutex);
      m_sink.m_more.wait(
          lock, [&] { return m_sink.m_abandoned || m_sink.m_ended || m_read < m_sink.m_size; });
      if (m_sink.m_abandoned) {
        throw Abandoned{};
      }
      if (m_read == m_sink.m_size) {
        return {};
      }
      const std::size_t index = m_read / k_block_size;
      const std::size_t at = m_read % k_block_size;
      const std::size_t length = std::min(k_block_size - at, m_sink.m_size - m_read);
      m_read += length;
      return {m_sink.m_blocks[index].get() + at, length};
    }

  private:
    StreamingSink& m_sink;
    std::uint64_t m_read = 0;
  };

  void append(std::string_view chunk) {
    while (!chunk.empty()) {
      const std::size_t at = m_size % k_block_size;
      if (at == 0 && m_size / k_block_size == m_blocks.size()) {
        auto block = std::make_unique_for_overwrite<char[]>(k_block_size);
        const std::lock_guard lock(m_mutex);
        m_blocks.push_back(std::move(block));
      }
      const std::size_t length = std::min(k_block_size - at, chunk.size());
      std::memcpy(m_blocks[m_size / k_block_size].get() + at, chunk.data(), length);
      chunk.remove_prefix(length);
      {
        const std::lock_guard lock(m_mutex);
        m_size += length;
      }
      start_validator();
      m_more.notify_one();
    }
  }

  void start_validator() {
    if (m_validator.joinable()) {
      return;
    }
    m_verdict.reset();
    m_validator_failure = nullptr;
    m_validator = std::thread([this] {
      try {
        Source source(*this);
        m_verdict.emplace(core::validate_datafile(source, m_expected));
      } catch (const Abandoned&) {
        // reset() or destruction: this attempt's verdict is not wanted.
      } catch (...) {
        m_validator_failure = std::current_exception();
      }
    });
  }

  void stop_validator() noexcept {
    if (!m_validator.joinable()) {
      return;
    }
    {
      const std::lock_guard lock(m_mutex);
      m_abandoned = true;
    }
    m_more.notify_one();
    m_validator.join();
  }

  io::DatafileStore& m_store;
  std::string m_name;
  std::optional<std::string> m_expected;
  std::vector<std::unique_ptr<char[]>> m_blocks;
  std::unique_ptr<io::PendingDatafile> m_pending;
  std::exception_ptr m_failure;

  std::mutex m_mutex;  // guards m_blocks' growth, m_size, m_ended and m_abandoned
  std::condition_variable m_more;
  std::uint64_t m_size = 0;
  bool m_ended = false;
  bool m_abandoned = false;

  std::thread m_validator;  // the results below are read after join()
  std::optional<core::Parsed<core::DatafileInfo>> m_verdict;
  std::exception_ptr m_validator_failure;
};

// A validator worth storing: one the client can send back (printable ASCII) and short enough
// that the metadata file stays small; another is dropped, and the next request is
// unconditional.
std::optional<std::string> storable_validator(const std::string& value) {
  constexpr std::size_t k_max_validator = 1024;
  if (value.empty() || value.size() > k_max_validator ||
      !std::all_of(value.begin(), value.end(), [](char c) { return c >= 0x20 && c < 0x7f; })) {
    return std::nullopt;
  }
  return value;
}

UpdateReport failed(UpdateReport report, std::string message) {
  report.status = UpdateStatus::failed;
  report.message = std::move(message);
  return report;
}

std::optional<std::uint64_t> revision_of(const std::optional<io::DatafileMeta>& meta) {
  if (!meta) {
    return std::nullopt;
  }
  return meta->revision;
}

}  // namespace

UpdateReport update_datafile(net::Downloader& downloader, io::DatafileStore& store,
                             const DatafileSource& source, const UpdatePolicy& policy,
                             const HookRunner& run_hook) {
  UpdateReport report;
  const std::string url = net::redact_url(source.url);
  try {
    report.path = store.datafile_path(source.name);
    const std::optional<io::DatafileMeta> stored = store.current(source.name);
    report.previous_revision = revision_of(stored);
    // The stored validators are sent only for an intact local copy. Checking it (a SHA-256 of
    // the whole datafile) runs while the connection is made, and the request waits for it.
    net::Validators validators;
    std::future<std::optional<io::DatafileMeta>> checking;
    std::optional<bool> intact;
    // Whether the validators sent belong to an intact local copy (only asked when some were).
    const auto confirmed = [&] {
      if (!intact) {
        const std::optional<io::DatafileMeta> meta = checking.get();
        intact = meta && meta->etag == stored->etag && meta->last_modified == stored->last_modified;
      }
      return *intact;
    };
    if (stored && !policy.force && (stored->etag || stored->last_modified)) {
      validators.etag = stored->etag.value_or("");
      validators.last_modified = stored->last_modified.value_or("");
      checking =
          std::async(std::launch::async, [&store, &source] { return store.verified(source.name); });
      validators.confirm = confirmed;
    }

    std::optional<std::string> expected_project;
    if (source.project_id) {
      expected_project = std::to_string(*source.project_id);
    }
    StreamingSink sink(store, source.name, expected_project);
    const auto started = std::chrono::steady_clock::now();
    net::FetchResult fetched = downloader.fetch(source.url, validators, sink, source.headers);
    const bool conditional = !validators.etag.empty() || !validators.last_modified.empty();
    if (fetched.error == net::FetchError::unconfirmed ||
        (conditional && fetched.ok() && fetched.status == 304 && !confirmed())) {
      // The local copy is damaged or missing: download it whole.
      validators = {};
      fetched = downloader.fetch(source.url, validators, sink, source.headers);
    }
    report.fetch_duration = std::chrono::steady_clock::now() - started;
    if (!fetched.ok()) {
      if (fetched.error == net::FetchError::aborted) {
        sink.rethrow_failure();
      }
      return failed(std::move(report), fetched.message);
    }

    if (fetched.status == 304) {
      if (validators.etag.empty() && validators.last_modified.empty()) {
        return failed(std::move(report),
                      fmt::format("cannot download '{}': HTTP 304 to an unconditional request",
                                  net::redact_url(fetched.url)));
      }
      const io::DatafileMeta& kept = *stored;
      report.revision = kept.revision;
      report.size = kept.size;
      report.status = source.wanted_revision && kept.revision < *source.wanted_revision
                          ? UpdateStatus::stale
                          : UpdateStatus::not_modified;
      return report;
    }

    report.size = sink.size();
    const core::Parsed<core::DatafileInfo> info = sink.finish();
    if (!info) {
      const core::Problem& problem = info.problem();
      const core::LineColumn at = sink.line_column(problem.offset);
      return failed(std::move(report),
                    fmt::format("'{}':{}:{}: invalid datafile: {}{}{}",
                                net::redact_url(fetched.url), at.line, at.column, problem.pointer,
                                problem.pointer.empty() ? "" : ": ", problem.reason));
    }
    report.revision = info->revision;
    report.project_id = info->project_id;
    if (source.wanted_revision && info->revision < *source.wanted_revision) {
      report.status = UpdateStatus::stale;
      return report;
    }

    io::DatafileMeta meta;
    meta.revision = info->revision;
    meta.etag = storable_validator(fetched.etag);
    meta.last_modified = storable_validator(fetched.last_modified);
    meta.source_url = source.record_url.empty() ? source.url : source.record_url;
    std::unique_ptr<io::PendingDatafile> pending = sink.take_pending();
    const io::CommitResult committed = store.commit(std::move(pending), std::move(meta),
                                                    {policy.allow_downgrade, policy.lock_timeout});
    report.path = committed.path;
    report.previous_revision = committed.previous_revision;
    switch (committed.status) {
    case io::CommitStatus::unchanged:
      report.status = UpdateStatus::not_modified;
      return report;
    case io::CommitStatus::downgrade_refused:
      report.status = UpdateStatus::older;
      return report;
    case io::CommitStatus::written:
      break;
    }
  } catch (const core::Error& error) {
    report.lock_timeout = error.code() == core::ExitCode::lock_timeout;
    return failed(std::move(report), error.what());
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& error) {
    return failed(std::move(report),
                  fmt::format("cannot store '{}' from '{}': {}", source.name, url, error.what()));
  }

  report.status = UpdateStatus::updated;
  if (!policy.hook_command.empty()) {
    io::HookRequest hook;
    hook.command = policy.hook_command;
    hook.datafile = report.path.string();
    hook.revision = report.revision.value_or(0);
    hook.previous_revision = report.previous_revision;
    hook.project_id = report.project_id;
    hook.environment = source.environment.value_or("");
    hook.timeout = policy.hook_timeout;
    report.hook = run_hook(hook);
  }
  return report;
}

}  // namespace dfhook::service
