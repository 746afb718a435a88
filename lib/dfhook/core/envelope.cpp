#include "dfhook/core/envelope.hpp"

#include "dfhook/core/ascii.hpp"
#include "dfhook/core/rapidjson_reader.hpp"

#include <openssl/evp.h>

#include <array>
#include <charconv>
#include <optional>

namespace dfhook::core {

namespace {

Problem missing(JsonValue object, std::string_view name) {
  std::string pointer;
  append_pointer_token(pointer, name);
  return Problem{pointer, object.offset(), "missing required field"};
}

Problem wrong_type(JsonValue value, std::string pointer, std::string_view expected) {
  return Problem{
      std::move(pointer), value.offset(),
      "expected " + std::string(expected) + ", found " + std::string(json_type_name(value.type()))};
}

// Without an early exit or a branch per digit: the digits of an id are random, so branching on
// each would be mispredicted about half the time.
bool is_lower_hex(std::string_view text) {
  unsigned bad = 0;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    const unsigned digit = static_cast<unsigned char>(byte - '0') < 10U ? 1U : 0U;
    const unsigned letter = static_cast<unsigned char>(byte - 'a') < 6U ? 1U : 0U;
    bad |= (digit | letter) ^ 1U;
  }
  return bad == 0;
}

// EVP_DecodeBlock decodes groups of 4 and does not report the padding; it also skips
// surrounding whitespace, which a saved body never has, so the text is checked first.
std::optional<std::string> decode_base64(std::string_view text) {
  if (text.size() % 4 != 0) {
    return std::nullopt;
  }
  std::size_t padding = 0;
  if (!text.empty() && text.back() == '=') {
    padding = text[text.size() - 2] == '=' ? 2 : 1;
  }
  for (const char c : text.substr(0, text.size() - padding)) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '/';
    if (!ok) {
      return std::nullopt;
    }
  }
  std::string out(text.size() / 4 * 3, '\0');
  if (text.empty()) {
    return out;
  }
  const int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                     reinterpret_cast<const unsigned char*>(text.data()),
                                     static_cast<int>(text.size()));
  if (length < 0 || static_cast<std::size_t>(length) != out.size()) {
    return std::nullopt;
  }
  out.resize(out.size() - padding);
  return out;
}

std::string encode_base64(std::string_view bytes) {
  std::string out((bytes.size() + 2) / 3 * 4 + 1, '\0');
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                     reinterpret_cast<const unsigned char*>(bytes.data()),
                                     static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(length));
  return out;
}

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void write_string(Writer& writer, std::string_view text) {
  if (is_valid_utf8(text)) {
    writer.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  } else {
    const std::string clean = to_valid_utf8(text);
    writer.String(clean.data(), static_cast<rapidjson::SizeType>(clean.size()));
  }
}

std::optional<Problem> read_string(JsonValue value, std::string_view name, std::string_view& out) {
  if (!value.is_string()) {
    std::string pointer;
    append_pointer_token(pointer, name);
    return wrong_type(value, pointer, "a string");
  }
  out = value.string();
  return std::nullopt;
}

std::optional<Problem> check_headers(JsonValue headers) {
  if (!headers.is_array()) {
    return wrong_type(headers, "/headers", "an array of [name, value] pairs");
  }
  std::size_t index = 0;
  for (const JsonValue pair : headers.children()) {
    const auto pointer = [index] { return "/headers/" + std::to_string(index); };
    if (!pair.is_array() || pair.size() != 2) {
      return Problem{pointer(), pair.offset(),
                     "expected a [name, value] pair of strings, found " +
                         (pair.is_array() ? "an array of " + std::to_string(pair.size())
                                          : std::string(json_type_name(pair.type())))};
    }
    std::size_t part = 0;
    for (const JsonValue item : pair.children()) {
      if (!item.is_string()) {
        return wrong_type(item, pointer() + "/" + std::to_string(part), "a string");
      }
      if (part == 0 && item.string().empty()) {
        return Problem{pointer() + "/0", item.offset(), "header name must not be empty"};
      }
      ++part;
    }
    ++index;
  }
  return std::nullopt;
}

// Calls f(name, value) for each header of a checked "headers" array.
template <typename F>
void for_each_header(JsonValue headers, F f) {
  for (const JsonValue pair : headers.children()) {
    auto item = pair.children().begin();
    const std::string_view name = (*item).string();
    ++item;
    f(name, (*item).string());
  }
}

}  // namespace

bool is_envelope(JsonValue root) {
  return root.find("dfhook_envelope").has_value();
}

bool is_credential_header(std::string_view name) {
  return iequals(name, "authorization") || iequals(name, "cookie") ||
         iequals(name, "proxy-authorization");
}

std::optional<Problem> read_envelope(JsonValue root, EnvelopeView& out, std::string& body_buffer,
                                     EnvelopeBodySource* body_source) {
  if (!root.is_object()) {
    return wrong_type(root, "", "an object");
  }
  std::optional<JsonValue> version;
  std::optional<JsonValue> id;
  std::optional<JsonValue> received_at;
  std::optional<JsonValue> remote_addr;
  std::optional<JsonValue> method;
  std::optional<JsonValue> path;
  std::optional<JsonValue> headers;
  std::optional<JsonValue> body;
  std::optional<JsonValue> body_base64;
  for (const JsonValue member : root.children()) {
    const std::string_view key = member.key();
    if (key == "dfhook_envelope") {
      version = member;
    } else if (key == "id") {
      id = member;
    } else if (key == "received_at") {
      received_at = member;
    } else if (key == "remote_addr") {
      remote_addr = member;
    } else if (key == "method") {
      method = member;
    } else if (key == "path") {
      path = member;
    } else if (key == "headers") {
      headers = member;
    } else if (key == "body") {
      body = member;
    } else if (key == "body_base64") {
      body_base64 = member;
    }
  }
  if (!version) {
    return missing(root, "dfhook_envelope");
  }
  if (!version->is_integer() || version->int64() != k_envelope_version) {
    return Problem{"/dfhook_envelope", version->offset(),
                   "unsupported envelope version " +
                       (version->is_integer() ? std::string(version->number_text())
                                              : std::string(json_type_name(version->type()))) +
                       " (this dfhook reads version 1)"};
  }
  const std::pair<std::optional<JsonValue>*, std::string_view> strings[] = {
      {&id, "id"},
      {&received_at, "received_at"},
      {&remote_addr, "remote_addr"},
      {&method, "method"},
      {&path, "path"}};
  std::string_view* const targets[] = {&out.id, &out.received_at, &out.remote_addr, &out.method,
                                       &out.path};
  for (std::size_t i = 0; i < std::size(strings); ++i) {
    if (!*strings[i].first) {
      return missing(root, strings[i].second);
    }
    if (auto problem = read_string(**strings[i].first, strings[i].second, *targets[i])) {
      return problem;
    }
  }
  if (out.id.size() != 16 || !is_lower_hex(out.id)) {
    return Problem{"/id", id->offset(), "expected 16 lowercase hex digits, found " + quote(out.id)};
  }
  if (!headers) {
    return missing(root, "headers");
  }
  if (auto problem = check_headers(*headers)) {
    return problem;
  }
  out.headers = headers;
  if (body && body_base64) {
    return Problem{"/body_base64", body_base64->offset(),
                   "an envelope holds either body or body_base64, not both"};
  }
  if (body) {
    if (auto problem = read_string(*body, "body", out.body)) {
      return problem;
    }
  } else if (body_base64) {
    if (!body_base64->is_string()) {
      return wrong_type(*body_base64, "/body_base64", "a base64 string");
    }
    std::optional<std::string> bytes = decode_base64(body_base64->string());
    if (!bytes) {
      return Problem{"/body_base64", body_base64->offset(), "invalid base64"};
    }
    body_buffer = std::move(*bytes);
    out.body = body_buffer;
  } else {
    return missing(root, "body");
  }
  if (body_source != nullptr) {
    body_source->offset = body ? body->offset() : body_base64->offset();
    body_source->base64 = !body;
  }
  return std::nullopt;
}

std::optional<Problem> read_envelope(JsonValue root, Envelope& out,
                                     EnvelopeBodySource* body_source) {
  EnvelopeView view;
  std::string body_buffer;
  if (std::optional<Problem> problem = read_envelope(root, view, body_buffer, body_source)) {
    return problem;
  }
  out.id.assign(view.id);
  out.received_at.assign(view.received_at);
  out.remote_addr.assign(view.remote_addr);
  out.method.assign(view.method);
  out.path.assign(view.path);
  out.headers.resize(view.headers->size());
  std::size_t index = 0;
  for_each_header(*view.headers, [&](std::string_view name, std::string_view value) {
    out.headers[index].name.assign(name);
    out.headers[index].value.assign(value);
    ++index;
  });
  out.body.assign(view.body);
  return std::nullopt;
}

Parsed<Envelope> parse_envelope(std::string_view text) {
  JsonDocument document;
  if (std::optional<Problem> problem = document.parse(text)) {
    return std::move(*problem);
  }
  Envelope envelope;
  if (std::optional<Problem> problem = read_envelope(document.root(), envelope)) {
    return std::move(*problem);
  }
  return envelope;
}

void header_values(const Envelope& envelope, std::string_view name,
                   std::vector<std::string_view>& out) {
  out.clear();
  for (const Header& header : envelope.headers) {
    if (iequals(header.name, name)) {
      out.emplace_back(header.value);
    }
  }
}

void header_values(const EnvelopeView& envelope, std::string_view name,
                   std::vector<std::string_view>& out) {
  out.clear();
  for_each_header(*envelope.headers, [&](std::string_view header, std::string_view value) {
    if (iequals(header, name)) {
      out.push_back(value);
    }
  });
}

std::vector<std::string_view> header_values(const Envelope& envelope, std::string_view name) {
  std::vector<std::string_view> out;
  header_values(envelope, name, out);
  return out;
}

std::string serialize_envelope(const Envelope& envelope) {
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  writer.StartObject();
  writer.Key("dfhook_envelope");
  writer.Int(k_envelope_version);
  writer.Key("id");
  write_string(writer, envelope.id);
  writer.Key("received_at");
  write_string(writer, envelope.received_at);
  writer.Key("remote_addr");
  write_string(writer, envelope.remote_addr);
  writer.Key("method");
  write_string(writer, envelope.method);
  writer.Key("path");
  write_string(writer, envelope.path);
  writer.Key("headers");
  writer.StartArray();
  for (const Header& header : envelope.headers) {
    if (is_credential_header(header.name)) {
      continue;
    }
    writer.StartArray();
    write_string(writer, header.name);
    write_string(writer, header.value);
    writer.EndArray();
  }
  writer.EndArray();
  if (is_valid_utf8(envelope.body)) {
    writer.Key("body");
    writer.String(envelope.body.data(), static_cast<rapidjson::SizeType>(envelope.body.size()));
  } else {
    writer.Key("body_base64");
    const std::string encoded = encode_base64(envelope.body);
    writer.String(encoded.data(), static_cast<rapidjson::SizeType>(encoded.size()));
  }
  writer.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

std::size_t envelope_offset_of_body(std::string_view envelope_text,
                                    const EnvelopeBodySource& source, std::size_t body_offset) {
  if (source.base64) {
    return source.offset;
  }
  // Walk the string's source after its opening quote, counting decoded bytes: an escape
  // "\X" is one byte, "\uXXXX" one to three (a surrogate pair of two escapes, four).
  std::size_t at = source.offset + 1;
  std::size_t decoded = 0;
  while (at < envelope_text.size() && envelope_text[at] != '"') {
    std::size_t source_length = 1;
    std::size_t decoded_length = 1;
    if (envelope_text[at] == '\\') {
      source_length = 2;
      if (envelope_text.substr(at + 1, 1) == "u") {
        unsigned code = 0;
        const std::string_view hex = envelope_text.substr(at + 2, 4);
        std::from_chars(hex.data(), hex.data() + hex.size(), code, 16);
        source_length = 6;
        decoded_length = code < 0x80U ? 1 : code < 0x800U ? 2 : 3;
        if (code >= 0xD800U && code <= 0xDBFFU) {
          source_length = 12;
          decoded_length = 4;
        }
      }
    }
    if (decoded + decoded_length > body_offset) {
      return at;
    }
    decoded += decoded_length;
    at += source_length;
  }
  return at;
}

}  // namespace dfhook::core
