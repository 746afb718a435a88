#include "dfhook/core/verification.hpp"

#include "dfhook/core/ascii.hpp"
#include "dfhook/core/rapidjson_reader.hpp"
#include "dfhook/core/units.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <ctime>
#include <utility>

namespace dfhook::core {

namespace {

constexpr std::string_view k_signature_header = "x-hub-signature";

void read_signature_headers(JsonValue headers, SignatureHeaders& out) {
  out.state = SignatureHeaders::State::absent;
  out.pointer.assign("/headers");
  out.offset = headers.offset();
  out.value.clear();
  std::size_t index = 0;
  for (const JsonValue pair : headers.children()) {
    auto item = pair.children().begin();
    const std::string_view name = (*item).string();
    ++item;
    const JsonValue value = *item;
    if (iequals(name, k_signature_header)) {
      const std::optional<Digest> digest = parse_signature_header(value.string());
      const auto locate = [&] {
        out.pointer.assign("/headers/");
        out.pointer += std::to_string(index);
        out.pointer += "/1";
        out.offset = value.offset();
      };
      if (!digest) {
        locate();
        out.state = SignatureHeaders::State::malformed;
        out.value.assign(value.string());
        return;
      }
      if (out.state == SignatureHeaders::State::absent) {
        locate();
        out.state = SignatureHeaders::State::one;
        out.digest = *digest;
      } else if (*digest != out.digest) {
        locate();
        out.state = SignatureHeaders::State::differing;
        return;
      }
    }
    ++index;
  }
}

template <typename Integer>
void append_number(std::string& out, Integer value) {
  std::array<char, 24> digits{};
  const auto result = std::to_chars(digits.data(), digits.data() + digits.size(), value);
  out.append(digits.data(), result.ptr);
}

// Escapes control characters, so that a value taken from the input stays on one line.
void append_printable(std::string& out, std::string_view text) {
  constexpr std::string_view k_hex = "0123456789abcdef";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20U || byte == 0x7FU) {
      out += "\\x";
      out += k_hex[byte >> 4U];
      out += k_hex[byte & 0x0FU];
    } else {
      out += c;
    }
  }
}

// RapidJSON's output stream concept, appending to a std::string.
struct StringOutput {
  using Ch = char;
  std::string* out;
  void Put(char c) { out->push_back(c); }  // NOLINT(readability-identifier-naming)
  void Flush() {}                          // NOLINT(readability-identifier-naming)
};

using JsonWriter = rapidjson::Writer<StringOutput>;

void write_string(JsonWriter& writer, std::string_view text) {
  if (is_valid_utf8(text)) {
    writer.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  } else {
    const std::string clean = to_valid_utf8(text);
    writer.String(clean.data(), static_cast<rapidjson::SizeType>(clean.size()));
  }
}

void append_json_string(std::string& out, std::string_view text) {
  StringOutput output{&out};
  JsonWriter writer(output);
  write_string(writer, text);
}

std::string format_utc(std::int64_t seconds) {
  const auto time = static_cast<std::time_t>(seconds);
  std::tm parts{};
  if (::gmtime_r(&time, &parts) == nullptr) {
    return std::to_string(seconds);
  }
  std::array<char, 32> text{};
  const std::size_t length = std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return std::string(text.data(), length);
}

std::string_view status_name(VerdictStatus status) {
  switch (status) {
  case VerdictStatus::ok:
    return "ok";
  case VerdictStatus::ignored:
    return "ignored";
  case VerdictStatus::invalid:
    break;
  }
  return "invalid";
}

std::string_view signature_name(SignatureCheck check) {
  switch (check) {
  case SignatureCheck::unchecked:
    return "unchecked";
  case SignatureCheck::valid:
    return "valid";
  case SignatureCheck::invalid:
    break;
  }
  return "invalid";
}

}  // namespace

void prepare_document(const StreamItem& item, const JsonDocument& json, PreparedDocument& out) {
  out.number = item.number;
  out.start = item.start;
  out.text.assign(item.text);
  out.problem = item.problem;
  out.envelope = false;
  out.body.clear();
  out.body_source = {};
  out.signature_headers.state = SignatureHeaders::State::absent;
  out.signed_bytes.reset();
  if (item.problem || !is_envelope(json.root())) {
    return;
  }
  out.envelope = true;
  // One per thread, not one per document: zeroing a fresh view costs more than reading a
  // small envelope's members into it (read_envelope sets every member it succeeds with).
  thread_local EnvelopeView view;
  // A base64 body is decoded into out.body itself; a "body" string is a view into the stream's
  // parse, copied below.
  std::string decoded;
  if (std::optional<Problem> problem =
          read_envelope(json.root(), view, decoded, &out.body_source)) {
    out.problem = std::move(problem);
    return;
  }
  out.body.assign(view.body);
  read_signature_headers(*view.headers, out.signature_headers);
}

Verdict empty_input_verdict() {
  Verdict verdict;
  verdict.status = VerdictStatus::invalid;
  verdict.reason = "no document";
  return verdict;
}

Verifier::Verifier(const VerifyOptions& options) : m_options(options) {
  if (options.signature) {
    m_given_signature = parse_signature_header(*options.signature);
    m_given_signature_malformed = !m_given_signature;
  }
}

void Verifier::invalid(const PreparedDocument& document, Verdict& out, std::string pointer,
                       std::size_t offset, std::string reason) const {
  out.status = VerdictStatus::invalid;
  out.at = line_column(document.text, offset, document.start);
  out.pointer = std::move(pointer);
  out.reason = std::move(reason);
}

bool Verifier::check_signature(const PreparedDocument& document, std::string_view body,
                               Verdict& out) const {
  const SecretSet& secrets = *m_options.secrets;
  std::optional<SecretSet::Match> match;
  if (document.envelope) {
    const SignatureHeaders& headers = document.signature_headers;
    switch (headers.state) {
    case SignatureHeaders::State::absent:
      invalid(document, out, headers.pointer, headers.offset,
              "no X-Hub-Signature header to check the secret against");
      return false;
    case SignatureHeaders::State::malformed:
      invalid(document, out, headers.pointer, headers.offset,
              "X-Hub-Signature " + quote(headers.value) + " is not 'sha1=' and 40 hex digits");
      return false;
    case SignatureHeaders::State::differing:
      invalid(document, out, headers.pointer, headers.offset,
              "X-Hub-Signature headers with different values");
      return false;
    case SignatureHeaders::State::one:
      break;
    }
    match = secrets.verify(body, headers.digest);
    if (!match) {
      invalid(document, out, headers.pointer, headers.offset,
              "the signature does not match any secret");
      return false;
    }
  } else {
    if (!m_options.signature) {
      invalid(document, out, "", 0,
              "no signature to check the secret against: give --signature, or check the "
              "saved envelope");
      return false;
    }
    if (m_given_signature_malformed) {
      invalid(document, out, "", 0,
              "--signature " + quote(*m_options.signature) + " is not 'sha1=' and 40 hex digits");
      return false;
    }
    match = secrets.verify(document.signed_bytes ? std::string_view(*document.signed_bytes) : body,
                           *m_given_signature);
    if (!match) {
      invalid(document, out, "", 0, "--signature does not match any secret");
      return false;
    }
  }
  if (m_payload.project_id != 0 && !match->allows_project(m_payload.project_id)) {
    invalid(document, out, "/project_id", 0,
            "signed with the secret from " + std::string(match->origin) +
                ", which is bound to another project");
    return false;
  }
  out.signature = SignatureCheck::valid;
  return true;
}

void Verifier::judge(const PreparedDocument& document, Verdict& out) {
  out.number = document.number;
  out.at = document.start;
  out.status = VerdictStatus::ok;
  out.signature = SignatureCheck::unchecked;
  out.event.clear();
  out.project_id.reset();
  out.revision.reset();
  out.pointer.clear();
  out.reason.clear();

  if (document.problem) {
    invalid(document, out, document.problem->pointer, document.problem->offset,
            document.problem->reason);
    return;
  }
  const std::string_view body = document.envelope ? document.body : document.text;
  // A problem inside an envelope's body is shown at its place in the envelope's text.
  const auto text_offset = [&](std::size_t body_offset) {
    return document.envelope
               ? envelope_offset_of_body(document.text, document.body_source, body_offset)
               : body_offset;
  };
  std::optional<Problem> problem = m_body_json.parse(body);
  if (!problem) {
    problem = read_payload(m_body_json.root(), m_payload);
  }
  if (problem) {
    invalid(document, out, std::move(problem->pointer), text_offset(problem->offset),
            std::move(problem->reason));
    return;
  }
  out.event = m_payload.event;
  if (m_payload.project_id != 0) {
    out.project_id = m_payload.project_id;
  }
  if (m_payload.is_datafile_update) {
    out.revision = m_payload.revision;
  }
  // The project id's position, for the checks that concern it.
  const auto project_offset = [&] {
    const std::optional<JsonValue> value = m_body_json.root().find("project_id");
    return text_offset(value ? value->offset() : 0);
  };

  if (m_options.secrets != nullptr && !m_options.secrets->empty()) {
    if (!check_signature(document, body, out)) {
      if (out.pointer == "/project_id") {
        out.at = line_column(document.text, project_offset(), document.start);
      }
      out.signature = SignatureCheck::invalid;
      return;
    }
  }

  if (!m_payload.is_datafile_update) {
    out.status = VerdictStatus::ignored;
    out.reason = "event " + quote(m_payload.event) + " is not handled";
    return;
  }
  if (!m_options.project_ids.empty() &&
      std::find(m_options.project_ids.begin(), m_options.project_ids.end(), m_payload.project_id) ==
          m_options.project_ids.end()) {
    invalid(document, out, "/project_id", project_offset(),
            "project " + std::to_string(m_payload.project_id) + " is not one of --project-id");
    return;
  }
  if (m_options.max_age) {
    const std::int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(m_options.now.time_since_epoch()).count();
    const std::int64_t age = now - m_payload.timestamp;
    // The future passes within the same bound (clock skew), as in listen.
    const bool old = age > 0 && age * 1000 > m_options.max_age->count();
    // In whole seconds: a timestamp near 2^63 times 1000 would overflow.
    const bool future = age < 0 && -age > m_options.max_age->count() / 1000;
    if (old || future) {
      const std::optional<JsonValue> value = m_body_json.root().find("timestamp");
      invalid(document, out, "/timestamp", text_offset(value ? value->offset() : 0),
              "sent " + format_utc(m_payload.timestamp) + ", more than --max-age " +
                  format_duration(*m_options.max_age) + (old ? " ago" : " in the future"));
      return;
    }
  }
}

void Verifier::verify(const StreamItem& item, const JsonDocument& json, Verdict& out) {
  prepare_document(item, json, m_prepared);
  judge(m_prepared, out);
}

void append_verdict_text(std::string& out, std::string_view file, const Verdict& verdict) {
  append_printable(out, file);
  out += ':';
  append_number(out, verdict.at.line);
  out += ':';
  append_number(out, verdict.at.column);
  out += ": ";
  if (verdict.number != 0) {
    out += "document ";
    append_number(out, verdict.number);
    out += ": ";
  }
  switch (verdict.status) {
  case VerdictStatus::ok:
    out += "ok project=";
    append_number(out, verdict.project_id.value_or(0));
    out += " revision=";
    append_number(out, verdict.revision.value_or(0));
    out += " signature=";
    out += signature_name(verdict.signature);
    break;
  case VerdictStatus::ignored:
    out += "ok (ignored event ";
    append_json_string(out, verdict.event);
    out += ')';
    break;
  case VerdictStatus::invalid:
    out += "invalid: ";
    if (!verdict.pointer.empty()) {
      append_printable(out, verdict.pointer);
      out += ": ";
    }
    append_printable(out, verdict.reason);
    break;
  }
  out += '\n';
}

void append_verdict_json(std::string& out, std::string_view file, const Verdict& verdict) {
  StringOutput output{&out};
  JsonWriter writer(output);
  const auto key = [&](std::string_view name) {
    writer.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
  };
  const auto string_or_null = [&](std::string_view name, std::string_view value, bool known) {
    key(name);
    if (known) {
      write_string(writer, value);
    } else {
      writer.Null();
    }
  };
  const auto number_or_null = [&](std::string_view name, std::optional<std::uint64_t> value) {
    key(name);
    if (value) {
      writer.Uint64(*value);
    } else {
      writer.Null();
    }
  };
  writer.StartObject();
  string_or_null("file", file, true);
  number_or_null("document",
                 verdict.number != 0 ? std::optional<std::uint64_t>(verdict.number) : std::nullopt);
  number_or_null("line", verdict.at.line);
  number_or_null("column", verdict.at.column);
  string_or_null("status", status_name(verdict.status), true);
  string_or_null("event", verdict.event, !verdict.event.empty());
  number_or_null("project_id", verdict.project_id);
  number_or_null("revision", verdict.revision);
  string_or_null("signature", signature_name(verdict.signature), true);
  const bool invalid = verdict.status == VerdictStatus::invalid;
  string_or_null("pointer", verdict.pointer, invalid);
  string_or_null("reason", verdict.reason, verdict.status != VerdictStatus::ok);
  writer.EndObject();
  out += '\n';
}

}  // namespace dfhook::core
