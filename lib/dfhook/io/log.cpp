#include "dfhook/io/log.hpp"

#include <fmt/format.h>

#include <poll.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <ctime>

namespace dfhook::io {

namespace {

std::atomic<LogFormat> g_format{LogFormat::text};
std::atomic<LogLevel> g_level{LogLevel::info};

std::string_view level_name(LogLevel level) {
  switch (level) {
  case LogLevel::error:
    return "error";
  case LogLevel::warning:
    return "warning";
  case LogLevel::info:
    return "info";
  case LogLevel::debug:
    return "debug";
  }
  return "info";
}

// The bytes a JSON string escapes here: '"', '\\', control characters and DEL. A table: this
// scan runs over every value of every delivery line.
constexpr std::array<bool, 256> k_json_escaped = [] {
  std::array<bool, 256> table{};
  for (std::size_t c = 0; c < 0x20; ++c) {
    table[c] = true;
  }
  table['"'] = table['\\'] = table[0x7f] = true;
  return table;
}();

bool needs_json_escape(char c) {
  return k_json_escaped[static_cast<unsigned char>(c)];
}

// Appends runs that need no escape whole: a delivery's line is written per request.
void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  while (!text.empty()) {
    const auto plain = std::find_if(text.begin(), text.end(), needs_json_escape);
    out.append(text.begin(), plain);
    if (plain == text.end()) {
      break;
    }
    const char c = *plain;
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
    }
    text.remove_prefix(static_cast<std::size_t>(plain - text.begin()) + 1);
  }
  out += '"';
}

bool needs_quotes(std::string_view text) {
  if (text.empty()) {
    return true;
  }
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '"' || c == '=' || c == '\\') {
      return true;
    }
  }
  return false;
}

// The time of a log line, "2024-05-01T12:00:00.123Z", valid until the thread's next call. The
// part up to the second is formatted once per second and thread: a busy listener logs a line
// per delivery.
std::string_view now_rfc3339() {
  const auto now = std::chrono::system_clock::now();
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(millis / 1000);
  thread_local std::time_t cached_second = -1;
  thread_local std::string text;
  if (seconds != cached_second) {
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    text = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z", utc.tm_year + 1900,
                       utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
    cached_second = seconds;
  }
  const auto fraction = static_cast<unsigned>(millis % 1000);
  const std::size_t at = text.size() - 4;  // the milliseconds, before the 'Z'
  text[at] = static_cast<char>('0' + fraction / 100);
  text[at + 1] = static_cast<char>('0' + fraction / 10 % 10);
  text[at + 2] = static_cast<char>('0' + fraction % 10);
  return text;
}

void append_log_line(std::string& line, LogFormat format, LogLevel level,
                     std::string_view timestamp, std::string_view message,
                     std::initializer_list<LogField> fields) {
  if (format == LogFormat::json) {
    line += "{";
    if (!timestamp.empty()) {
      line += "\"time\":";
      append_json_string(line, timestamp);
      line += ',';
    }
    line += "\"level\":";
    append_json_string(line, level_name(level));
    line += ",\"msg\":";
    append_json_string(line, message);
    for (const auto& field : fields) {
      line += ',';
      append_json_string(line, field.key);
      line += ':';
      append_json_string(line, field.value);
    }
    line += "}\n";
    return;
  }
  if (!timestamp.empty()) {
    line += timestamp;
    line += ' ';
  }
  line += level_name(level);
  line += ": ";
  line += message;
  for (const auto& field : fields) {
    line += ' ';
    line += field.key;
    line += '=';
    if (needs_quotes(field.value)) {
      append_json_string(line, field.value);
    } else {
      line += field.value;
    }
  }
  line += '\n';
}

// A non-blocking stderr (a parent's pipe) that is full is waited for, at most a second per
// write, as a blocking one would be; after that the lines are dropped.
void write_to_stderr(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t written = ::write(STDERR_FILENO, bytes.data(), bytes.size());
    if (written < 0) {
      if (errno == EINTR) {
        continue;
      }
      pollfd out{STDERR_FILENO, POLLOUT, 0};
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && ::poll(&out, 1, 1000) > 0) {
        continue;
      }
      return;
    }
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
}

// The most a batch writes at once: PIPE_BUF, the size up to which POSIX keeps a write to a
// pipe (journald's, a log shipper's) in one piece.
constexpr std::size_t k_batch_limit = PIPE_BUF;

// The lines of this thread not written yet: kept while a LogBatch is open, else one line.
struct PendingLines {
  unsigned batches = 0;
  std::string text;
};
thread_local PendingLines t_pending;

}  // namespace

void configure_logging(LogFormat format, LogLevel level) {
  g_format = format;
  g_level = level;
}

LogFormat default_log_format() {
  return isatty(STDERR_FILENO) != 0 ? LogFormat::text : LogFormat::json;
}

bool log_enabled(LogLevel level) {
  return static_cast<int>(level) <= static_cast<int>(g_level.load());
}

std::string format_log_line(LogFormat format, LogLevel level, std::string_view timestamp,
                            std::string_view message, std::initializer_list<LogField> fields) {
  std::string line;
  append_log_line(line, format, level, timestamp, message, fields);
  return line;
}

void log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields) {
  if (!log_enabled(level)) {
    return;
  }
  PendingLines& pending = t_pending;
  const std::size_t kept = pending.text.size();
  append_log_line(pending.text, g_format, level, now_rfc3339(), message, fields);
  if (pending.batches > 0 && pending.text.size() <= k_batch_limit) {
    return;
  }
  if (pending.batches > 0 && kept > 0) {
    // The lines kept before this one, which would make the write too long.
    write_to_stderr(std::string_view(pending.text).substr(0, kept));
    pending.text.erase(0, kept);
    if (pending.text.size() <= k_batch_limit) {
      return;
    }
  }
  write_to_stderr(pending.text);
  pending.text.clear();
}

LogBatch::LogBatch() noexcept {
  ++t_pending.batches;
}

LogBatch::~LogBatch() {
  if (--t_pending.batches == 0) {
    flush_log();
  }
}

void flush_log() {
  PendingLines& pending = t_pending;
  if (!pending.text.empty()) {
    write_to_stderr(pending.text);
    pending.text.clear();
  }
}

}  // namespace dfhook::io
