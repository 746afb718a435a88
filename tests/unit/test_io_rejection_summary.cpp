#include "dfhook/io/rejection_summary.hpp"

#include <doctest/doctest.h>

#include <thread>
#include <vector>

using dfhook::io::RejectionSummary;

TEST_CASE("summarises rejections by status, ascending, and starts over after a take") {
  RejectionSummary summary;
  summary.add(404);
  summary.add(401);
  summary.add(401);
  summary.add(503);
  const RejectionSummary::Counts counts = summary.take();
  CHECK(counts.total == 4);
  CHECK(counts.by_status == "401:2,404:1,503:1");
  const RejectionSummary::Counts after = summary.take();
  CHECK(after.total == 0);
  CHECK(after.by_status.empty());
}

TEST_CASE("counts statuses outside 400..599 as other") {
  RejectionSummary summary;
  summary.add(200);
  summary.add(600);
  summary.add(599);
  const RejectionSummary::Counts counts = summary.take();
  CHECK(counts.total == 3);
  CHECK(counts.by_status == "599:1,other:2");
}

TEST_CASE("flush writes nothing and returns zero when nothing was rejected") {
  RejectionSummary summary;
  CHECK(summary.flush() == 0);
  summary.add(401);
  CHECK(summary.flush() == 1);
  CHECK(summary.flush() == 0);
}

TEST_CASE("loses no count when threads add at once") {
  RejectionSummary summary;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&summary] {
      for (int i = 0; i < 10000; ++i) {
        summary.add(401);
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  CHECK(summary.take().by_status == "401:40000");
}
