#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace dfhook::io {

enum class LogFormat { text, json };
enum class LogLevel { error = 0, warning = 1, info = 2, debug = 3 };

// One key=value of a log line. Values are written escaped (JSON) or quoted when needed (text).
struct LogField {
  std::string_view key;
  std::string value;
};

// Sets the process-wide format and the most verbose level written. Until called: text, info.
void configure_logging(LogFormat format, LogLevel level);

// The format chosen by default: text when stderr is a terminal, JSON lines otherwise.
[[nodiscard]] LogFormat default_log_format();

[[nodiscard]] bool log_enabled(LogLevel level);

// Writes one line to stderr with a single write(2), so lines of several threads never mix.
// Never pass a secret or a token in message or fields.
void log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {});

// The line log() would write, without the timestamp; for tests.
[[nodiscard]] std::string format_log_line(LogFormat format, LogLevel level,
                                          std::string_view timestamp, std::string_view message,
                                          std::initializer_list<LogField> fields);

}  // namespace dfhook::io
