#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace dfhook::service {

using Clock = std::chrono::steady_clock;

// One datafile to bring up to date: from a webhook (revision known) or from a poll (not).
struct UpdateRequest {
  std::string name;                         // the datafile's name in the store
  std::optional<std::uint64_t> project_id;  // when known: the datafile must be this project's
  std::optional<std::uint64_t> revision;    // wanted revision; none for a poll
  std::string cdn_url;
  std::string origin_url;  // may be empty (a poll knows only the stored source URL)
  std::optional<std::string> environment;
};

// What one download attempt achieved, as the worker needs to know it.
struct AttemptOutcome {
  enum class Kind {
    updated,    // a newer datafile was stored (the hook ran or was attempted)
    unchanged,  // the stored datafile is already the newest the server has
    stale,      // the server still serves a revision lower than the wanted one
    failed,     // network error, invalid datafile, lock timeout…
  };
  Kind kind = Kind::failed;
  std::optional<std::uint64_t> revision;  // the revision downloaded or stored, when known
  std::string message;                    // for failed: what went wrong
};

// Downloads one URL for a request, validates and stores it, runs the hook.
// Called from worker threads, never twice at once for the same datafile name.
class Fetcher {
public:
  virtual ~Fetcher() = default;
  virtual AttemptOutcome fetch(const UpdateRequest& request, const std::string& url) = 0;
};

// Told what the worker decides, for logs and metrics. Called from worker threads.
class UpdateObserver {
public:
  virtual ~UpdateObserver() = default;
  // The served revision is still below the wanted one (outcome stale), or an attempt failed
  // while waiting for it (outcome failed): retried after `delay`.
  virtual void on_stale_retry(const UpdateRequest& /*request*/, const AttemptOutcome& /*outcome*/,
                              Clock::duration /*delay*/) {}
  virtual void on_gave_up(const UpdateRequest& /*request*/, const AttemptOutcome& /*outcome*/) {}
  virtual void on_failed(const UpdateRequest& /*request*/, const AttemptOutcome& /*outcome*/) {}
};

struct UpdateWorkerOptions {
  std::size_t max_pending = 1000;  // distinct datafiles waiting or in flight
  Clock::duration stale_retry_for = std::chrono::minutes(5);
  Clock::duration first_backoff = std::chrono::seconds(1);
  Clock::duration max_backoff = std::chrono::seconds(30);
};

enum class EnqueueResult { accepted, full };

// The update queue of listen: one fetch in flight per datafile; later requests coalesce to
// the highest revision; a CDN that still serves an older revision is retried with backoff,
// alternating cdn_url and origin_url, for up to stale_retry_for (an attempt that fails within
// that window is retried the same way). A failed update is dropped, not recorded as done, so
// the sender's retry of the same delivery is processed again.
//
// It runs on its own threads (start/stop) or is stepped by a test with a fake time
// (run_once); both go through the same scheduling code.
class UpdateWorker {
public:
  UpdateWorker(Fetcher& fetcher, UpdateObserver& observer, UpdateWorkerOptions options);
  ~UpdateWorker();
  UpdateWorker(const UpdateWorker&) = delete;
  UpdateWorker& operator=(const UpdateWorker&) = delete;

  // Thread-safe and cheap: called on the HTTP server's I/O thread.
  EnqueueResult enqueue(UpdateRequest request);
  EnqueueResult enqueue(UpdateRequest request, Clock::time_point now);

  // Starts `threads` worker threads. With a poll interval above zero, `poll_source` is asked
  // every interval for the requests that poll every known datafile.
  void start(std::size_t threads, Clock::duration poll_interval = Clock::duration::zero(),
             std::function<std::vector<UpdateRequest>()> poll_source = {});

  // Stops taking work, lets the running fetches finish and joins the threads. Returns how
  // many waiting requests were dropped.
  std::size_t stop();

  // Runs the earliest request due at `now`, if any, on the calling thread; returns whether
  // one ran. For tests: do not mix with start().
  bool run_once(Clock::time_point now);

  // When the next waiting request is due, if any is waiting.
  [[nodiscard]] std::optional<Clock::time_point> next_due() const;

  // Datafiles waiting or in flight.
  [[nodiscard]] std::size_t pending() const;

private:
  struct Item {
    UpdateRequest request;
    Clock::time_point due;
    bool in_flight = false;
    std::optional<Clock::time_point> first_attempt;
    unsigned stale_attempts = 0;
    bool use_origin = false;
    std::optional<UpdateRequest> next;  // arrived while in flight
  };
  struct Job {
    UpdateRequest request;
    std::string url;
  };

  std::optional<Job> take_due(Clock::time_point now);
  void complete(const std::string& name, const AttemptOutcome& outcome, Clock::time_point now);
  [[nodiscard]] std::optional<Clock::time_point> next_due_locked() const;
  void worker_loop();
  void poll_loop(Clock::duration interval,
                 const std::function<std::vector<UpdateRequest>()>& source);

  Fetcher& m_fetcher;
  UpdateObserver& m_observer;
  UpdateWorkerOptions m_options;

  mutable std::mutex m_mutex;
  std::condition_variable m_wake;
  std::map<std::string, Item, std::less<>> m_items;
  bool m_stopping = false;
  std::vector<std::thread> m_threads;
};

}  // namespace dfhook::service
