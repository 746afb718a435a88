#include "dfhook/core/json.hpp"

#include <rapidjson/encodings.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <set>

namespace dfhook::core {

namespace {

using detail::JsonNode;

// Whitespace is all RFC 8259 allows between tokens, besides ':' and ','.
bool is_json_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

bool is_separator(char c) { return is_json_space(c) || c == ':' || c == ','; }

// Up to this many members an object's names are checked for duplicates by comparing with each
// earlier name; beyond it a sorted set keeps a hostile object with 100k names O(n log n).
constexpr std::size_t k_linear_name_check = 32;

constexpr unsigned k_parse_flags = rapidjson::kParseValidateEncodingFlag |
                                   rapidjson::kParseNumbersAsStringsFlag |
                                   rapidjson::kParseStopWhenDoneFlag;

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
class Handler {
public:
  Handler(std::vector<JsonNode>& nodes, std::string& strings) : m_nodes(nodes), m_strings(strings) {}

  void reset(std::string_view text, const rapidjson::MemoryStream* stream) {
    m_text = text;
    m_stream = stream;
    m_last_end = 0;
    m_depth = 0;
    m_nodes.clear();
    m_strings.clear();
    // Decoded strings are never longer than their source: one reservation keeps every view
    // into m_strings valid for the whole parse.
    m_strings.reserve(text.size());
    m_frames.clear();
    m_names.clear();
    m_problem.reset();
    m_too_deep = false;
  }

  [[nodiscard]] std::optional<Problem>& problem() { return m_problem; }
  [[nodiscard]] bool too_deep() const { return m_too_deep; }

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

  bool Null() { return scalar(JsonType::null, {}, false); }
  bool Bool(bool value) { return scalar(JsonType::boolean, {}, value); }
  // kParseNumbersAsStringsFlag routes every number through RawNumber.
  bool Int(int /*value*/) { return false; }
  bool Uint(unsigned /*value*/) { return false; }
  bool Int64(std::int64_t /*value*/) { return false; }
  bool Uint64(std::uint64_t /*value*/) { return false; }
  bool Double(double /*value*/) { return false; }

  bool RawNumber(const char* /*str*/, rapidjson::SizeType /*length*/, bool /*copy*/) {
    if (m_problem) {
      return true;
    }
    const std::size_t start = value_start();
    // A number has no escapes: its source text is what RapidJSON copied; view it in place.
    const std::string_view text = m_text.substr(start, m_stream->Tell() - start);
    if (text.find_first_of(".eE") != std::string_view::npos) {
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
    const std::size_t start = value_start();
    const std::string_view text = keep_string(str, length, start);
    if (has_lone_surrogate(text)) {
      fail(start, "string holds a \\u escape of a lone UTF-16 surrogate");
      return true;
    }
    return add_scalar(JsonType::string, start, text, 0, false);
  }

  bool Key(const char* str, rapidjson::SizeType length, bool /*copy*/) {
    if (m_problem) {
      return true;
    }
    const std::size_t start = value_start();
    const std::string_view name = keep_string(str, length, start);
    m_last_end = m_stream->Tell();
    Frame& frame = m_frames.back();
    frame.name = name;
    frame.has_name = true;
    if (has_lone_surrogate(name)) {
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
  std::size_t value_start() const {
    std::size_t position = m_last_end;
    while (position < m_text.size() && is_separator(m_text[position])) {
      ++position;
    }
    return position;
  }

  // A string RapidJSON decoded into its own stack: when it is as long as its source between
  // the quotes it had no escapes and the source is viewed; otherwise it is kept in m_strings.
  std::string_view keep_string(const char* str, std::size_t length, std::size_t start) {
    const std::size_t source_length = m_stream->Tell() - start - 2;
    if (length == source_length) {
      return m_text.substr(start + 1, length);
    }
    const std::size_t at = m_strings.size();
    m_strings.append(str, length);
    return std::string_view(m_strings).substr(at, length);
  }

  // The encoding check covers raw bytes only; "\uDC00" decodes to ED B0 80, which UTF-8
  // forbids. Raw input cannot hold ED A0..ED BF, so any such pair came from an escape.
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

  bool scalar(JsonType type, std::string_view text, bool flag) {
    if (m_problem) {
      return true;
    }
    return add_scalar(type, value_start(), text, 0, flag);
  }

  bool add_scalar(JsonType type, std::size_t start, std::string_view text,
                  std::uint64_t magnitude, bool flag) {
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
    m_last_end = m_stream->Tell();
    if (!m_frames.empty()) {
      Frame& frame = m_frames.back();
      ++frame.count;
      frame.has_name = false;
    }
  }

  bool open(JsonType type) {
    if (m_depth == k_json_max_depth) {
      if (!m_problem) {
        fail(m_stream->Tell() - 1,
             "nesting deeper than " + std::to_string(k_json_max_depth) + " levels");
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
    node.offset = m_stream->Tell() - 1;
    if (!m_frames.empty() && m_frames.back().is_object) {
      node.key = m_frames.back().name;
    }
    Frame& frame = m_frames.emplace_back();
    frame.node = index;
    frame.names_begin = static_cast<std::uint32_t>(m_names.size());
    frame.is_object = type == JsonType::object;
    m_last_end = m_stream->Tell();
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
  std::string& m_strings;
  std::string_view m_text;
  const rapidjson::MemoryStream* m_stream = nullptr;
  std::size_t m_last_end = 0;  // offset just past the last token reported
  std::size_t m_depth = 0;
  std::vector<Frame> m_frames;
  std::vector<std::string_view> m_names;  // names of the open objects, while few
  std::vector<std::set<std::string_view>> m_name_sets;  // per depth, for objects with many
  std::optional<Problem> m_problem;
  bool m_too_deep = false;
};

bool starts_with_non_finite(std::string_view text) {
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
    text.remove_prefix(1);
  }
  return text.starts_with("NaN") || text.starts_with("Inf") || text.starts_with("nan") ||
         text.starts_with("inf");
}

std::string syntax_reason(rapidjson::ParseErrorCode code, std::string_view text,
                          std::size_t offset) {
  const bool at_end = offset >= text.size();
  switch (code) {
  case rapidjson::kParseErrorDocumentEmpty:
    return "the document is empty";
  case rapidjson::kParseErrorValueInvalid:
    if (starts_with_non_finite(text.substr(std::min(offset, text.size())))) {
      return "NaN and Infinity are not JSON numbers";
    }
    return at_end ? "unexpected end of the document" : "expected a JSON value";
  case rapidjson::kParseErrorObjectMissName:
    return at_end ? "unexpected end of the document" : "expected a member name in double quotes";
  case rapidjson::kParseErrorObjectMissColon:
    return at_end ? "unexpected end of the document" : "expected ':' after the member name";
  case rapidjson::kParseErrorObjectMissCommaOrCurlyBracket:
    return at_end ? "unexpected end of the document" : "expected ',' or '}' after a member";
  case rapidjson::kParseErrorArrayMissCommaOrSquareBracket:
    return at_end ? "unexpected end of the document" : "expected ',' or ']' after an element";
  case rapidjson::kParseErrorStringUnicodeEscapeInvalidHex:
    return "\\u must be followed by 4 hex digits";
  case rapidjson::kParseErrorStringUnicodeSurrogateInvalid:
    return "\\u escape of a UTF-16 high surrogate not followed by a low surrogate";
  case rapidjson::kParseErrorStringEscapeInvalid:
    return "invalid escape or unescaped control character in a string";
  case rapidjson::kParseErrorStringMissQuotationMark:
    return at_end ? "unexpected end of the document in a string" : "unterminated string";
  case rapidjson::kParseErrorStringInvalidEncoding:
    return "invalid UTF-8";
  case rapidjson::kParseErrorNumberTooBig:
    return "number too big";
  case rapidjson::kParseErrorNumberMissFraction:
    return "expected digits after the decimal point";
  case rapidjson::kParseErrorNumberMissExponent:
    return "expected digits in the exponent";
  default:
    return "syntax error";
  }
}

// Swallows the bytes RapidJSON's encoding check copies.
struct NullOutput {
  using Ch = char;
  void Put(char /*c*/) {}
};

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
  while (stream.Tell() < text.size()) {
    if (!rapidjson::UTF8<>::Validate(stream, output)) {
      return false;
    }
  }
  // A sequence cut by the end reads NUL bytes past it, which Validate rejects, so a
  // successful loop ended exactly at the end.
  return true;
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
  Parser(std::vector<JsonNode>& nodes, std::string& strings) : m_handler(nodes, strings) {}

  JsonPrefix parse(std::string_view text) {
    rapidjson::MemoryStream stream(text.data(), text.size());
    m_handler.reset(text, &stream);
    const rapidjson::ParseResult result = m_reader.Parse<k_parse_flags>(stream, m_handler);
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
      Problem{m_handler.pointer(), offset, syntax_reason(result.Code(), text, offset)};
    return prefix;
  }

private:
  rapidjson::Reader m_reader;
  Handler m_handler;
};

JsonDocument::JsonDocument() : m_parser(std::make_unique<Parser>(m_nodes, m_strings)) {}

JsonDocument::~JsonDocument() = default;

JsonPrefix JsonDocument::parse_prefix(std::string_view text) { return m_parser->parse(text); }

std::optional<Problem> JsonDocument::parse(std::string_view text) {
  JsonPrefix prefix = m_parser->parse(text);
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
