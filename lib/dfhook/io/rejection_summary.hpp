#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

namespace dfhook::io {

// Counts rejected requests by HTTP status, so that a flood costs one log line per interval
// instead of one per request. add() is lock-free and may be called from any thread; the
// owner calls flush() on a timer (the HTTP server does it at most once a second).
class RejectionSummary {
public:
  struct Counts {
    std::uint64_t total = 0;
    std::string by_status;  // "401:1200,404:34", statuses ascending; "other" for < 400 or > 599
  };

  void add(int status) noexcept;

  // The counts since the previous take(), which are reset.
  [[nodiscard]] Counts take();

  // Writes one info line `rejected requests count=N statuses=401:1200,404:34` when anything
  // was counted since the previous flush; returns the number of requests it covered.
  std::uint64_t flush();

private:
  static constexpr int k_first = 400;
  static constexpr int k_last = 599;
  std::array<std::atomic<std::uint64_t>, k_last - k_first + 1> m_by_status{};
  std::atomic<std::uint64_t> m_other{0};
};

}  // namespace dfhook::io
