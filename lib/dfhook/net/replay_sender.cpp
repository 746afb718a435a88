#include "dfhook/net/replay_sender.hpp"

#include "dfhook/core/ascii.hpp"
#include "dfhook/core/error.hpp"
#include "dfhook/core/replay_headers.hpp"
#include "dfhook/core/token_bucket.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <optional>
#include <random>

namespace dfhook::net {

using core::iequals;

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t k_response_keep = 1024;

// One delivery while it is being sent: its bytes stay here until its result is known,
// because CURLOPT_POSTFIELDS does not copy them.
struct Job {
  std::size_t index = 0;
  ReplayRequest request;
  int attempts = 0;
  Clock::time_point first_start;
  ReplayResult last;
};

// An easy handle and what belongs to one attempt on it. Handles are kept and reused; the
// connections themselves live in the multi handle's cache, so they are kept alive across
// handles.
struct Transfer {
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::unique_ptr<Job> job;
  std::string response;
  std::array<char, CURL_ERROR_SIZE> error{};

  Transfer() = default;
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;
  ~Transfer() {
    curl_slist_free_all(headers);
    if (easy != nullptr) {
      curl_easy_cleanup(easy);
    }
  }
};

std::size_t keep_response(char* data, std::size_t size, std::size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const std::size_t bytes = size * count;
  const std::size_t room = k_response_keep - std::min(k_response_keep, transfer->response.size());
  transfer->response.append(data, std::min(room, bytes));
  return bytes;
}

curl_slist* append_or_throw(curl_slist* list, const std::string& line) {
  curl_slist* grown = curl_slist_append(list, line.c_str());
  if (grown == nullptr) {
    curl_slist_free_all(list);
    throw core::failure("out of memory while preparing a request");
  }
  return grown;
}

// The request's headers as libcurl takes them, with libcurl's own defaults switched off:
// "Name:" removes a header libcurl would add, "Name;" sends one with an empty value.
curl_slist* header_list(const ReplayRequest& request) {
  curl_slist* list = nullptr;
  bool content_type = false;
  bool accept = false;
  for (const auto& [name, value] : request.headers) {
    if (core::is_hop_by_hop_header(name) && !iequals(name, "Host")) {
      continue;
    }
    content_type = content_type || iequals(name, "Content-Type");
    accept = accept || iequals(name, "Accept");
    list = append_or_throw(list, value.empty() ? name + ";" : name + ": " + value);
  }
  // Without this libcurl waits for "100 Continue" (up to a second) before bodies over 1 KiB.
  list = append_or_throw(list, "Expect:");
  if (!content_type) {
    list = append_or_throw(list, "Content-Type:");
  }
  if (!accept) {
    list = append_or_throw(list, "Accept:");
  }
  return list;
}

bool is_unreachable(CURLcode code) {
  return code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST ||
         code == CURLE_COULDNT_RESOLVE_PROXY;
}

// Errors that the same request will meet again: retrying only delays the report.
bool is_permanent(CURLcode code) {
  switch (code) {
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_URL_MALFORMAT:
  case CURLE_NOT_BUILT_IN:
  case CURLE_BAD_FUNCTION_ARGUMENT:
  case CURLE_OUT_OF_MEMORY:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_LOGIN_DENIED:
    return true;
  default:
    return false;
  }
}

}  // namespace

std::chrono::milliseconds replay_backoff(int retry, std::chrono::milliseconds base,
                                         std::chrono::milliseconds max, double uniform) {
  const int doublings = std::clamp(retry - 1, 0, 30);
  const double cap = std::min(static_cast<double>(max.count()),
                              static_cast<double>(base.count()) * std::ldexp(1.0, doublings));
  const double fraction = std::clamp(uniform, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<long long>(cap * fraction));
}

struct ReplaySender::State {
  ReplaySenderOptions options;
  CURLM* multi = nullptr;
  curl_slist* connect_to = nullptr;
  bool global_init = false;
  std::vector<std::unique_ptr<Transfer>> idle;
  std::vector<std::unique_ptr<Transfer>> active;
  std::multimap<Clock::time_point, std::unique_ptr<Job>> retries;
  std::map<std::size_t, ReplayResult> finished;  // waiting for earlier indexes
  std::size_t next_report = 0;
  std::optional<core::TokenBucket> bucket;
  std::mt19937_64 random{std::random_device{}()};
  bool stopping = false;
  Totals totals;

  explicit State(ReplaySenderOptions o) : options(std::move(o)) {
    options.concurrency = std::max<std::size_t>(options.concurrency, 1);
    options.retries = std::max(options.retries, 0);
  }

  State(const State&) = delete;
  State& operator=(const State&) = delete;

  ~State() {
    for (const auto& transfer : active) {
      curl_multi_remove_handle(multi, transfer->easy);
    }
    active.clear();
    idle.clear();
    if (multi != nullptr) {
      curl_multi_cleanup(multi);
    }
    curl_slist_free_all(connect_to);
    if (global_init) {
      curl_global_cleanup();
    }
  }

  void set_up() {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw core::failure("cannot initialise libcurl");
    }
    global_init = true;
    multi = curl_multi_init();
    if (multi == nullptr) {
      throw core::failure("cannot initialise libcurl");
    }
    const auto limit = static_cast<long>(options.concurrency);
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, limit);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, limit);
    for (const std::string& entry : options.connect_to) {
      connect_to = append_or_throw(connect_to, entry);
    }
  }

  std::unique_ptr<Transfer> make_transfer() {
    auto transfer = std::make_unique<Transfer>();
    transfer->easy = curl_easy_init();
    if (transfer->easy == nullptr) {
      throw core::failure("cannot initialise libcurl");
    }
    CURL* easy = transfer->easy;
    curl_easy_setopt(easy, CURLOPT_URL, options.url.c_str());
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options.connect_timeout.count()));
    if (!options.cacert.empty()) {
      curl_easy_setopt(easy, CURLOPT_CAINFO, options.cacert.c_str());
    }
    if (connect_to != nullptr) {
      curl_easy_setopt(easy, CURLOPT_CONNECT_TO, connect_to);
    }
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, keep_response);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, transfer.get());
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, transfer->error.data());
    curl_easy_setopt(easy, CURLOPT_PRIVATE, transfer.get());
    return transfer;
  }

  void start(std::unique_ptr<Job> job, Clock::time_point now) {
    std::unique_ptr<Transfer> transfer;
    if (idle.empty()) {
      transfer = make_transfer();
    } else {
      transfer = std::move(idle.back());
      idle.pop_back();
    }
    if (job->attempts == 0) {
      job->first_start = now;
    }
    ++job->attempts;
    curl_slist_free_all(transfer->headers);
    transfer->headers = nullptr;
    transfer->headers = header_list(job->request);
    transfer->response.clear();
    transfer->error[0] = '\0';
    CURL* easy = transfer->easy;
    const std::string& body = job->request.body;
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, transfer->headers);
    transfer->job = std::move(job);
    if (curl_multi_add_handle(multi, easy) != CURLM_OK) {
      throw core::failure("cannot start a transfer");
    }
    active.push_back(std::move(transfer));
  }

  // Called when an attempt ended: reports the job or schedules its next attempt.
  void on_done(Transfer* done, CURLcode code) {
    const auto it = std::find_if(active.begin(), active.end(),
                                 [done](const auto& t) { return t.get() == done; });
    std::unique_ptr<Transfer> transfer = std::move(*it);
    active.erase(it);
    curl_multi_remove_handle(multi, transfer->easy);
    std::unique_ptr<Job> job = std::move(transfer->job);
    const Clock::time_point now = Clock::now();

    ReplayResult result;
    result.index = job->index;
    result.attempts = job->attempts;
    curl_easy_getinfo(transfer->easy, CURLINFO_RESPONSE_CODE, &result.status);
    result.response = std::move(transfer->response);
    bool retryable = false;
    curl_off_t retry_after = 0;
    if (code != CURLE_OK) {
      result.outcome = ReplayOutcome::network;
      result.error = transfer->error[0] != '\0' ? std::string(transfer->error.data())
                                                : std::string(curl_easy_strerror(code));
      // The project's messages start lowercase; libcurl's start with a capital.
      if (!result.error.empty() && result.error[0] >= 'A' && result.error[0] <= 'Z') {
        result.error[0] = static_cast<char>(result.error[0] - 'A' + 'a');
      }
      result.unreachable = is_unreachable(code);
      retryable = !is_permanent(code);
    } else if (result.status >= 200 && result.status < 300) {
      result.outcome = ReplayOutcome::ok;
    } else if (result.status >= 300 && result.status < 400) {
      result.outcome = ReplayOutcome::redirect;
      curl_header* location = nullptr;
      if (curl_easy_header(transfer->easy, "Location", 0, CURLH_HEADER, -1, &location) ==
          CURLHE_OK) {
        result.location = location->value;
      }
    } else {
      result.outcome = ReplayOutcome::http_status;
      retryable = result.status == 429 || result.status >= 500;
      curl_easy_getinfo(transfer->easy, CURLINFO_RETRY_AFTER, &retry_after);
    }
    curl_slist_free_all(transfer->headers);
    transfer->headers = nullptr;
    idle.push_back(std::move(transfer));

    result.duration = std::chrono::duration_cast<std::chrono::microseconds>(now - job->first_start);
    if (retryable && !stopping && job->attempts <= options.retries) {
      std::chrono::milliseconds delay;
      if (retry_after > 0) {
        delay = std::min(options.retry_after_cap,
                         std::chrono::milliseconds(std::chrono::seconds(retry_after)));
      } else {
        const double uniform = std::uniform_real_distribution<double>(0.0, 1.0)(random);
        delay = replay_backoff(job->attempts, options.backoff_base, options.backoff_max, uniform);
      }
      job->last = std::move(result);
      retries.emplace(now + delay, std::move(job));
      return;
    }
    finish(std::move(result));
  }

  void finish(ReplayResult result) { finished.emplace(result.index, std::move(result)); }

  void report(const OnResult& on_result) {
    for (auto it = finished.find(next_report); it != finished.end();
         it = finished.find(next_report)) {
      const bool more = on_result(it->second);
      stopping = stopping || !more;
      finished.erase(it);
      ++next_report;
      ++totals.reported;
    }
  }

  void collect() {
    int queued = 0;
    while (CURLMsg* message = curl_multi_info_read(multi, &queued)) {
      if (message->msg != CURLMSG_DONE) {
        continue;
      }
      Transfer* transfer = nullptr;
      curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &transfer);
      const CURLcode code = message->data.result;
      // on_done removes the handle, which invalidates `message`.
      on_done(transfer, code);
    }
  }
};

ReplaySender::ReplaySender(ReplaySenderOptions options)
    : m_state(std::make_unique<State>(std::move(options))) {
  m_state->set_up();
}

ReplaySender::~ReplaySender() = default;

ReplaySender::Totals ReplaySender::run(const NextRequest& next, const OnResult& on_result) {
  State& s = *m_state;
  if (s.options.rate > 0) {
    s.bucket.emplace(s.options.rate, 1, Clock::now());
  }
  bool source_done = false;
  std::size_t next_index = 0;
  while (true) {
    Clock::time_point now = Clock::now();
    // A delivery waiting to retry keeps its place: with a concurrency of 1, deliveries stay
    // strictly one after the other.
    while (!s.stopping) {
      const bool retry_due = !s.retries.empty() && s.retries.begin()->first <= now;
      const bool room = s.active.size() + s.retries.size() < s.options.concurrency;
      if (!retry_due && (source_done || !room)) {
        break;
      }
      if (s.bucket && s.bucket->wait_time(now) > Clock::duration::zero()) {
        break;
      }
      std::unique_ptr<Job> job;
      if (retry_due) {
        job = std::move(s.retries.begin()->second);
        s.retries.erase(s.retries.begin());
      } else {
        ReplayRequest request;
        if (!next(request)) {
          source_done = true;
          continue;
        }
        job = std::make_unique<Job>();
        job->index = next_index++;
        job->request = std::move(request);
        ++s.totals.taken;
      }
      if (s.bucket) {
        (void)s.bucket->try_take(now);
      }
      s.start(std::move(job), now);
      now = Clock::now();
    }

    if (s.stopping) {
      // No further attempts: each pending retry is reported with what its last attempt got.
      for (auto& [due, job] : s.retries) {
        s.finish(std::move(job->last));
      }
      s.retries.clear();
    }
    s.report(on_result);
    if (s.active.empty() && s.retries.empty() && (source_done || s.stopping)) {
      break;
    }

    // Wait for network activity, the next due retry or the next token, whichever is first.
    auto wait = std::chrono::milliseconds(1000);
    if (!s.retries.empty()) {
      wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(
                                std::max(s.retries.begin()->first - now, Clock::duration::zero())));
    }
    const bool could_start =
        !s.stopping && (!s.retries.empty() || (!source_done && s.active.size() + s.retries.size() <
                                                                   s.options.concurrency));
    if (could_start && s.bucket) {
      wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(s.bucket->wait_time(now)));
    }
    if (curl_multi_poll(s.multi, nullptr, 0, static_cast<int>(wait.count()), nullptr) != CURLM_OK) {
      throw core::failure("waiting for the network failed");
    }
    int running = 0;
    if (curl_multi_perform(s.multi, &running) != CURLM_OK) {
      throw core::failure("sending requests failed");
    }
    s.collect();
    s.report(on_result);
  }
  s.totals.stopped = s.stopping;
  return s.totals;
}

}  // namespace dfhook::net
