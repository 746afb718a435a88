#include "dfhook/net/replay_sender.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

using dfhook::net::replay_backoff;
using dfhook::net::ReplayOutcome;
using dfhook::net::ReplayRequest;
using dfhook::net::ReplayResult;
using dfhook::net::ReplaySender;
using dfhook::net::ReplaySenderOptions;
using namespace std::chrono_literals;

namespace {

// A loopback port that refuses connections: bound, never listening, closed at the end.
class RefusingPort {
public:
  RefusingPort() {
    m_fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(m_fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(m_fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    socklen_t length = sizeof(address);
    REQUIRE(::getsockname(m_fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    m_port = ntohs(address.sin_port);
  }
  ~RefusingPort() { ::close(m_fd); }
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;

  [[nodiscard]] std::string url() const {
    return "http://127.0.0.1:" + std::to_string(m_port) + "/webhooks/optimizely";
  }

private:
  int m_fd = -1;
  int m_port = 0;
};

ReplaySender::NextRequest requests(std::size_t count) {
  return [count, taken = std::size_t{0}](ReplayRequest& request) mutable {
    if (taken == count) {
      return false;
    }
    request.body = "{\"n\":" + std::to_string(taken++) + "}";
    request.headers = {{"Content-Type", "application/json"}};
    return true;
  };
}

}  // namespace

TEST_CASE("backoff grows by doubling up to the maximum, scaled by the jitter") {
  CHECK(replay_backoff(1, 500ms, 30s, 0.999999) == 499ms);
  CHECK(replay_backoff(2, 500ms, 30s, 0.5) == 500ms);
  CHECK(replay_backoff(3, 500ms, 30s, 0.5) == 1000ms);
  CHECK(replay_backoff(20, 500ms, 30s, 0.5) == 15s);
  CHECK(replay_backoff(1000, 500ms, 30s, 0.5) == 15s);
  CHECK(replay_backoff(4, 500ms, 30s, 0.0) == 0ms);
}

TEST_CASE("a refused connection is retried, then reported as unreachable with every attempt") {
  const RefusingPort port;
  ReplaySenderOptions options;
  options.url = port.url();
  options.retries = 2;
  options.backoff_base = 1ms;
  ReplaySender sender(options);
  std::vector<ReplayResult> results;
  const auto totals = sender.run(requests(1), [&](const ReplayResult& result) {
    results.push_back(result);
    return true;
  });
  CHECK(totals.taken == 1);
  CHECK(totals.reported == 1);
  REQUIRE(results.size() == 1);
  CHECK(results[0].outcome == ReplayOutcome::network);
  CHECK(results[0].unreachable);
  CHECK(results[0].attempts == 3);
  CHECK(results[0].status == 0);
  CHECK(results[0].error.find("127.0.0.1") != std::string::npos);
}

TEST_CASE("results arrive in input order whatever the concurrency") {
  const RefusingPort port;
  ReplaySenderOptions options;
  options.url = port.url();
  options.retries = 0;
  options.concurrency = 4;
  ReplaySender sender(options);
  std::vector<std::size_t> order;
  const auto totals = sender.run(requests(10), [&](const ReplayResult& result) {
    order.push_back(result.index);
    return true;
  });
  CHECK(totals.taken == 10);
  CHECK(order == std::vector<std::size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
}

TEST_CASE("returning false from the result callback stops taking requests") {
  const RefusingPort port;
  ReplaySenderOptions options;
  options.url = port.url();
  options.retries = 0;
  ReplaySender sender(options);
  std::size_t seen = 0;
  const auto totals = sender.run(requests(100), [&](const ReplayResult&) {
    ++seen;
    return false;
  });
  CHECK(totals.stopped);
  CHECK(totals.taken == 1);
  CHECK(seen == 1);
}

TEST_CASE("a scheme other than http or https fails without a retry") {
  ReplaySenderOptions options;
  options.url = "ftp://127.0.0.1/x";
  options.retries = 5;
  ReplaySender sender(options);
  ReplayResult last;
  (void)sender.run(requests(1), [&](const ReplayResult& result) {
    last = result;
    return true;
  });
  CHECK(last.outcome == ReplayOutcome::network);
  CHECK(last.attempts == 1);
  CHECK_FALSE(last.unreachable);
}

TEST_CASE("no input sends nothing and reports nothing") {
  ReplaySenderOptions options;
  options.url = "http://127.0.0.1:9/";
  ReplaySender sender(options);
  const auto totals = sender.run(requests(0), [](const ReplayResult&) { return true; });
  CHECK(totals.taken == 0);
  CHECK(totals.reported == 0);
}
