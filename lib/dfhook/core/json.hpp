#pragma once

#include "dfhook/core/problem.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dfhook::core {

// Strict JSON reading (DESIGN §4). Rejected, each as a Problem with the JSON pointer of the
// value at fault and its byte offset:
//  - anything RFC 8259 rejects, including NaN and Infinity;
//  - invalid UTF-8 (overlong forms, surrogates, truncated sequences) and \u escapes that
//    decode to a lone surrogate;
//  - duplicate member names, in every object at every level;
//  - integers (numbers without fraction or exponent) outside -2^63..2^64-1;
//  - nesting deeper than k_json_max_depth arrays and objects;
//  - anything but whitespace after the document (JsonDocument::parse).

inline constexpr std::size_t k_json_max_depth = 64;

// The bytes parse_prefix_in_place needs after the text.
inline constexpr std::size_t k_json_padding = 16;

enum class JsonType : std::uint8_t { null, boolean, integer, number, string, array, object };

// "an object", "a string", "null" …, for messages such as "expected an integer, found a string".
[[nodiscard]] std::string_view json_type_name(JsonType type);

// True when `text` is valid UTF-8 (the same rules the JSON reader applies inside strings).
[[nodiscard]] bool is_valid_utf8(std::string_view text);

// `text` with each byte that does not start a valid UTF-8 sequence replaced by U+FFFD.
[[nodiscard]] std::string to_valid_utf8(std::string_view text);

namespace detail {
// One value of a parsed document; the values are stored in document order (pre-order), so the
// descendants of node i are the nodes i+1 .. end-1.
struct JsonNode {
  std::string_view key;         // the member name when the value is an object member
  std::string_view text;        // string: decoded text; integer or number: the source text
  std::uint64_t magnitude = 0;  // integer: absolute value
  std::size_t offset = 0;       // byte offset of the value's first byte in the document
  std::uint32_t end = 0;        // index one past the last descendant
  std::uint32_t size = 0;       // object: members, array: elements
  JsonType type = JsonType::null;
  bool flag = false;  // boolean: its value; integer: negative
};
}  // namespace detail

class JsonChildren;

// A read-only view of one value of a JsonDocument; valid until the document is parsed again
// or destroyed, and as long as the text it was parsed from.
class JsonValue {
public:
  JsonValue(const detail::JsonNode* nodes, std::uint32_t index) : m_nodes(nodes), m_index(index) {}

  [[nodiscard]] JsonType type() const { return node().type; }
  [[nodiscard]] bool is_object() const { return type() == JsonType::object; }
  [[nodiscard]] bool is_array() const { return type() == JsonType::array; }
  [[nodiscard]] bool is_string() const { return type() == JsonType::string; }
  [[nodiscard]] bool is_integer() const { return type() == JsonType::integer; }

  // Byte offset of the value's first character ('{', '"', digit …) in the document text.
  [[nodiscard]] std::size_t offset() const { return node().offset; }
  // The member name of this value in its object ("" for array elements and the root).
  [[nodiscard]] std::string_view key() const { return node().key; }

  // The decoded string; "" unless is_string().
  [[nodiscard]] std::string_view string() const {
    return is_string() ? node().text : std::string_view{};
  }
  // The source text of an integer or number; "" otherwise.
  [[nodiscard]] std::string_view number_text() const;
  // The value of a boolean; false otherwise.
  [[nodiscard]] bool boolean() const { return type() == JsonType::boolean && node().flag; }
  // An integer in 0..2^64-1, else nullopt (also for non-integers).
  [[nodiscard]] std::optional<std::uint64_t> uint64() const;
  // An integer in -2^63..2^63-1, else nullopt (also for non-integers).
  [[nodiscard]] std::optional<std::int64_t> int64() const;
  // True for a negative integer.
  [[nodiscard]] bool negative() const { return is_integer() && node().flag; }

  // Members of an object or elements of an array; 0 otherwise.
  [[nodiscard]] std::size_t size() const { return node().size; }
  // The member named `name` of an object (linear in the object's size); nullopt when absent
  // or when this is not an object.
  [[nodiscard]] std::optional<JsonValue> find(std::string_view name) const;
  // The members of an object or elements of an array, in document order.
  [[nodiscard]] JsonChildren children() const;

private:
  friend class JsonChildren;
  [[nodiscard]] const detail::JsonNode& node() const { return m_nodes[m_index]; }

  const detail::JsonNode* m_nodes;
  std::uint32_t m_index;
};

class JsonChildren {
public:
  class Iterator {
  public:
    Iterator(const detail::JsonNode* nodes, std::uint32_t index) : m_nodes(nodes), m_index(index) {}
    JsonValue operator*() const { return {m_nodes, m_index}; }
    Iterator& operator++() {
      m_index = m_nodes[m_index].end;
      return *this;
    }
    bool operator!=(const Iterator& other) const { return m_index != other.m_index; }

  private:
    const detail::JsonNode* m_nodes;
    std::uint32_t m_index;
  };

  explicit JsonChildren(const JsonValue& parent);
  [[nodiscard]] Iterator begin() const { return {m_nodes, m_begin}; }
  [[nodiscard]] Iterator end() const { return {m_nodes, m_end}; }

private:
  const detail::JsonNode* m_nodes;
  std::uint32_t m_begin;
  std::uint32_t m_end;
};

inline JsonChildren JsonValue::children() const {
  return JsonChildren(*this);
}

// What JsonDocument::parse_prefix found at the start of a text.
struct JsonPrefix {
  // The first problem in document order, if any.
  std::optional<Problem> problem;
  // The document's end was found: no syntax error and not too deep. A document with a
  // duplicate name, an out-of-range integer or a lone surrogate is still framed.
  bool framed = false;
  // framed: the offset just past the document. Otherwise: where reading stopped (the
  // offset of the syntax error), so that a caller reading a stream can tell a document cut
  // by the end of its buffer (end close to the text's size) from a broken one.
  std::size_t end = 0;
};

// A parsed JSON document: a flat vector of values with views into a copy of the source text
// (strings without escapes, numbers) and into a buffer of decoded strings (strings with
// escapes). Reusing one JsonDocument for many documents reuses its buffers: parsing then
// allocates nothing once the buffers have grown to the largest document.
class JsonDocument {
public:
  JsonDocument();
  ~JsonDocument();
  JsonDocument(const JsonDocument&) = delete;
  JsonDocument& operator=(const JsonDocument&) = delete;

  // Parses `text`, which must hold exactly one JSON value (surrounding whitespace allowed).
  // On success root() is the value. Time and memory are linear in the text's size, also for
  // hostile input.
  [[nodiscard]] std::optional<Problem> parse(std::string_view text);

  // Parses the value at the start of `text` (after whitespace) and stops at its end, leaving
  // whatever follows unread. root() is valid when the result has no problem. Copies the text
  // (use parse_prefix_in_place to frame documents of a large buffer).
  [[nodiscard]] JsonPrefix parse_prefix(std::string_view text);

  // parse_prefix without the copy, for a stream reader's own buffer: text[0, size) is read
  // and the k_json_padding bytes after it must belong to the caller, who must not touch them
  // meanwhile (they are changed during the call and restored). Views of the parsed values
  // point into `text`.
  [[nodiscard]] JsonPrefix parse_prefix_in_place(char* text, std::size_t size);

  // The root value. Precondition: the last parse succeeded.
  [[nodiscard]] JsonValue root() const { return {m_nodes.data(), 0}; }

private:
  class Parser;

  std::vector<detail::JsonNode> m_nodes;
  std::string m_input;  // parse() and parse_prefix(): the text, then k_json_padding bytes
  std::unique_ptr<Parser> m_parser;
};

}  // namespace dfhook::core
