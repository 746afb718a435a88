#include "dfhook/io/log.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

using dfhook::io::format_log_line;
using dfhook::io::LogFormat;
using dfhook::io::LogLevel;

TEST_CASE("a text line quotes values with spaces and keeps plain ones bare") {
  CHECK(format_log_line(LogFormat::text, LogLevel::info, "T", "update",
                        {{"name", "1234.json"}, {"error", "bad thing"}}) ==
        "T info: update name=1234.json error=\"bad thing\"\n");
}

TEST_CASE("a JSON line escapes control characters and quotes") {
  CHECK(format_log_line(LogFormat::json, LogLevel::warning, "", "a \"b\"\n", {{"k", "\x01"}}) ==
        "{\"level\":\"warning\",\"msg\":\"a \\\"b\\\"\\n\",\"k\":\"\\u0001\"}\n");
  // Backslash, DEL, tab and a byte before ' ' escaped; UTF-8 and '~' kept as they are.
  CHECK(format_log_line(LogFormat::json, LogLevel::info, "", "m",
                        {{"k", "a\\b\x7f\t\x1f~\xc3\xa9"}}) ==
        "{\"level\":\"info\",\"msg\":\"m\",\"k\":\"a\\\\b\\u007f\\t\\u001f~\xc3\xa9\"}\n");
}

namespace {

// Points this process's stderr at `fd` while alive, then back.
class StderrRedirect {
public:
  explicit StderrRedirect(int fd) : m_saved(::dup(STDERR_FILENO)) {
    REQUIRE(m_saved >= 0);
    REQUIRE(::dup2(fd, STDERR_FILENO) == STDERR_FILENO);
  }
  ~StderrRedirect() {
    ::dup2(m_saved, STDERR_FILENO);
    ::close(m_saved);
  }
  StderrRedirect(const StderrRedirect&) = delete;
  StderrRedirect& operator=(const StderrRedirect&) = delete;

private:
  int m_saved;
};

// Sends this process's stderr to a temporary file while alive; text() is what reached it.
class CapturedStderr {
public:
  CapturedStderr() : m_file(std::tmpfile()) { REQUIRE(m_file != nullptr); }
  ~CapturedStderr() { std::fclose(m_file); }
  CapturedStderr(const CapturedStderr&) = delete;
  CapturedStderr& operator=(const CapturedStderr&) = delete;

  [[nodiscard]] std::string text() const {
    std::string bytes;
    char buffer[4096];
    for (off_t at = 0;;) {
      const ssize_t got = ::pread(::fileno(m_file), buffer, sizeof buffer, at);
      if (got <= 0) {
        return bytes;
      }
      bytes.append(buffer, static_cast<std::size_t>(got));
      at += got;
    }
  }

private:
  std::FILE* m_file;
  StderrRedirect m_redirect{::fileno(m_file)};  // after m_file: set up after it, undone before
};

std::size_t count_lines(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace

TEST_CASE("lines logged under a LogBatch are written together when the outermost one ends") {
  dfhook::io::configure_logging(LogFormat::text, LogLevel::info);
  const CapturedStderr captured;
  dfhook::io::log(LogLevel::info, "first");
  CHECK(captured.text().find("info: first\n") != std::string::npos);
  {
    const dfhook::io::LogBatch batch;
    dfhook::io::log(LogLevel::info, "second", {{"n", "2"}});
    {
      const dfhook::io::LogBatch inner;
      dfhook::io::log(LogLevel::warning, "third");
    }
    dfhook::io::log(LogLevel::debug, "not written at this level");
    CHECK(count_lines(captured.text()) == 1);
  }
  const std::string text = captured.text();
  CHECK(count_lines(text) == 3);
  const auto second = text.find("info: second n=2\n");
  const auto third = text.find("warning: third\n");
  CHECK(second != std::string::npos);
  CHECK(third != std::string::npos);
  CHECK(second < third);
  CHECK(text.find("not written") == std::string::npos);
}

TEST_CASE("a LogBatch writes at most PIPE_BUF of whole lines at once, and only its own thread's") {
  dfhook::io::configure_logging(LogFormat::json, LogLevel::info);
  const CapturedStderr captured;
  const std::string value(1000, 'x');
  const std::string huge(2 * PIPE_BUF, 'y');
  std::size_t logged = 0;
  {
    const dfhook::io::LogBatch batch;
    std::thread([] { dfhook::io::log(LogLevel::info, "another thread"); }).join();
    const std::size_t other = captured.text().size();
    CHECK(captured.text().find("another thread") != std::string::npos);
    while (captured.text().size() == other) {
      REQUIRE(logged < 100);
      dfhook::io::log(LogLevel::info, "long", {{"value", value}});
      ++logged;
    }
    // The line that would have made the kept ones longer than PIPE_BUF is kept back.
    const std::string text = captured.text();
    REQUIRE(logged > 1);
    const std::size_t line = (text.size() - other) / (logged - 1);
    CHECK(text.size() - other <= PIPE_BUF);
    CHECK(text.size() - other + line > PIPE_BUF);
    CHECK(text.back() == '\n');
    CHECK(count_lines(text) == logged);  // logged - 1 lines, and the other thread's
    // A line longer than PIPE_BUF goes alone, after the one kept back.
    dfhook::io::log(LogLevel::info, "huge", {{"value", huge}});
    CHECK(count_lines(captured.text()) == logged + 2);
    dfhook::io::log(LogLevel::info, "after");
    CHECK(captured.text().find("after") == std::string::npos);
  }
  const std::string text = captured.text();
  CHECK(count_lines(text) == logged + 3);
  CHECK(text.find(huge) < text.find("\"msg\":\"after\""));
  dfhook::io::configure_logging(LogFormat::text, LogLevel::info);
}

TEST_CASE("flush_log writes what the batch keeps at once") {
  dfhook::io::configure_logging(LogFormat::text, LogLevel::info);
  const CapturedStderr captured;
  const dfhook::io::LogBatch batch;
  dfhook::io::log(LogLevel::info, "accepted");
  CHECK(captured.text().empty());
  dfhook::io::flush_log();
  CHECK(captured.text().find("info: accepted\n") != std::string::npos);
}

TEST_CASE("a full non-blocking stderr is waited for, not dropped") {
  dfhook::io::configure_logging(LogFormat::text, LogLevel::info);
  int ends[2] = {-1, -1};
  REQUIRE(::pipe2(ends, O_NONBLOCK | O_CLOEXEC) == 0);
  std::optional<StderrRedirect> redirect(std::in_place, ends[1]);
  std::size_t filled = 0;
  const std::string junk(4096, '.');
  while (::write(ends[1], junk.data(), junk.size()) > 0) {
    filled += junk.size();
  }
  REQUIRE(errno == EAGAIN);
  // Another thread logs into the full pipe; the pipe is drained only once that thread waits
  // in poll(2) (its /proc syscall number: 7 poll, 271 ppoll) or has given up.
  std::atomic<pid_t> writer{0};
  std::atomic<bool> returned{false};
  std::thread logger([&] {
    writer = static_cast<pid_t>(::syscall(SYS_gettid));
    dfhook::io::log(LogLevel::info, "after a full pipe");
    returned = true;
  });
  bool waiting = false;
  for (int i = 0; i < 100000 && !waiting && !returned; ++i) {
    if (const pid_t tid = writer.load(); tid != 0) {
      std::ifstream status("/proc/self/task/" + std::to_string(tid) + "/syscall");
      std::string number;
      status >> number;
      waiting = number == "7" || number == "271";
    }
    std::this_thread::yield();
  }
  std::string drained;
  char buffer[4096];
  while (drained.find("after a full pipe\n") == std::string::npos) {
    const ssize_t got = ::read(ends[0], buffer, sizeof buffer);
    if (got > 0) {
      drained.append(buffer, static_cast<std::size_t>(got));
    } else if (returned) {
      break;  // nothing left, and the line did not come
    } else {
      std::this_thread::yield();
    }
  }
  logger.join();
  redirect.reset();
  ::close(ends[1]);
  ::close(ends[0]);
  CHECK(waiting);
  // The junk, then the whole line: "<24-character time> info: after a full pipe\n".
  REQUIRE(drained.size() > filled);
  CHECK(drained.substr(filled + 25) == "info: after a full pipe\n");
}
