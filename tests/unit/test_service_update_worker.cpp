#include "dfhook/service/update_worker.hpp"

#include <doctest/doctest.h>

#include <deque>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using dfhook::service::AttemptOutcome;
using dfhook::service::Clock;
using dfhook::service::EnqueueResult;
using dfhook::service::Fetcher;
using dfhook::service::UpdateObserver;
using dfhook::service::UpdateRequest;
using dfhook::service::UpdateWorker;
using dfhook::service::UpdateWorkerOptions;
using Kind = AttemptOutcome::Kind;

namespace {

// Answers each fetch with the next scripted outcome and records what was asked.
class ScriptedFetcher : public Fetcher {
public:
  struct Call {
    std::string name;
    std::string url;
    std::optional<std::uint64_t> revision;
  };
  std::deque<AttemptOutcome> outcomes;
  std::vector<Call> calls;
  std::function<void()> during_fetch;

  AttemptOutcome fetch(const UpdateRequest& request, const std::string& url) override {
    calls.push_back({request.name, url, request.revision});
    if (during_fetch) {
      during_fetch();
    }
    REQUIRE_FALSE(outcomes.empty());
    AttemptOutcome outcome = outcomes.front();
    outcomes.pop_front();
    return outcome;
  }
};

class CountingObserver : public UpdateObserver {
public:
  int stale_retries = 0;
  int gave_up = 0;
  int failed = 0;
  std::vector<Clock::duration> delays;
  void on_stale_retry(const UpdateRequest&, const AttemptOutcome&, Clock::duration d) override {
    ++stale_retries;
    delays.push_back(d);
  }
  void on_gave_up(const UpdateRequest&, const AttemptOutcome&) override { ++gave_up; }
  void on_failed(const UpdateRequest&, const AttemptOutcome&) override { ++failed; }
};

UpdateRequest webhook(std::string name, std::uint64_t revision) {
  UpdateRequest request;
  request.name = std::move(name);
  request.project_id = 1234;
  request.revision = revision;
  request.cdn_url = "https://cdn.optimizely.com/json/" + request.name;
  request.origin_url = "https://optimizely.s3.amazonaws.com/json/" + request.name;
  return request;
}

AttemptOutcome outcome(Kind kind, std::optional<std::uint64_t> revision) {
  return AttemptOutcome{kind, revision, kind == Kind::failed ? "HTTP 503" : ""};
}

const Clock::time_point t0{};

}  // namespace

TEST_CASE("a webhook is fetched once from the CDN and then forgotten") {
  ScriptedFetcher fetcher;
  CountingObserver observer;
  UpdateWorker worker(fetcher, observer, {});
  REQUIRE(worker.enqueue(webhook("1234.json", 2), t0) == EnqueueResult::accepted);
  fetcher.outcomes.push_back(outcome(Kind::updated, 2));

  CHECK(worker.run_once(t0));
  REQUIRE(fetcher.calls.size() == 1);
  CHECK(fetcher.calls[0].url == "https://cdn.optimizely.com/json/1234.json");
  CHECK(worker.pending() == 0);
  CHECK_FALSE(worker.run_once(t0 + 1h));
}

TEST_CASE("webhooks for a waiting datafile coalesce to the highest revision") {
  ScriptedFetcher fetcher;
  CountingObserver observer;
  UpdateWorker worker(fetcher, observer, {});
  worker.enqueue(webhook("1234.json", 9), t0);
  worker.enqueue(webhook("1234.json", 11), t0);
  worker.enqueue(webhook("1234.json", 10), t0);
  CHECK(worker.pending() == 1);
  fetcher.outcomes.push_back(outcome(Kind::updated, 11));

  CHECK(worker.run_once(t0));
  REQUIRE(fetcher.calls.size() == 1);
  CHECK(fetcher.calls[0].revision == 11);
  CHECK(worker.pending() == 0);
}

TEST_CASE("a webhook arriving during a fetch runs after it, one fetch at a time") {
  ScriptedFetcher fetcher;
  CountingObserver observer;
  UpdateWorker worker(fetcher, observer, {});
  worker.enqueue(webhook("1234.json", 1), t0);
  fetcher.during_fetch = [&] {
    fetcher.during_fetch = nullptr;
    worker.enqueue(webhook("1234.json", 2), t0);
    // The datafile is in flight: nothing else of it may start now.
    CHECK_FALSE(worker.next_due().has_value());
  };
  fetcher.outcomes.push_back(outcome(Kind::updated, 1));
  fetcher.outcomes.push_back(outcome(Kind::updated, 2));

  CHECK(worker.run_once(t0));
  CHECK(worker.pending() == 1);
  CHECK(worker.run_once(t0));
  REQUIRE(fetcher.calls.size() == 2);
  CHECK(fetcher.calls[1].revision == 2);
  CHECK(worker.pending() == 0);
}

TEST_CASE("a duplicate that arrives during the fetch of its revision does not fetch again") {
  ScriptedFetcher fetcher;
  CountingObserver observer;
  UpdateWorker worker(fetcher, observer, {});
  worker.enqueue(webhook("1234.json", 5), t0);
  fetcher.during_fetch = [&] {
    fetcher.during_fetch = nullptr;
    worker.enqueue(webhook("1234.json", 5), t0);
  };
  fetcher.outcomes.push_back(outcome(Kind::updated, 5));

  CHECK(worker.run_once(t0));
  CHECK(worker.pending() == 0);
  CHECK(fetcher.calls.size() == 1);
}

TEST_CASE("a stale CDN is retried with growing backoff, alternating with the origin") {
  ScriptedFetcher fetcher;
  CountingObserver observer;
  UpdateWorkerOptions options;
  options.first_backoff = 1s;
  options.max_backoff = 4s;
  UpdateWorker worker(fetcher, observer, options);
  worker.enqueue(webhook("1234.json", 42), t0);
  fetcher.outcomes = {outcome(Kind::stale, 41), outcome(Kind::unchanged, 41),
                      outcome(Kind::stale, 41), outcome(Kind::stale, 41),
                      outcome(Kind::updated, 42)};

  auto now = t0;
  CHECK(worker.run_once(now));
  REQUIRE(worker.next_due() == now + 1s);
  CHECK_FALSE(worker.run_once(now + 999ms));
  for (int i = 0; i < 4; ++i) {
    now = *worker.next_due();
    CHECK(worker.run_once(now));
  }
  CHECK(worker.pending() == 0);
  CHECK(observer.stale_retries == 4);
  CHECK(observer.delays == std::vector<Clock::duration>{1s, 2s, 4s, 4s});
  REQUIRE(fetcher.calls.size() == 5);
  CHECK(fetcher.calls[0].url.starts_with("https://cdn.optimizely.com/"));
  CHECK(fetcher.calls[1].url.starts_with("https://optimizely.s3.amazonaws.com/"));
  CHECK(fetcher.calls[2].url.starts_with("https://cdn.optimizely.com/"));
  CHECK(fetcher.calls[3].url.starts_with("https://optimizely.s3.amazonaws.com/"));
}

TEST_CASE("an attempt that fails while waiting for a stale CDN does not end the wait") {
  ScriptedFetcher fetcher;
  CountingObserver observer;
  UpdateWorkerOptions options;
  options.first_backoff = 1s;
  UpdateWorker worker(fetcher, observer, options);
  worker.enqueue(webhook("1234.json", 42), t0);
  // The CDN is stale, the origin cannot be reached, then the CDN has it.
  fetcher.outcomes = {outcome(Kind::stale, 41), outcome(Kind::failed, std::nullopt),
                      outcome(Kind::updated, 42)};
  while (const auto due = worker.next_due()) {
    REQUIRE(fetcher.calls.size() < 3);
    CHECK(worker.run_once(*due));
  }
  CHECK(fetcher.calls.size() == 3);
  CHECK(observer.stale_retries == 2);
  CHECK(observer.failed == 0);
  CHECK(observer.gave_up == 0);
}

TEST_CASE("a CDN stale for longer than stale-retry-for is given up, not recorded as done") {
  ScriptedFetcher fetcher;
  CountingObserver observer;
  UpdateWorkerOptions options;
  options.stale_retry_for = 10s;
  options.first_backoff = 4s;
  options.max_backoff = 4s;
  UpdateWorker worker(fetcher, observer, options);
  worker.enqueue(webhook("1234.json", 42), t0);
  for (int i = 0; i < 10; ++i) {
    fetcher.outcomes.push_back(outcome(Kind::stale, 41));
  }
  int runs = 0;
  while (const auto due = worker.next_due()) {
    REQUIRE(++runs < 10);
    CHECK(worker.run_once(*due));
  }
  CHECK(runs == 4);  // at 0, 4, 8 and 12 s: the last one is past the window
  CHECK(observer.gave_up == 1);
  CHECK(worker.pending() == 0);

  // The sender's retry of the same delivery is processed again.
  CHECK(worker.enqueue(webhook("1234.json", 42), t0 + 1h) == EnqueueResult::accepted);
  CHECK(worker.pending() == 1);
}

TEST_CASE("a failed fetch is reported and dropped, and a newer webhook is still taken") {
  ScriptedFetcher fetcher;
  CountingObserver observer;
  UpdateWorker worker(fetcher, observer, {});
  worker.enqueue(webhook("1234.json", 3), t0);
  fetcher.outcomes.push_back(outcome(Kind::failed, std::nullopt));
  CHECK(worker.run_once(t0));
  CHECK(observer.failed == 1);
  CHECK(worker.pending() == 0);
}

TEST_CASE("a fetcher that throws counts as a failed fetch") {
  struct Throwing : Fetcher {
    AttemptOutcome fetch(const UpdateRequest&, const std::string&) override {
      throw std::runtime_error("disk full");
    }
  } fetcher;
  CountingObserver observer;
  UpdateWorker worker(fetcher, observer, {});
  worker.enqueue(webhook("1234.json", 3), t0);
  CHECK(worker.run_once(t0));
  CHECK(observer.failed == 1);
}

TEST_CASE("at most max-pending datafiles wait; the next one is refused") {
  ScriptedFetcher fetcher;
  CountingObserver observer;
  UpdateWorkerOptions options;
  options.max_pending = 2;
  UpdateWorker worker(fetcher, observer, options);
  CHECK(worker.enqueue(webhook("a.json", 1), t0) == EnqueueResult::accepted);
  CHECK(worker.enqueue(webhook("b.json", 1), t0) == EnqueueResult::accepted);
  CHECK(worker.enqueue(webhook("a.json", 2), t0) == EnqueueResult::accepted);
  CHECK(worker.enqueue(webhook("c.json", 1), t0) == EnqueueResult::full);
}

TEST_CASE("a poll never lowers the revision a waiting webhook asked for") {
  ScriptedFetcher fetcher;
  CountingObserver observer;
  UpdateWorker worker(fetcher, observer, {});
  worker.enqueue(webhook("1234.json", 7), t0);
  UpdateRequest poll;
  poll.name = "1234.json";
  poll.cdn_url = "https://cdn.optimizely.com/json/1234.json";
  worker.enqueue(poll, t0);
  fetcher.outcomes.push_back(outcome(Kind::updated, 7));
  CHECK(worker.run_once(t0));
  CHECK(fetcher.calls.at(0).revision == 7);
}

TEST_CASE("threads process the queue and stop after the running fetch") {
  ScriptedFetcher fetcher;
  CountingObserver observer;
  std::mutex mutex;
  std::condition_variable done;
  bool fetched = false;
  fetcher.outcomes.push_back(outcome(Kind::updated, 1));
  fetcher.during_fetch = [&] {
    const std::lock_guard lock(mutex);
    fetched = true;
    done.notify_all();
  };
  UpdateWorker worker(fetcher, observer, {});
  worker.start(2);
  worker.enqueue(webhook("1234.json", 1));
  {
    std::unique_lock lock(mutex);
    REQUIRE(done.wait_for(lock, 10s, [&] { return fetched; }));
  }
  worker.stop();
  CHECK(fetcher.calls.size() == 1);
  CHECK(worker.pending() == 0);
}
