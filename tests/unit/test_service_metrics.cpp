#include "dfhook/service/metrics.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using dfhook::service::DeliveryOutcome;
using dfhook::service::Metrics;
using dfhook::service::Route;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

dfhook::io::StoredDatafile stored(std::string name, std::uint64_t revision,
                                  std::chrono::system_clock::time_point updated_at) {
  dfhook::io::StoredDatafile datafile;
  datafile.name = std::move(name);
  datafile.meta.revision = revision;
  datafile.meta.updated_at = updated_at;
  return datafile;
}

}  // namespace

TEST_CASE("renders requests by route and status, only those that happened") {
  Metrics metrics;
  metrics.count_request(Route::webhook, 202);
  metrics.count_request(Route::webhook, 202);
  metrics.count_request(Route::webhook, 401);
  metrics.count_request(Route::other, 404);
  metrics.count_request(Route::healthz, 99);  // out of range: ignored
  const std::string text = metrics.render({}, std::chrono::system_clock::now());
  CHECK(has_line(text, "# TYPE dfhook_http_requests_total counter"));
  CHECK(has_line(text, R"(dfhook_http_requests_total{route="webhook",status="202"} 2)"));
  CHECK(has_line(text, R"(dfhook_http_requests_total{route="webhook",status="401"} 1)"));
  CHECK(has_line(text, R"(dfhook_http_requests_total{route="other",status="404"} 1)"));
  CHECK(text.find(R"(route="healthz")") == std::string::npos);
  CHECK(metrics.requests(Route::webhook, 202) == 2);
}

TEST_CASE("renders every counter, zero included, with the dfhook_ prefix") {
  Metrics metrics;
  metrics.count_signature_failure();
  metrics.count_update();
  metrics.count_fetch_error();
  metrics.count_stale_retry();
  metrics.count_stale_retry();
  metrics.count_hook_run(false);
  metrics.count_hook_run(true);
  metrics.count_delivery(DeliveryOutcome::up_to_date);
  const std::string text = metrics.render({}, std::chrono::system_clock::now());
  CHECK(has_line(text, "dfhook_signature_failures_total 1"));
  CHECK(has_line(text, "dfhook_updates_total 1"));
  CHECK(has_line(text, "dfhook_fetch_errors_total 1"));
  CHECK(has_line(text, "dfhook_stale_retries_total 2"));
  CHECK(has_line(text, "dfhook_hook_runs_total 2"));
  CHECK(has_line(text, "dfhook_hook_failures_total 1"));
  CHECK(has_line(text, R"(dfhook_webhook_deliveries_total{outcome="up_to_date"} 1)"));
  CHECK(has_line(text, R"(dfhook_webhook_deliveries_total{outcome="accepted"} 0)"));
  for (std::size_t start = 0; start < text.size();) {
    const std::size_t end = text.find('\n', start);
    const std::string line = text.substr(start, end - start);
    if (line[0] != '#') {
      CHECK(line.rfind("dfhook_", 0) == 0);
    }
    start = end + 1;
  }
}

TEST_CASE("renders the fetch duration histogram with cumulative buckets") {
  Metrics metrics;
  metrics.observe_fetch_duration(std::chrono::milliseconds(40));
  metrics.observe_fetch_duration(std::chrono::milliseconds(300));
  metrics.observe_fetch_duration(std::chrono::seconds(120));
  const std::string text = metrics.render({}, std::chrono::system_clock::now());
  CHECK(has_line(text, "# TYPE dfhook_fetch_duration_seconds histogram"));
  CHECK(has_line(text, R"(dfhook_fetch_duration_seconds_bucket{le="0.05"} 1)"));
  CHECK(has_line(text, R"(dfhook_fetch_duration_seconds_bucket{le="0.25"} 1)"));
  CHECK(has_line(text, R"(dfhook_fetch_duration_seconds_bucket{le="0.5"} 2)"));
  CHECK(has_line(text, R"(dfhook_fetch_duration_seconds_bucket{le="60"} 2)"));
  CHECK(has_line(text, R"(dfhook_fetch_duration_seconds_bucket{le="+Inf"} 3)"));
  CHECK(has_line(text, "dfhook_fetch_duration_seconds_sum 120.34"));
  CHECK(has_line(text, "dfhook_fetch_duration_seconds_count 3"));
}

TEST_CASE("renders revision and age per datafile") {
  Metrics metrics;
  const auto now = std::chrono::system_clock::now();
  const std::vector datafiles = {stored("1234.json", 42, now - std::chrono::seconds(90)),
                                 stored("Key\"x.json", 7, now)};
  const std::string text = metrics.render(datafiles, now);
  CHECK(has_line(text, R"(dfhook_datafile_revision{datafile="1234.json"} 42)"));
  CHECK(has_line(text, R"(dfhook_datafile_age_seconds{datafile="1234.json"} 90.000)"));
  CHECK(has_line(text, R"(dfhook_datafile_revision{datafile="Key\"x.json"} 7)"));
}

TEST_CASE("healthz lists the stored datafiles with revision and RFC 3339 time") {
  const auto at = std::chrono::system_clock::from_time_t(1714564800);  // 2024-05-01T12:00:00Z
  const std::vector datafiles = {stored("1234.json", 42, at), stored("TestSdkKey123.json", 87, at)};
  CHECK(dfhook::service::render_health(datafiles) ==
        R"({"status":"ok","datafiles":[{"name":"1234.json","revision":42,)"
        R"("updated_at":"2024-05-01T12:00:00Z"},{"name":"TestSdkKey123.json","revision":87,)"
        R"("updated_at":"2024-05-01T12:00:00Z"}]})");
  CHECK(dfhook::service::render_health({}) == R"({"status":"ok","datafiles":[]})");
}
