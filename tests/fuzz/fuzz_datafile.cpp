// The datafile validator, one-shot and streamed: both must reach the same verdict.
#include "dfhook/core/datafile.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

// Yields the document in chunks of a size taken from the input, so the fuzzer explores chunk
// boundaries inside tokens and UTF-8 sequences.
class ChunkSource final : public dfhook::core::ByteSource {
public:
  ChunkSource(std::string_view bytes, std::size_t chunk) : m_bytes(bytes), m_chunk(chunk) {}

  std::string_view next() override {
    const std::string_view piece = m_bytes.substr(0, m_chunk);
    m_bytes.remove_prefix(piece.size());
    return piece;
  }

private:
  std::string_view m_bytes;
  std::size_t m_chunk;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::size_t chunk = data[0] % 16 + 1;
  const std::string_view document(reinterpret_cast<const char*>(data + 1), size - 1);

  const auto whole = dfhook::core::validate_datafile(document, "1234");
  ChunkSource source(document, chunk);
  const auto streamed = dfhook::core::validate_datafile(source, "1234");

  if (whole.ok() != streamed.ok()) {
    std::abort();
  }
  if (whole.ok()) {
    if (whole->revision != streamed->revision || whole->project_id != "1234" ||
        whole->size != document.size() || streamed->size != document.size() ||
        whole->sdk_key != streamed->sdk_key) {
      std::abort();
    }
    return 0;
  }
  // Offsets agree too, except for a string with escapes that started in an earlier chunk,
  // where the streamed form can only estimate where it began; either way both lie in the
  // document.
  const auto& a = whole.problem();
  const auto& b = streamed.problem();
  if (a.pointer != b.pointer || a.reason != b.reason || a.offset > document.size() ||
      b.offset > document.size()) {
    std::abort();
  }
  return 0;
}
