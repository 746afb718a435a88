#include "dfhook/core/datafile.hpp"

#include "dfhook/core/rapidjson_reader.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <unordered_set>
#include <utility>
#include <vector>

namespace dfhook::core {

namespace {

// How much of a run of bytes is UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
// above U+10FFFF).
struct Utf8Scan {
  std::size_t valid = 0;  // bytes of complete, valid sequences from the start
  bool invalid = false;   // the byte at `valid` starts an invalid sequence; otherwise the bytes
                          // after `valid` (if any) are the start of a sequence cut short
};

// JSON outside strings is ASCII, so checking the whole document is the same as checking its
// strings; doing it here, a word at a time, is several times faster than RapidJSON's
// per-character kParseValidateEncodingFlag.
Utf8Scan scan_utf8(std::string_view text) {
  const auto* const bytes = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t size = text.size();
  std::size_t i = 0;
  while (i < size) {
    constexpr std::uint64_t k_high_bits = 0x8080808080808080ULL;
    std::uint64_t word = 0;
    while (i + sizeof(word) <= size) {
      std::memcpy(&word, bytes + i, sizeof(word));
      if ((word & k_high_bits) != 0) {
        break;
      }
      i += sizeof(word);
    }
    if (i == size) {
      break;
    }
    const unsigned char lead = bytes[i];
    if (lead < 0x80) {
      ++i;
      continue;
    }
    std::size_t need = 0;
    unsigned char low = 0x80;  // the range of the first continuation byte
    unsigned char high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      need = 1;
    } else if (lead == 0xE0) {
      need = 2;
      low = 0xA0;
    } else if (lead == 0xED) {
      need = 2;
      high = 0x9F;
    } else if (lead >= 0xE1 && lead <= 0xEF) {
      need = 2;
    } else if (lead == 0xF0) {
      need = 3;
      low = 0x90;
    } else if (lead == 0xF4) {
      need = 3;
      high = 0x8F;
    } else if (lead >= 0xF1 && lead <= 0xF3) {
      need = 3;
    } else {
      return {i, true};
    }
    for (std::size_t k = 1; k <= need; ++k) {
      if (i + k == size) {
        return {i, false};
      }
      const unsigned char next = bytes[i + k];
      if (next < low || next > high) {
        return {i, true};
      }
      low = 0x80;
      high = 0xBF;
    }
    i += need + 1;
  }
  return {size, false};
}

// The length of the UTF-8 sequence that `lead`, a valid lead byte, starts.
std::size_t sequence_length(char lead) {
  const auto byte = static_cast<unsigned char>(lead);
  return byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : 2;
}

// Where a PullStream's input comes from and what it found; shared by the copies of the stream.
struct PullState {
  ByteSource* source = nullptr;
  std::string_view rest;        // bytes the source gave that are not yet checked
  const char* begin = nullptr;  // the checked bytes the parser reads now
  std::size_t size = 0;
  std::size_t base = 0;  // offset of `begin` in the document
  // A UTF-8 sequence cut by the end of a chunk, held back until it is complete, so that the
  // parser never sees part of a sequence and every chunking of a document reads the same.
  std::array<char, 4> carry{};
  std::size_t carry_size = 0;
  bool ended = false;
  bool invalid_utf8 = false;
  std::size_t utf8_error_offset = 0;
};

// A RapidJSON input stream that pulls the document from a ByteSource chunk by chunk, so the
// reader never needs the whole document in memory. Peek() gives '\0' at the end, as RapidJSON
// expects; at_end() tells a real end from a NUL byte in the input. Invalid UTF-8 ends the
// input where the invalid sequence starts, and invalid_utf8() says so.
//
// RapidJSON can copy a stream into locals while it scans (StreamTraits::copyOptimization);
// left off: with a stream in memory the copies cost more than they save (store forwarding
// stalls on the copy of a just-updated position).
class PullStream {
public:
  using Ch = char;

  explicit PullStream(PullState& state) : m_state(&state) {}

  // NOLINTBEGIN(readability-identifier-naming): RapidJSON's stream concept names these.
  Ch Peek() {
    if (m_pos == m_end && !refill()) {
      return '\0';
    }
    return *m_pos;
  }

  Ch Take() {
    if (m_pos == m_end && !refill()) {
      return '\0';
    }
    return *m_pos++;
  }

  [[nodiscard]] std::size_t Tell() const {
    return m_state->base + static_cast<std::size_t>(m_pos - m_state->begin);
  }

  // Part of RapidJSON's stream concept; used only for in-situ parsing, which this is not.
  Ch* PutBegin() {
    RAPIDJSON_ASSERT(false);
    return nullptr;
  }
  void Put(Ch /*c*/) { RAPIDJSON_ASSERT(false); }
  void Flush() { RAPIDJSON_ASSERT(false); }
  std::size_t PutEnd(Ch* /*begin*/) {
    RAPIDJSON_ASSERT(false);
    return 0;
  }
  // NOLINTEND(readability-identifier-naming)

  bool at_end() { return m_pos == m_end && !refill(); }

  // Set once the input ended at invalid UTF-8 starting at utf8_error_offset().
  [[nodiscard]] bool invalid_utf8() const { return m_state->invalid_utf8; }
  [[nodiscard]] std::size_t utf8_error_offset() const { return m_state->utf8_error_offset; }

  // The bytes of the current chunk before absolute offset `end` (empty when `end` is not in
  // it), for looking back at a token just read.
  [[nodiscard]] std::string_view chunk_before(std::size_t end) const {
    if (end < m_state->base || end - m_state->base > m_state->size) {
      return {};
    }
    return {m_state->begin, end - m_state->base};
  }
  [[nodiscard]] std::size_t chunk_base() const { return m_state->base; }

private:
  void serve(const char* data, std::size_t size) {
    m_state->begin = m_pos = data;
    m_state->size = size;
    m_end = data + size;
  }

  void fail_utf8(std::size_t offset) {
    m_state->ended = true;
    m_state->invalid_utf8 = true;
    m_state->utf8_error_offset = offset;
  }

  // Moves to the next checked bytes; false at the end of the input (or at invalid UTF-8).
  bool refill() {
    PullState& state = *m_state;
    state.base += state.size;
    state.begin = nullptr;
    state.size = 0;
    m_pos = m_end = nullptr;
    while (!state.ended) {
      if (state.rest.empty()) {
        state.rest = state.source->next();
        if (state.rest.empty()) {
          state.ended = true;
          if (state.carry_size > 0) {
            fail_utf8(state.base);
          }
          return false;
        }
      }
      if (state.carry_size > 0) {
        const std::size_t more =
            std::min(sequence_length(state.carry[0]) - state.carry_size, state.rest.size());
        std::memcpy(state.carry.data() + state.carry_size, state.rest.data(), more);
        state.carry_size += more;
        state.rest.remove_prefix(more);
        const Utf8Scan scan = scan_utf8({state.carry.data(), state.carry_size});
        if (scan.invalid) {
          fail_utf8(state.base);
          return false;
        }
        if (scan.valid > 0) {
          state.carry_size = 0;
          serve(state.carry.data(), scan.valid);
          return true;
        }
        continue;
      }
      const std::string_view chunk = std::exchange(state.rest, std::string_view{});
      const Utf8Scan scan = scan_utf8(chunk);
      if (scan.invalid) {
        fail_utf8(state.base + scan.valid);
      } else if (scan.valid < chunk.size()) {
        state.carry_size = chunk.size() - scan.valid;
        std::memcpy(state.carry.data(), chunk.data() + scan.valid, state.carry_size);
      }
      if (scan.valid > 0) {
        serve(chunk.data(), scan.valid);
        return true;
      }
    }
    return false;
  }

  const char* m_pos = nullptr;
  const char* m_end = nullptr;
  PullState* m_state;
};

// The one-shot form's source: the whole document as one chunk.
class ViewSource final : public ByteSource {
public:
  explicit ViewSource(std::string_view bytes) : m_bytes(bytes) {}
  std::string_view next() override { return std::exchange(m_bytes, std::string_view{}); }

private:
  std::string_view m_bytes;
};

enum class Kind : std::uint8_t { null, boolean, number, string, object, array };

std::string_view kind_name(Kind kind) {
  switch (kind) {
  case Kind::null:
    return "null";
  case Kind::boolean:
    return "a boolean";
  case Kind::number:
    return "a number";
  case Kind::string:
    return "a string";
  case Kind::object:
    return "an object";
  case Kind::array:
    return "an array";
  }
  return "a value";
}

enum class Field : std::uint8_t {
  version,
  project_id,
  account_id,
  revision,
  groups,
  experiments,
  events,
  audiences,
  attributes,
  feature_flags,
  rollouts,
  typed_audiences,
  sdk_key,
  environment_key,
  other,
};

struct FieldRule {
  std::string_view name;
  Field field;
  Kind kind;
  bool required;
};

// In the order missing fields are reported.
constexpr std::array k_rules{
    FieldRule{"version", Field::version, Kind::string, true},
    FieldRule{"projectId", Field::project_id, Kind::string, true},
    FieldRule{"accountId", Field::account_id, Kind::string, true},
    FieldRule{"revision", Field::revision, Kind::string, true},
    FieldRule{"groups", Field::groups, Kind::array, true},
    FieldRule{"experiments", Field::experiments, Kind::array, true},
    FieldRule{"events", Field::events, Kind::array, true},
    FieldRule{"audiences", Field::audiences, Kind::array, true},
    FieldRule{"attributes", Field::attributes, Kind::array, true},
    FieldRule{"featureFlags", Field::feature_flags, Kind::array, false},
    FieldRule{"rollouts", Field::rollouts, Kind::array, false},
    FieldRule{"typedAudiences", Field::typed_audiences, Kind::array, false},
    FieldRule{"sdkKey", Field::sdk_key, Kind::string, false},
    FieldRule{"environmentKey", Field::environment_key, Kind::string, false},
};

const FieldRule* find_rule(std::string_view name) {
  const auto rule = std::find_if(k_rules.begin(), k_rules.end(),
                                 [&](const FieldRule& r) { return r.name == name; });
  return rule == k_rules.end() ? nullptr : &*rule;
}

// How far back from where RapidJSON stopped (the kParseErrorTermination offset) the token at
// fault starts. RapidJSON calls the handler once a token is consumed; it reports the end of a
// bracket, keyword or string, and the start of a number.
enum class TokenEnd : std::uint8_t {
  after_bracket,  // '{' or '['
  after_null,
  after_true,
  after_false,
  at_number_start,
  after_string,  // look back for the opening quote
};

// Receives RapidJSON's events: checks the top-level members, tracks the path to the value
// being read (for the JSON pointer of a problem) and the depth.
class Handler {
public:
  explicit Handler(std::optional<std::string_view> expected_project_id)
      : m_expected_project_id(expected_project_id) {
    m_levels.reserve(32);
  }

  // NOLINTBEGIN(readability-identifier-naming): RapidJSON's handler concept names these.
  bool Null() { return scalar(Kind::null, {}, TokenEnd::after_null); }
  bool Bool(bool value) {
    return scalar(Kind::boolean, {}, value ? TokenEnd::after_true : TokenEnd::after_false);
  }
  // With kParseNumbersAsStringsFlag every number arrives as RawNumber; the typed callbacks
  // complete the handler concept.
  bool Int(int /*value*/) { return number({}); }
  bool Uint(unsigned /*value*/) { return number({}); }
  bool Int64(std::int64_t /*value*/) { return number({}); }
  bool Uint64(std::uint64_t /*value*/) { return number({}); }
  bool Double(double /*value*/) { return number({}); }
  bool RawNumber(const char* text, rapidjson::SizeType length, bool /*copy*/) {
    return number({text, length});
  }
  bool String(const char* text, rapidjson::SizeType length, bool /*copy*/) {
    return scalar(Kind::string, {text, length}, TokenEnd::after_string);
  }

  bool StartObject() { return open(Kind::object); }
  bool StartArray() { return open(Kind::array); }

  bool Key(const char* text, rapidjson::SizeType length, bool /*copy*/) {
    Level& level = m_levels.back();
    const std::string_view name(text, length);
    level.key.assign(name);
    level.in_value = true;
    if (m_levels.size() == 1) {
      m_rule = nullptr;
      if (!m_top_names.emplace(name).second) {
        return fail(TokenEnd::after_string, name.size(), "duplicate member name " + quote(name));
      }
      m_rule = find_rule(name);
    }
    return true;
  }

  bool EndObject(rapidjson::SizeType /*members*/) {
    if (m_levels.size() == 1) {
      for (const FieldRule& rule : k_rules) {
        if (rule.required && !seen(rule.field)) {
          m_levels.back().key.assign(rule.name);
          m_levels.back().in_value = true;
          m_problem = Problem{pointer(), 0, "missing required field"};
          m_at_root = true;
          return false;
        }
      }
    }
    return close();
  }
  bool EndArray(rapidjson::SizeType /*elements*/) { return close(); }
  // NOLINTEND(readability-identifier-naming)

  // The problem the handler stopped at, if any. Its offset is not known yet: the caller
  // resolves it with token_end() and decoded_length() (or the root's offset when at_root()).
  [[nodiscard]] std::optional<Problem>& problem() { return m_problem; }
  [[nodiscard]] TokenEnd token_end() const { return m_token_end; }
  [[nodiscard]] std::size_t decoded_length() const { return m_decoded_length; }
  [[nodiscard]] bool at_root() const { return m_at_root; }
  DatafileInfo& info() { return m_info; }

  // The JSON pointer of the value being read: every open container's current member or
  // element; for an array between elements, the element that comes next.
  [[nodiscard]] std::string pointer() const {
    std::string pointer;
    for (const Level& level : m_levels) {
      if (level.array) {
        pointer += '/';
        pointer += std::to_string(level.index);
      } else if (level.in_value) {
        append_pointer_token(pointer, level.key);
      } else {
        break;
      }
    }
    return pointer;
  }

private:
  struct Level {
    bool array = false;
    bool in_value = false;  // a member name was read (object) / an element started (array)
    std::size_t index = 0;  // array: elements completed
    std::string key;        // object: the last member name
  };

  bool fail(TokenEnd token_end, std::size_t decoded_length, std::string reason) {
    m_problem = Problem{pointer(), 0, std::move(reason)};
    m_token_end = token_end;
    m_decoded_length = decoded_length;
    return false;
  }

  [[nodiscard]] bool seen(Field field) const {
    return (m_seen & (1U << static_cast<unsigned>(field))) != 0;
  }

  // Marks the start of a value in the current container and checks it when it is the root or a
  // known top-level member.
  bool begin_value(Kind kind, std::string_view text, TokenEnd token_end) {
    if (m_levels.empty()) {
      if (kind != Kind::object) {
        return fail(token_end, text.size(),
                    "expected an object, found " + std::string(kind_name(kind)));
      }
      return true;
    }
    m_levels.back().in_value = true;
    if (m_levels.size() == 1 && m_rule != nullptr) {
      return check_member(*m_rule, kind, text, token_end);
    }
    return true;
  }

  void end_value() {
    if (m_levels.empty()) {
      return;
    }
    Level& level = m_levels.back();
    level.in_value = false;
    if (level.array) {
      ++level.index;
    }
  }

  bool scalar(Kind kind, std::string_view text, TokenEnd token_end) {
    if (!begin_value(kind, text, token_end)) {
      return false;
    }
    end_value();
    return true;
  }

  bool number(std::string_view text) {
    return scalar(Kind::number, text, TokenEnd::at_number_start);
  }

  bool open(Kind kind) {
    if (!begin_value(kind, {}, TokenEnd::after_bracket)) {
      return false;
    }
    if (m_levels.size() == k_datafile_max_depth) {
      return fail(TokenEnd::after_bracket, 0,
                  "nesting deeper than " + std::to_string(k_datafile_max_depth) + " levels");
    }
    m_levels.emplace_back();
    m_levels.back().array = kind == Kind::array;
    return true;
  }

  bool close() {
    m_levels.pop_back();
    end_value();
    return true;
  }

  bool check_member(const FieldRule& rule, Kind kind, std::string_view text, TokenEnd token_end) {
    m_seen |= 1U << static_cast<unsigned>(rule.field);
    if (kind != rule.kind) {
      const std::string_view expected =
          rule.field == Field::revision ? "a string of digits" : kind_name(rule.kind);
      return fail(token_end, text.size(),
                  "expected " + std::string(expected) + ", found " + std::string(kind_name(kind)));
    }
    switch (rule.field) {
    case Field::version:
      if (text != "2" && text != "3" && text != "4") {
        return fail(token_end, text.size(), "expected '2', '3' or '4', found " + quote(text));
      }
      m_info.version = text;
      break;
    case Field::project_id:
      if (m_expected_project_id && text != *m_expected_project_id) {
        return fail(token_end, text.size(),
                    "expected project " + quote(*m_expected_project_id) + ", found " + quote(text));
      }
      m_info.project_id = text;
      break;
    case Field::account_id:
      m_info.account_id = text;
      break;
    case Field::revision: {
      const std::optional<Revision> revision = parse_revision(text);
      if (!revision) {
        return fail(token_end, text.size(), "expected a string of digits, found " + quote(text));
      }
      m_info.revision = *revision;
      break;
    }
    case Field::sdk_key:
      m_info.sdk_key = std::string(text);
      break;
    case Field::environment_key:
      m_info.environment_key = std::string(text);
      break;
    default:
      break;
    }
    return true;
  }

  std::optional<std::string_view> m_expected_project_id;
  std::vector<Level> m_levels;  // the open arrays and objects, outermost first
  std::unordered_set<std::string> m_top_names;
  const FieldRule* m_rule = nullptr;  // the rule of the top-level member being read
  std::uint32_t m_seen = 0;           // bit per Field met at the top level
  DatafileInfo m_info;
  std::optional<Problem> m_problem;
  TokenEnd m_token_end = TokenEnd::after_bracket;
  std::size_t m_decoded_length = 0;
  bool m_at_root = false;
};

// The offset of the opening quote of the string that ends just before `end` (after its
// closing quote), found by looking back in the bytes still at hand. A quote preceded by an
// odd number of backslashes is escaped. When the string started in an earlier chunk, gives an
// estimate instead: a string of n decoded bytes spans at least n + 2, so it started at or
// before end - n - 2.
std::size_t string_start(const PullStream& stream, std::size_t end, std::size_t decoded_length) {
  const std::string_view before = stream.chunk_before(end);
  if (before.size() >= 2) {
    for (std::size_t i = before.size() - 1; i-- > 0;) {
      if (before[i] != '"') {
        continue;
      }
      std::size_t backslashes = 0;
      while (backslashes < i && before[i - 1 - backslashes] == '\\') {
        ++backslashes;
      }
      if (backslashes == i && stream.chunk_base() > 0) {
        break;  // the backslashes may go on in the chunk before: no telling
      }
      if (backslashes % 2 == 0) {
        return stream.chunk_base() + i;
      }
    }
  }
  return end >= decoded_length + 2 ? end - decoded_length - 2 : 0;
}

std::size_t token_start(const Handler& handler, const PullStream& stream, std::size_t end) {
  switch (handler.token_end()) {
  case TokenEnd::after_bracket:
    return end - 1;
  case TokenEnd::after_null:
  case TokenEnd::after_true:
    return end - 4;
  case TokenEnd::after_false:
    return end - 5;
  case TokenEnd::at_number_start:
    return end;
  case TokenEnd::after_string:
    return string_start(stream, end, handler.decoded_length());
  }
  return end;
}

bool is_whitespace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

constexpr unsigned k_parse_flags =
    rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseStopWhenDoneFlag;

}  // namespace

Parsed<DatafileInfo> validate_datafile(ByteSource& source,
                                       std::optional<std::string_view> expected_project_id) {
  PullState state;
  state.source = &source;
  PullStream stream(state);
  // Found here rather than by RapidJSON, so that "missing required field" can point at the
  // root object's '{'.
  while (!stream.at_end() && is_whitespace(stream.Peek())) {
    stream.Take();
  }
  const std::size_t root_offset = stream.Tell();

  Handler handler(expected_project_id);
  rapidjson::Reader reader;
  const rapidjson::ParseResult result = reader.Parse<k_parse_flags>(stream, handler);
  if (std::optional<Problem>& problem = handler.problem()) {
    problem->offset =
        handler.at_root() ? root_offset : token_start(handler, stream, result.Offset());
    return std::move(*problem);
  }
  if (result.IsError()) {
    const std::size_t offset = result.Offset();
    if (stream.invalid_utf8() && offset >= stream.utf8_error_offset()) {
      return Problem{handler.pointer(), stream.utf8_error_offset(), "invalid UTF-8"};
    }
    const bool here = offset == stream.Tell();
    const bool at_end = here && stream.at_end();
    const char next = here ? stream.Peek() : '\0';
    return Problem{handler.pointer(), offset,
                   syntax_reason(result.Code(), at_end, next == 'N' || next == 'I')};
  }
  // StopWhenDone leaves what follows the document to us: RapidJSON's own check would take a
  // NUL byte for the end of the input.
  while (!stream.at_end()) {
    if (!is_whitespace(stream.Peek())) {
      return Problem{"", stream.Tell(), "unexpected data after the document"};
    }
    stream.Take();
  }
  if (stream.invalid_utf8()) {
    return Problem{"", stream.utf8_error_offset(), "unexpected data after the document"};
  }
  DatafileInfo info = std::move(handler.info());
  info.size = stream.Tell();
  return info;
}

Parsed<DatafileInfo> validate_datafile(std::string_view bytes,
                                       std::optional<std::string_view> expected_project_id) {
  ViewSource source(bytes);
  return validate_datafile(source, expected_project_id);
}

}  // namespace dfhook::core
