#pragma once

#include "dfhook/core/document_stream.hpp"
#include "dfhook/core/envelope.hpp"
#include "dfhook/core/json.hpp"
#include "dfhook/core/location.hpp"
#include "dfhook/core/payload.hpp"
#include "dfhook/core/problem.hpp"
#include "dfhook/core/secrets.hpp"
#include "dfhook/core/signature.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Judging saved deliveries, one document of a stream at a time (DESIGN §3 "dfhook
// verify-payload"): each document is a bare payload or a delivery envelope (§6); it is ok when
// it passes the §4 rules, its signature (when a secret is given) and the filters.
//
// The work is split in two stages so that a reader thread can frame and prepare documents while
// another judges them: prepare_document() copies what judging needs out of the stream's
// buffers, Verifier::judge() decides. Verifier::verify() does both at once.

namespace dfhook::core {

// What the command line asks for.
struct VerifyOptions {
  // The secrets to check signatures with; null or empty: signatures are not checked (and every
  // verdict says signature "unchecked").
  const SecretSet* secrets = nullptr;
  // --signature: the X-Hub-Signature of a bare payload, as given (parsed when judged, so that a
  // malformed value makes the document invalid). Envelopes carry their own.
  std::optional<std::string> signature;
  // --max-age: a datafile update whose timestamp is older than now - max_age, or later than
  // now + max_age, is invalid.
  std::optional<std::chrono::milliseconds> max_age;
  std::chrono::system_clock::time_point now;
  // --project-id: when not empty, a datafile update for another project is invalid.
  std::vector<std::uint64_t> project_ids;
};

// The X-Hub-Signature headers of an envelope, combined as listen combines them (DESIGN §3
// step 4): repeated identical values are one, differing values are a failure.
struct SignatureHeaders {
  enum class State : std::uint8_t {
    absent,     // no X-Hub-Signature header
    one,        // one signature (`digest`), from the header at `pointer`
    malformed,  // the header at `pointer` is not "sha1=" + 40 hex digits (`value`)
    differing,  // the header at `pointer` differs from an earlier one
  };
  State state = State::absent;
  Digest digest{};
  std::string pointer;     // "/headers/2/1"; "/headers" when absent
  std::size_t offset = 0;  // of that value (or of the headers array) in the envelope's text
  std::string value;       // malformed: the value as saved
};

// A document of a stream, read far enough to be judged later: it owns its bytes, so it stays
// valid after the stream moves on. Reusing one for many documents reuses its buffers.
struct PreparedDocument {
  std::size_t number = 0;  // 1-based position in its stream
  LineColumn start;        // of its first byte in the input
  std::string text;        // the document's bytes (for a syntax problem: up to the problem)
  // A problem found while framing it or reading its envelope; offset relative to `text`.
  std::optional<Problem> problem;
  bool envelope = false;
  std::string body;  // envelope: the decoded body bytes
  EnvelopeBodySource body_source;
  SignatureHeaders signature_headers;  // envelope only
  // Bare payload: the bytes --signature covers when they are not `text` itself (the whole
  // input holding this one document, surrounding whitespace and final newline included).
  std::optional<std::string> signed_bytes;
};

// Copies `item` (and, when it has no problem, reads `json`, the stream's parse of it) into
// `out`. An envelope is read with the rules of envelope.hpp; its problems land in out.problem.
void prepare_document(const StreamItem& item, const JsonDocument& json, PreparedDocument& out);

enum class VerdictStatus : std::uint8_t { ok, ignored, invalid };
enum class SignatureCheck : std::uint8_t { unchecked, valid, invalid };

// What was decided about one document.
struct Verdict {
  std::size_t number = 0;  // 1-based; 0 for the verdict of an input that holds no document
  // Where the problem is (invalid), else the document's first byte, in the whole input; for an
  // envelope, a problem inside its body is located at its place in the envelope's text.
  LineColumn at;
  VerdictStatus status = VerdictStatus::ok;
  SignatureCheck signature = SignatureCheck::unchecked;
  std::string event;  // "" when not known
  std::optional<std::uint64_t> project_id;
  std::optional<std::uint64_t> revision;  // datafile updates only
  std::string pointer;  // invalid: the JSON pointer of the value at fault ("" for none)
  std::string reason;   // invalid: what is wrong; ignored: why it is ignored
};

// The verdict for an input with no document at all (invalid, "no document").
[[nodiscard]] Verdict empty_input_verdict();

// Judges documents. Not thread-safe (it holds parse buffers): one per thread; the options and
// the secret set they point to must outlive it and may be shared.
//
// Checks, in this order, the first failure deciding: the document's own problem (JSON rules,
// envelope rules); the body's JSON and payload rules (§4); with secrets, the signature (from
// the envelope's headers, else --signature over signed_bytes or the text; none to check against
// is invalid) and the project the matching secret is bound to; then, for datafile updates only,
// --project-id and --max-age. Other events are "ignored" once they passed the checks before.
class Verifier {
public:
  explicit Verifier(const VerifyOptions& options);

  void judge(const PreparedDocument& document, Verdict& out);

  // prepare_document() and judge() in one.
  void verify(const StreamItem& item, const JsonDocument& json, Verdict& out);

private:
  void invalid(const PreparedDocument& document, Verdict& out, std::string pointer,
               std::size_t offset, std::string reason) const;
  [[nodiscard]] bool check_signature(const PreparedDocument& document, std::string_view body,
                                     Verdict& out) const;

  const VerifyOptions& m_options;
  std::optional<Digest> m_given_signature;
  bool m_given_signature_malformed = false;
  JsonDocument m_body_json;
  Payload m_payload;
  PreparedDocument m_prepared;
};

// One line of text output, appended to `out` with its final newline (`file` names the input):
//   FILE:LINE:COL: document N: ok project=P revision=R signature=valid|unchecked
//   FILE:LINE:COL: document N: ok (ignored event "project.flag_updated")
//   FILE:LINE:COL: document N: invalid: /pointer: reason
// (no "/pointer: " for a problem of the whole document, no "document N: " for an input with no
// document). Control characters of the input are escaped, so one verdict is one line.
void append_verdict_text(std::string& out, std::string_view file, const Verdict& verdict);

// One JSON object on one line, with its final newline: "file", "document", "line", "column",
// "status" ("ok"|"ignored"|"invalid"), "event", "project_id", "revision", "signature"
// ("valid"|"unchecked"|"invalid"), "pointer", "reason"; null where a value is not known.
void append_verdict_json(std::string& out, std::string_view file, const Verdict& verdict);

}  // namespace dfhook::core
