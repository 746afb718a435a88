#include "dfhook/net/http_server.hpp"

#include "dfhook/core/error.hpp"

#include <doctest/doctest.h>

#include <regex>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <string>
#include <thread>

namespace {

using dfhook::net::HttpHandler;
using dfhook::net::HttpRequest;
using dfhook::net::HttpRequestHead;
using dfhook::net::HttpResponse;
using dfhook::net::HttpServer;
using dfhook::net::HttpServerConfig;

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

// Routes: POST /hook (echoes the body), GET|HEAD /get; 415 for Content-Type text/plain.
class EchoHandler : public HttpHandler {
public:
  bool on_route(const HttpRequestHead& head, HttpResponse& response) override {
    const std::string_view path = path_of(head.target);
    if (path == "/hook") {
      if (head.method != "POST") {
        response.status = 405;
        response.headers.push_back({"Allow", "POST"});
        response.body = R"({"status":"error","error":"method not allowed"})";
        return true;
      }
      return false;
    }
    if (path == "/get") {
      if (head.method != "GET" && head.method != "HEAD") {
        response.status = 405;
        response.headers.push_back({"Allow", "GET, HEAD"});
        response.body = R"({"status":"error","error":"method not allowed"})";
        return true;
      }
      return false;
    }
    response.status = 404;
    response.body = R"({"status":"error","error":"not found"})";
    return true;
  }

  bool on_head(const HttpRequestHead& head, HttpResponse& response) override {
    const auto* type = dfhook::net::find_header(head.headers, "content-type");
    if (type != nullptr && type->value == "text/plain") {
      response.status = 415;
      response.body = R"({"status":"error","error":"send Content-Type: application/json"})";
      return true;
    }
    return false;
  }

  void on_request(const HttpRequest& request, HttpResponse& response) override {
    {
      const std::lock_guard lock(m_mutex);
      m_last_body = std::string(request.body);
      m_last_remote = std::string(request.remote_addr);
      m_last_header_names.clear();
      for (const auto& header : request.headers) {
        m_last_header_names += std::string(header.name) + ";";
      }
    }
    response.body = R"({"status":"ok","size":)" + std::to_string(request.body.size()) + "}";
  }

  void on_answered(std::string_view /*target*/, int status) noexcept override {
    m_last_status = status;
    ++m_answers;
  }

  std::string last_body() {
    const std::lock_guard lock(m_mutex);
    return m_last_body;
  }
  std::string last_remote() {
    const std::lock_guard lock(m_mutex);
    return m_last_remote;
  }
  std::string last_header_names() {
    const std::lock_guard lock(m_mutex);
    return m_last_header_names;
  }

  std::atomic<int> m_last_status{0};
  std::atomic<int> m_answers{0};

private:
  std::mutex m_mutex;
  std::string m_last_body;
  std::string m_last_remote;
  std::string m_last_header_names;
};

// A server on 127.0.0.1 and a free port, run by a thread for the duration of a test.
class RunningServer {
public:
  explicit RunningServer(HttpServerConfig config = {}) {
    config.host = "127.0.0.1";
    config.port = 0;
    config.handle_signals = false;
    m_server = std::make_unique<HttpServer>(std::move(config), m_handler);
    m_thread = std::thread([this] { m_server->run(); });
  }
  RunningServer(const RunningServer&) = delete;
  RunningServer& operator=(const RunningServer&) = delete;
  ~RunningServer() {
    m_server->stop();
    m_thread.join();
  }
  [[nodiscard]] std::uint16_t port() const { return m_server->port(); }
  EchoHandler& handler() { return m_handler; }
  HttpServer& server() { return *m_server; }
  void join() { m_thread.join(); }

private:
  EchoHandler m_handler;
  std::unique_ptr<HttpServer> m_server;
  std::thread m_thread;
};

// A blocking client socket; every receive gives up after five seconds.
class Client {
public:
  explicit Client(std::uint16_t port) {
    m_fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(m_fd >= 0);
    timeval timeout{5, 0};
    ::setsockopt(m_fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(m_fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client() { ::close(m_fd); }

  void send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t sent = ::send(m_fd, data.data(), data.size(), MSG_NOSIGNAL);
      REQUIRE(sent > 0);
      data.remove_prefix(static_cast<std::size_t>(sent));
    }
  }

  // Sends and reports whether the server took everything (false once it closed or reset).
  bool try_send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t sent = ::send(m_fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (sent <= 0) {
        return false;
      }
      data.remove_prefix(static_cast<std::size_t>(sent));
    }
    return true;
  }

  // One response: the head up to the blank line and a body of Content-Length bytes
  // (none when `head_only`). Empty when the connection closed first.
  std::string read_response(bool head_only = false) {
    std::size_t end = std::string::npos;
    while ((end = m_pending.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) {
        return {};
      }
    }
    std::string head = m_pending.substr(0, end + 4);
    std::size_t length = 0;
    const std::size_t field = lower(head).find("\r\ncontent-length: ");
    if (field != std::string::npos && !head_only) {
      length = std::stoul(head.substr(field + 18));
    }
    while (m_pending.size() < end + 4 + length) {
      if (!fill()) {
        return {};
      }
    }
    std::string response = m_pending.substr(0, end + 4 + length);
    m_pending.erase(0, end + 4 + length);
    return response;
  }

  // True when the server closes the connection (end of stream or reset) within 5 s.
  bool closed_by_server() {
    char scratch[4096];
    for (int i = 0; i < 10000; ++i) {
      const ssize_t got = ::recv(m_fd, scratch, sizeof(scratch), 0);
      if (got == 0 || (got < 0 && errno == ECONNRESET)) {
        return true;
      }
      if (got < 0) {
        return false;
      }
    }
    return false;
  }

  void shutdown_send() { ::shutdown(m_fd, SHUT_WR); }

private:
  static std::string lower(std::string text) {
    for (char& c : text) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return text;
  }

  bool fill() {
    char chunk[4096];
    const ssize_t got = ::recv(m_fd, chunk, sizeof(chunk), 0);
    if (got <= 0) {
      return false;
    }
    m_pending.append(chunk, static_cast<std::size_t>(got));
    return true;
  }

  int m_fd = -1;
  std::string m_pending;
};

std::string status_line(const std::string& response) {
  return response.substr(0, response.find("\r\n"));
}

std::string body_of(const std::string& response) {
  const std::size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? std::string() : response.substr(end + 4);
}

std::string post(std::string_view body, std::string_view extra_headers = {}) {
  return "POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
         std::string(extra_headers) + "Content-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + std::string(body);
}

}  // namespace

TEST_CASE("answers two requests on one kept-alive connection") {
  RunningServer server;
  Client client(server.port());
  client.send(post(R"({"a":1})"));
  const std::string first = client.read_response();
  CHECK(status_line(first) == "HTTP/1.1 200 OK");
  CHECK(body_of(first) == R"({"status":"ok","size":7})");
  CHECK(first.find("Content-Type: application/json\r\n") != std::string::npos);
  CHECK(first.find("Connection: close") == std::string::npos);
  client.send(post("{}"));
  CHECK(body_of(client.read_response()) == R"({"status":"ok","size":2})");
  CHECK(server.handler().last_remote().rfind("127.0.0.1:", 0) == 0);
}

TEST_CASE("reports the real port and endpoint when port 0 is asked") {
  RunningServer server;
  CHECK(server.port() != 0);
  REQUIRE(server.server().endpoints().size() == 1);
  CHECK(server.server().endpoints()[0] == "127.0.0.1:" + std::to_string(server.port()));
}

TEST_CASE("gives the handler de-chunked bytes of a chunked body") {
  RunningServer server;
  Client client(server.port());
  client.send(
      "POST /hook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n");
  CHECK(body_of(client.read_response()) == R"({"status":"ok","size":7})");
  CHECK(server.handler().last_body() == R"({"a":1})");
}

TEST_CASE("keeps header names as sent, in order, with repeats") {
  RunningServer server;
  Client client(server.port());
  client.send(post("{}", "x-hub-SIGNATURE: a\r\nX-Hub-Signature: b\r\n"));
  CHECK(status_line(client.read_response()) == "HTTP/1.1 200 OK");
  CHECK(server.handler().last_header_names() ==
        "Host;Content-Type;x-hub-SIGNATURE;X-Hub-Signature;Content-Length;");
}

TEST_CASE("answers 404 and 405 with Allow from the route, keeping the connection") {
  RunningServer server;
  Client client(server.port());
  client.send("GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(status_line(client.read_response()) == "HTTP/1.1 404 Not Found");
  client.send("GET /hook?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string response = client.read_response();
  CHECK(status_line(response) == "HTTP/1.1 405 Method Not Allowed");
  CHECK(response.find("\r\nAllow: POST\r\n") != std::string::npos);
  CHECK(server.handler().m_last_status == 405);
}

TEST_CASE(
    "writes the answer head field by field: status, Server, Date, type, route fields, length") {
  RunningServer server;
  Client client(server.port());
  client.send("GET /hook HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string response = client.read_response();
  const std::string body = R"({"status":"error","error":"method not allowed"})";
  const std::regex expected(
      "HTTP/1\\.1 405 Method Not Allowed\r\n"
      "Server: dfhook\r\n"
      "Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-3][0-9] [A-Z][a-z][a-z] 20[0-9][0-9] "
      "[0-2][0-9]:[0-5][0-9]:[0-6][0-9] GMT\r\n"
      "Content-Type: application/json\r\n"
      "Allow: POST\r\n"
      "Content-Length: 47\r\n"
      "\r\n");
  CHECK(std::regex_match(response.substr(0, response.size() - body.size()), expected));
  CHECK(body_of(response) == body);
}

TEST_CASE("answers HTTP/1.0 in kind: closes unless asked to keep the connection alive") {
  RunningServer server;
  {
    Client client(server.port());
    client.send("GET /get HTTP/1.0\r\n\r\n");
    const std::string response = client.read_response();
    CHECK(status_line(response) == "HTTP/1.0 200 OK");
    CHECK(response.find("\r\nConnection: keep-alive\r\n") == std::string::npos);
    CHECK(body_of(response) == R"({"status":"ok","size":0})");
    CHECK(client.closed_by_server());
  }
  Client client(server.port());
  client.send("GET /get HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  const std::string first = client.read_response();
  CHECK(status_line(first) == "HTTP/1.0 200 OK");
  CHECK(first.find("\r\nConnection: keep-alive\r\n") != std::string::npos);
  client.send("GET /get HTTP/1.0\r\n\r\n");
  CHECK(status_line(client.read_response()) == "HTTP/1.0 200 OK");
  CHECK(client.closed_by_server());

  Client both(server.port());
  both.send("GET /get HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");  // close wins
  const std::string answer = both.read_response();
  CHECK(answer.find("\r\nConnection: keep-alive\r\n") == std::string::npos);
  CHECK(both.closed_by_server());
}

TEST_CASE("answers 413 at once to a declared length over the limit, then closes") {
  HttpServerConfig config;
  config.max_body = 100;
  RunningServer server(config);
  Client client(server.port());
  client.send("POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n");
  const std::string response = client.read_response();
  CHECK(status_line(response) == "HTTP/1.1 413 Payload Too Large");
  CHECK(body_of(response) == R"({"status":"error","error":"request body larger than 100 bytes"})");
  CHECK(response.find("Connection: close") != std::string::npos);
  client.shutdown_send();
  CHECK(client.closed_by_server());
}

TEST_CASE("answers 413 to a chunked body as soon as it crosses the limit") {
  HttpServerConfig config;
  config.max_body = 100;
  RunningServer server(config);
  Client client(server.port());
  // 90 + 20 bytes in two chunks, and no last chunk: the answer cannot wait for the end.
  client.send("POST /hook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5a\r\n" +
              std::string(90, 'a') + "\r\n14\r\n" + std::string(20, 'b') + "\r\n");
  const std::string response = client.read_response();
  CHECK(status_line(response) == "HTTP/1.1 413 Payload Too Large");
  CHECK(server.handler().last_body().empty());
}

TEST_CASE("accepts a body of exactly the limit") {
  HttpServerConfig config;
  config.max_body = 100;
  RunningServer server(config);
  Client client(server.port());
  client.send(post(std::string(100, ' ')));
  CHECK(status_line(client.read_response()) == "HTTP/1.1 200 OK");
}

TEST_CASE("answers 431 to headers over the header limit") {
  RunningServer server;
  Client client(server.port());
  client.send("GET /get HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(17 * 1024, 'x') + "\r\n\r\n");
  const std::string response = client.read_response();
  CHECK(status_line(response) == "HTTP/1.1 431 Request Header Fields Too Large");
}

TEST_CASE("sends 100 Continue only after the head checks pass") {
  RunningServer server;
  {
    Client client(server.port());
    client.send(
        "POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        "Expect: 100-continue\r\n\r\n");
    CHECK(status_line(client.read_response()) == "HTTP/1.1 100 Continue");
    client.send("{}");
    CHECK(body_of(client.read_response()) == R"({"status":"ok","size":2})");
  }
  {
    Client client(server.port());
    client.send(
        "POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
        "Content-Length: 2\r\nExpect: 100-continue\r\n\r\n");
    const std::string response = client.read_response();
    CHECK(status_line(response) == "HTTP/1.1 415 Unsupported Media Type");
    CHECK(response.find("Connection: close") != std::string::npos);
  }
}

TEST_CASE("answers HEAD with the GET answer's headers and no body") {
  RunningServer server;
  Client client(server.port());
  client.send("HEAD /get HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string head = client.read_response(true);
  CHECK(status_line(head) == "HTTP/1.1 200 OK");
  CHECK(head.find("Content-Length: 24\r\n") != std::string::npos);
  // The next answer on the same connection proves no body followed the HEAD answer.
  client.send("GET /get HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string get = client.read_response();
  CHECK(status_line(get) == "HTTP/1.1 200 OK");
  CHECK(body_of(get) == R"({"status":"ok","size":0})");
}

TEST_CASE("answers 408 to a client too slow to finish its request, and closes") {
  HttpServerConfig config;
  config.read_timeout = std::chrono::milliseconds(200);
  RunningServer server(config);
  Client client(server.port());
  client.send("POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{");
  const std::string response = client.read_response();
  CHECK(status_line(response) == "HTTP/1.1 408 Request Timeout");
  CHECK(client.closed_by_server());
}

TEST_CASE("closes an idle kept-alive connection silently after the read timeout") {
  HttpServerConfig config;
  config.read_timeout = std::chrono::milliseconds(200);
  RunningServer server(config);
  Client client(server.port());
  client.send("GET /get HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(status_line(client.read_response()) == "HTTP/1.1 200 OK");
  CHECK(client.read_response().empty());
}

TEST_CASE("answers 503 to connections over the limit") {
  HttpServerConfig config;
  config.max_connections = 1;
  RunningServer server(config);
  Client first(server.port());
  first.send("GET /get HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(status_line(first.read_response()) == "HTTP/1.1 200 OK");
  Client second(server.port());
  const std::string response = second.read_response();
  CHECK(status_line(response) == "HTTP/1.1 503 Service Unavailable");
  CHECK(body_of(response) == R"({"status":"error","error":"too many connections"})");
}

TEST_CASE("answers 400 to a malformed request and closes") {
  RunningServer server;
  Client client(server.port());
  client.send("POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n");
  const std::string response = client.read_response();
  CHECK(status_line(response) == "HTTP/1.1 400 Bad Request");
  CHECK(client.closed_by_server());
}

TEST_CASE("stop() lets the request in progress finish and answers it with Connection: close") {
  RunningServer server;
  Client client(server.port());
  client.send(
      "POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
      "Expect: 100-continue\r\n\r\n");
  // "100 Continue" proves the server has read the head and now waits for the body.
  CHECK(status_line(client.read_response()) == "HTTP/1.1 100 Continue");
  server.server().stop();
  client.send("{}");
  const std::string response = client.read_response();
  CHECK(status_line(response) == "HTTP/1.1 200 OK");
  CHECK(response.find("Connection: close") != std::string::npos);
  CHECK(client.closed_by_server());
}

TEST_CASE("refuses an address that is not an IP literal as a usage error") {
  EchoHandler handler;
  HttpServerConfig config;
  config.host = "localhost";
  try {
    HttpServer server(config, handler);
    FAIL("no exception");
  } catch (const dfhook::core::Error& error) {
    CHECK(error.code() == dfhook::core::ExitCode::usage);
    CHECK(std::string(error.what()) == "'localhost' is not an IPv4 or IPv6 address");
  }
}

TEST_CASE("fails naming the address when the port is taken") {
  RunningServer running;
  EchoHandler handler;
  HttpServerConfig config;
  config.port = running.port();
  config.handle_signals = false;
  try {
    HttpServer server(config, handler);
    FAIL("no exception");
  } catch (const dfhook::core::Error& error) {
    CHECK(error.code() == dfhook::core::ExitCode::failed);
    CHECK(std::string(error.what()) ==
          "cannot listen on '127.0.0.1:" + std::to_string(running.port()) +
              "': address already in use");
  }
}

TEST_CASE("run() returns at once after a stop() that came first") {
  EchoHandler handler;
  HttpServerConfig config;
  config.port = 0;
  config.handle_signals = false;
  HttpServer server(config, handler);
  server.stop();
  server.run();
  CHECK(handler.m_answers == 0);
}

TEST_CASE("finds a header case-insensitively") {
  const dfhook::net::HttpHeader headers[] = {{"Content-Type", "a"}, {"X-Hub-Signature", "b"}};
  const auto* found = dfhook::net::find_header(headers, "x-hub-signature");
  REQUIRE(found != nullptr);
  CHECK(found->value == "b");
  CHECK(dfhook::net::find_header(headers, "x-hub") == nullptr);
}
