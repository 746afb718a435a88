#include "dfhook/service/update_worker.hpp"

#include <algorithm>
#include <exception>
#include <utility>

namespace dfhook::service {

namespace {

// A poll (no revision) is the lowest wish; between webhooks the higher revision wins.
bool wants_more(const UpdateRequest& incoming, const UpdateRequest& current) {
  if (!incoming.revision) {
    return false;
  }
  return !current.revision || *incoming.revision > *current.revision;
}

bool satisfies(const AttemptOutcome& outcome, const UpdateRequest& request) {
  if (!request.revision) {
    return true;
  }
  return outcome.revision && *outcome.revision >= *request.revision;
}

}  // namespace

UpdateWorker::UpdateWorker(Fetcher& fetcher, UpdateObserver& observer, UpdateWorkerOptions options)
    : m_fetcher(fetcher), m_observer(observer), m_options(options) {}

UpdateWorker::~UpdateWorker() {
  stop();
}

EnqueueResult UpdateWorker::enqueue(UpdateRequest request) {
  return enqueue(std::move(request), Clock::now());
}

EnqueueResult UpdateWorker::enqueue(UpdateRequest request, Clock::time_point now) {
  {
    const std::lock_guard lock(m_mutex);
    if (m_stopping) {
      return EnqueueResult::full;
    }
    const auto found = m_items.find(request.name);
    if (found != m_items.end()) {
      Item& item = found->second;
      if (item.in_flight) {
        if (!item.next || wants_more(request, *item.next)) {
          item.next = std::move(request);
        }
      } else if (wants_more(request, item.request)) {
        // A newer revision gets the whole stale window of its own, from now.
        item.request = std::move(request);
        item.due = now;
        item.first_attempt.reset();
        item.stale_attempts = 0;
        item.use_origin = false;
      }
      return EnqueueResult::accepted;
    }
    if (m_items.size() >= m_options.max_pending) {
      return EnqueueResult::full;
    }
    std::string name = request.name;
    Item item;
    item.request = std::move(request);
    item.due = now;
    m_items.emplace(std::move(name), std::move(item));
  }
  // All: the poll thread waits on the same condition and must not swallow the wake-up.
  m_wake.notify_all();
  return EnqueueResult::accepted;
}

std::optional<UpdateWorker::Job> UpdateWorker::take_due(Clock::time_point now) {
  Item* earliest = nullptr;
  for (auto& [name, item] : m_items) {
    if (!item.in_flight && item.due <= now && (earliest == nullptr || item.due < earliest->due)) {
      earliest = &item;
    }
  }
  if (earliest == nullptr) {
    return std::nullopt;
  }
  earliest->in_flight = true;
  if (!earliest->first_attempt) {
    earliest->first_attempt = now;
  }
  const UpdateRequest& request = earliest->request;
  const bool origin = earliest->use_origin && !request.origin_url.empty();
  return Job{request, origin ? request.origin_url : request.cdn_url};
}

void UpdateWorker::complete(const std::string& name, const AttemptOutcome& outcome,
                            Clock::time_point now) {
  const auto found = m_items.find(name);
  if (found == m_items.end()) {
    return;
  }
  Item& item = found->second;
  item.in_flight = false;

  AttemptOutcome::Kind kind = outcome.kind;
  if ((kind == AttemptOutcome::Kind::updated || kind == AttemptOutcome::Kind::unchanged) &&
      !satisfies(outcome, item.request)) {
    // A 304 or an equal revision while the webhook announced a newer one: the CDN is stale.
    kind = AttemptOutcome::Kind::stale;
  }

  // While waiting for a stale CDN, a failed attempt (often the origin, tried in turn) does not
  // end the wait: the window of stale_retry_for does.
  const bool waiting_for_revision =
      kind == AttemptOutcome::Kind::stale ||
      (kind == AttemptOutcome::Kind::failed && item.stale_attempts > 0);
  if (waiting_for_revision && !m_stopping &&
      now - *item.first_attempt < m_options.stale_retry_for) {
    Clock::duration delay = m_options.first_backoff;
    for (unsigned i = 0; i < item.stale_attempts && delay < m_options.max_backoff; ++i) {
      delay *= 2;
    }
    delay = std::min(delay, m_options.max_backoff);
    ++item.stale_attempts;
    item.use_origin = !item.use_origin;  // the S3 origin is fresh sooner than the CDN
    item.due = now + delay;
    m_observer.on_stale_retry(item.request, outcome, delay);
    return;
  }
  if (kind == AttemptOutcome::Kind::stale) {
    m_observer.on_gave_up(item.request, outcome);
  } else if (kind == AttemptOutcome::Kind::failed) {
    m_observer.on_failed(item.request, outcome);
  }

  // Work that arrived meanwhile goes on, unless what was just stored already covers it.
  const bool covered = item.next && kind != AttemptOutcome::Kind::failed &&
                       kind != AttemptOutcome::Kind::stale && item.next->revision &&
                       outcome.revision && *item.next->revision <= *outcome.revision;
  if (item.next && !covered && !m_stopping) {
    item.request = std::move(*item.next);
    item.next.reset();
    item.due = now;
    item.first_attempt.reset();
    item.stale_attempts = 0;
    item.use_origin = false;
    return;
  }
  m_items.erase(found);
}

std::optional<Clock::time_point> UpdateWorker::next_due_locked() const {
  std::optional<Clock::time_point> due;
  for (const auto& [name, item] : m_items) {
    if (!item.in_flight && (!due || item.due < *due)) {
      due = item.due;
    }
  }
  return due;
}

std::optional<Clock::time_point> UpdateWorker::next_due() const {
  const std::lock_guard lock(m_mutex);
  return next_due_locked();
}

std::size_t UpdateWorker::pending() const {
  const std::lock_guard lock(m_mutex);
  return m_items.size();
}

namespace {

AttemptOutcome fetch_safely(Fetcher& fetcher, const UpdateRequest& request,
                            const std::string& url) {
  try {
    return fetcher.fetch(request, url);
  } catch (const std::exception& error) {
    return AttemptOutcome{AttemptOutcome::Kind::failed, std::nullopt, error.what()};
  }
}

}  // namespace

bool UpdateWorker::run_once(Clock::time_point now) {
  std::unique_lock lock(m_mutex);
  std::optional<Job> job = take_due(now);
  if (!job) {
    return false;
  }
  lock.unlock();
  const AttemptOutcome outcome = fetch_safely(m_fetcher, job->request, job->url);
  lock.lock();
  complete(job->request.name, outcome, now);
  return true;
}

void UpdateWorker::worker_loop() {
  std::unique_lock lock(m_mutex);
  while (!m_stopping) {
    if (std::optional<Job> job = take_due(Clock::now())) {
      lock.unlock();
      const AttemptOutcome outcome = fetch_safely(m_fetcher, job->request, job->url);
      lock.lock();
      complete(job->request.name, outcome, Clock::now());
      // Another thread may wait for an item this one just rescheduled or replaced.
      m_wake.notify_all();
      continue;
    }
    if (const auto due = next_due_locked()) {
      m_wake.wait_until(lock, *due);
    } else {
      m_wake.wait(lock);
    }
  }
}

void UpdateWorker::poll_loop(Clock::duration interval,
                             const std::function<std::vector<UpdateRequest>()>& source) {
  std::unique_lock lock(m_mutex);
  auto next_poll = Clock::now() + interval;
  while (!m_stopping) {
    m_wake.wait_until(lock, next_poll);
    if (m_stopping || Clock::now() < next_poll) {
      continue;
    }
    lock.unlock();
    std::vector<UpdateRequest> requests;
    try {
      requests = source();
    } catch (const std::exception&) {
      requests.clear();  // the store is unreadable now; the next interval tries again
    }
    for (UpdateRequest& request : requests) {
      enqueue(std::move(request));
    }
    lock.lock();
    next_poll = Clock::now() + interval;
  }
}

void UpdateWorker::start(std::size_t threads, Clock::duration poll_interval,
                         std::function<std::vector<UpdateRequest>()> poll_source) {
  for (std::size_t i = 0; i < std::max<std::size_t>(threads, 1); ++i) {
    m_threads.emplace_back([this] { worker_loop(); });
  }
  if (poll_interval > Clock::duration::zero() && poll_source) {
    m_threads.emplace_back([this, poll_interval, source = std::move(poll_source)] {
      poll_loop(poll_interval, source);
    });
  }
}

std::size_t UpdateWorker::stop() {
  std::size_t dropped = 0;
  {
    const std::lock_guard lock(m_mutex);
    m_stopping = true;
    for (auto it = m_items.begin(); it != m_items.end();) {
      if (it->second.in_flight) {
        ++it;
      } else {
        it = m_items.erase(it);
        ++dropped;
      }
    }
  }
  m_wake.notify_all();
  for (std::thread& thread : m_threads) {
    if (thread.joinable()) {
      thread.join();
    }
  }
  m_threads.clear();
  return dropped;
}

}  // namespace dfhook::service
