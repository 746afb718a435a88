#pragma once

#include <chrono>

namespace dfhook::core {

// A token bucket: `rate` tokens per second accrue up to `burst`; each request start takes
// one. With a burst of 1, starts are spaced at least 1/rate apart. Kept as the time the next
// token is due (the GCRA form), in whole clock ticks, so no rounding accumulates. Time is
// passed in, so the bucket is tested without a clock and its user decides how to wait.
class TokenBucket {
public:
  using Clock = std::chrono::steady_clock;

  // rate > 0 per second, burst >= 1 (whole tokens). The bucket starts full.
  TokenBucket(double rate, int burst, Clock::time_point now);

  // Takes a token if one is available at `now`.
  [[nodiscard]] bool try_take(Clock::time_point now);

  // How long from `now` until a token is available; zero when one is.
  [[nodiscard]] Clock::duration wait_time(Clock::time_point now) const;

private:
  Clock::duration m_interval;   // one token's worth of time: 1/rate
  Clock::duration m_tolerance;  // (burst - 1) intervals: how far ahead takes may run
  Clock::time_point m_due;      // when the bucket would be full again, minus one interval
};

}  // namespace dfhook::core
