#include "dfhook/service/datafile_update.hpp"

#include "dfhook/core/datafile.hpp"
#include "dfhook/core/error.hpp"
#include "dfhook/core/location.hpp"
#include "dfhook/net/url.hpp"

#include <fmt/format.h>

#include <exception>
#include <string_view>
#include <utility>

namespace dfhook::service {

namespace {

// Keeps the body of a 200 in memory: it is validated whole before a byte of it is stored,
// and the client's size limit bounds it.
class MemorySink final : public net::BodySink {
public:
  void reset() override { m_body.clear(); }
  bool write(std::string_view chunk) override {
    m_body.append(chunk);
    return true;
  }
  [[nodiscard]] const std::string& body() const noexcept { return m_body; }

private:
  std::string m_body;
};

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
    const std::optional<io::DatafileMeta> intact = store.verified(source.name);
    net::Validators validators;
    if (intact && !policy.force) {
      validators.etag = intact->etag.value_or("");
      validators.last_modified = intact->last_modified.value_or("");
    }
    report.previous_revision = revision_of(intact ? intact : store.current(source.name));

    MemorySink sink;
    const auto started = std::chrono::steady_clock::now();
    const net::FetchResult fetched = downloader.fetch(source.url, validators, sink, source.headers);
    report.fetch_duration = std::chrono::steady_clock::now() - started;
    if (!fetched.ok()) {
      return failed(std::move(report), fetched.message);
    }

    if (fetched.status == 304) {
      if (!intact || (validators.etag.empty() && validators.last_modified.empty())) {
        return failed(std::move(report),
                      fmt::format("cannot download '{}': HTTP 304 to an unconditional request",
                                  net::redact_url(fetched.url)));
      }
      report.revision = intact->revision;
      report.size = intact->size;
      report.status = source.wanted_revision && intact->revision < *source.wanted_revision
                          ? UpdateStatus::stale
                          : UpdateStatus::not_modified;
      return report;
    }

    const std::string& body = sink.body();
    report.size = body.size();
    std::optional<std::string> expected_project;
    if (source.project_id) {
      expected_project = std::to_string(*source.project_id);
    }
    const core::Parsed<core::DatafileInfo> info = core::validate_datafile(body, expected_project);
    if (!info) {
      const core::Problem& problem = info.problem();
      const core::LineColumn at = core::line_column(body, problem.offset);
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
    if (!fetched.etag.empty()) {
      meta.etag = fetched.etag;
    }
    if (!fetched.last_modified.empty()) {
      meta.last_modified = fetched.last_modified;
    }
    meta.source_url = source.url;
    std::unique_ptr<io::PendingDatafile> pending = store.begin(source.name);
    pending->write(body);
    const io::CommitResult committed = store.commit(std::move(pending), std::move(meta),
                                                    {policy.allow_downgrade, policy.lock_timeout});
    report.path = committed.path;
    report.previous_revision = revision_of(committed.previous);
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
