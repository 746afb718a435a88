#pragma once

#include "dfhook/core/json.hpp"
#include "dfhook/core/problem.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The delivery envelope (DESIGN §6): what listen --save-dir writes for each delivery and what
// verify-payload and replay read back.
//
// {"dfhook_envelope":1,"id":"<16 hex>","received_at":"<RFC 3339 UTC>","remote_addr":"IP:PORT",
//  "method":"POST","path":"/webhooks/optimizely","headers":[["Name","value"],…],
//  "body":"<raw body as a JSON string>"}
// with "body_base64" (standard alphabet, padded) instead of "body" when the body is not valid
// UTF-8.

namespace dfhook::core {

inline constexpr int k_envelope_version = 1;

struct Header {
  std::string name;
  std::string value;
};

struct Envelope {
  std::string id;           // 16 lowercase hex digits
  std::string received_at;  // RFC 3339 UTC with microseconds, "2025-12-03T10:00:00.123456Z"
  std::string remote_addr;  // "IP:PORT"
  std::string method;
  std::string path;             // the request target as received
  std::vector<Header> headers;  // in order, repeats kept
  std::string body;             // the raw body bytes
};

// Where the body sat in the envelope's text, to locate a problem found inside the body.
struct EnvelopeBodySource {
  std::size_t offset = 0;  // offset of the "body" or "body_base64" value (its opening quote)
  bool base64 = false;
};

// An envelope read in place, for readers that judge deliveries without keeping them: views into
// the parsed document, valid while it is (and, for a base64 body, while the buffer given to
// read_envelope is unchanged).
struct EnvelopeView {
  std::string_view id;
  std::string_view received_at;
  std::string_view remote_addr;
  std::string_view method;
  std::string_view path;
  std::optional<JsonValue> headers;  // an array of [name, value] string pairs
  std::string_view body;
};

// True when `root` is an object with a "dfhook_envelope" member: such a document is read as an
// envelope (and is invalid if it is not a good one), anything else as a bare payload.
[[nodiscard]] bool is_envelope(JsonValue root);

// Reads an envelope from a parsed document into `out` (whose buffers are reused).
// Requires "dfhook_envelope": 1, every member above with its type, "id" of 16 hex digits,
// "headers" an array of [name, value] string pairs, exactly one of "body" and "body_base64"
// (strict base64: no whitespace, padded to a multiple of 4). Unknown members are ignored.
// Returns the first problem with the pointer of the member at fault.
[[nodiscard]] std::optional<Problem> read_envelope(JsonValue root, Envelope& out,
                                                   EnvelopeBodySource* body_source = nullptr);

// The same checks, reading into views; a base64 body is decoded into `body_buffer`.
[[nodiscard]] std::optional<Problem> read_envelope(JsonValue root, EnvelopeView& out,
                                                   std::string& body_buffer,
                                                   EnvelopeBodySource* body_source = nullptr);

// Parses and reads an envelope: the strict JSON rules of json.hpp, then read_envelope.
[[nodiscard]] Parsed<Envelope> parse_envelope(std::string_view text);

// Every value of the header `name` (compared case-insensitively), in order.
[[nodiscard]] std::vector<std::string_view> header_values(const Envelope& envelope,
                                                          std::string_view name);
// The same, appended to `out` (cleared first), to reuse its buffer.
void header_values(const Envelope& envelope, std::string_view name,
                   std::vector<std::string_view>& out);
void header_values(const EnvelopeView& envelope, std::string_view name,
                   std::vector<std::string_view>& out);

// Headers never written to an envelope: they carry credentials.
[[nodiscard]] bool is_credential_header(std::string_view name);

// The envelope as the §6 JSON text (compact, member order as above, no final newline).
// Authorization, Cookie and Proxy-Authorization headers are left out; the body goes into
// "body" when it is valid UTF-8 and into "body_base64" otherwise, so reading the text back
// gives the same bytes. Other strings that are not valid UTF-8 (a header value with obs-text
// bytes) have each invalid byte replaced by U+FFFD.
[[nodiscard]] std::string serialize_envelope(const Envelope& envelope);

// The offset in the envelope's text of byte `body_offset` of its decoded body, so that a
// problem in the body can be shown at its place in the envelope file. A base64 body, or an
// offset inside a multi-byte escape, gives the start of the value or of that escape.
// Precondition: `source` came from reading `envelope_text`.
[[nodiscard]] std::size_t envelope_offset_of_body(std::string_view envelope_text,
                                                  const EnvelopeBodySource& source,
                                                  std::size_t body_offset);

}  // namespace dfhook::core
