#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dfhook::net {

// How downloads are made. The defaults are DESIGN §3's network options.
struct ClientOptions {
  std::chrono::milliseconds timeout{30'000};          // one attempt, connect to last byte
  std::chrono::milliseconds connect_timeout{10'000};  // TCP + TLS handshake of one attempt
  int retries = 2;                                    // further attempts after the first
  std::uint64_t max_body_size = 64ULL << 20;          // bytes of a 200 body, decoded
  std::vector<std::string> allowed_hosts;             // empty: default_allowed_hosts()
  bool allow_http = false;
  std::string cacert;                   // CA bundle file; empty: the system's
  std::vector<std::string> connect_to;  // curl's HOST:PORT:HOST2:PORT2
  // Sent with every request, e.g. "Authorization: Bearer …". Never logged. An Authorization
  // header is sent to the first URL's scheme, host and port only, never to a redirect target
  // elsewhere (as curl does).
  std::vector<std::string> headers;
  std::string user_agent = std::string("dfhook/") + DFHOOK_VERSION;
  // Backoff between attempts: a uniformly random delay in [0, min(max, base·2^n)] before
  // retry n (full jitter). A Retry-After is honoured instead, up to retry_after_cap.
  std::chrono::milliseconds backoff_base{1'000};
  std::chrono::milliseconds backoff_max{30'000};
  std::chrono::milliseconds retry_after_cap{60'000};
  int max_redirects = 5;
};

// The validators stored with the local copy, sent exactly as they were received.
struct Validators {
  std::string etag;           // sent as If-None-Match when not empty
  std::string last_modified;  // sent as If-Modified-Since when not empty
  // When set, called (at most once per fetch) after the connection is made and before a
  // request carrying validators is sent: false abandons the fetch (FetchError::unconfirmed)
  // without sending them. It lets the caller check the local copy while connecting.
  std::function<bool()> confirm;
};

// Receives the body of a 200 response while it downloads.
class BodySink {
public:
  virtual ~BodySink() = default;
  // A new attempt starts: forget every byte written so far.
  virtual void reset() = 0;
  // The next bytes of the body. Returning false stops the download (FetchError::aborted);
  // the sink keeps its own reason.
  virtual bool write(std::string_view chunk) = 0;
};

// Time and chance for the retry loop, injected so that tests never sleep.
class RetryTimer {
public:
  virtual ~RetryTimer() = default;
  [[nodiscard]] virtual std::chrono::system_clock::time_point now() = 0;
  virtual void sleep_for(std::chrono::milliseconds delay) = 0;
  // A uniformly distributed number in [0, 1).
  [[nodiscard]] virtual double uniform() = 0;
};

// The real clock, std::this_thread::sleep_for and a seeded std::mt19937_64.
[[nodiscard]] RetryTimer& system_retry_timer();

enum class FetchError {
  none,
  network,      // connect, TLS, timeout, truncated body … (curl's error); retried
  http_status,  // a final status other than 200 or 304 (5xx and 429 after every retry)
  too_large,    // the body exceeds max_body_size; not retried
  refused,      // the URL or a redirect target fails check_datafile_url(); not retried
  redirects,    // more than max_redirects, or a 3xx without a usable Location
  aborted,      // the sink's write() returned false; not retried
  unconfirmed,  // Validators::confirm said no: nothing was sent; not retried
};

struct FetchResult {
  FetchError error = FetchError::none;
  long status = 0;            // HTTP status of the last response; 0 when none arrived
  std::string etag;           // of the final response, exactly as received ("" when absent)
  std::string last_modified;  // idem
  std::string url;            // the URL of the final response (after redirects)
  std::uint64_t bytes = 0;    // body bytes given to the sink in the last attempt
  int attempts = 0;           // requests chains started (1 + retries used)
  // "cannot download 'URL': <cause>", where URL has no credentials and the cause is curl's
  // words or "HTTP 503"; never a header value. Empty when error is none.
  std::string message;

  // A usable answer: 200 (body given to the sink) or 304.
  [[nodiscard]] bool ok() const noexcept { return error == FetchError::none; }
};

// Parses a Retry-After value: delay-seconds ("120") or an HTTP-date (via curl_getdate), as a
// delay from `now` (0 for a date in the past). nullopt when it is neither.
[[nodiscard]] std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

// The full-jitter delay before retry number `retry` (0 for the first retry):
// uniform · min(max, base · 2^retry), with `uniform` in [0, 1).
[[nodiscard]] std::chrono::milliseconds backoff_delay(int retry, std::chrono::milliseconds base,
                                                      std::chrono::milliseconds max,
                                                      double uniform);

// Is this final status worth another attempt? 408, 429 and 5xx.
[[nodiscard]] bool is_retryable_status(long status) noexcept;

// Downloads a datafile URL: HttpClient, or a fake in tests of the jobs above net/.
class Downloader {
public:
  virtual ~Downloader() = default;
  // GETs `url` with the validators (conditional when any is set) and the extra header lines
  // `headers` ("Authorization: Bearer …", never logged; sent to the first URL's origin only).
  // The body of a 200 goes to `sink`. Never throws for a failed download: see FetchResult.
  [[nodiscard]] virtual FetchResult fetch(std::string_view url, const Validators& validators,
                                          BodySink& sink, std::span<const std::string> headers) = 0;
};

// A GET client on one libcurl easy handle, reused between fetches (keep-alive, TLS sessions).
// Not thread-safe: one client per thread. Redirects are followed by the client itself (up
// to max_redirects), each target passing check_datafile_url(); only https unless allow_http.
// https_proxy / no_proxy from the environment apply as in curl.
class HttpClient final : public Downloader {
public:
  explicit HttpClient(ClientOptions options, RetryTimer& timer = system_retry_timer());
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // GETs `url` with the validators (conditional when any is set). The body of a 200 goes to
  // `sink` chunk by chunk; the sink is reset before every attempt. Retries network errors,
  // 408, 429 and 5xx with backoff. Never throws for a failed download: see FetchResult.
  [[nodiscard]] FetchResult fetch(std::string_view url, const Validators& validators,
                                  BodySink& sink);
  // The same with extra header lines, which follow the rule of ClientOptions::headers.
  [[nodiscard]] FetchResult fetch(std::string_view url, const Validators& validators,
                                  BodySink& sink, std::span<const std::string> headers) override;

  [[nodiscard]] const ClientOptions& options() const noexcept;

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

}  // namespace dfhook::net
