#include "dfhook/service/store_fetcher.hpp"

#include "dfhook/core/units.hpp"
#include "dfhook/io/log.hpp"
#include "dfhook/net/url.hpp"

#include <fmt/format.h>

#include <utility>

namespace dfhook::service {

namespace {

constexpr std::size_t k_logged_hook_output = 2048;

std::string optional_number(const std::optional<std::uint64_t>& value) {
  return value ? std::to_string(*value) : std::string();
}

std::string milliseconds(Clock::duration duration) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(duration).count());
}

void log_hook(const UpdateRequest& request, const io::HookResult& hook) {
  std::string output = hook.output.substr(0, k_logged_hook_output);
  if (hook.output_truncated || hook.output.size() > k_logged_hook_output) {
    output += "...";
  }
  io::log(hook.ok() ? io::LogLevel::info : io::LogLevel::error,
          hook.ok() ? "hook ran" : "hook failed",
          {{"datafile", request.name},
           {"result", hook.describe()},
           {"duration_ms", std::to_string(hook.duration.count())},
           {"output", std::move(output)}});
}

}  // namespace

std::string authenticated_datafile_url(std::string_view name) {
  constexpr std::string_view k_suffix = ".json";
  if (name.size() <= k_suffix.size() || !name.ends_with(k_suffix)) {
    return {};
  }
  return fmt::format("https://config.optimizely.com/datafiles/auth/{}", name);
}

std::string_view datafile_key(std::string_view name) {
  constexpr std::string_view k_suffix = ".json";
  return name.ends_with(k_suffix) ? name.substr(0, name.size() - k_suffix.size()) : name;
}

StoreFetcher::StoreFetcher(io::DatafileStore& store, DownloaderFactory downloaders,
                           UpdatePolicy policy, Metrics& metrics,
                           std::vector<core::AuthToken> tokens, HookRunner run_hook)
    : m_store(store),
      m_make_downloader(std::move(downloaders)),
      m_policy(std::move(policy)),
      m_metrics(metrics),
      m_run_hook(std::move(run_hook)),
      m_tokens(std::move(tokens)) {}

void StoreFetcher::replace_tokens(std::vector<core::AuthToken> tokens) {
  const std::lock_guard lock(m_mutex);
  m_tokens = std::move(tokens);
}

std::unique_ptr<net::Downloader> StoreFetcher::borrow() {
  {
    const std::lock_guard lock(m_mutex);
    if (!m_idle.empty()) {
      std::unique_ptr<net::Downloader> downloader = std::move(m_idle.back());
      m_idle.pop_back();
      return downloader;
    }
  }
  return m_make_downloader();
}

void StoreFetcher::give_back(std::unique_ptr<net::Downloader> downloader) {
  const std::lock_guard lock(m_mutex);
  m_idle.push_back(std::move(downloader));
}

DatafileSource StoreFetcher::source_for(const UpdateRequest& request,
                                        const std::string& url) const {
  DatafileSource source;
  source.name = request.name;
  source.url = url;
  // Polls ask the CDN again even when this attempt went to the origin.
  source.record_url = request.cdn_url;
  source.project_id = request.project_id;
  source.wanted_revision = request.revision;
  source.environment = request.environment;
  // Only SDK-key datafiles (…/datafiles/<SDK_KEY>.json) have an authenticated twin.
  const net::UrlParse parsed = net::parse_url(request.cdn_url);
  const std::string auth_url = authenticated_datafile_url(request.name);
  if (!parsed.url || parsed.url->path.find("/datafiles/") == std::string::npos ||
      auth_url.empty()) {
    return source;
  }
  const std::string_view sdk_key = datafile_key(request.name);
  const std::lock_guard lock(m_mutex);
  if (const auto token = core::find_token(m_tokens, sdk_key)) {
    source.url = auth_url;
    source.record_url = auth_url;
    source.headers.push_back(fmt::format("Authorization: Bearer {}", *token));
  }
  return source;
}

AttemptOutcome StoreFetcher::fetch(const UpdateRequest& request, const std::string& url) {
  const DatafileSource source = source_for(request, url);
  std::unique_ptr<net::Downloader> downloader = borrow();
  // Hooks run one at a time (DESIGN §3), while downloads of other datafiles go on.
  const HookRunner serialised = [this](const io::HookRequest& hook) {
    const std::lock_guard lock(m_hook_mutex);
    return m_run_hook(hook);
  };
  const UpdateReport report = update_datafile(*downloader, m_store, source, m_policy, serialised);
  give_back(std::move(downloader));
  m_metrics.observe_fetch_duration(report.fetch_duration);

  AttemptOutcome outcome;
  outcome.revision = report.revision;
  outcome.message = report.message;
  switch (report.status) {
  case UpdateStatus::updated:
    outcome.kind = AttemptOutcome::Kind::updated;
    m_metrics.count_update();
    io::log(io::LogLevel::info, "datafile updated",
            {{"datafile", request.name},
             {"revision", optional_number(report.revision)},
             {"previous_revision", optional_number(report.previous_revision)},
             {"size", core::format_size(report.size)},
             {"url", net::redact_url(source.url)},
             {"fetch_ms", milliseconds(report.fetch_duration)}});
    if (report.hook) {
      m_metrics.count_hook_run(!report.hook->ok());
      log_hook(request, *report.hook);
    }
    break;
  case UpdateStatus::not_modified:
    outcome.kind = AttemptOutcome::Kind::unchanged;
    io::log(io::LogLevel::debug, "datafile unchanged",
            {{"datafile", request.name}, {"revision", optional_number(report.revision)}});
    break;
  case UpdateStatus::older:
    outcome.kind = AttemptOutcome::Kind::unchanged;
    io::log(io::LogLevel::warning, "server has an older revision; the stored one is kept",
            {{"datafile", request.name},
             {"served_revision", optional_number(report.revision)},
             {"stored_revision", optional_number(report.previous_revision)},
             {"url", net::redact_url(source.url)}});
    break;
  case UpdateStatus::stale:
    outcome.kind = AttemptOutcome::Kind::stale;
    break;
  case UpdateStatus::failed:
    outcome.kind = AttemptOutcome::Kind::failed;
    break;
  }
  return outcome;
}

void StoreFetcher::on_stale_retry(const UpdateRequest& request, const AttemptOutcome& outcome,
                                  Clock::duration delay) {
  m_metrics.count_stale_retry();
  if (outcome.kind == AttemptOutcome::Kind::failed) {
    io::log(io::LogLevel::warning,
            "download failed while waiting for the announced revision; "
            "retrying",
            {{"datafile", request.name},
             {"wanted_revision", optional_number(request.revision)},
             {"error", outcome.message},
             {"retry_in_ms", milliseconds(delay)}});
    return;
  }
  io::log(io::LogLevel::info, "server still has an older revision; retrying",
          {{"datafile", request.name},
           {"wanted_revision", optional_number(request.revision)},
           {"served_revision", optional_number(outcome.revision)},
           {"retry_in_ms", milliseconds(delay)}});
}

void StoreFetcher::on_gave_up(const UpdateRequest& request, const AttemptOutcome& outcome) {
  m_metrics.count_fetch_error();
  io::log(io::LogLevel::error, "gave up waiting for the announced revision",
          {{"datafile", request.name},
           {"wanted_revision", optional_number(request.revision)},
           {"served_revision", optional_number(outcome.revision)}});
}

void StoreFetcher::on_failed(const UpdateRequest& request, const AttemptOutcome& outcome) {
  m_metrics.count_fetch_error();
  io::log(io::LogLevel::error, "update failed",
          {{"datafile", request.name},
           {"revision", optional_number(request.revision)},
           {"error", outcome.message}});
}

std::vector<UpdateRequest> StoreFetcher::poll_requests() const {
  std::vector<UpdateRequest> requests;
  for (io::StoredDatafile& stored : m_store.list()) {
    if (stored.meta.source_url.empty()) {
      continue;
    }
    UpdateRequest request;
    request.name = std::move(stored.name);
    request.cdn_url = stored.meta.source_url;
    requests.push_back(std::move(request));
  }
  return requests;
}

}  // namespace dfhook::service
