#include "dfhook/core/token_bucket.hpp"

#include <doctest/doctest.h>

using dfhook::core::TokenBucket;
using namespace std::chrono_literals;

namespace {
const TokenBucket::Clock::time_point k_t0{};
}

TEST_CASE("a full bucket gives its burst at once and then one token per period") {
  TokenBucket bucket(10.0, 1, k_t0);
  CHECK(bucket.try_take(k_t0));
  CHECK_FALSE(bucket.try_take(k_t0));
  CHECK_FALSE(bucket.try_take(k_t0 + 99ms));
  CHECK(bucket.try_take(k_t0 + 100ms));
  CHECK_FALSE(bucket.try_take(k_t0 + 150ms));
  CHECK(bucket.try_take(k_t0 + 200ms));
}

TEST_CASE("wait_time says how long until the next token, and waiting that long is enough") {
  TokenBucket bucket(4.0, 1, k_t0);
  CHECK(bucket.wait_time(k_t0) == TokenBucket::Clock::duration::zero());
  REQUIRE(bucket.try_take(k_t0));
  const auto wait = bucket.wait_time(k_t0 + 50ms);
  CHECK(wait == 200ms);
  CHECK_FALSE(bucket.try_take(k_t0 + 50ms + wait - 1ns));
  CHECK(bucket.try_take(k_t0 + 50ms + wait));
}

TEST_CASE("an idle bucket saves no more than its burst") {
  TokenBucket bucket(100.0, 3, k_t0);
  int taken = 0;
  while (bucket.try_take(k_t0 + 10s) && taken < 100) {
    ++taken;
  }
  CHECK(taken == 3);
}

TEST_CASE("a slow rate spaces starts by whole seconds") {
  TokenBucket bucket(0.5, 1, k_t0);
  REQUIRE(bucket.try_take(k_t0));
  CHECK_FALSE(bucket.try_take(k_t0 + 1999ms));
  CHECK(bucket.try_take(k_t0 + 2s));
}

TEST_CASE("a time earlier than the last one does not add tokens") {
  TokenBucket bucket(1.0, 1, k_t0 + 10s);
  REQUIRE(bucket.try_take(k_t0 + 10s));
  CHECK_FALSE(bucket.try_take(k_t0));
  CHECK_FALSE(bucket.try_take(k_t0 + 10s + 999ms));
  CHECK(bucket.try_take(k_t0 + 11s));
}
