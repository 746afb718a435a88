#include "dfhook/core/document_stream.hpp"

#include <algorithm>
#include <cstring>

namespace dfhook::core {

namespace {

bool is_json_space(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

// A syntax error this close to the end of the buffered input may be the input being cut
// (an unfinished literal, a UTF-8 sequence split between chunks, or a "\uD83D\uDE00" escape
// pair, which RapidJSON reports at its first backslash): read more before judging.
constexpr std::size_t k_cut_margin = 16;

// Up to this size a cut document is read again whenever a line end arrives.
constexpr std::size_t k_eager_retry_limit = std::size_t{1} << 20U;

std::string size_text(std::size_t bytes) {
  if (bytes % (std::size_t{1} << 20U) == 0) {
    return std::to_string(bytes >> 20U) + " MiB";
  }
  return std::to_string(bytes) + " bytes";
}

}  // namespace

DocumentStream::DocumentStream(std::size_t max_document) : m_max_document(max_document) {}

void DocumentStream::reset(std::size_t offset, LineColumn position, bool at_line_start) {
  m_buffer.clear();
  m_end = 0;
  m_pos = 0;
  m_base = offset;
  m_position = position;
  m_at_line_start = at_line_start;
  m_finished = false;
  m_skipping = false;
  m_retry_at = 0;
  m_newline_fed = false;
  m_count = 0;
}

void DocumentStream::feed(std::string_view chunk) {
  if (m_pos > 0) {
    m_buffer.erase(0, m_pos);
    m_end -= m_pos;
    m_base += m_pos;
    m_pos = 0;
  }
  // The parser needs k_json_padding bytes of our own after the input.
  m_buffer.resize(m_end + chunk.size() + k_json_padding);
  chunk.copy(m_buffer.data() + m_end, chunk.size());
  m_end += chunk.size();
  if (chunk.find('\n') != std::string_view::npos) {
    m_newline_fed = true;
  }
}

void DocumentStream::finish() {
  m_finished = true;
}

bool DocumentStream::between_documents() const {
  if (m_skipping) {
    return true;
  }
  const std::string_view rest = unread();
  return std::all_of(rest.begin(), rest.end(), is_json_space);
}

void DocumentStream::consume_to(std::size_t position) {
  if (position <= m_pos) {
    return;
  }
  // memchr, not std::count: most documents hold no line end at all.
  const char* const begin = m_buffer.data() + m_pos;
  const char* const end = m_buffer.data() + position;
  const char* last_newline = nullptr;
  std::size_t newlines = 0;
  for (const char* at = begin; at != end; ++at) {
    at = static_cast<const char*>(std::memchr(at, '\n', static_cast<std::size_t>(end - at)));
    if (at == nullptr) {
      break;
    }
    ++newlines;
    last_newline = at;
  }
  if (last_newline == nullptr) {
    m_position.column += static_cast<std::size_t>(end - begin);
  } else {
    m_position.line += newlines;
    m_position.column = static_cast<std::size_t>(end - last_newline);
  }
  m_at_line_start = end[-1] == '\n';
  m_pos = position;
}

// Consumes input up to the next line that starts with '{'; false when the buffer ran out
// first (the search goes on with the next feed).
bool DocumentStream::skip_to_line_starting_with_brace() {
  for (;;) {
    if (m_pos == m_end) {
      return false;
    }
    if (m_at_line_start && m_buffer[m_pos] == '{') {
      m_skipping = false;
      return true;
    }
    const std::size_t newline = unread().find('\n');
    consume_to(newline == std::string::npos ? m_end : m_pos + newline + 1);
  }
}

DocumentStream::Status DocumentStream::problem_item(StreamItem& item, Problem problem,
                                                    std::size_t stop) {
  item.number = ++m_count;
  item.offset = m_base + m_pos;
  item.start = m_position;
  item.text = std::string_view(m_buffer).substr(m_pos, stop);
  item.problem = std::move(problem);
  item.framed = false;
  // Resume after the broken document's first byte, at a line that starts with '{'.
  consume_to(m_pos + 1);
  m_skipping = true;
  m_retry_at = 0;
  return Status::item;
}

DocumentStream::Status DocumentStream::next(StreamItem& item) {
  if (m_skipping && !skip_to_line_starting_with_brace()) {
    return m_finished ? Status::end : Status::need_more;
  }
  std::size_t start = m_pos;
  while (start < m_end && is_json_space(m_buffer[start])) {
    ++start;
  }
  consume_to(start);
  const std::size_t pending = m_end - m_pos;
  if (pending == 0) {
    return m_finished ? Status::end : Status::need_more;
  }
  // A document cut by the end of the input is read again once the pending part has doubled,
  // so the total work stays linear however small the chunks; a line end also triggers a new
  // attempt while the document is small, so that input arriving line by line (a terminal, a
  // pipe from a slow writer) is answered at once.
  const bool retry = pending >= m_retry_at || (m_newline_fed && pending <= k_eager_retry_limit);
  if (!m_finished && !retry) {
    return Status::need_more;
  }
  m_newline_fed = false;
  // Never look further than the limit: a document that does not end within it is too large
  // however the input arrives.
  const std::size_t window = std::min(pending, m_max_document);
  const std::string_view text = std::string_view(m_buffer).substr(m_pos, window);
  // m_buffer holds k_json_padding bytes after m_end, so after any window.
  JsonPrefix prefix = m_json.parse_prefix_in_place(m_buffer.data() + m_pos, window);
  if (prefix.framed) {
    // A number or literal that ends exactly at the end of the input so far may go on in the
    // next chunk; objects, arrays and strings end with their closing character.
    const char first = text.front();
    const bool may_go_on = first != '{' && first != '[' && first != '"';
    if (!(may_go_on && prefix.end == window && !m_finished)) {
      item.number = ++m_count;
      item.offset = m_base + m_pos;
      item.start = m_position;
      item.text = text.substr(0, prefix.end);
      item.problem = std::move(prefix.problem);
      item.framed = true;
      consume_to(m_pos + prefix.end);
      m_retry_at = 0;
      return Status::item;
    }
    m_retry_at = pending + 1;
    return Status::need_more;
  }
  const bool cut = prefix.end + k_cut_margin > window;
  if (cut && window == m_max_document && pending >= m_max_document) {
    return problem_item(
        item, Problem{"", 0, "document larger than the limit of " + size_text(m_max_document)}, 0);
  }
  if (cut && !m_finished) {
    m_retry_at = std::min(std::max(pending * 2, pending + k_cut_margin), m_max_document);
    return Status::need_more;
  }
  if (prefix.problem) {
    return problem_item(item, std::move(*prefix.problem), std::min(prefix.end, window));
  }
  return problem_item(item, Problem{"", prefix.end, "syntax error"}, prefix.end);
}

}  // namespace dfhook::core
