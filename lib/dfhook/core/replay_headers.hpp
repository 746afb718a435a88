#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dfhook::core {

// One HTTP header field as saved or sent: name as written, value without surrounding spaces.
using HeaderField = std::pair<std::string, std::string>;

// Headers that describe one connection or one message's framing, not the delivery: they are
// never replayed from a saved delivery, because the new request has its own (Host,
// Content-Length, Transfer-Encoding, Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
// Upgrade, Expect). Case-insensitive.
[[nodiscard]] bool is_hop_by_hop_header(std::string_view name);

// Headers a proxy in front of the original receiver added about the original client
// (Forwarded, Via, X-Forwarded-*, X-Real-IP). Replaying them would tell the new receiver a
// stale story about who is calling, so they are dropped too. Case-insensitive.
[[nodiscard]] bool is_proxy_added_header(std::string_view name);

// True for a valid field name (RFC 9110 token: letters, digits and !#$%&'*+-.^_`|~).
[[nodiscard]] bool is_header_name(std::string_view name);

// True for a value that can be sent as is: no CR, LF or NUL.
[[nodiscard]] bool is_header_value(std::string_view value);

// A --header argument: "Name: value" (spaces around the value trimmed) sets Name; "Name:"
// with nothing after the colon removes Name from what is sent, as with curl's -H.
struct HeaderArgument {
  std::string name;
  std::optional<std::string> value;  // none: remove the header
};

// Parses a --header argument. On failure returns none and sets `error`, e.g.
// "expected 'Name: value'", "invalid header name 'a b'", "header value contains a line break",
// "'Content-Length' is computed for each request and cannot be set".
// Host may be set (a virtual host behind --connect-to); the other hop-by-hop headers may not.
[[nodiscard]] std::optional<HeaderArgument> parse_header_argument(std::string_view text,
                                                                  std::string& error);

// Where the signature of a replayed delivery comes from.
enum class SignatureSource {
  fresh,     // computed now with the first secret, replacing any saved X-Hub-Signature
  saved,     // the saved X-Hub-Signature header(s), as they were received
  argument,  // set by a --header argument
  none,      // no secret, nothing saved: sent unsigned
};

// The header list of one replayed delivery, in this order of rules:
//   1. saved headers, in their order with repeats, except hop-by-hop and proxy-added ones
//      (see above), credentials (Authorization, Cookie, Proxy-Authorization: the spool never
//      saves them, a hand-written file might), and X-Hub-Signature when `fresh_signature`
//      is given;
//   2. the fresh X-Hub-Signature, at the place of the first saved one (or last);
//   3. `default_content_type` and `default_user_agent` when no such header is saved and the
//      default is not empty;
//   4. each --header argument, in order: the first one naming a header removes every header
//      of that name so far (saved or default), then adds its value when it has one; later
//      arguments with the same name add further values.
// Names compare case-insensitively. The sender adds Host and Content-Length itself.
// A saved header with an invalid name or a value holding CR, LF or NUL (a hand-edited or
// hostile file) cannot be sent faithfully: `error` names it and the delivery must not be sent.
struct ReplayHeaders {
  std::vector<HeaderField> headers;
  SignatureSource signature = SignatureSource::none;
  std::string error;  // e.g. "saved header 2 has an invalid name 'a b'"; empty when fine
};
[[nodiscard]] ReplayHeaders replay_headers(const std::vector<HeaderField>& saved,
                                           const std::optional<std::string>& fresh_signature,
                                           std::string_view default_content_type,
                                           std::string_view default_user_agent,
                                           const std::vector<HeaderArgument>& arguments);

}  // namespace dfhook::core
