#include "dfhook/net/http_client.hpp"

#include "dfhook/core/ascii.hpp"
#include "dfhook/io/log.hpp"
#include "dfhook/net/url.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <random>
#include <thread>

namespace dfhook::net {

namespace {

class SystemRetryTimer final : public RetryTimer {
public:
  std::chrono::system_clock::time_point now() override { return std::chrono::system_clock::now(); }

  void sleep_for(std::chrono::milliseconds delay) override { std::this_thread::sleep_for(delay); }

  double uniform() override {
    const std::lock_guard lock(m_mutex);
    return std::uniform_real_distribution<double>(0.0, 1.0)(m_engine);
  }

private:
  std::mutex m_mutex;
  std::mt19937_64 m_engine{std::random_device{}()};
};

struct SlistDeleter {
  void operator()(curl_slist* list) const noexcept { curl_slist_free_all(list); }
};
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

void slist_append(Slist& list, const std::string& line) {
  curl_slist* grown = curl_slist_append(list.get(), line.c_str());
  if (grown == nullptr) {
    throw std::bad_alloc();
  }
  static_cast<void>(list.release());
  list.reset(grown);
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw std::runtime_error("cannot initialise libcurl");
    }
  });
}

bool is_digits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A header value that could end a header line early must never be echoed into a request.
bool is_safe_header_value(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// Errors that another attempt cannot cure: the request or the peer's identity is wrong.
bool is_retryable_curl_error(CURLcode code) {
  switch (code) {
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_URL_MALFORMAT:
  case CURLE_NOT_BUILT_IN:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_FILESIZE_EXCEEDED:
  case CURLE_WRITE_ERROR:
  case CURLE_OUT_OF_MEMORY:
  case CURLE_BAD_FUNCTION_ARGUMENT:
  case CURLE_SETOPT_OPTION_SYNTAX:
  case CURLE_LOGIN_DENIED:
  case CURLE_ABORTED_BY_CALLBACK:
    return false;
  default:
    return true;
  }
}

std::string lowercase_first(std::string text) {
  if (!text.empty() && text[0] >= 'A' && text[0] <= 'Z') {
    text[0] = static_cast<char>(text[0] - 'A' + 'a');
  }
  return text;
}

// "scheme://host:port" of a URL; Authorization is kept only while this stays the same.
std::string origin_of(std::string_view url) {
  const UrlParse parsed = parse_url(url);
  if (!parsed.url) {
    return {};
  }
  std::string port = parsed.url->port;
  if (port.empty()) {
    port = parsed.url->scheme == "https" ? "443" : "80";
  }
  return parsed.url->scheme + "://" + parsed.url->host + ":" + port;
}

}  // namespace

RetryTimer& system_retry_timer() {
  static SystemRetryTimer timer;
  return timer;
}

std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
    value.remove_prefix(1);
  }
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
    value.remove_suffix(1);
  }
  if (value.empty() || !is_safe_header_value(value)) {
    return std::nullopt;
  }
  constexpr std::int64_t k_max_seconds = std::numeric_limits<std::int64_t>::max() / 1000;
  if (is_digits(value)) {
    std::int64_t seconds = 0;
    for (const char c : value) {
      if (seconds > (k_max_seconds - (c - '0')) / 10) {
        seconds = k_max_seconds;
        break;
      }
      seconds = seconds * 10 + (c - '0');
    }
    return std::chrono::milliseconds(seconds * 1000);
  }
  // Only dates that look like an HTTP-date (they start with a day name); curl_getdate alone
  // accepts nearly anything with a number in it.
  if (value.size() < 20 || !(value[0] >= 'A' && value[0] <= 'Z')) {
    return std::nullopt;
  }
  const std::string terminated(value);
  const time_t when = curl_getdate(terminated.c_str(), nullptr);
  if (when < 0) {
    return std::nullopt;
  }
  const auto at = std::chrono::system_clock::from_time_t(when);
  if (at <= now) {
    return std::chrono::milliseconds(0);
  }
  return std::chrono::ceil<std::chrono::milliseconds>(at - now);
}

std::chrono::milliseconds backoff_delay(int retry, std::chrono::milliseconds base,
                                        std::chrono::milliseconds max, double uniform) {
  const double ceiling =
      std::min(static_cast<double>(max.count()),
               static_cast<double>(base.count()) * std::ldexp(1.0, std::clamp(retry, 0, 62)));
  const double fraction = std::clamp(uniform, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::floor(fraction * ceiling)));
}

bool is_retryable_status(long status) noexcept {
  return status == 408 || status == 429 || (status >= 500 && status <= 599);
}

struct HttpClient::Impl {
  ClientOptions options;
  RetryTimer& timer;
  CURL* easy = nullptr;
  Slist connect_to;
  char error_buffer[CURL_ERROR_SIZE]{};

  // State of the request in flight, read by on_write.
  BodySink* sink = nullptr;
  long status = 0;
  std::uint64_t bytes = 0;
  std::uint64_t discarded = 0;
  bool too_large = false;
  bool aborted = false;
  // Validators::confirm of the fetch in progress, its answer once asked, and whether it
  // stopped the request in flight.
  const std::function<bool()>* confirm = nullptr;
  std::optional<bool> confirmed;
  bool unconfirmed = false;

  Impl(ClientOptions opts, RetryTimer& retry_timer)
      : options(std::move(opts)), timer(retry_timer) {}

  ~Impl() {
    if (easy != nullptr) {
      curl_easy_cleanup(easy);
    }
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  void setup() {
    global_init();
    easy = curl_easy_init();
    if (easy == nullptr) {
      throw std::runtime_error("cannot initialise libcurl");
    }
    const char* protocols = options.allow_http ? "http,https" : "https";
    for (const std::string& entry : options.connect_to) {
      slist_append(connect_to, entry);
    }
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, protocols);
    curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::max<std::int64_t>(1, options.connect_timeout.count())));
    curl_easy_setopt(easy, CURLOPT_USERAGENT, options.user_agent.c_str());
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error_buffer);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Impl::on_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, this);
    // curl's own tool reads 100 KiB at a time; the 16 KiB default means six times the
    // callbacks, copies and wake-ups of the validator on a large datafile.
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, 100L * 1024L);
    // Bodies arrive decoded, so the size limit in on_write bounds what a gzip bomb expands to.
    curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE,
                     static_cast<curl_off_t>(std::min<std::uint64_t>(
                         options.max_body_size,
                         static_cast<std::uint64_t>(std::numeric_limits<curl_off_t>::max()))));
    if (!options.cacert.empty()) {
      curl_easy_setopt(easy, CURLOPT_CAINFO, options.cacert.c_str());
    }
    if (connect_to) {
      curl_easy_setopt(easy, CURLOPT_CONNECT_TO, connect_to.get());
    }
  }

  // Before each request is sent: a fetch's confirm() is asked once, its answer kept for the
  // retries and redirects of the same fetch.
  static int on_prereq(void* user, char* /*primary_ip*/, char* /*local_ip*/, int /*primary_port*/,
                       int /*local_port*/) {
    auto& self = *static_cast<Impl*>(user);
    if (!self.confirmed) {
      try {
        self.confirmed = (*self.confirm)();
      } catch (...) {
        self.confirmed = false;
      }
    }
    if (!*self.confirmed) {
      self.unconfirmed = true;
      return CURL_PREREQFUNC_ABORT;
    }
    return CURL_PREREQFUNC_OK;
  }

  static std::size_t on_write(char* data, std::size_t size, std::size_t count, void* user) {
    auto& self = *static_cast<Impl*>(user);
    const std::size_t length = size * count;
    if (self.status == 0) {
      curl_easy_getinfo(self.easy, CURLINFO_RESPONSE_CODE, &self.status);
    }
    if (self.status != 200) {
      // Error pages and redirect bodies are read and dropped, within the same limit.
      self.discarded += length;
      if (self.discarded > self.options.max_body_size) {
        self.too_large = true;
        return 0;
      }
      return length;
    }
    if (length > self.options.max_body_size - std::min(self.bytes, self.options.max_body_size)) {
      self.too_large = true;
      return 0;
    }
    self.bytes += length;
    if (!self.sink->write(std::string_view(data, length))) {
      self.aborted = true;
      return 0;
    }
    return length;
  }

  [[nodiscard]] std::string header(const char* name) const {
    curl_header* found = nullptr;
    if (curl_easy_header(easy, name, 0, CURLH_HEADER, -1, &found) != CURLHE_OK ||
        found == nullptr || found->value == nullptr) {
      return {};
    }
    return found->value;
  }

  [[nodiscard]] std::string too_large_message(std::string_view url) const {
    return fmt::format("cannot download '{}': the body is larger than the limit of {} bytes",
                       redact_url(url), options.max_body_size);
  }

  // One request chain: the URL and up to max_redirects redirects. `retry_after` receives the
  // server's Retry-After on a retryable answer.
  FetchResult run_chain(std::string_view start_url, const Validators& validators,
                        std::span<const std::string> extra_headers, BodySink& body_sink,
                        bool& retryable, std::optional<std::chrono::milliseconds>& retry_after) {
    FetchResult result;
    retryable = false;
    retry_after.reset();
    std::string url(start_url);
    const std::string first_origin = origin_of(start_url);
    for (int hop = 0;; ++hop) {
      result.url = url;
      Slist headers;
      if (!validators.etag.empty() && is_safe_header_value(validators.etag)) {
        slist_append(headers, "If-None-Match: " + validators.etag);
      }
      if (!validators.last_modified.empty() && is_safe_header_value(validators.last_modified)) {
        slist_append(headers, "If-Modified-Since: " + validators.last_modified);
      }
      const bool same_origin = origin_of(url) == first_origin;
      for (const auto& lines : {std::span<const std::string>(options.headers), extra_headers}) {
        for (const std::string& line : lines) {
          if (!same_origin && core::istarts_with(line, "authorization:")) {
            continue;
          }
          slist_append(headers, line);
        }
      }

      sink = &body_sink;
      body_sink.reset();
      status = 0;
      bytes = 0;
      discarded = 0;
      too_large = false;
      aborted = false;
      error_buffer[0] = '\0';
      curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
      curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers.get());
      const bool confirming =
          validators.confirm && (!validators.etag.empty() || !validators.last_modified.empty());
      confirm = confirming ? &validators.confirm : nullptr;
      unconfirmed = false;
      curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, confirming ? &Impl::on_prereq : nullptr);
      curl_easy_setopt(easy, CURLOPT_PREREQDATA, this);
      const CURLcode code = curl_easy_perform(easy);
      curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, nullptr);
      curl_easy_setopt(easy, CURLOPT_HTTPHEADER, nullptr);
      sink = nullptr;
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
      result.status = status;
      result.bytes = bytes;

      if (too_large || code == CURLE_FILESIZE_EXCEEDED) {
        result.error = FetchError::too_large;
        result.message = too_large_message(url);
        return result;
      }
      if (unconfirmed) {
        result.error = FetchError::unconfirmed;
        result.message =
            fmt::format("cannot download '{}': the request was abandoned", redact_url(url));
        return result;
      }
      if (aborted) {
        result.error = FetchError::aborted;
        result.message = fmt::format("cannot download '{}': the body was refused", redact_url(url));
        return result;
      }
      if (code != CURLE_OK) {
        result.error = FetchError::network;
        const std::string cause = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(code);
        result.message =
            fmt::format("cannot download '{}': {}", redact_url(url), lowercase_first(cause));
        retryable = is_retryable_curl_error(code);
        return result;
      }
      if (status == 200 || status == 304) {
        result.etag = header("ETag");
        result.last_modified = header("Last-Modified");
        return result;
      }
      if (status == 301 || status == 302 || status == 303 || status == 307 || status == 308) {
        char* location = nullptr;
        curl_easy_getinfo(easy, CURLINFO_REDIRECT_URL, &location);
        if (location == nullptr || *location == '\0') {
          result.error = FetchError::redirects;
          result.message = fmt::format("cannot download '{}': HTTP {} without a Location",
                                       redact_url(url), status);
          return result;
        }
        const std::string target = location;
        const UrlCheck check =
            check_datafile_url(target, options.allowed_hosts, options.allow_http);
        if (!check.ok()) {
          result.error = FetchError::refused;
          result.message = fmt::format("cannot download '{}': redirected to '{}': {}",
                                       redact_url(url), redact_url(target), check.reason);
          return result;
        }
        if (hop + 1 > options.max_redirects) {
          result.error = FetchError::redirects;
          result.message = fmt::format("cannot download '{}': more than {} redirects",
                                       redact_url(start_url), options.max_redirects);
          return result;
        }
        io::log(io::LogLevel::debug, "following redirect",
                {{"from", redact_url(url)}, {"to", redact_url(target)}});
        url = target;
        continue;
      }
      result.error = FetchError::http_status;
      result.message = fmt::format("cannot download '{}': HTTP {}", redact_url(url), status);
      retryable = is_retryable_status(status);
      if (retryable) {
        const std::string value = header("Retry-After");
        if (!value.empty()) {
          retry_after = parse_retry_after(value, timer.now());
        }
      }
      return result;
    }
  }
};

HttpClient::HttpClient(ClientOptions options, RetryTimer& timer)
    : m_impl(std::make_unique<Impl>(std::move(options), timer)) {
  m_impl->setup();
}

HttpClient::~HttpClient() = default;

const ClientOptions& HttpClient::options() const noexcept {
  return m_impl->options;
}

FetchResult HttpClient::fetch(std::string_view url, const Validators& validators, BodySink& sink) {
  return fetch(url, validators, sink, {});
}

FetchResult HttpClient::fetch(std::string_view url, const Validators& validators, BodySink& sink,
                              std::span<const std::string> headers) {
  Impl& impl = *m_impl;
  const UrlCheck check =
      check_datafile_url(url, impl.options.allowed_hosts, impl.options.allow_http);
  if (!check.ok()) {
    FetchResult refused;
    refused.error = FetchError::refused;
    refused.url = std::string(url);
    refused.message = fmt::format("cannot download '{}': {}", redact_url(url), check.reason);
    return refused;
  }
  const int retries = std::max(0, impl.options.retries);
  impl.confirmed.reset();
  FetchResult result;
  for (int attempt = 0;; ++attempt) {
    bool retryable = false;
    std::optional<std::chrono::milliseconds> retry_after;
    result = impl.run_chain(url, validators, headers, sink, retryable, retry_after);
    result.attempts = attempt + 1;
    if (result.ok() || !retryable || attempt >= retries) {
      break;
    }
    const std::chrono::milliseconds delay =
        retry_after ? std::min(*retry_after, impl.options.retry_after_cap)
                    : backoff_delay(attempt, impl.options.backoff_base, impl.options.backoff_max,
                                    impl.timer.uniform());
    io::log(io::LogLevel::warning, "download failed, retrying",
            {{"error", result.message},
             {"attempt", std::to_string(attempt + 1)},
             {"retry_in_ms", std::to_string(delay.count())}});
    impl.timer.sleep_for(delay);
  }
  if (!result.ok() && result.attempts > 1) {
    result.message += fmt::format(" ({} attempts)", result.attempts);
  }
  return result;
}

}  // namespace dfhook::net
