#include "dfhook/core/json.hpp"

#include "dfhook/core/rapidjson_reader.hpp"

#include <rapidjson/encodings.h>
#include <rapidjson/stream.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <memory>
#include <set>

namespace dfhook::core {

namespace {

using detail::JsonNode;

// Whitespace is all RFC 8259 allows between tokens, besides ':' and ','.
bool is_json_space(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

bool is_separator(char c) {
  return is_json_space(c) || c == ':' || c == ',';
}

// Up to this many members an object's names are checked for duplicates by comparing with each
// earlier name; beyond it a sorted set keeps a hostile object with 100k names O(n log n).
constexpr std::size_t k_linear_name_check = 32;

// The checked path: RapidJSON validates the encoding inside strings, byte by byte, and reports
// each problem at its place.
constexpr unsigned k_checked_flags = rapidjson::kParseValidateEncodingFlag |
                                     rapidjson::kParseNumbersAsStringsFlag |
                                     rapidjson::kParseStopWhenDoneFlag;

// The fast paths: no encoding check during the parse, so that RapidJSON scans strings 16 bytes
// at a time (SSE2, for its StringStream and InsituStringStream); the document's bytes are
// validated afterwards. In situ, strings are decoded where they are, with no copy at all.
constexpr unsigned k_fast_flags =
    rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseStopWhenDoneFlag;
constexpr unsigned k_insitu_flags = k_fast_flags | rapidjson::kParseInsituFlag;

// The in-situ attempt works on a copy of the text up to its first line end, at most this long:
// a document per line is the common case, and a longer or multi-line document is read by the
// other paths.
constexpr std::size_t k_insitu_limit = std::size_t{16} << 10U;

// How the Handler is being fed.
enum class Mode {
  checked,  // MemoryStream with encoding checks: positions are just past each token
  fast,     // StringStream: strings and numbers are reported at their first byte
  insitu,   // InsituStringStream: as fast, and strings are decoded in the text itself
};

// True when `text` holds the UTF-8 form of a UTF-16 surrogate (ED A0..BF), which valid input
// cannot, so that only a \u escape of a lone surrogate can have produced it.
bool holds_surrogate(std::string_view text) {
  for (std::size_t at = text.find('\xED'); at != std::string_view::npos;
       at = text.find('\xED', at + 1)) {
    if (at + 1 < text.size() && static_cast<unsigned char>(text[at + 1]) >= 0xA0U) {
      return true;
    }
  }
  return false;
}

// Decoded strings, in blocks that never move, so views stay valid for the whole parse without
// reserving for the largest possible text.
class StringArena {
public:
  void clear() {
    m_block = 0;
    m_used = 0;
  }

  // True when a kept string holds the UTF-8 form of a UTF-16 surrogate (ED A0..BF), which only
  // a \u escape of a lone surrogate can produce.
  [[nodiscard]] bool holds_surrogate() const {
    for (std::size_t i = 0; i <= m_block && i < m_blocks.size(); ++i) {
      if (core::holds_surrogate({m_blocks[i].get(), i == m_block ? m_used : m_filled[i]})) {
        return true;
      }
    }
    return false;
  }

  std::string_view keep(const char* text, std::size_t length) {
    if (length == 0) {
      return {};
    }
    while (m_block < m_blocks.size() && m_used + length > m_sizes[m_block]) {
      m_filled[m_block] = m_used;
      ++m_block;
      m_used = 0;
    }
    if (m_block == m_blocks.size()) {
      const std::size_t size =
          std::max({k_min_block, length, m_sizes.empty() ? 0 : 2 * m_sizes.back()});
      m_blocks.push_back(std::make_unique<char[]>(size));
      m_sizes.push_back(size);
      m_filled.push_back(0);
    }
    char* at = m_blocks[m_block].get() + m_used;
    std::memcpy(at, text, length);
    m_used += length;
    return {at, length};
  }

private:
  static constexpr std::size_t k_min_block = 4096;
  std::vector<std::unique_ptr<char[]>> m_blocks;
  std::vector<std::size_t> m_sizes;
  std::vector<std::size_t> m_filled;  // bytes used in each block before m_block
  std::size_t m_block = 0;
  std::size_t m_used = 0;
};

// An object or array being read.
struct Frame {
  std::uint32_t node = 0;
  std::uint32_t names_begin = 0;  // first of its names in Handler::m_names
  std::uint32_t count = 0;        // members or elements read so far
  std::string_view name;          // the member being read
  bool is_object = false;
  bool has_name = false;  // `name` is the member being read (false between members)
  bool uses_set = false;  // its names are in Handler::m_name_sets[depth]
};

// Builds the node vector from RapidJSON's events and applies the rules RapidJSON does not:
// duplicate names, integer range, depth, lone surrogates. After the first problem it only
// follows the nesting, so that the document's end is still found.
//
// Positions come from the stream's read pointer. In the checked path (MemoryStream) it is just
// past the token reported; a value starts after the whitespace, ':' and ',' that follow the
// previous token. In the fast path (StringStream) RapidJSON reads strings and numbers through a
// local copy of the stream, so during those events the pointer is still at the token's first
// byte, which gives the start directly; the end of a string is not known then, so a string is
// viewed in place only when its source plainly has no escape.
class Handler {
public:
  explicit Handler(std::vector<JsonNode>& nodes) : m_nodes(nodes) {}

  // `cursor` is the stream's read pointer (src_ of RapidJSON's MemoryStream or StringStream),
  // which starts at text.data().
  void reset(std::string_view text, const char* const* cursor, Mode mode) {
    m_text = text;
    m_cursor = cursor;
    m_mode = mode;
    m_fast = mode != Mode::checked;
    m_last_end = 0;
    m_depth = 0;
    m_nodes.clear();
    m_strings.clear();
    m_frames.clear();
    m_names.clear();
    // A parse that stopped early leaves the sets of the objects it was in.
    for (std::set<std::string_view>& set : m_name_sets) {
      set.clear();
    }
    m_problem.reset();
    m_too_deep = false;
    m_lost = false;
  }

  [[nodiscard]] std::optional<Problem>& problem() { return m_problem; }
  [[nodiscard]] bool too_deep() const { return m_too_deep; }
  // The strings decoded on the fast path hold an escaped lone surrogate.
  [[nodiscard]] bool decoded_surrogate() const { return m_strings.holds_surrogate(); }
  // The fast path found the stream somewhere it did not expect (a RapidJSON that reads
  // differently): the checked path must read the document instead.
  [[nodiscard]] bool lost() const { return m_lost; }

  // The JSON pointer of the value being read.
  [[nodiscard]] std::string pointer() const {
    std::string out;
    for (const Frame& frame : m_frames) {
      if (frame.is_object) {
        if (frame.has_name) {
          append_pointer_token(out, frame.name);
        }
      } else {
        append_pointer_token(out, std::to_string(frame.count));
      }
    }
    return out;
  }

  bool Null() { return literal(JsonType::null, false, 4); }
  bool Bool(bool value) { return literal(JsonType::boolean, value, value ? 4 : 5); }
  // kParseNumbersAsStringsFlag routes every number through RawNumber.
  bool Int(int /*value*/) { return false; }
  bool Uint(unsigned /*value*/) { return false; }
  bool Int64(std::int64_t /*value*/) { return false; }
  bool Uint64(std::uint64_t /*value*/) { return false; }
  bool Double(double /*value*/) { return false; }

  bool RawNumber(const char* /*str*/, rapidjson::SizeType length, bool /*copy*/) {
    if (m_problem) {
      return true;
    }
    const std::size_t start = m_fast ? tell() : value_start();
    if (m_fast && !(m_text[start] == '-' || (m_text[start] >= '0' && m_text[start] <= '9'))) {
      return lose();
    }
    // A number has no escapes: its source text is what RapidJSON copied; view it in place.
    const std::string_view text = m_text.substr(start, length);
    // std::string_view::find_first_of calls memchr once per byte; a number is short.
    const bool integer = std::none_of(text.begin(), text.end(),
                                      [](char c) { return c == '.' || c == 'e' || c == 'E'; });
    if (!integer) {
      return add_scalar(JsonType::number, start, text, 0, false);
    }
    const bool negative = text.front() == '-';
    std::uint64_t magnitude = 0;
    std::from_chars_result result{};
    if (negative) {
      std::int64_t value = 0;
      result = std::from_chars(text.data(), text.data() + text.size(), value);
      // -(value + 1) + 1 avoids negating INT64_MIN.
      magnitude = static_cast<std::uint64_t>(-(value + 1)) + 1U;
    } else {
      result = std::from_chars(text.data(), text.data() + text.size(), magnitude);
    }
    if (result.ec != std::errc{} || result.ptr != text.data() + text.size()) {
      fail(start, "integer " + quote(text) + " does not fit in 64 bits");
      return true;
    }
    return add_scalar(JsonType::integer, start, text, magnitude, negative);
  }

  bool String(const char* str, rapidjson::SizeType length, bool /*copy*/) {
    if (m_problem) {
      return true;
    }
    std::size_t start = 0;
    std::string_view text;
    if (!read_string(str, length, start, text)) {
      return lose();
    }
    if (!m_fast && text.data() != m_text.data() + start + 1 && has_lone_surrogate(text)) {
      fail(start, "string holds a \\u escape of a lone UTF-16 surrogate");
      return true;
    }
    return add_scalar(JsonType::string, start, text, 0, false);
  }

  bool Key(const char* str, rapidjson::SizeType length, bool /*copy*/) {
    if (m_problem) {
      return true;
    }
    std::size_t start = 0;
    std::string_view name;
    if (!read_string(str, length, start, name)) {
      return lose();
    }
    m_last_end = tell();
    Frame& frame = m_frames.back();
    frame.name = name;
    frame.has_name = true;
    if (!m_fast && name.data() != m_text.data() + start + 1 && has_lone_surrogate(name)) {
      fail(start, "member name holds a \\u escape of a lone UTF-16 surrogate");
      return true;
    }
    if (!remember_name(frame, name)) {
      fail(start, "duplicate member name " + quote(name));
    }
    return true;
  }

  bool StartObject() { return open(JsonType::object); }
  bool StartArray() { return open(JsonType::array); }
  bool EndObject(rapidjson::SizeType /*count*/) { return close(); }
  bool EndArray(rapidjson::SizeType /*count*/) { return close(); }

private:
  [[nodiscard]] std::size_t tell() const {
    return static_cast<std::size_t>(*m_cursor - m_text.data());
  }

  std::size_t value_start() const {
    std::size_t position = m_last_end;
    while (position < m_text.size() && is_separator(m_text[position])) {
      ++position;
    }
    return position;
  }

  bool lose() {
    m_lost = true;
    return false;
  }

  // Finds where a string RapidJSON decoded into its own stack started and keeps its text.
  // Checked path: a string as long as its source between the quotes had no escapes and its
  // source is viewed; any other is kept in the arena. Fast path: always the arena.
  bool read_string(const char* str, std::size_t length, std::size_t& start,
                   std::string_view& text) {
    if (m_fast) {
      start = tell();
      if (start >= m_text.size() || m_text[start] != '"') {
        return false;
      }
      if (m_mode == Mode::insitu) {
        text = std::string_view(str, length);
        return true;
      }
      // Without a backslash before it, the first '"' after the opening one closes the string:
      // when it sits right after `length` bytes, the source is the decoded text.
      const std::size_t close = start + 1 + length;
      if (close < m_text.size() && m_text[close] == '"' &&
          std::memchr(m_text.data() + start + 1, '\\', length) == nullptr) {
        text = m_text.substr(start + 1, length);
      } else {
        text = m_strings.keep(str, length);
      }
      return true;
    }
    start = value_start();
    if (length == tell() - start - 2) {
      text = m_text.substr(start + 1, length);
    } else {
      text = m_strings.keep(str, length);
    }
    return true;
  }

  // The encoding check covers raw bytes only; "\uDC00" decodes to ED B0 80, which UTF-8
  // forbids. Valid input cannot hold ED A0..ED BF, so only strings with escapes are checked
  // (the fast path checks all its strings at once, afterwards).
  static bool has_lone_surrogate(std::string_view text) {
    std::size_t at = text.find('\xED');
    while (at != std::string_view::npos) {
      if (at + 1 < text.size() && static_cast<unsigned char>(text[at + 1]) >= 0xA0U) {
        return true;
      }
      at = text.find('\xED', at + 1);
    }
    return false;
  }

  bool remember_name(Frame& frame, std::string_view name) {
    const std::size_t count = m_names.size() - frame.names_begin;
    if (!frame.uses_set) {
      const auto begin = m_names.begin() + frame.names_begin;
      if (std::find(begin, m_names.end(), name) != m_names.end()) {
        return false;
      }
      if (count + 1 < k_linear_name_check) {
        m_names.push_back(name);
        return true;
      }
      std::set<std::string_view>& set = name_set();
      set.insert(begin, m_names.end());
      m_names.resize(frame.names_begin);
      frame.uses_set = true;
    }
    return name_set().insert(name).second;
  }

  std::set<std::string_view>& name_set() {
    if (m_name_sets.size() < m_frames.size()) {
      m_name_sets.resize(m_frames.size());
    }
    return m_name_sets[m_frames.size() - 1];
  }

  void fail(std::size_t offset, std::string reason) {
    m_problem = Problem{pointer(), offset, std::move(reason)};
  }

  bool literal(JsonType type, bool value, std::size_t length) {
    if (m_problem) {
      return true;
    }
    // RapidJSON reads literals from the stream itself: the pointer is past them.
    return add_scalar(type, m_fast ? tell() - length : value_start(), {}, 0, value);
  }

  bool add_scalar(JsonType type, std::size_t start, std::string_view text, std::uint64_t magnitude,
                  bool flag) {
    const auto index = static_cast<std::uint32_t>(m_nodes.size());
    JsonNode& node = m_nodes.emplace_back();
    node.type = type;
    node.offset = start;
    node.text = text;
    node.magnitude = magnitude;
    node.flag = flag;
    node.end = index + 1;
    if (!m_frames.empty() && m_frames.back().is_object) {
      node.key = m_frames.back().name;
    }
    finish_value();
    return true;
  }

  void finish_value() {
    m_last_end = tell();
    if (!m_frames.empty()) {
      Frame& frame = m_frames.back();
      ++frame.count;
      frame.has_name = false;
    }
  }

  bool open(JsonType type) {
    if (m_depth == k_json_max_depth) {
      if (!m_problem) {
        fail(tell() - 1, "nesting deeper than " + std::to_string(k_json_max_depth) + " levels");
      }
      m_too_deep = true;
      return false;
    }
    ++m_depth;
    if (m_problem) {
      return true;
    }
    const auto index = static_cast<std::uint32_t>(m_nodes.size());
    JsonNode& node = m_nodes.emplace_back();
    node.type = type;
    node.offset = tell() - 1;
    if (!m_frames.empty() && m_frames.back().is_object) {
      node.key = m_frames.back().name;
    }
    Frame& frame = m_frames.emplace_back();
    frame.node = index;
    frame.names_begin = static_cast<std::uint32_t>(m_names.size());
    frame.is_object = type == JsonType::object;
    m_last_end = tell();
    return true;
  }

  bool close() {
    --m_depth;
    if (m_problem) {
      return true;
    }
    const Frame& frame = m_frames.back();
    JsonNode& node = m_nodes[frame.node];
    node.end = static_cast<std::uint32_t>(m_nodes.size());
    node.size = frame.count;
    if (frame.uses_set) {
      m_name_sets[m_frames.size() - 1].clear();
    }
    m_names.resize(frame.names_begin);
    m_frames.pop_back();
    finish_value();
    return true;
  }

  std::vector<JsonNode>& m_nodes;
  StringArena m_strings;
  std::string_view m_text;
  const char* const* m_cursor = nullptr;
  Mode m_mode = Mode::checked;
  bool m_fast = false;         // not checked
  std::size_t m_last_end = 0;  // checked path: offset just past the last token reported
  std::size_t m_depth = 0;
  std::vector<Frame> m_frames;
  std::vector<std::string_view> m_names;                // names of the open objects, while few
  std::vector<std::set<std::string_view>> m_name_sets;  // per depth, for objects with many
  std::optional<Problem> m_problem;
  bool m_too_deep = false;
  bool m_lost = false;
};

bool starts_with_non_finite(std::string_view text) {
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
    text.remove_prefix(1);
  }
  return text.starts_with("NaN") || text.starts_with("Inf") || text.starts_with("nan") ||
         text.starts_with("inf");
}

// Swallows the bytes RapidJSON's encoding check copies.
struct NullOutput {
  using Ch = char;
  void Put(char /*c*/) {}
};

// RapidJSON 1.1.0's SSE2 string scan takes bytes up to 0x19 for control characters, so the fast
// paths let 0x1A..0x1F through inside strings (outside strings they are syntax errors anyway).
// Eight bytes at a time: a byte of 0x18..0x1F becomes zero below, and only then are the bytes
// looked at one by one.
bool holds_unescaped_control(std::string_view text) {
  constexpr std::uint64_t k_ones = 0x0101010101010101U;
  constexpr std::uint64_t k_highs = 0x8080808080808080U;
  const auto byte_in_range = [](char c) { return static_cast<unsigned char>(c - 0x1A) < 6U; };
  std::size_t at = 0;
  for (; at + 8 <= text.size(); at += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, text.data() + at, 8);
    const std::uint64_t masked = (word & (k_ones * 0xF8U)) ^ (k_ones * 0x18U);
    if (((masked - k_ones) & ~masked & k_highs) != 0 &&
        std::any_of(text.data() + at, text.data() + at + 8, byte_in_range)) {
      return true;
    }
  }
  return std::any_of(text.begin() + static_cast<std::ptrdiff_t>(at), text.end(), byte_in_range);
}

// True when every byte of `text` is ASCII and none is 0x1A..0x1F: such a text is valid UTF-8
// and holds none of the control characters the fast paths let through, which the common
// document shows in one pass instead of two (is_valid_utf8 and holds_unescaped_control decide
// the other cases).
bool is_plain_ascii(std::string_view text) {
  const char* at = text.data();
  const char* const end = at + text.size();
#if defined(__SSE2__)
  // A byte is flagged by its high bit: set for non-ASCII, and by the comparison for 0x1A..0x1F
  // (0..5 after subtracting 0x1A, the bytes whose unsigned minimum with 5 is themselves).
  __m128i flags = _mm_setzero_si128();
  const __m128i first = _mm_set1_epi8(0x1A);
  const __m128i span = _mm_set1_epi8(5);
  for (; end - at >= 16; at += 16) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
    const __m128i shifted = _mm_sub_epi8(bytes, first);
    const __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(shifted, span), shifted);
    flags = _mm_or_si128(flags, _mm_or_si128(bytes, control));
  }
  if (_mm_movemask_epi8(flags) != 0) {
    return false;
  }
#endif
  unsigned flagged = 0;
  for (; at != end; ++at) {
    const auto byte = static_cast<unsigned char>(*at);
    flagged |= (byte >> 7U) | (static_cast<unsigned char>(byte - 0x1AU) < 6U ? 1U : 0U);
  }
  return flagged == 0;
}

}  // namespace

std::string_view json_type_name(JsonType type) {
  switch (type) {
  case JsonType::null:
    return "null";
  case JsonType::boolean:
    return "a boolean";
  case JsonType::integer:
    return "an integer";
  case JsonType::number:
    return "a number";
  case JsonType::string:
    return "a string";
  case JsonType::array:
    return "an array";
  case JsonType::object:
    return "an object";
  }
  return "a value";
}

bool is_valid_utf8(std::string_view text) {
  rapidjson::MemoryStream stream(text.data(), text.size());
  NullOutput output;
  const char* const end = text.data() + text.size();
  while (stream.src_ != end) {
    // ASCII, the common case, 8 bytes at a time; RapidJSON checks each other sequence.
    std::uint64_t word = 0;
    if (end - stream.src_ >= 8) {
      std::memcpy(&word, stream.src_, sizeof(word));
      if ((word & 0x8080808080808080ULL) == 0) {
        stream.src_ += 8;
        continue;
      }
    }
    if (!rapidjson::UTF8<>::Validate(stream, output)) {
      return false;
    }
  }
  // A sequence cut by the end reads NUL bytes past it, which Validate rejects, so a
  // successful loop ended exactly at the end.
  return true;
}

std::string to_valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t good = 1;
    const auto lead = static_cast<unsigned char>(text[at]);
    if (lead >= 0x80U) {
      // The longest valid sequence is 4 bytes; try the lengths a lead byte allows.
      const std::size_t length = lead >= 0xF0U ? 4 : lead >= 0xE0U ? 3 : 2;
      good = at + length <= text.size() && is_valid_utf8(text.substr(at, length)) ? length : 0;
    }
    if (good == 0) {
      out += "\xEF\xBF\xBD";
      ++at;
    } else {
      out.append(text, at, good);
      at += good;
    }
  }
  return out;
}

std::string_view JsonValue::number_text() const {
  return type() == JsonType::integer || type() == JsonType::number ? node().text
                                                                   : std::string_view{};
}

std::optional<std::uint64_t> JsonValue::uint64() const {
  if (!is_integer() || (node().flag && node().magnitude != 0)) {
    return std::nullopt;
  }
  return node().magnitude;
}

std::optional<std::int64_t> JsonValue::int64() const {
  if (!is_integer()) {
    return std::nullopt;
  }
  const std::uint64_t magnitude = node().magnitude;
  constexpr auto k_max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (node().flag) {
    if (magnitude > k_max + 1U) {
      return std::nullopt;
    }
    return magnitude == k_max + 1U ? std::numeric_limits<std::int64_t>::min()
                                   : -static_cast<std::int64_t>(magnitude);
  }
  if (magnitude > k_max) {
    return std::nullopt;
  }
  return static_cast<std::int64_t>(magnitude);
}

std::optional<JsonValue> JsonValue::find(std::string_view name) const {
  if (!is_object()) {
    return std::nullopt;
  }
  for (const JsonValue member : children()) {
    if (member.key() == name) {
      return member;
    }
  }
  return std::nullopt;
}

JsonChildren::JsonChildren(const JsonValue& parent)
    : m_nodes(parent.m_nodes), m_begin(parent.m_index + 1), m_end(parent.node().end) {
  if (parent.type() != JsonType::object && parent.type() != JsonType::array) {
    m_begin = m_end;
  }
}

class JsonDocument::Parser {
public:
  explicit Parser(std::vector<JsonNode>& nodes) : m_handler(nodes) {}

  // Precondition: data[size .. size + k_json_padding) belongs to the caller.
  JsonPrefix parse_in_place(char* data, std::size_t size) {
    if (std::optional<JsonPrefix> prefix = parse_first_line_in_situ(data, size)) {
      return std::move(*prefix);
    }
    const std::string_view text(data, size);
    // RapidJSON's StringStream reads up to a NUL, and its SSE2 loops read aligned 16-byte
    // blocks, which stay within the padding.
    const char saved = data[size];
    data[size] = '\0';
    rapidjson::StringStream stream(data);
    m_handler.reset(text, &stream.src_, Mode::fast);
    const rapidjson::ParseResult result = m_reader.Parse<k_fast_flags>(stream, m_handler);
    data[size] = saved;
    if (!result.IsError() && !m_handler.problem() && !m_handler.lost()) {
      const std::string_view document = text.substr(0, stream.Tell());
      // The fast path checks neither the encoding nor what \u escapes decode to.
      if ((is_plain_ascii(document) ||
           (is_valid_utf8(document) && !holds_unescaped_control(document))) &&
          !m_handler.decoded_surrogate()) {
        JsonPrefix prefix;
        prefix.framed = true;
        prefix.end = document.size();
        return prefix;
      }
    }
    // Problems are rare: find them again on the checked path, which reports the first problem
    // in document order with its place.
    return parse_checked(text);
  }

private:
  // The document parsed in situ in a copy of the text's first line; nullopt when that is not
  // enough (no document ends within it, or anything else the other paths must look at).
  std::optional<JsonPrefix> parse_first_line_in_situ(const char* data, std::size_t size) {
    const std::size_t limit = std::min(size, k_insitu_limit);
    const void* newline = std::memchr(data, '\n', limit);
    const std::size_t length =
        newline == nullptr ? limit
                           : static_cast<std::size_t>(static_cast<const char*>(newline) - data) + 1;
    m_line.resize(length + k_json_padding);
    std::memcpy(m_line.data(), data, length);
    m_line[length] = '\0';
    rapidjson::InsituStringStream stream(m_line.data());
    m_handler.reset({m_line.data(), length}, &stream.src_, Mode::insitu);
    const rapidjson::ParseResult result = m_reader.Parse<k_insitu_flags>(stream, m_handler);
    if (result.IsError() || m_handler.problem() || m_handler.lost()) {
      return std::nullopt;
    }
    const std::size_t end = stream.Tell();
    // A document that reaches the end of a part of the text may go on after it.
    if (end == length && length < size) {
      return std::nullopt;
    }
    const std::string_view document(data, end);
    if (!(is_plain_ascii(document) ||
          (is_valid_utf8(document) && !holds_unescaped_control(document))) ||
        holds_surrogate({m_line.data(), end})) {
      return std::nullopt;
    }
    JsonPrefix prefix;
    prefix.framed = true;
    prefix.end = end;
    return prefix;
  }

  JsonPrefix parse_checked(std::string_view text) {
    rapidjson::MemoryStream stream(text.data(), text.size());
    m_handler.reset(text, &stream.src_, Mode::checked);
    const rapidjson::ParseResult result = m_reader.Parse<k_checked_flags>(stream, m_handler);
    JsonPrefix prefix;
    if (!result.IsError()) {
      prefix.framed = !m_handler.too_deep();
      prefix.end = stream.Tell();
      prefix.problem = std::move(m_handler.problem());
      return prefix;
    }
    prefix.end = result.Offset();
    if (m_handler.problem()) {
      // Our own problem came first (RapidJSON stops at kParseErrorTermination only when the
      // nesting is too deep, or reports a later syntax error).
      prefix.problem = std::move(m_handler.problem());
      if (result.Code() == rapidjson::kParseErrorTermination) {
        prefix.end = stream.Tell();
      }
      return prefix;
    }
    std::size_t offset = result.Offset();
    // RapidJSON reports "-Infinity" or "-x" after the sign; point at the value's start.
    if (result.Code() == rapidjson::kParseErrorValueInvalid && offset > 0 &&
        offset <= text.size() && text[offset - 1] == '-') {
      --offset;
    }
    prefix.problem =
        Problem{m_handler.pointer(), offset,
                syntax_reason(result.Code(), offset >= text.size(),
                              starts_with_non_finite(text.substr(std::min(offset, text.size()))))};
    return prefix;
  }

  rapidjson::Reader m_reader;
  Handler m_handler;
  std::string m_line;  // the in-situ copy, then k_json_padding bytes
};

JsonDocument::JsonDocument() : m_parser(std::make_unique<Parser>(m_nodes)) {}

JsonDocument::~JsonDocument() = default;

JsonPrefix JsonDocument::parse_prefix(std::string_view text) {
  m_input.assign(text);
  m_input.resize(text.size() + k_json_padding);
  return m_parser->parse_in_place(m_input.data(), text.size());
}

JsonPrefix JsonDocument::parse_prefix_in_place(char* text, std::size_t size) {
  return m_parser->parse_in_place(text, size);
}

std::optional<Problem> JsonDocument::parse(std::string_view text) {
  JsonPrefix prefix = parse_prefix(text);
  if (prefix.problem) {
    return std::move(prefix.problem);
  }
  std::size_t rest = prefix.end;
  while (rest < text.size() && is_json_space(text[rest])) {
    ++rest;
  }
  if (rest < text.size()) {
    return Problem{"", rest, "unexpected data after the document"};
  }
  return std::nullopt;
}

}  // namespace dfhook::core
