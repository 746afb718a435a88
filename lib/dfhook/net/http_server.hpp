#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dfhook::net {

// One header line of a request as sent: name in its original case, value without the
// surrounding whitespace. Views stay valid until the handler call returns.
struct HttpHeader {
  std::string_view name;
  std::string_view value;
};

// The first header named `name` (compared case-insensitively), or null.
[[nodiscard]] const HttpHeader* find_header(std::span<const HttpHeader> headers,
                                            std::string_view name) noexcept;

// What is known once the request line and the headers are read, before the body.
struct HttpRequestHead {
  std::string_view method;              // as sent, e.g. "POST"
  std::string_view target;              // as sent, query string included
  std::span<const HttpHeader> headers;  // in order, repeats kept
};

// A complete request. The body is the de-chunked bytes exactly as received.
struct HttpRequest {
  std::string_view method;
  std::string_view target;
  std::span<const HttpHeader> headers;
  std::string_view body;
  std::string_view remote_addr;  // "203.0.113.7:51234", "[::1]:51234"
};

// The answer a handler fills in. The server owns one per connection and resets it before each
// call, keeping the capacity of its strings, so a handler that writes into it allocates
// nothing in the steady state. Content-Length, Connection, Date and Server are the server's.
struct HttpResponse {
  struct Field {
    std::string name;
    std::string value;
  };

  int status = 200;
  std::string_view content_type = "application/json";  // must point to static storage
  std::vector<Field> headers;  // further fields, e.g. Allow; no CR or LF in names and values
  std::string body;
  bool close = false;  // close the connection after this answer

  void reset() noexcept;
};

// The application behind the server. Every call runs on an I/O thread, one at a time per
// connection (several connections at once when the server has several threads), so calls
// must be quick and thread-safe. An exception escaping a call is answered with a 500.
class HttpHandler {
public:
  HttpHandler() = default;
  HttpHandler(const HttpHandler&) = delete;
  HttpHandler& operator=(const HttpHandler&) = delete;
  virtual ~HttpHandler() = default;

  // Step 1, before the server's limits: return true after filling `response` to answer at
  // once (404, 405 with Allow) without reading the body.
  virtual bool on_route(const HttpRequestHead& head, HttpResponse& response) = 0;

  // After the server's limits (declared body size), still before the body is read and
  // before "100 Continue" is sent: return true after filling `response` to answer at once
  // (415). When a body was announced and not read, the connection is closed after the answer.
  virtual bool on_head(const HttpRequestHead& head, HttpResponse& response) = 0;

  // The complete request.
  virtual void on_request(const HttpRequest& request, HttpResponse& response) = 0;

  // Every answer, the handler's and the server's own (400, 408, 413, 431, 500, 503), as it is
  // sent; for metrics. `target` is empty when the request line was never read.
  virtual void on_answered(std::string_view target, int status) noexcept = 0;
};

struct HttpServerConfig {
  std::string host = "127.0.0.1";  // an IPv4 or IPv6 literal
  std::uint16_t port = 8080;       // 0 picks a free port
  // Listening sockets to adopt instead of binding host:port (systemd socket activation).
  std::vector<int> inherited_sockets;
  std::uint64_t max_body = std::uint64_t{1024} * 1024;
  std::size_t max_connections = 1024;
  std::uint32_t header_limit = 16 * 1024;
  // Bounds the keep-alive wait plus the time to send a whole request, and every write.
  std::chrono::milliseconds read_timeout{10'000};
  // After SIGTERM/stop(): how long in-flight requests may take before they are abandoned.
  std::chrono::milliseconds shutdown_grace{10'000};
  unsigned threads = 1;
  // SIGTERM and SIGINT stop the server (another one a second or more later stops it at once,
  // abandoning requests in flight); SIGHUP calls on_reload (on an I/O thread).
  bool handle_signals = true;
  std::function<void()> on_reload;
};

// The listening sockets systemd passed (LISTEN_FDS, checked against LISTEN_PID), or none.
// Throws core::Error (failed) if one is not a listening stream socket.
[[nodiscard]] std::vector<int> systemd_listen_sockets();

// An HTTP/1.1 server on Boost.Beast: one acceptor per listening socket, one session per
// connection with keep-alive, a fresh parser per request with explicit limits, a deadline on
// every read and write. It answers by itself, with JSON bodies:
//   413 when the body is over max_body (a declared Content-Length at once, without reading the
//       body; a chunked body when the limit is crossed), then closes gracefully (shuts down
//       sending and drains briefly, so the client reads the answer);
//   431 when the request line and headers are over header_limit;
//   408 when a started request is not complete within read_timeout (an idle keep-alive
//       connection is closed silently);
//   503 to a connection over max_connections, then closes;
//   400 to a malformed request, then closes.
// "Expect: 100-continue" gets "100 Continue" only once on_route and on_head let the request
// through. HEAD gets the headers of the answer without its body. Answers with status >= 400
// are not logged one by one: they are counted and summarised in one log line at most once a
// second.
class HttpServer {
public:
  // Binds and listens (or adopts config.inherited_sockets). Throws core::Error: usage when the
  // host is not an IP literal, failed (naming the address) when it cannot listen.
  HttpServer(HttpServerConfig config, HttpHandler& handler);
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  ~HttpServer();

  // The listening addresses with their real ports: "127.0.0.1:8080", "[::1]:8080".
  [[nodiscard]] std::vector<std::string> endpoints() const;
  // The real port of the first listening socket.
  [[nodiscard]] std::uint16_t port() const;

  // Logs "listening on ADDR:PORT" for each socket, tells systemd READY=1 and serves until
  // stop() or a SIGTERM/SIGINT. Then it stops accepting, closes idle connections, tells
  // systemd STOPPING=1, lets requests in flight finish (at most shutdown_grace) and returns.
  // Runs config.threads threads, the calling one included. Call once.
  void run();

  // Starts the shutdown run() performs on SIGTERM. Thread-safe; before run() it makes run()
  // return at once.
  void stop();

private:
  class Impl;
  std::unique_ptr<Impl> m_impl;
};

}  // namespace dfhook::net
