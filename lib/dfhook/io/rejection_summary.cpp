#include "dfhook/io/rejection_summary.hpp"

#include "dfhook/io/log.hpp"

#include <fmt/format.h>

namespace dfhook::io {

void RejectionSummary::add(int status) noexcept {
  if (status < k_first || status > k_last) {
    m_other.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  m_by_status[static_cast<std::size_t>(status - k_first)].fetch_add(1, std::memory_order_relaxed);
}

RejectionSummary::Counts RejectionSummary::take() {
  Counts counts;
  for (std::size_t i = 0; i < m_by_status.size(); ++i) {
    // Relaxed loads first: exchanging all 200 counters would dirty their cache lines for
    // nothing on every flush.
    if (m_by_status[i].load(std::memory_order_relaxed) == 0) {
      continue;
    }
    const std::uint64_t count = m_by_status[i].exchange(0, std::memory_order_relaxed);
    if (count == 0) {
      continue;
    }
    if (!counts.by_status.empty()) {
      counts.by_status += ',';
    }
    counts.by_status += fmt::format("{}:{}", static_cast<int>(i) + k_first, count);
    counts.total += count;
  }
  const std::uint64_t other = m_other.exchange(0, std::memory_order_relaxed);
  if (other != 0) {
    if (!counts.by_status.empty()) {
      counts.by_status += ',';
    }
    counts.by_status += fmt::format("other:{}", other);
    counts.total += other;
  }
  return counts;
}

std::uint64_t RejectionSummary::flush() {
  Counts counts = take();
  if (counts.total == 0) {
    return 0;
  }
  log(LogLevel::info, "rejected requests",
      {{"count", std::to_string(counts.total)}, {"statuses", std::move(counts.by_status)}});
  return counts.total;
}

}  // namespace dfhook::io
