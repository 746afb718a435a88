#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace dfhook::io {

enum class LogFormat { text, json };
enum class LogLevel { error = 0, warning = 1, info = 2, debug = 3 };

// One key=value of a log line. Values are written escaped (JSON) or quoted when needed (text).
// A LogField refers to its text: build it in the log() call, where a temporary std::string
// lives until the line is formatted.
struct LogField {
  std::string_view key;
  std::string_view value;
};

// Sets the process-wide format and the most verbose level written. Until called: text, info.
void configure_logging(LogFormat format, LogLevel level);

// The format chosen by default: text when stderr is a terminal, JSON lines otherwise.
[[nodiscard]] LogFormat default_log_format();

[[nodiscard]] bool log_enabled(LogLevel level);

// Writes one line to stderr with a single write(2), so lines of several threads never mix.
// Never pass a secret or a token in message or fields.
void log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {});

// While one is alive on a thread, the lines that thread logs are kept and written together
// when the outermost one ends, each write(2) at most PIPE_BUF (4 KiB) of whole lines: a write
// to a pipe that size is never split by another thread's (a longer line goes alone, as
// without a batch). The HTTP server opens one per turn of its event loop, so that a busy
// listener writes its delivery lines in one system call per turn (or per 4 KiB) instead of
// one per delivery; a line is never held while the loop waits for work. Lines kept when the
// process is killed are lost.
class LogBatch {
public:
  LogBatch() noexcept;
  ~LogBatch();
  LogBatch(const LogBatch&) = delete;
  LogBatch& operator=(const LogBatch&) = delete;
};

// Writes the lines this thread's LogBatch keeps now, before handing work to another thread
// whose lines must come after them.
void flush_log();

// The line log() would write, without the timestamp; for tests.
[[nodiscard]] std::string format_log_line(LogFormat format, LogLevel level,
                                          std::string_view timestamp, std::string_view message,
                                          std::initializer_list<LogField> fields);

}  // namespace dfhook::io
