#include "dfhook/net/http_client.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <deque>
#include <mutex>
#include <thread>

using namespace std::chrono_literals;
using dfhook::net::backoff_delay;
using dfhook::net::BodySink;
using dfhook::net::ClientOptions;
using dfhook::net::FetchError;
using dfhook::net::HttpClient;
using dfhook::net::is_retryable_status;
using dfhook::net::parse_retry_after;
using dfhook::net::RetryTimer;
using dfhook::net::Validators;

namespace {

// Records sleeps instead of sleeping; "now" is fixed.
class FakeTimer final : public RetryTimer {
public:
  std::chrono::system_clock::time_point now() override { return m_now; }
  void sleep_for(std::chrono::milliseconds delay) override { sleeps.push_back(delay); }
  double uniform() override { return 0.5; }

  std::vector<std::chrono::milliseconds> sleeps;
  std::chrono::system_clock::time_point m_now =
      std::chrono::system_clock::from_time_t(1'700'000'000);
};

class StringSink final : public BodySink {
public:
  void reset() override {
    body.clear();
    ++resets;
  }
  bool write(std::string_view chunk) override {
    body.append(chunk);
    return !refuse;
  }

  std::string body;
  int resets = 0;
  bool refuse = false;
};

// A loopback HTTP/1.1 server answering each connection with the next canned response, bytes
// exactly as given, then closing (no response left: closes at once). It records each
// request's head as received. "STALL" holds the connection open until the server is destroyed.
class CannedServer {
public:
  explicit CannedServer(const std::vector<std::string>& responses)
      : m_responses(responses.begin(), responses.end()) {
    m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(m_fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(m_fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    socklen_t length = sizeof(address);
    REQUIRE(::getsockname(m_fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    m_port = ntohs(address.sin_port);
    REQUIRE(::listen(m_fd, 16) == 0);
    REQUIRE(::pipe(m_stop) == 0);
    m_thread = std::thread([this] { serve(); });
  }

  ~CannedServer() {
    const char byte = 0;
    static_cast<void>(::write(m_stop[1], &byte, 1));
    m_thread.join();
    ::close(m_fd);
    ::close(m_stop[0]);
    ::close(m_stop[1]);
  }
  CannedServer(const CannedServer&) = delete;
  CannedServer& operator=(const CannedServer&) = delete;

  [[nodiscard]] std::string url(std::string_view path = "/1234.json",
                                std::string_view host = "127.0.0.1") const {
    return "http://" + std::string(host) + ":" + std::to_string(m_port) + std::string(path);
  }
  [[nodiscard]] int port() const { return m_port; }

  void add(std::string response) {
    const std::lock_guard lock(m_mutex);
    m_responses.push_back(std::move(response));
  }

  std::vector<std::string> requests() {
    const std::lock_guard lock(m_mutex);
    return m_requests;
  }

private:
  // Waits for `fd` or the stop pipe; false when stopping.
  bool wait_readable(int fd) const {
    pollfd fds[2] = {{fd, POLLIN, 0}, {m_stop[0], POLLIN, 0}};
    for (int round = 0; round < 1000; ++round) {
      if (::poll(fds, 2, 100) > 0) {
        return (fds[1].revents & POLLIN) == 0;
      }
    }
    return false;
  }

  void serve() {
    for (;;) {
      if (!wait_readable(m_fd)) {
        return;
      }
      const int client = ::accept4(m_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) {
        continue;
      }
      std::string head;
      char buffer[4096];
      while (head.find("\r\n\r\n") == std::string::npos && head.size() < 65536) {
        if (!wait_readable(client)) {
          ::close(client);
          return;
        }
        const ssize_t n = ::read(client, buffer, sizeof(buffer));
        if (n <= 0) {
          break;
        }
        head.append(buffer, static_cast<std::size_t>(n));
      }
      if (head.empty()) {
        // Connected and closed without a byte (a fetch abandoned before sending): no request.
        ::close(client);
        continue;
      }
      std::string response;
      {
        const std::lock_guard lock(m_mutex);
        m_requests.push_back(head);
        if (!m_responses.empty()) {
          response = m_responses.front();
          m_responses.pop_front();
        }
      }
      if (response == "STALL") {
        static_cast<void>(wait_readable(m_stop[0]));
        ::close(client);
        return;
      }
      std::size_t sent = 0;
      while (sent < response.size()) {
        const ssize_t n =
            ::send(client, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) {
          break;
        }
        sent += static_cast<std::size_t>(n);
      }
      ::shutdown(client, SHUT_WR);
      ::close(client);
    }
  }

  std::deque<std::string> m_responses;
  std::vector<std::string> m_requests;
  std::mutex m_mutex;
  int m_fd = -1;
  int m_port = 0;
  int m_stop[2] = {-1, -1};
  std::thread m_thread;
};

std::string response(int status, std::string_view reason, std::string_view headers,
                     std::string_view body) {
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n" +
         std::string(headers) + "Content-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + std::string(body);
}

ClientOptions local_options() {
  ClientOptions options;
  options.allow_http = true;
  options.allowed_hosts = {"127.0.0.1", "localhost"};
  options.timeout = 5s;
  options.connect_timeout = 2s;
  return options;
}

bool has_line(const std::string& request, std::string_view line) {
  return request.find("\r\n" + std::string(line) + "\r\n") != std::string::npos;
}

}  // namespace

TEST_CASE("Retry-After is seconds or an HTTP-date") {
  const auto now = std::chrono::system_clock::from_time_t(784111777);  // Sun, 06 Nov 1994 08:49:37
  CHECK(parse_retry_after("120", now) == 120s);
  CHECK(parse_retry_after(" 0 ", now) == 0s);
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now) == 30s);
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now) == 0s);
  CHECK_FALSE(parse_retry_after("", now));
  CHECK_FALSE(parse_retry_after("-5", now));
  CHECK_FALSE(parse_retry_after("1.5", now));
  CHECK_FALSE(parse_retry_after("soon", now));
  CHECK_FALSE(parse_retry_after("12 apples", now));
  CHECK(parse_retry_after("99999999999999999999999", now) > std::chrono::hours(24 * 365));
}

TEST_CASE("backoff is full jitter over an exponentially growing, capped ceiling") {
  CHECK(backoff_delay(0, 1000ms, 30000ms, 0.5) == 500ms);
  CHECK(backoff_delay(1, 1000ms, 30000ms, 0.5) == 1000ms);
  CHECK(backoff_delay(3, 1000ms, 30000ms, 0.5) == 4000ms);
  CHECK(backoff_delay(10, 1000ms, 30000ms, 0.5) == 15000ms);
  CHECK(backoff_delay(1000, 1000ms, 30000ms, 0.999) == 29970ms);
  CHECK(backoff_delay(2, 1000ms, 30000ms, 0.0) == 0ms);
}

TEST_CASE("408, 429 and 5xx are retried; other statuses are not") {
  CHECK(is_retryable_status(408));
  CHECK(is_retryable_status(429));
  CHECK(is_retryable_status(500));
  CHECK(is_retryable_status(503));
  CHECK_FALSE(is_retryable_status(404));
  CHECK_FALSE(is_retryable_status(403));
  CHECK_FALSE(is_retryable_status(301));
}

TEST_CASE("a 200 body is streamed to the sink with its validators exactly as received") {
  CannedServer server(
      {response(200, "OK", "ETag: W/\"5f-abc\"\r\nLast-Modified: Tue, 01 Aug 2023 10:00:00 GMT\r\n",
                "{\"revision\":\"1\"}")});
  FakeTimer timer;
  HttpClient client(local_options(), timer);
  StringSink sink;
  const auto result = client.fetch(server.url(), {}, sink);
  REQUIRE(result.ok());
  CHECK(result.status == 200);
  CHECK(sink.body == "{\"revision\":\"1\"}");
  CHECK(result.bytes == sink.body.size());
  CHECK(result.etag == "W/\"5f-abc\"");
  CHECK(result.last_modified == "Tue, 01 Aug 2023 10:00:00 GMT");
  CHECK(result.attempts == 1);
  CHECK(result.url == server.url());
  const auto requests = server.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].find("If-None-Match") == std::string::npos);
  CHECK(has_line(requests[0], "User-Agent: dfhook/" DFHOOK_VERSION));
}

TEST_CASE("validators are sent byte for byte and a 304 writes nothing") {
  CannedServer server({"HTTP/1.1 304 Not Modified\r\nETag: W/\"5f-abc\"\r\n\r\n"});
  FakeTimer timer;
  HttpClient client(local_options(), timer);
  StringSink sink;
  const auto result =
      client.fetch(server.url(), {"W/\"5f-abc\"", "Tue, 01 Aug 2023 10:00:00 GMT", {}}, sink);
  REQUIRE(result.ok());
  CHECK(result.status == 304);
  CHECK(sink.body.empty());
  const auto requests = server.requests();
  REQUIRE(requests.size() == 1);
  CHECK(has_line(requests[0], "If-None-Match: W/\"5f-abc\""));
  CHECK(has_line(requests[0], "If-Modified-Since: Tue, 01 Aug 2023 10:00:00 GMT"));
}

TEST_CASE("a validator with a line break is not sent") {
  CannedServer server({response(200, "OK", "", "{}")});
  FakeTimer timer;
  HttpClient client(local_options(), timer);
  StringSink sink;
  const auto result = client.fetch(server.url(), {"\"a\"\r\nX-Evil: 1", "", {}}, sink);
  REQUIRE(result.ok());
  const auto requests = server.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].find("X-Evil") == std::string::npos);
  CHECK(requests[0].find("If-None-Match") == std::string::npos);
}

TEST_CASE("a 503 then a 200 succeeds after honouring Retry-After") {
  CannedServer server({response(503, "Service Unavailable", "Retry-After: 7\r\n", "busy"),
                       response(200, "OK", "", "{}")});
  FakeTimer timer;
  HttpClient client(local_options(), timer);
  StringSink sink;
  const auto result = client.fetch(server.url(), {}, sink);
  REQUIRE(result.ok());
  CHECK(result.attempts == 2);
  CHECK(sink.body == "{}");
  CHECK(sink.resets == 2);
  REQUIRE(timer.sleeps.size() == 1);
  CHECK(timer.sleeps[0] == 7s);
}

TEST_CASE("a Retry-After longer than the cap waits the cap") {
  CannedServer server({response(429, "Too Many Requests", "Retry-After: 3600\r\n", ""),
                       response(200, "OK", "", "{}")});
  FakeTimer timer;
  ClientOptions options = local_options();
  options.retry_after_cap = 45s;
  HttpClient client(options, timer);
  StringSink sink;
  REQUIRE(client.fetch(server.url(), {}, sink).ok());
  REQUIRE(timer.sleeps.size() == 1);
  CHECK(timer.sleeps[0] == 45s);
}

TEST_CASE("a Retry-After HTTP-date is a delay from the injected clock") {
  CannedServer server(
      {response(503, "Service Unavailable", "Retry-After: Tue, 14 Nov 2023 22:13:40 GMT\r\n", ""),
       response(200, "OK", "", "{}")});
  FakeTimer timer;  // now = 1700000000 = Tue, 14 Nov 2023 22:13:20 GMT
  HttpClient client(local_options(), timer);
  StringSink sink;
  REQUIRE(client.fetch(server.url(), {}, sink).ok());
  REQUIRE(timer.sleeps.size() == 1);
  CHECK(timer.sleeps[0] == 20s);
}

TEST_CASE("after every retry fails the error names the URL, the status and the attempts") {
  CannedServer server({response(503, "Service Unavailable", "", ""),
                       response(503, "Service Unavailable", "", ""),
                       response(503, "Service Unavailable", "", "")});
  FakeTimer timer;
  HttpClient client(local_options(), timer);
  StringSink sink;
  const auto result = client.fetch(server.url(), {}, sink);
  CHECK(result.error == FetchError::http_status);
  CHECK(result.status == 503);
  CHECK(result.attempts == 3);
  CHECK(result.message == "cannot download '" + server.url() + "': HTTP 503 (3 attempts)");
  // Full jitter with uniform() = 0.5 over 1s, 2s.
  REQUIRE(timer.sleeps.size() == 2);
  CHECK(timer.sleeps[0] == 500ms);
  CHECK(timer.sleeps[1] == 1000ms);
}

TEST_CASE("a 404 is not retried") {
  CannedServer server({response(404, "Not Found", "", "no")});
  FakeTimer timer;
  HttpClient client(local_options(), timer);
  StringSink sink;
  const auto result = client.fetch(server.url(), {}, sink);
  CHECK(result.error == FetchError::http_status);
  CHECK(result.attempts == 1);
  CHECK(result.message == "cannot download '" + server.url() + "': HTTP 404");
  CHECK(sink.body.empty());
  CHECK(timer.sleeps.empty());
}

TEST_CASE("a truncated body is a network error, retried with a fresh sink") {
  CannedServer server(
      {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"trunc", response(200, "OK", "", "{}")});
  FakeTimer timer;
  HttpClient client(local_options(), timer);
  StringSink sink;
  const auto result = client.fetch(server.url(), {}, sink);
  REQUIRE(result.ok());
  CHECK(result.attempts == 2);
  CHECK(sink.body == "{}");
}

TEST_CASE("a chunked body over the size limit stops the download without a retry") {
  std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 4; ++i) {
    chunked += "400\r\n" + std::string(1024, 'x') + "\r\n";
  }
  chunked += "0\r\n\r\n";
  CannedServer server({chunked});
  FakeTimer timer;
  ClientOptions options = local_options();
  options.max_body_size = 3000;
  HttpClient client(options, timer);
  StringSink sink;
  const auto result = client.fetch(server.url(), {}, sink);
  CHECK(result.error == FetchError::too_large);
  CHECK(result.attempts == 1);
  CHECK(sink.body.size() <= 3000);
  CHECK(result.message ==
        "cannot download '" + server.url() + "': the body is larger than the limit of 3000 bytes");
}

TEST_CASE("a Content-Length over the size limit is refused before the body") {
  CannedServer server({response(200, "OK", "", std::string(5000, 'x'))});
  FakeTimer timer;
  ClientOptions options = local_options();
  options.max_body_size = 3000;
  HttpClient client(options, timer);
  StringSink sink;
  const auto result = client.fetch(server.url(), {}, sink);
  CHECK(result.error == FetchError::too_large);
  CHECK(sink.body.empty());
}

TEST_CASE("a sink that refuses the body stops the download without a retry") {
  CannedServer server({response(200, "OK", "", "<html>")});
  FakeTimer timer;
  HttpClient client(local_options(), timer);
  StringSink sink;
  sink.refuse = true;
  const auto result = client.fetch(server.url(), {}, sink);
  CHECK(result.error == FetchError::aborted);
  CHECK(result.attempts == 1);
}

TEST_CASE("a redirect to a host that is not allowed is refused") {
  CannedServer server({response(302, "Found", "Location: http://evil.example/1234.json\r\n", "")});
  FakeTimer timer;
  HttpClient client(local_options(), timer);
  StringSink sink;
  const auto result = client.fetch(server.url(), {}, sink);
  CHECK(result.error == FetchError::refused);
  CHECK(result.message == "cannot download '" + server.url() +
                              "': redirected to 'http://evil.example/1234.json': host "
                              "'evil.example' is not allowed");
  CHECK(server.requests().size() == 1);
}

TEST_CASE("redirects are followed; Authorization goes to the first origin only") {
  CannedServer server({});
  server.add(response(301, "Moved Permanently", "Location: /moved/1234.json\r\n", ""));
  server.add(response(302, "Found",
                      "Location: " + server.url("/final/1234.json", "localhost") + "\r\n", ""));
  server.add(response(200, "OK", "ETag: \"final\"\r\n", "{}"));
  FakeTimer timer;
  ClientOptions options = local_options();
  options.headers = {"Authorization: Bearer hunter2"};
  HttpClient client(options, timer);
  StringSink sink;
  const auto result = client.fetch(server.url(), {"\"old\"", "", {}}, sink);
  REQUIRE(result.ok());
  CHECK(result.url == server.url("/final/1234.json", "localhost"));
  CHECK(result.etag == "\"final\"");
  CHECK(sink.body == "{}");
  const auto requests = server.requests();
  REQUIRE(requests.size() == 3);
  CHECK(requests[0].rfind("GET /1234.json HTTP/1.1\r\n", 0) == 0);
  CHECK(requests[1].rfind("GET /moved/1234.json HTTP/1.1\r\n", 0) == 0);
  CHECK(requests[2].rfind("GET /final/1234.json HTTP/1.1\r\n", 0) == 0);
  CHECK(has_line(requests[0], "Authorization: Bearer hunter2"));
  CHECK(has_line(requests[1], "Authorization: Bearer hunter2"));
  CHECK(requests[2].find("hunter2") == std::string::npos);
  CHECK(has_line(requests[2], "If-None-Match: \"old\""));
}

TEST_CASE("more than the allowed number of redirects fails") {
  CannedServer server({});
  for (int i = 0; i < 3; ++i) {
    server.add(response(307, "Temporary Redirect", "Location: /again/1234.json\r\n", ""));
  }
  FakeTimer timer;
  ClientOptions options = local_options();
  options.max_redirects = 2;
  HttpClient client(options, timer);
  StringSink sink;
  const auto result = client.fetch(server.url(), {}, sink);
  CHECK(result.error == FetchError::redirects);
  CHECK(result.message == "cannot download '" + server.url() + "': more than 2 redirects");
}

TEST_CASE("an initial URL outside the rules is refused without a request") {
  FakeTimer timer;
  HttpClient client(ClientOptions{}, timer);
  StringSink sink;
  auto result = client.fetch("http://cdn.optimizely.com/json/1.json", {}, sink);
  CHECK(result.error == FetchError::refused);
  CHECK(result.message ==
        "cannot download 'http://cdn.optimizely.com/json/1.json': only https is allowed");
  result = client.fetch("https://user:hunter2@cdn.optimizely.com/json/1.json", {}, sink);
  CHECK(result.error == FetchError::refused);
  CHECK(result.message ==
        "cannot download 'https://cdn.optimizely.com/json/1.json': "
        "credentials in the URL are not allowed");
}

TEST_CASE("a stalled server fails within the attempt timeout") {
  CannedServer server({"STALL"});
  FakeTimer timer;
  ClientOptions options = local_options();
  options.timeout = 300ms;
  options.retries = 0;
  HttpClient client(options, timer);
  StringSink sink;
  const auto started = std::chrono::steady_clock::now();
  const auto result = client.fetch(server.url(), {}, sink);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  CHECK(result.error == FetchError::network);
  CHECK(result.message.rfind("cannot download '" + server.url() + "': operation timed out", 0) ==
        0);
  CHECK(elapsed < 3s);
}

TEST_CASE("a refused connection is a network error, retried") {
  int port = 0;
  {
    CannedServer closed({});
    port = closed.port();
  }
  FakeTimer timer;
  ClientOptions options = local_options();
  options.retries = 1;
  HttpClient client(options, timer);
  StringSink sink;
  const auto result =
      client.fetch("http://127.0.0.1:" + std::to_string(port) + "/1234.json", {}, sink);
  CHECK(result.error == FetchError::network);
  CHECK(result.attempts == 2);
  CHECK(timer.sleeps.size() == 1);
}

TEST_CASE("per-request header lines are sent, and kept from a redirect to another origin") {
  CannedServer server({});
  server.add(response(302, "Found",
                      "Location: " + server.url("/final/1234.json", "localhost") + "\r\n", ""));
  server.add(response(200, "OK", "", "{}"));
  FakeTimer timer;
  HttpClient client(local_options(), timer);
  StringSink sink;
  const std::vector<std::string> headers = {"Authorization: Bearer per-request-token"};
  REQUIRE(client.fetch(server.url(), {}, sink, headers).ok());
  const auto requests = server.requests();
  REQUIRE(requests.size() == 2);
  CHECK(has_line(requests[0], "Authorization: Bearer per-request-token"));
  CHECK(requests[1].find("per-request-token") == std::string::npos);
}

TEST_CASE("validators go out only once confirm() agrees, asked once per fetch") {
  CannedServer server({});
  server.add(response(503, "Service Unavailable", "Retry-After: 0\r\n", ""));
  server.add(response(304, "Not Modified", "", ""));
  FakeTimer timer;
  HttpClient client(local_options(), timer);
  StringSink sink;
  int asked = 0;
  Validators validators{"\"v1\"", "", [&] {
                          ++asked;
                          return true;
                        }};
  const auto result = client.fetch(server.url(), validators, sink);
  CHECK(result.ok());
  CHECK(result.status == 304);
  CHECK(asked == 1);
  REQUIRE(server.requests().size() == 2);
  CHECK(has_line(server.requests()[1], "If-None-Match: \"v1\""));
}

TEST_CASE("a confirm() that says no abandons the fetch before anything is sent") {
  CannedServer server({});
  server.add(response(304, "Not Modified", "", ""));
  FakeTimer timer;
  HttpClient client(local_options(), timer);
  StringSink sink;
  const auto result = client.fetch(server.url(), {"\"v1\"", "", [] { return false; }}, sink);
  CHECK(result.error == FetchError::unconfirmed);
  CHECK(result.attempts == 1);
  CHECK(server.requests().empty());
}
