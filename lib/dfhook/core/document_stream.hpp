#pragma once

#include "dfhook/core/json.hpp"
#include "dfhook/core/location.hpp"
#include "dfhook/core/problem.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace dfhook::core {

// The largest document DocumentStream reads by default.
inline constexpr std::size_t k_default_max_document = std::size_t{64} << 20U;

// One document of a stream, or the syntax problem found where one should have been.
struct StreamItem {
  // 1-based position among the stream's items.
  std::size_t number = 0;
  // Absolute offset and line:column of the document's first byte in the whole input.
  std::size_t offset = 0;
  LineColumn start;
  // The document's bytes. For a syntax problem: the bytes from its start to the problem.
  // Valid until the next call to feed() or next().
  std::string_view text;
  // Nullopt: the document is valid JSON by every rule of json.hpp, and the stream's json()
  // holds it. Otherwise the first problem, its offset relative to `offset` (line_column(text,
  // problem->offset, start) is its position in the input).
  std::optional<Problem> problem;
  // The document's end was found: valid, or a problem of json.hpp's rules (duplicate name,
  // integer range, lone surrogate). False for a syntax problem, nesting deeper than 64 and a
  // document over the size limit: reading resumed at the next line that starts with '{'.
  bool framed = false;
};

// Splits an input into JSON documents, concatenated or one per line (any whitespace between
// them), read incrementally: memory holds the unread part of the input, not the documents
// already returned, and at most max_document + one chunk bytes.
//
// Each document is parsed with the strict rules of json.hpp as it is framed. After a syntax
// error (or a document that is too deep or too large) reading resumes at the next line that
// starts with '{' after the broken document's first byte, so one damaged line of a JSON-lines
// file costs that line only.
//
//   DocumentStream stream;
//   for (;;) {
//     switch (stream.next(item)) {
//     case DocumentStream::Status::item: ...; break;
//     case DocumentStream::Status::need_more: feed or finish; break;
//     case DocumentStream::Status::end: return;
//     }
//   }
class DocumentStream {
public:
  enum class Status {
    item,       // `item` holds the next document or problem
    need_more,  // feed() more input, or finish() at its end
    end,        // finished and everything read
  };

  explicit DocumentStream(std::size_t max_document = k_default_max_document);

  // Starts over with an empty input that begins at absolute `offset` and `position` of a larger
  // one (at_line_start: the byte before it was a line end, or it is the input's start). Keeps
  // the buffers, and the limit.
  void reset(std::size_t offset = 0, LineColumn position = {}, bool at_line_start = true);

  // Appends input. Invalidates the text of the last item.
  void feed(std::string_view chunk);
  // Declares the end of the input.
  void finish();

  [[nodiscard]] Status next(StreamItem& item);

  // The last item's parsed document. Precondition: that item had no problem.
  [[nodiscard]] const JsonDocument& json() const { return m_json; }

  // Absolute offset up to which the input has been consumed (everything before it was
  // returned as items or skipped).
  [[nodiscard]] std::size_t consumed() const { return m_base + m_pos; }
  // The line:column of consumed().
  [[nodiscard]] LineColumn position() const { return m_position; }
  // True when nothing but whitespace is pending: the input fed so far ends between documents
  // (or within a part skipped after a problem, which ends at a line starting with '{').
  [[nodiscard]] bool between_documents() const;
  // The input fed but not consumed yet (the start of a document cut by the end of the input so
  // far), valid until the next feed() or next().
  [[nodiscard]] std::string_view unread() const {
    return std::string_view(m_buffer).substr(m_pos, m_end - m_pos);
  }
  // True while reading resumes after a problem (skipping to a line that starts with '{').
  [[nodiscard]] bool resuming() const { return m_skipping; }
  // True when consumed() is at the start of a line.
  [[nodiscard]] bool at_line_start() const { return m_at_line_start; }
  // Bytes held in memory (consumed input is dropped at the next feed).
  [[nodiscard]] std::size_t buffered() const { return m_end; }

private:
  void consume_to(std::size_t position);
  bool skip_to_line_starting_with_brace();
  [[nodiscard]] Status problem_item(StreamItem& item, Problem problem, std::size_t stop);

  std::size_t m_max_document;
  JsonDocument m_json;
  std::string m_buffer;         // the input, then k_json_padding bytes for the parser
  std::size_t m_end = 0;        // end of the input in m_buffer
  std::size_t m_pos = 0;        // first unconsumed byte of m_buffer
  std::size_t m_base = 0;       // absolute offset of m_buffer[0]
  LineColumn m_position;        // of m_buffer[m_pos]
  bool m_at_line_start = true;  // m_buffer[m_pos] starts a line
  bool m_finished = false;
  bool m_skipping = false;     // resuming at the next line that starts with '{'
  std::size_t m_retry_at = 0;  // read the pending document again once this much is pending
  bool m_newline_fed = false;  // a line end arrived since the last attempt
  std::size_t m_count = 0;
};

}  // namespace dfhook::core
