// Webhook payload parsing (DESIGN §4) and the verdict verify-payload gives a bare payload.
#include "dfhook/core/payload.hpp"

#include "dfhook/core/document_stream.hpp"
#include "dfhook/core/verification.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace dfhook::core;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  const Parsed<Payload> parsed = parse_payload(input);
  if (parsed) {
    const Payload& payload = parsed.value();
    if (payload.event.empty() ||
        payload.is_datafile_update != (payload.event == k_datafile_updated_event)) {
      std::abort();
    }
    if (payload.is_datafile_update) {
      const auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
      if (payload.project_id == 0 || payload.project_id > max || payload.revision == 0 ||
          payload.timestamp < 0 || !is_absolute_url(payload.cdn_url) ||
          !is_absolute_url(payload.origin_url) || payload.datafile_name.empty() ||
          payload.datafile_name.front() == '.' ||
          payload.datafile_name.find('/') != std::string::npos) {
        std::abort();
      }
    }
  } else if (parsed.problem().offset > input.size() || parsed.problem().reason.empty()) {
    std::abort();
  }

  // verify-payload's verdict of the same bytes, read as a stream of one document, with a secret
  // and --signature: an accepted payload is ok or ignored unless its signature fails.
  static SecretSet secrets = [] {
    SecretSet set;
    set.add(Secret{"test-webhook-secret", std::nullopt, "--secret"});
    return set;
  }();
  VerifyOptions options;
  options.secrets = &secrets;
  options.signature = format_signature(hmac_sha1("test-webhook-secret", input));
  DocumentStream stream;
  stream.feed(input);
  stream.finish();
  Verifier verifier(options);
  StreamItem item;
  Verdict verdict;
  std::string out;
  std::size_t count = 0;
  while (stream.next(item) == DocumentStream::Status::item) {
    ++count;
    PreparedDocument document;
    prepare_document(item, stream.json(), document);
    if (count == 1) {
      document.signed_bytes = std::string(input);
    }
    verifier.judge(document, verdict);
    out.clear();
    append_verdict_text(out, "fuzz", verdict);
    append_verdict_json(out, "fuzz", verdict);
    if (out.empty() || out.back() != '\n' || verdict.number != count) {
      std::abort();
    }
    if (count == 1 && parsed && verdict.status == VerdictStatus::invalid &&
        verdict.signature != SignatureCheck::invalid && !document.envelope) {
      std::abort();
    }
  }
  return 0;
}
