#include "dfhook/core/token_bucket.hpp"

#include <algorithm>

namespace dfhook::core {

TokenBucket::TokenBucket(double rate, int burst, Clock::time_point now)
    : m_interval(std::max<Clock::duration>(
          std::chrono::round<Clock::duration>(std::chrono::duration<double>(1.0 / rate)),
          Clock::duration(1))),
      m_tolerance(m_interval * (std::max(burst, 1) - 1)),
      m_due(now) {}

bool TokenBucket::try_take(Clock::time_point now) {
  if (now < m_due - m_tolerance) {
    return false;
  }
  m_due = std::max(m_due, now) + m_interval;
  return true;
}

TokenBucket::Clock::duration TokenBucket::wait_time(Clock::time_point now) const {
  return std::max(m_due - m_tolerance - now, Clock::duration::zero());
}

}  // namespace dfhook::core
