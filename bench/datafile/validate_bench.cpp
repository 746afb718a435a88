// Times core::validate_datafile on files given on the command line: the one-shot form over
// the bytes in memory, and the streaming form fed 16 KiB chunks (as a download delivers them).
#include "dfhook/core/datafile.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

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

template <typename Run>
double median_ms(int runs, Run run) {
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    if (!run()) {
      std::fputs("validation failed\n", stderr);
      std::exit(1);
    }
    times.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = 21;
  for (int i = 1; i < argc; ++i) {
    std::ifstream file(argv[i], std::ios::binary);
    const std::string bytes{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
    const double whole =
        median_ms(runs, [&] { return dfhook::core::validate_datafile(bytes).ok(); });
    const double streamed = median_ms(runs, [&] {
      ChunkSource source(bytes, 16 * 1024);
      return dfhook::core::validate_datafile(source).ok();
    });
    const double mb = static_cast<double>(bytes.size()) / 1e6;
    std::printf("%s: %.1f MB, one-shot %.1f ms (%.0f MB/s), 16 KiB chunks %.1f ms (%.0f MB/s)\n",
                argv[i], mb, whole, mb / whole * 1e3, streamed, mb / streamed * 1e3);
  }
}
