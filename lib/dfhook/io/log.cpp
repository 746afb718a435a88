#include "dfhook/io/log.hpp"

#include <fmt/format.h>

#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
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

bool needs_json_escape(char c) {
  const auto u = static_cast<unsigned char>(c);
  return c == '"' || c == '\\' || u < 0x20 || u == 0x7f;
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

// The time of a log line, "2024-05-01T12:00:00.123Z". The part up to the second is formatted
// once per second and thread: a busy listener logs a line per delivery.
std::string now_rfc3339() {
  const auto now = std::chrono::system_clock::now();
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(millis / 1000);
  thread_local std::time_t cached_second = -1;
  thread_local std::string cached_prefix;
  if (seconds != cached_second) {
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    cached_prefix = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.", utc.tm_year + 1900,
                                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
    cached_second = seconds;
  }
  std::string text = cached_prefix;
  const auto fraction = static_cast<unsigned>(millis % 1000);
  text += static_cast<char>('0' + fraction / 100);
  text += static_cast<char>('0' + fraction / 10 % 10);
  text += static_cast<char>('0' + fraction % 10);
  text += 'Z';
  return text;
}

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
  line.reserve(256);
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
    return line;
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
  return line;
}

void log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields) {
  if (!log_enabled(level)) {
    return;
  }
  const std::string line = format_log_line(g_format, level, now_rfc3339(), message, fields);
  const char* data = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    const ssize_t written = ::write(STDERR_FILENO, data, left);
    if (written < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    data += written;
    left -= static_cast<std::size_t>(written);
  }
}

}  // namespace dfhook::io
