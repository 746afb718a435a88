#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace dfhook::net {

// One delivery to re-send: POSTed with exactly these body bytes and these headers.
struct ReplayRequest {
  std::string body;
  // Sent in this order, as given, one "Name: value" line each. Host and Content-Length are the
  // sender's; framing headers (Content-Length, Transfer-Encoding, Connection, Expect …, see
  // core::is_hop_by_hop_header) are dropped except Host. libcurl's own defaults are suppressed:
  // no Content-Type and no Accept are sent unless listed here, no "Expect: 100-continue",
  // no chunking, no User-Agent unless listed.
  std::vector<std::pair<std::string, std::string>> headers;
};

struct ReplaySenderOptions {
  std::string url;  // every request is a POST to this http or https URL
  // Deliveries in progress at once (at least 1): in flight, or waiting to retry, so that with
  // 1 each delivery is done before the next starts.
  std::size_t concurrency = 1;
  double rate = 0;  // attempts started per second (token bucket, burst 1); 0: no limit
  int retries = 2;  // further attempts on network errors, 429 and 5xx
  std::chrono::milliseconds timeout{30'000};          // one attempt, connect to last byte
  std::chrono::milliseconds connect_timeout{10'000};  // TCP + TLS handshake of one attempt
  std::string cacert;                                 // CA bundle file; empty: the system's
  std::vector<std::string> connect_to;                // curl's HOST:PORT:HOST2:PORT2
  // Backoff before retry n (1, 2 …): uniformly random in [0, min(max, base·2^(n-1))] (full
  // jitter). A 429 or 5xx with Retry-After waits that long instead, up to retry_after_cap.
  std::chrono::milliseconds backoff_base{500};
  std::chrono::milliseconds backoff_max{30'000};
  std::chrono::milliseconds retry_after_cap{60'000};
};

enum class ReplayOutcome {
  ok,           // a 2xx answer
  http_status,  // another final answer: 4xx, 1xx, or 5xx/429 after every retry
  redirect,     // a 3xx: never followed; `location` says where it pointed
  network,      // no answer after every retry: connect, TLS, timeout … (`error`)
};

struct ReplayResult {
  std::size_t index = 0;  // position of the request in the input, from 0
  ReplayOutcome outcome = ReplayOutcome::network;
  long status = 0;           // HTTP status of the last answer; 0 when none arrived
  std::string location;      // Location of a 3xx, exactly as received ("" when absent)
  std::string error;         // network: libcurl's message for the last attempt
  bool unreachable = false;  // network: the last attempt could not connect or resolve
  std::string response;      // the first KiB of the last answer's body
  int attempts = 0;
  std::chrono::microseconds duration{0};  // from the first attempt's start to the result,
                                          // waits between attempts included

  [[nodiscard]] bool ok() const noexcept { return outcome == ReplayOutcome::ok; }
};

// The delay before retry `retry` (1 for the first retry): full jitter, `uniform` in [0, 1).
[[nodiscard]] std::chrono::milliseconds replay_backoff(int retry, std::chrono::milliseconds base,
                                                       std::chrono::milliseconds max,
                                                       double uniform);

// Re-sends deliveries to one URL on libcurl's multi interface, on the calling thread: up to
// `concurrency` transfers in flight over kept-alive connections, new attempts started no
// faster than `rate`, waits (rate, backoff) done inside curl_multi_poll, never by sleeping.
// Redirects are never followed.
class ReplaySender {
public:
  // Supplies the next request; returns false when there are no more. Called on the calling
  // thread only when a request can start at once, so input is read as it is sent.
  using NextRequest = std::function<bool(ReplayRequest& request)>;
  // Receives each result in input order (index 0, 1, 2 …). Returning false stops: no new
  // request is taken; transfers in flight finish and are reported, pending retries are
  // abandoned (reported with their last outcome).
  using OnResult = std::function<bool(const ReplayResult& result)>;

  explicit ReplaySender(ReplaySenderOptions options);
  ~ReplaySender();
  ReplaySender(const ReplaySender&) = delete;
  ReplaySender& operator=(const ReplaySender&) = delete;

  struct Totals {
    std::size_t taken = 0;     // requests taken from NextRequest
    std::size_t reported = 0;  // results passed to OnResult (equals taken)
    bool stopped = false;      // OnResult returned false
  };

  // Sends everything NextRequest supplies and returns when every result is reported.
  // Throws core::Error (failed) only when libcurl cannot be set up at all.
  Totals run(const NextRequest& next, const OnResult& on_result);

private:
  struct State;
  std::unique_ptr<State> m_state;
};

}  // namespace dfhook::net
