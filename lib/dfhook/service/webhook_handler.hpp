#pragma once

#include "dfhook/core/secrets.hpp"
#include "dfhook/io/directory_watch.hpp"
#include "dfhook/net/http_server.hpp"
#include "dfhook/net/url.hpp"
#include "dfhook/service/metrics.hpp"
#include "dfhook/service/update_worker.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dfhook::io {
class FileDatafileStore;
}

namespace dfhook::service {

// The stored revision of a datafile (DESIGN §3 step 7).
class RevisionLookup {
public:
  virtual ~RevisionLookup() = default;
  // The revision stored under `name`; nullopt when none is (or it cannot be read). Called on
  // the I/O threads for every signed delivery: must be quick and thread-safe.
  [[nodiscard]] virtual std::optional<std::uint64_t> stored_revision(std::string_view name) = 0;
};

// Where listen --save-dir keeps every delivery that passed the signature check (DESIGN §6).
class DeliverySpool {
public:
  virtual ~DeliverySpool() = default;
  // Durably saves the delivery before it is answered; throws (any std::exception) when it
  // cannot. Called on the I/O threads; must be thread-safe.
  virtual void save(const net::HttpRequest& request,
                    std::chrono::system_clock::time_point received_at) = 0;
};

// The update queue behind listen (DESIGN §3 step 8). UpdateWorker is the real one.
class UpdateQueue {
public:
  virtual ~UpdateQueue() = default;
  // Thread-safe and cheap (called on an I/O thread). `full` when 1000 datafiles are pending.
  virtual EnqueueResult enqueue(UpdateRequest request) = 0;
};

struct WebhookOptions {
  std::string path = "/webhooks/optimizely";
  bool skip_signature = false;                  // --insecure-skip-signature
  std::vector<std::uint64_t> project_ids;       // --project-id; empty: every project
  std::vector<std::string> environments;        // --environment; empty: every environment
  std::optional<std::chrono::seconds> max_age;  // --max-age; nullopt: off
  std::vector<std::string> allowed_hosts;       // --allow-host; empty: the default list
  bool allow_http = false;                      // --allow-http
};

// What the handler works with, injected so that it is tested without sockets or disk.
struct WebhookContext {
  RevisionLookup& revisions;
  UpdateQueue& queue;
  Metrics& metrics;
  DeliverySpool* spool = nullptr;  // set with --save-dir
  // The stored datafiles, for /healthz and /metrics.
  std::function<std::vector<io::StoredDatafile>()> datafiles;
  // Wall-clock time, for --max-age and received_at; system_clock::now when empty.
  std::function<std::chrono::system_clock::time_point()> clock;
};

// listen's request handler: DESIGN §3 steps 1 and 3 to 8 (the server does step 2), in that
// order, each cheap before the next. Every answer is JSON except /metrics:
//   1. POST <path> → webhook; GET|HEAD /healthz; GET|HEAD /metrics; other paths 404;
//      a wrong method 405 with Allow. Query strings are ignored.
//   3. Content-Type absent or application/json (any parameters, any case), else 415
//      "send Content-Type: application/json"; a Content-Encoding other than identity → 415.
//   4. X-Hub-Signature checked against every secret: missing, malformed, conflicting or wrong
//      → 401 "invalid signature". Then, with a spool, the delivery is saved (failure → 503).
//   5. The payload rules (core::parse_payload) → 400 with the pointer of the problem.
//   6. A secret bound to another project → 401 "invalid signature". Other events, projects
//      outside project_ids, environments outside environments (case-insensitive; none in the
//      payload while environments are given), timestamps older than max_age (or further in the
//      future) → 200 ignored. cdn_url, then origin_url, on a host not allowed or not HTTPS → 400
//      with the pointer /data/cdn_url or /data/origin_url.
//   7. Revision stored and not lower → 200 {"status":"up-to-date"}.
//   8. Enqueued → 202 {"status":"accepted","revision":N}; queue full → 503.
// One info log line "delivery" per request that passed step 4; never a signature or secret.
class WebhookHandler final : public net::HttpHandler {
public:
  // `secrets` may be null only with options.skip_signature.
  WebhookHandler(WebhookOptions options, WebhookContext context,
                 std::shared_ptr<const core::SecretSet> secrets);

  // Swaps the secrets in (SIGHUP); requests in progress finish with the old set.
  void replace_secrets(std::shared_ptr<const core::SecretSet> secrets);

  bool on_route(const net::HttpRequestHead& head, net::HttpResponse& response) override;
  bool on_head(const net::HttpRequestHead& head, net::HttpResponse& response) override;
  void on_request(const net::HttpRequest& request, net::HttpResponse& response) override;
  void on_answered(std::string_view target, int status) noexcept override;

  // The route a request target goes to.
  [[nodiscard]] Route route_of(std::string_view target) const noexcept;

private:
  void handle_webhook(const net::HttpRequest& request, net::HttpResponse& response);
  [[nodiscard]] std::chrono::system_clock::time_point now() const;
  // net::check_datafile_url under m_options. The verdicts of recently seen URLs are kept: a
  // sender repeats the same few URLs, and parsing two with curl was a tenth of the CPU time of
  // a signed delivery (bench/listen).
  [[nodiscard]] net::UrlCheck check_url(std::string_view url);

  WebhookOptions m_options;
  WebhookContext m_context;
  std::atomic<std::shared_ptr<const core::SecretSet>> m_secrets;
  std::mutex m_url_mutex;
  std::map<std::string, net::UrlCheck, std::less<>> m_url_verdicts;
};

// RevisionLookup over the filesystem store. A stat of the metadata file and of the datafile
// answers a repeated question from a cache (the store replaces both by rename, so a change
// shows as another inode or time); only a changed file is read again. While inotify reports
// nothing changed in the out-dir or its .dfhook, a cached answer is given without the two stats
// (they were a fifth of a signed delivery's CPU time, bench/listen) for up to `recheck_after`:
// that bounds what inotify cannot see (io::DirectoryWatch), such as a network filesystem's other
// clients; at most that often the watched paths are followed again too (a symlinked out-dir
// switched). `clock` is steady_clock::now when empty (tests pass their own).
class StoreRevisionLookup final : public RevisionLookup {
public:
  using Clock = std::chrono::steady_clock;
  explicit StoreRevisionLookup(const io::FileDatafileStore& store,
                               Clock::duration recheck_after = std::chrono::seconds(1),
                               std::function<Clock::time_point()> clock = {});
  [[nodiscard]] std::optional<std::uint64_t> stored_revision(std::string_view name) override;

private:
  struct FileStamp {
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
    std::int64_t modified_ns = 0;
    std::int64_t changed_ns = 0;  // ctime: a hand edit that restores the mtime still shows
    std::uint64_t size = 0;
    bool operator==(const FileStamp&) const = default;
  };
  struct Entry {
    FileStamp meta;
    FileStamp datafile;
    std::optional<std::uint64_t> revision;
    std::uint64_t generation = 0;  // m_generation when the stamps were taken
    Clock::time_point checked_at;
  };

  const io::FileDatafileStore& m_store;
  const Clock::duration m_recheck_after;
  const std::function<Clock::time_point()> m_clock;
  std::mutex m_mutex;
  io::DirectoryWatch m_watch;      // under m_mutex
  std::uint64_t m_generation = 0;  // counts the changes m_watch reported
  Clock::time_point m_paths_followed_at;
  std::map<std::string, Entry, std::less<>> m_cache;
};

// UpdateQueue over the real UpdateWorker.
class WorkerQueue final : public UpdateQueue {
public:
  explicit WorkerQueue(UpdateWorker& worker) : m_worker(worker) {}
  EnqueueResult enqueue(UpdateRequest request) override {
    return m_worker.enqueue(std::move(request));
  }

private:
  UpdateWorker& m_worker;
};

}  // namespace dfhook::service
