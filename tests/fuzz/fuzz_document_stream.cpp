// Framing a stream of JSON documents fed in chunks, and judging each one as verify-payload does.
// The first byte chooses the chunk size; the rest is the input. Feeding it in chunks must give
// the same items as feeding it whole.
#include "dfhook/core/document_stream.hpp"

#include "dfhook/core/verification.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct Seen {
  std::size_t number;
  std::size_t offset;
  dfhook::core::LineColumn start;
  std::string text;
  std::string reason;
  std::string verdict;
};

std::vector<Seen> read_all(std::string_view input, std::size_t chunk) {
  using namespace dfhook::core;
  static SecretSet secrets = [] {
    SecretSet set;
    set.add(Secret{"test-webhook-secret", 1234, "--secret"});
    return set;
  }();
  VerifyOptions options;
  options.secrets = &secrets;
  options.project_ids = {1234};
  options.max_age = std::chrono::hours(1);
  DocumentStream stream(4096);
  Verifier verifier(options);
  std::vector<Seen> seen;
  StreamItem item;
  Verdict verdict;
  const auto collect = [&] {
    while (stream.next(item) == DocumentStream::Status::item) {
      if (item.problem && item.problem->offset > item.text.size() && item.framed) {
        std::abort();
      }
      if (!seen.empty() && item.offset <= seen.back().offset) {
        std::abort();
      }
      verifier.verify(item, stream.json(), verdict);
      Seen s{item.number,
             item.offset,
             item.start,
             std::string(item.text),
             item.problem ? item.problem->reason : std::string(),
             {}};
      append_verdict_text(s.verdict, "-", verdict);
      seen.push_back(std::move(s));
    }
  };
  for (std::size_t at = 0; at < input.size(); at += chunk) {
    stream.feed(input.substr(at, chunk));
    collect();
  }
  stream.finish();
  collect();
  if (stream.next(item) != DocumentStream::Status::end) {
    std::abort();
  }
  return seen;
}

bool same(const std::vector<Seen>& a, const std::vector<Seen>& b) {
  if (a.size() != b.size()) {
    std::fprintf(stderr, "%zu items whole, %zu chunked\n", a.size(), b.size());
    for (const auto* list : {&a, &b}) {
      for (const Seen& s : *list) {
        std::fprintf(stderr, "  %zu at %zu: %s", s.number, s.offset, s.verdict.c_str());
      }
      std::fprintf(stderr, "--\n");
    }
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].number != b[i].number || a[i].offset != b[i].offset || !(a[i].start == b[i].start) ||
        a[i].text != b[i].text || a[i].reason != b[i].reason || a[i].verdict != b[i].verdict) {
      std::fprintf(
          stderr, "item %zu differs:\n%zu %zu %zu:%zu %s | %s | %s\n%zu %zu %zu:%zu %s | %s | %s\n",
          i, a[i].number, a[i].offset, a[i].start.line, a[i].start.column, a[i].text.c_str(),
          a[i].reason.c_str(), a[i].verdict.c_str(), b[i].number, b[i].offset, b[i].start.line,
          b[i].start.column, b[i].text.c_str(), b[i].reason.c_str(), b[i].verdict.c_str());
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::size_t chunk = 1 + data[0] % 64U;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::vector<Seen> whole = read_all(input, input.size() + 1);
  const std::vector<Seen> chunked = read_all(input, chunk);
  if (!same(whole, chunked)) {
    std::abort();
  }
  return 0;
}
