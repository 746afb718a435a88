#pragma once

#include "dfhook/core/secrets.hpp"
#include "dfhook/service/datafile_update.hpp"
#include "dfhook/service/metrics.hpp"
#include "dfhook/service/update_worker.hpp"

#include <memory>
#include <mutex>
#include <vector>

// listen's side of the update worker: each attempt is an update_datafile() into the store,
// logged and counted; the worker's decisions (stale retries, giving up) are logged and counted.

namespace dfhook::service {

// Makes the downloader a worker thread uses; net::HttpClient in listen.
using DownloaderFactory = std::function<std::unique_ptr<net::Downloader>()>;

class StoreFetcher final : public Fetcher, public UpdateObserver {
public:
  // `tokens`: with a token for a datafile's SDK key, the authenticated URL
  // (https://config.optimizely.com/datafiles/auth/<SDK_KEY>.json) is fetched instead, with
  // "Authorization: Bearer <token>".
  StoreFetcher(io::DatafileStore& store, DownloaderFactory downloaders, UpdatePolicy policy,
               Metrics& metrics, std::vector<core::AuthToken> tokens = {},
               HookRunner run_hook = io::run_hook);

  // Thread-safe: each call borrows a downloader of its own; hooks run one at a time.
  AttemptOutcome fetch(const UpdateRequest& request, const std::string& url) override;

  void on_stale_retry(const UpdateRequest& request, const AttemptOutcome& outcome,
                      Clock::duration delay) override;
  void on_gave_up(const UpdateRequest& request, const AttemptOutcome& outcome) override;
  void on_failed(const UpdateRequest& request, const AttemptOutcome& outcome) override;

  // Replaces the auth tokens (SIGHUP).
  void replace_tokens(std::vector<core::AuthToken> tokens);

  // The requests that poll every stored datafile from its stored source URL.
  [[nodiscard]] std::vector<UpdateRequest> poll_requests() const;

private:
  [[nodiscard]] DatafileSource source_for(const UpdateRequest& request,
                                          const std::string& url) const;
  std::unique_ptr<net::Downloader> borrow();
  void give_back(std::unique_ptr<net::Downloader> downloader);

  io::DatafileStore& m_store;
  DownloaderFactory m_make_downloader;
  UpdatePolicy m_policy;
  Metrics& m_metrics;
  HookRunner m_run_hook;

  mutable std::mutex m_mutex;  // guards m_idle and m_tokens
  std::vector<std::unique_ptr<net::Downloader>> m_idle;
  std::vector<core::AuthToken> m_tokens;
  std::mutex m_hook_mutex;  // one hook at a time
};

// The authenticated URL of a datafile name "<SDK_KEY>.json"; empty for another name.
[[nodiscard]] std::string authenticated_datafile_url(std::string_view name);

// The SDK key (or project id) a datafile name stands for: the name without ".json".
[[nodiscard]] std::string_view datafile_key(std::string_view name);

}  // namespace dfhook::service
