#pragma once

#include "dfhook/io/store.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace dfhook::service {

// Which route of listen a request went to (DESIGN §3 step 1).
enum class Route { webhook, healthz, metrics, other };

// What became of a webhook delivery that reached the handler's decision.
// unavailable: answered 503 (the update queue is full or the delivery could not be saved), so
// that the sender retries.
enum class DeliveryOutcome { accepted, ignored, up_to_date, invalid, unavailable };

// The counters of listen, rendered as Prometheus text (version 0.0.4), every name prefixed
// "dfhook_". Every count_/observe_ call is lock-free and may come from any thread.
class Metrics {
public:
  // Upper bounds (seconds) of the fetch duration histogram buckets, +Inf implied.
  static constexpr std::array<double, 10> k_fetch_buckets = {0.05, 0.1, 0.25, 0.5, 1,
                                                             2.5,  5,   10,   30,  60};

  void count_request(Route route, int status) noexcept;  // statuses 100..599, else ignored
  void count_delivery(DeliveryOutcome outcome) noexcept;
  void count_signature_failure() noexcept;
  void count_update() noexcept;       // a newer datafile was stored
  void count_fetch_error() noexcept;  // a download or validation failed
  void count_stale_retry() noexcept;  // the CDN served an older revision; retried later
  void count_hook_run(bool failed) noexcept;
  void observe_fetch_duration(std::chrono::nanoseconds duration) noexcept;

  [[nodiscard]] std::uint64_t requests(Route route, int status) const noexcept;
  [[nodiscard]] std::uint64_t signature_failures() const noexcept;

  // The exposition: the counters, the histogram, and per datafile of `datafiles` its
  // revision and its age in seconds (now - updated_at).
  [[nodiscard]] std::string render(std::span<const io::StoredDatafile> datafiles,
                                   std::chrono::system_clock::time_point now) const;

private:
  static constexpr int k_first_status = 100;
  static constexpr std::size_t k_statuses = 500;
  static constexpr std::size_t k_routes = 4;

  std::array<std::array<std::atomic<std::uint64_t>, k_statuses>, k_routes> m_requests{};
  std::array<std::atomic<std::uint64_t>, 5> m_deliveries{};
  std::atomic<std::uint64_t> m_signature_failures{0};
  std::atomic<std::uint64_t> m_updates{0};
  std::atomic<std::uint64_t> m_fetch_errors{0};
  std::atomic<std::uint64_t> m_stale_retries{0};
  std::atomic<std::uint64_t> m_hook_runs{0};
  std::atomic<std::uint64_t> m_hook_failures{0};
  std::array<std::atomic<std::uint64_t>, k_fetch_buckets.size() + 1> m_fetch_buckets{};
  std::atomic<std::uint64_t> m_fetch_count{0};
  std::atomic<std::uint64_t> m_fetch_nanoseconds{0};
};

// The /healthz answer: {"status":"ok","datafiles":[{"name":…,"revision":…,"updated_at":…}]}
// with updated_at in RFC 3339 UTC ("2024-05-01T12:00:00Z"), datafiles in the given order.
[[nodiscard]] std::string render_health(std::span<const io::StoredDatafile> datafiles);

// "2024-05-01T12:00:00Z" (seconds precision).
[[nodiscard]] std::string format_rfc3339(std::chrono::system_clock::time_point time);

}  // namespace dfhook::service
