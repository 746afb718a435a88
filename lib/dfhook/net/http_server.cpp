#include "dfhook/net/http_server.hpp"

#include "dfhook/core/ascii.hpp"
#include "dfhook/core/error.hpp"
#include "dfhook/io/log.hpp"
#include "dfhook/io/rejection_summary.hpp"

#include <fmt/format.h>
#include <systemd/sd-daemon.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <csignal>
#include <cstring>
#include <ctime>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

namespace dfhook::net {

using core::iequals;

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

// After an answer that closes the connection, the client still gets this long to stop sending
// before the socket is closed: closing with unread bytes makes the kernel send a reset, which
// can destroy the answer before the client reads it.
constexpr std::chrono::milliseconds k_linger{2000};
constexpr std::size_t k_linger_bytes = std::size_t{8} * 1024 * 1024;
constexpr std::size_t k_drain_chunk = std::size_t{16} * 1024;
// Connections over max_connections still get their 503; beyond this many at once they are
// closed without an answer.
constexpr std::size_t k_max_overflow_sessions = 64;
// Buffers kept between requests of one connection; anything larger is given back.
constexpr std::size_t k_kept_capacity = std::size_t{64} * 1024;

// Headers most requests carry; the view vector is reused, so this reserves once.
constexpr std::size_t k_expected_fields = 16;

constexpr std::string_view k_continue = "HTTP/1.1 100 Continue\r\n\r\n";

std::string_view to_std(beast::string_view view) {
  return {view.data(), view.size()};
}

std::string format_endpoint(const tcp::endpoint& endpoint) {
  if (endpoint.address().is_v6()) {
    return fmt::format("[{}]:{}", endpoint.address().to_string(), endpoint.port());
  }
  return fmt::format("{}:{}", endpoint.address().to_string(), endpoint.port());
}

std::string lower_first(std::string text) {
  if (!text.empty()) {
    text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  }
  return text;
}

void set_error(HttpResponse& response, int status, std::string_view message) {
  response.status = status;
  response.body.assign(R"({"status":"error","error":")");
  response.body += message;
  response.body += "\"}";
}

// The Date field changes once a second; formatting it for every answer would be waste.
std::string_view http_date() {
  thread_local std::time_t cached_second = -1;
  thread_local char text[40];
  thread_local std::size_t length = 0;
  const std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm utc{};
    gmtime_r(&now, &utc);
    length = std::strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &utc);
    cached_second = now;
  }
  return {text, length};
}

// The status line and fields of an answer, ending with the empty line. Beast parses every
// request; an answer is a known status, a few fields and a body of known length, written here
// into one buffer (Beast's serializer took a tenth of the CPU time of a request, bench/listen).
void append_response_head(std::string& out, unsigned version, const HttpResponse& response,
                          bool keep_alive) {
  const auto status = static_cast<unsigned>(response.status);
  out += "HTTP/";
  out += static_cast<char>('0' + version / 10);
  out += '.';
  out += static_cast<char>('0' + version % 10);
  out += ' ';
  out += fmt::format_int(status).c_str();
  out += ' ';
  out += to_std(http::obsolete_reason(http::int_to_status(status)));
  out += "\r\nServer: dfhook\r\nDate: ";
  out += http_date();
  out += "\r\nContent-Type: ";
  out += response.content_type;
  out += "\r\n";
  for (const auto& field : response.headers) {
    out += field.name;
    out += ": ";
    out += field.value;
    out += "\r\n";
  }
  // No body, and so no length, in a 1xx, 204 or 304 answer (RFC 9110 8.6).
  if (status >= 200 && status != 204 && status != 304) {
    out += "Content-Length: ";
    out += fmt::format_int(response.body.size()).c_str();
    out += "\r\n";
  }
  if (version >= 11 && !keep_alive) {
    out += "Connection: close\r\n";
  } else if (version < 11 && keep_alive) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
}

// Sockets must not leak into the update hook, which the store runs with posix_spawn; Asio
// opens and accepts sockets without close-on-exec.
void set_close_on_exec(int fd) {
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
}

class Session;

// Everything the sessions share. HttpServer::Impl is this class; it is separate only because
// the sessions cannot name a private nested class.
class ServerCore {
public:
  ServerCore(HttpServerConfig config, HttpHandler& handler);
  ServerCore(const ServerCore&) = delete;
  ServerCore& operator=(const ServerCore&) = delete;
  ~ServerCore();

  [[nodiscard]] const HttpServerConfig& config() const noexcept { return m_config; }
  [[nodiscard]] HttpHandler& handler() noexcept { return m_handler; }
  [[nodiscard]] bool stopping() const noexcept {
    return m_stopping.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::vector<std::string> endpoints() const;
  [[nodiscard]] std::uint16_t port() const;

  void run();
  void stop();

  // Called by sessions.
  void answered(std::string_view target, int status) noexcept;
  void session_started(Session& session, bool overflow);
  void session_ended(const std::list<Session*>::iterator& position, bool overflow) noexcept;

private:
  void run_turns();

  struct Listener {
    tcp::acceptor acceptor;
    asio::steady_timer backoff;
    Clock::time_point last_warning{};
  };

  void listen_on(const tcp::endpoint& endpoint);
  void adopt(int fd);
  void do_accept(Listener& listener);
  void on_accept(Listener* listener, error_code ec, tcp::socket socket);
  void do_wait_signal();
  void begin_shutdown();
  void maybe_finish();
  void note_rejection(int status) noexcept;
  [[nodiscard]] asio::any_io_executor session_executor();

  HttpServerConfig m_config;
  HttpHandler& m_handler;
  io::RejectionSummary m_rejections;
  std::atomic<bool> m_summary_armed{false};
  std::atomic<bool> m_stopping{false};
  std::atomic<std::size_t> m_active{0};
  std::atomic<std::size_t> m_overflow{0};
  // The registry outlives the io_context: destroying the context destroys the sessions it
  // still holds, and they unregister themselves.
  std::mutex m_sessions_mutex;
  std::list<Session*> m_sessions;
  bool m_destroying = false;

  asio::io_context m_ioc;
  asio::strand<asio::io_context::executor_type> m_strand;
  std::list<Listener> m_listeners;
  asio::steady_timer m_summary_timer;
  asio::steady_timer m_grace_timer;
  std::optional<asio::signal_set> m_signals;
  Clock::time_point m_first_stop_signal{};
  bool m_finished = false;  // shut down with no session left; on m_strand
};

// One connection: reads a request (head, then body), asks the handler, writes the answer,
// and starts over while the connection is kept alive. A single steady_timer watches the
// current deadline; moving the deadline only writes a member, and the timer re-arms itself
// lazily when it fires early, so the steady state costs no timer operation per request.
class Session : public std::enable_shared_from_this<Session> {
public:
  Session(ServerCore& server, tcp::socket socket, bool overflow)
      : m_server(server),
        m_socket(std::move(socket)),
        m_timer(m_socket.get_executor()),
        m_overflow(overflow) {}
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session() { m_server.session_ended(m_position, m_overflow); }

  void start() {
    asio::dispatch(m_socket.get_executor(),
                   beast::bind_front_handler(&Session::on_start, shared_from_this()));
  }

  void set_position(std::list<Session*>::iterator position) { m_position = position; }

  // The server is stopping: an idle connection is closed now, a request in progress is
  // finished and answered with "Connection: close".
  void on_server_stop() {
    if (m_closed) {
      return;
    }
    if (m_state == State::reading_head && !partial_request()) {
      close();
    }
  }

  [[nodiscard]] asio::any_io_executor executor() { return m_socket.get_executor(); }

private:
  enum class State { reading_head, reading_body, writing, draining };
  using Parser = http::request_parser<http::string_body>;

  void on_start() {
    error_code ec;
    const tcp::endpoint remote = m_socket.remote_endpoint(ec);
    if (!ec) {
      m_remote = format_endpoint(remote);
    }
    m_deadline = Clock::now() + m_server.config().read_timeout;
    arm_timer(m_deadline);
    if (m_overflow) {
      m_response.reset();
      set_error(m_response, 503, "too many connections");
      send_response(true);
      return;
    }
    do_read_head();
  }

  void arm_timer(Clock::time_point expiry) {
    m_timer.expires_at(expiry);
    m_timer.async_wait(beast::bind_front_handler(&Session::on_timer, shared_from_this()));
  }

  // Moves the deadline; only a deadline earlier than the armed expiry re-arms the timer.
  void set_deadline(Clock::time_point deadline) {
    m_deadline = deadline;
    if (deadline < m_timer.expiry()) {
      arm_timer(deadline);
    }
  }

  void on_timer(error_code ec) {
    if (m_closed || ec == asio::error::operation_aborted) {
      return;
    }
    const Clock::time_point now = Clock::now();
    if (now < m_deadline) {
      arm_timer(m_deadline);
      return;
    }
    switch (m_state) {
    case State::reading_head:
    case State::reading_body:
      if (m_state == State::reading_head && !partial_request()) {
        close();  // an idle keep-alive connection
        return;
      }
      // Cancelling the read makes it complete with operation_aborted; its handler answers 408.
      m_timed_out = true;
      m_socket.cancel(ec);
      m_deadline = now + m_server.config().read_timeout;
      arm_timer(m_deadline);
      return;
    case State::writing:
    case State::draining:
      close();
      return;
    }
  }

  [[nodiscard]] bool partial_request() const {
    return m_buffer.size() > 0 || (m_parser && m_parser->got_some());
  }

  void do_read_head() {
    if (m_server.stopping()) {
      close();
      return;
    }
    m_state = State::reading_head;
    m_timed_out = false;
    if (m_parser) {
      m_body = std::move(m_parser->get().body());
    }
    if (m_body.capacity() > k_kept_capacity) {
      std::string().swap(m_body);
    }
    m_body.clear();
    m_parser.emplace(std::piecewise_construct, std::make_tuple(std::move(m_body)));
    m_parser->header_limit(m_server.config().header_limit);
    // The declared length is checked against max_body after on_route, so that a request for
    // an unknown path is a 404 whatever its size; the limit is set before the body is read.
    m_parser->body_limit(boost::none);
    m_deadline = Clock::now() + m_server.config().read_timeout;
    http::async_read_header(m_socket, m_buffer, *m_parser,
                            beast::bind_front_handler(&Session::on_read_head, shared_from_this()));
  }

  void on_read_head(error_code ec, std::size_t /*bytes*/) {
    if (m_closed) {
      return;
    }
    if (ec) {
      on_read_error(ec);
      return;
    }
    const auto& message = m_parser->get();
    m_headers.clear();
    m_headers.reserve(k_expected_fields);
    for (const auto& field : message) {
      m_headers.push_back({to_std(field.name_string()), to_std(field.value())});
    }
    const HttpRequestHead head{to_std(message.method_string()), to_std(message.target()),
                               m_headers};
    const bool body_pending = !m_parser->is_done();
    m_response.reset();
    try {
      if (m_server.handler().on_route(head, m_response)) {
        send_response(body_pending);
        return;
      }
      const auto length = m_parser->content_length();
      if (length && *length > m_server.config().max_body) {
        answer_error(413, body_limit_message(), true);
        return;
      }
      m_response.reset();
      if (m_server.handler().on_head(head, m_response)) {
        send_response(body_pending);
        return;
      }
    } catch (const std::exception& error) {
      internal_error(error);
      return;
    }
    if (!body_pending) {
      handle_request();
      return;
    }
    m_parser->body_limit(m_server.config().max_body);
    const auto expect = message.find(http::field::expect);
    if (expect != message.end() && message.version() >= 11 &&
        iequals(to_std(expect->value()), "100-continue")) {
      m_state = State::writing;
      asio::async_write(
          m_socket, asio::buffer(k_continue.data(), k_continue.size()),
          beast::bind_front_handler(&Session::on_continue_written, shared_from_this()));
      return;
    }
    do_read_body();
  }

  void on_continue_written(error_code ec, std::size_t /*bytes*/) {
    if (m_closed) {
      return;
    }
    if (ec) {
      close();
      return;
    }
    do_read_body();
  }

  void do_read_body() {
    m_state = State::reading_body;
    http::async_read(m_socket, m_buffer, *m_parser,
                     beast::bind_front_handler(&Session::on_read_body, shared_from_this()));
  }

  void on_read_body(error_code ec, std::size_t /*bytes*/) {
    if (m_closed) {
      return;
    }
    if (ec) {
      on_read_error(ec);
      return;
    }
    handle_request();
  }

  void on_read_error(error_code ec) {
    if (ec == asio::error::operation_aborted) {
      if (m_timed_out) {
        answer_error(408, "request not received in time", true);
      } else {
        close();
      }
      return;
    }
    if (ec == http::error::header_limit) {
      answer_error(
          431, fmt::format("request headers larger than {} bytes", m_server.config().header_limit),
          true);
      return;
    }
    if (ec == http::error::body_limit) {
      answer_error(413, body_limit_message(), true);
      return;
    }
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec.category() != http::make_error_code(http::error::bad_method).category()) {
      close();  // the client went away or the network failed: nobody to answer
      return;
    }
    answer_error(400, "malformed HTTP request: " + ec.message(), true);
  }

  [[nodiscard]] std::string body_limit_message() const {
    return fmt::format("request body larger than {} bytes", m_server.config().max_body);
  }

  void handle_request() {
    const auto& message = m_parser->get();
    const HttpRequest request{to_std(message.method_string()), to_std(message.target()), m_headers,
                              message.body(), m_remote};
    m_response.reset();
    try {
      m_server.handler().on_request(request, m_response);
    } catch (const std::exception& error) {
      internal_error(error);
      return;
    }
    send_response(false);
  }

  void internal_error(const std::exception& error) {
    io::log(io::LogLevel::error, "request handler failed", {{"error", error.what()}});
    answer_error(500, "internal error", true);
  }

  void answer_error(int status, std::string_view message, bool close_after) {
    m_response.reset();
    set_error(m_response, status, message);
    send_response(close_after);
  }

  void send_response(bool close_after) {
    const bool have_head = m_parser && m_parser->is_header_done();
    bool keep_alive = !close_after && !m_response.close && !m_server.stopping() && have_head &&
                      m_parser->get().keep_alive() &&
                      // Beast keeps an HTTP/1.0 "Connection: keep-alive, close"; close wins.
                      !http::token_list(m_parser->get()[http::field::connection]).exists("close");
    m_server.answered(have_head ? to_std(m_parser->get().target()) : std::string_view{},
                      m_response.status);

    const unsigned version = have_head ? m_parser->get().version() : 11;
    m_head.clear();
    append_response_head(m_head, version, m_response, keep_alive);
    // A HEAD answer has the GET answer's Content-Length and no body.
    const bool with_body = !(have_head && m_parser->get().method() == http::verb::head);
    m_state = State::writing;
    m_deadline = Clock::now() + m_server.config().read_timeout;
    const std::array<asio::const_buffer, 2> buffers{
        asio::buffer(m_head),
        asio::buffer(m_response.body.data(), with_body ? m_response.body.size() : 0)};
    asio::async_write(
        m_socket, buffers,
        beast::bind_front_handler(&Session::on_write, shared_from_this(), !keep_alive));
  }

  void on_write(bool close_after, error_code ec, std::size_t /*bytes*/) {
    if (m_closed) {
      return;
    }
    if (ec) {
      close();
      return;
    }
    if (m_response.body.capacity() > k_kept_capacity) {
      std::string().swap(m_response.body);
    }
    if (close_after) {
      graceful_close();
      return;
    }
    if (m_buffer.capacity() > k_kept_capacity && m_buffer.size() < k_kept_capacity) {
      m_buffer.shrink_to_fit();
    }
    do_read_head();
  }

  // Stops sending, then reads and discards what the client still sends until it closes, for
  // at most k_linger: the client reads the answer instead of a reset.
  void graceful_close() {
    error_code ec;
    m_socket.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) {
      close();
      return;
    }
    m_state = State::draining;
    m_drained = 0;
    m_buffer.consume(m_buffer.size());
    set_deadline(Clock::now() +
                 std::min<Clock::duration>(k_linger, m_server.config().read_timeout));
    do_drain();
  }

  void do_drain() {
    m_socket.async_read_some(m_buffer.prepare(k_drain_chunk),
                             beast::bind_front_handler(&Session::on_drain, shared_from_this()));
  }

  void on_drain(error_code ec, std::size_t bytes) {
    if (m_closed) {
      return;
    }
    m_drained += bytes;
    if (ec || m_drained > k_linger_bytes) {
      close();
      return;
    }
    do_drain();
  }

  void close() {
    if (m_closed) {
      return;
    }
    m_closed = true;
    error_code ec;
    m_socket.close(ec);
    m_timer.cancel();
  }

  ServerCore& m_server;
  tcp::socket m_socket;
  asio::steady_timer m_timer;
  bool m_overflow;
  std::list<Session*>::iterator m_position;
  Clock::time_point m_deadline{};
  State m_state = State::reading_head;
  bool m_closed = false;
  bool m_timed_out = false;
  std::size_t m_drained = 0;
  std::string m_remote;
  beast::flat_buffer m_buffer;
  std::string m_body;
  std::optional<Parser> m_parser;
  std::vector<HttpHeader> m_headers;
  HttpResponse m_response;
  std::string m_head;  // the status line and fields of the answer being written
};

ServerCore::ServerCore(HttpServerConfig config, HttpHandler& handler)
    : m_config(std::move(config)),
      m_handler(handler),
      m_ioc(m_config.threads > 1 ? static_cast<int>(m_config.threads) : 1),
      m_strand(asio::make_strand(m_ioc)),
      m_summary_timer(m_strand),
      m_grace_timer(m_strand) {
  if (m_config.threads == 0) {
    m_config.threads = 1;
  }
  if (m_config.inherited_sockets.empty()) {
    error_code ec;
    const asio::ip::address address = asio::ip::make_address(m_config.host, ec);
    if (ec) {
      throw core::usage_error(fmt::format("'{}' is not an IPv4 or IPv6 address", m_config.host),
                              "give an address such as 127.0.0.1, 0.0.0.0, ::1 or ::");
    }
    listen_on(tcp::endpoint(address, m_config.port));
  } else {
    for (const int fd : m_config.inherited_sockets) {
      adopt(fd);
    }
  }
  if (m_config.handle_signals) {
    m_signals.emplace(m_strand, SIGINT, SIGTERM, SIGHUP);
  }
}

ServerCore::~ServerCore() {
  const std::lock_guard lock(m_sessions_mutex);
  m_destroying = true;
}

void ServerCore::listen_on(const tcp::endpoint& endpoint) {
  Listener& listener =
      m_listeners.emplace_back(Listener{tcp::acceptor(m_strand), asio::steady_timer(m_strand)});
  tcp::acceptor& acceptor = listener.acceptor;
  error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) {
    set_close_on_exec(acceptor.native_handle());
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  }
  if (!ec) {
    acceptor.bind(endpoint, ec);
  }
  if (!ec) {
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    std::string hint;
    if (ec == asio::error::address_in_use) {
      hint = "another process listens on that port; choose another port";
    } else if (ec == asio::error::access_denied) {
      hint = "ports below 1024 need privileges; use a higher port or socket activation";
    } else if (ec == boost::system::errc::address_not_available) {
      hint = "the address is not one of this machine's";
    }
    throw core::failure(fmt::format("cannot listen on '{}': {}", format_endpoint(endpoint),
                                    lower_first(ec.message())),
                        hint);
  }
}

void ServerCore::adopt(int fd) {
  int family = 0;
  if (sd_is_socket_inet(fd, AF_INET, SOCK_STREAM, 1, 0) > 0) {
    family = AF_INET;
  } else if (sd_is_socket_inet(fd, AF_INET6, SOCK_STREAM, 1, 0) > 0) {
    family = AF_INET6;
  } else {
    throw core::failure(fmt::format("inherited socket {} is not a listening TCP socket", fd),
                        "give the socket unit ListenStream=ADDRESS:PORT");
  }
  set_close_on_exec(fd);
  Listener& listener =
      m_listeners.emplace_back(Listener{tcp::acceptor(m_strand), asio::steady_timer(m_strand)});
  error_code ec;
  listener.acceptor.assign(family == AF_INET ? tcp::v4() : tcp::v6(), fd, ec);
  if (ec) {
    throw core::failure(
        fmt::format("cannot use inherited socket {}: {}", fd, lower_first(ec.message())));
  }
}

std::vector<std::string> ServerCore::endpoints() const {
  std::vector<std::string> result;
  for (const Listener& listener : m_listeners) {
    error_code ec;
    const tcp::endpoint endpoint = listener.acceptor.local_endpoint(ec);
    if (!ec) {
      result.push_back(format_endpoint(endpoint));
    }
  }
  return result;
}

std::uint16_t ServerCore::port() const {
  for (const Listener& listener : m_listeners) {
    error_code ec;
    const tcp::endpoint endpoint = listener.acceptor.local_endpoint(ec);
    if (!ec) {
      return endpoint.port();
    }
  }
  return 0;
}

asio::any_io_executor ServerCore::session_executor() {
  // One thread needs no strand: every handler already runs on it.
  if (m_config.threads > 1) {
    return asio::make_strand(m_ioc);
  }
  return m_ioc.get_executor();
}

// io_context::run() in turns: wait for one handler, then run every handler ready by then, with
// the log lines of the turn written together (io::LogBatch). Under load a turn serves many
// requests; idle, a line is written as soon as its handler returns.
void ServerCore::run_turns() {
  for (;;) {
    const io::LogBatch batch;
    if (m_ioc.run_one() == 0) {
      return;
    }
    m_ioc.poll();
  }
}

void ServerCore::run() {
  for (const std::string& endpoint : endpoints()) {
    io::log(io::LogLevel::info, "listening on " + endpoint);
  }
  sd_notify(0, "READY=1");
  // Posted behind a stop() that came before run(), which then finds them unnecessary.
  asio::dispatch(m_strand, [this] {
    if (stopping()) {
      return;
    }
    for (Listener& listener : m_listeners) {
      do_accept(listener);
    }
    if (m_signals) {
      do_wait_signal();
    }
  });
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < m_config.threads; ++i) {
    threads.emplace_back([this] { run_turns(); });
  }
  run_turns();
  for (std::thread& thread : threads) {
    thread.join();
  }
  m_rejections.flush();
  io::log(io::LogLevel::debug, "http server stopped");
}

void ServerCore::stop() {
  asio::post(m_strand, [this] { begin_shutdown(); });
}

void ServerCore::do_accept(Listener& listener) {
  listener.acceptor.async_accept(
      session_executor(), beast::bind_front_handler(&ServerCore::on_accept, this, &listener));
}

void ServerCore::on_accept(Listener* listener, error_code ec, tcp::socket socket) {
  if (stopping() || ec == asio::error::operation_aborted) {
    return;
  }
  if (ec) {
    // Out of descriptors or memory: wait a little instead of spinning, and say so at most
    // once a second.
    const Clock::time_point now = Clock::now();
    if (now - listener->last_warning >= std::chrono::seconds(1)) {
      listener->last_warning = now;
      io::log(io::LogLevel::warning, "accepting a connection failed",
              {{"error", lower_first(ec.message())}});
    }
    listener->backoff.expires_after(std::chrono::milliseconds(50));
    listener->backoff.async_wait([this, listener](error_code wait_error) {
      if (!wait_error && !stopping()) {
        do_accept(*listener);
      }
    });
    return;
  }
  set_close_on_exec(socket.native_handle());
  error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  const bool overflow = m_active.load(std::memory_order_relaxed) >= m_config.max_connections;
  if (overflow && m_overflow.load(std::memory_order_relaxed) >= k_max_overflow_sessions) {
    note_rejection(503);
    socket.close(ignored);
  } else {
    auto session = std::make_shared<Session>(*this, std::move(socket), overflow);
    session_started(*session, overflow);
    session->start();
  }
  do_accept(*listener);
}

void ServerCore::session_started(Session& session, bool overflow) {
  (overflow ? m_overflow : m_active).fetch_add(1, std::memory_order_relaxed);
  const std::lock_guard lock(m_sessions_mutex);
  session.set_position(m_sessions.insert(m_sessions.end(), &session));
}

void ServerCore::session_ended(const std::list<Session*>::iterator& position,
                               bool overflow) noexcept {
  (overflow ? m_overflow : m_active).fetch_sub(1, std::memory_order_relaxed);
  try {
    const std::lock_guard lock(m_sessions_mutex);
    m_sessions.erase(position);
    if (m_sessions.empty() && stopping() && !m_destroying) {
      asio::post(m_strand, [this] { maybe_finish(); });
    }
  } catch (const std::exception&) {
    // Locking or posting failed (out of memory): the grace timer still ends the shutdown.
  }
}

void ServerCore::do_wait_signal() {
  m_signals->async_wait([this](error_code ec, int signal) {
    if (ec) {
      return;
    }
    if (signal == SIGHUP) {
      if (m_config.on_reload) {
        try {
          m_config.on_reload();
        } catch (const std::exception& error) {
          io::log(io::LogLevel::error, "reloading failed", {{"error", error.what()}});
        }
      }
    } else if (!stopping()) {
      m_first_stop_signal = Clock::now();
      begin_shutdown();
    } else if (Clock::now() - m_first_stop_signal >= std::chrono::seconds(1)) {
      // An impatient operator; a signal sent to the whole process group right after the
      // first one (timeout(1) does that) is no reason to drop requests.
      io::log(io::LogLevel::warning, "second signal: stopping without waiting for requests");
      m_ioc.stop();
      return;
    }
    if (!m_finished) {
      do_wait_signal();
    }
  });
}

void ServerCore::begin_shutdown() {
  if (m_stopping.exchange(true)) {
    return;
  }
  io::log(io::LogLevel::info, "stopping");
  sd_notify(0, "STOPPING=1");
  for (Listener& listener : m_listeners) {
    error_code ignored;
    listener.acceptor.close(ignored);
    listener.backoff.cancel();
  }
  m_grace_timer.expires_after(m_config.shutdown_grace);
  m_grace_timer.async_wait([this](error_code ec) {
    if (ec) {
      return;
    }
    io::log(io::LogLevel::warning, "requests still in progress after the grace period; abandoned");
    m_ioc.stop();
  });
  {
    const std::lock_guard lock(m_sessions_mutex);
    for (Session* session : m_sessions) {
      // A session whose last reference is going away cannot be locked; it is closing anyway.
      if (auto alive = session->weak_from_this().lock()) {
        asio::post(alive->executor(), [alive] { alive->on_server_stop(); });
      }
    }
  }
  maybe_finish();
}

void ServerCore::maybe_finish() {
  {
    const std::lock_guard lock(m_sessions_mutex);
    if (!m_sessions.empty()) {
      return;
    }
  }
  // Nothing left to serve: without pending work the io_context runs out and run() returns.
  m_finished = true;
  m_grace_timer.cancel();
  m_summary_timer.cancel();
  if (m_signals) {
    error_code ignored;
    m_signals->cancel(ignored);
  }
}

void ServerCore::answered(std::string_view target, int status) noexcept {
  m_handler.on_answered(target, status);
  if (status >= 400) {
    note_rejection(status);
  }
}

void ServerCore::note_rejection(int status) noexcept {
  m_rejections.add(status);
  if (stopping() || m_summary_armed.exchange(true, std::memory_order_acq_rel)) {
    return;
  }
  try {
    asio::post(m_strand, [this] {
      m_summary_timer.expires_after(std::chrono::seconds(1));
      m_summary_timer.async_wait([this](error_code) {
        // Cleared before flushing: a rejection counted meanwhile arms the next summary.
        m_summary_armed.store(false, std::memory_order_release);
        m_rejections.flush();
      });
    });
  } catch (const std::exception&) {
    m_summary_armed.store(false, std::memory_order_release);
  }
}

}  // namespace

const HttpHeader* find_header(std::span<const HttpHeader> headers, std::string_view name) noexcept {
  for (const HttpHeader& header : headers) {
    if (iequals(header.name, name)) {
      return &header;
    }
  }
  return nullptr;
}

void HttpResponse::reset() noexcept {
  status = 200;
  content_type = "application/json";
  headers.clear();
  body.clear();
  close = false;
}

std::vector<int> systemd_listen_sockets() {
  const int count = sd_listen_fds(1);
  if (count < 0) {
    throw core::failure(fmt::format("cannot read the sockets passed by systemd: {}",
                                    lower_first(std::strerror(-count))));
  }
  std::vector<int> fds;
  for (int i = 0; i < count; ++i) {
    fds.push_back(SD_LISTEN_FDS_START + i);
  }
  return fds;
}

class HttpServer::Impl : public ServerCore {
public:
  using ServerCore::ServerCore;
};

HttpServer::HttpServer(HttpServerConfig config, HttpHandler& handler)
    : m_impl(std::make_unique<Impl>(std::move(config), handler)) {}

HttpServer::~HttpServer() = default;

std::vector<std::string> HttpServer::endpoints() const {
  return m_impl->endpoints();
}

std::uint16_t HttpServer::port() const {
  return m_impl->port();
}

void HttpServer::run() {
  m_impl->run();
}

void HttpServer::stop() {
  m_impl->stop();
}

}  // namespace dfhook::net
