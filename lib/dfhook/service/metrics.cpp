#include "dfhook/service/metrics.hpp"

#include "dfhook/core/rapidjson_reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <iterator>

namespace dfhook::service {

namespace {

constexpr std::array<std::string_view, 4> k_route_names = {"webhook", "healthz", "metrics",
                                                           "other"};
constexpr std::array<std::string_view, 5> k_outcome_names = {"accepted", "ignored", "up_to_date",
                                                             "invalid", "unavailable"};

void add(std::atomic<std::uint64_t>& counter) noexcept {
  counter.fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t load(const std::atomic<std::uint64_t>& counter) noexcept {
  return counter.load(std::memory_order_relaxed);
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void scalar(std::string& out, std::string_view name, std::string_view help,
            const std::atomic<std::uint64_t>& counter) {
  header(out, name, "counter", help);
  fmt::format_to(std::back_inserter(out), "{} {}\n", name, load(counter));
}

// A label value as the exposition format wants it: backslash, quote and newline escaped.
std::string label_value(std::string_view value) {
  std::string escaped;
  escaped.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      escaped += "\\\\";
    } else if (c == '"') {
      escaped += "\\\"";
    } else if (c == '\n') {
      escaped += "\\n";
    } else {
      escaped += c;
    }
  }
  return escaped;
}

}  // namespace

void Metrics::count_request(Route route, int status) noexcept {
  if (status < k_first_status || status >= k_first_status + static_cast<int>(k_statuses)) {
    return;
  }
  add(m_requests[static_cast<std::size_t>(route)]
                [static_cast<std::size_t>(status - k_first_status)]);
}

void Metrics::count_delivery(DeliveryOutcome outcome) noexcept {
  add(m_deliveries[static_cast<std::size_t>(outcome)]);
}

void Metrics::count_signature_failure() noexcept {
  add(m_signature_failures);
}
void Metrics::count_update() noexcept {
  add(m_updates);
}
void Metrics::count_fetch_error() noexcept {
  add(m_fetch_errors);
}
void Metrics::count_stale_retry() noexcept {
  add(m_stale_retries);
}

void Metrics::count_hook_run(bool failed) noexcept {
  add(m_hook_runs);
  if (failed) {
    add(m_hook_failures);
  }
}

void Metrics::observe_fetch_duration(std::chrono::nanoseconds duration) noexcept {
  const double seconds = std::chrono::duration<double>(duration).count();
  std::size_t bucket = 0;
  while (bucket < k_fetch_buckets.size() && seconds > k_fetch_buckets[bucket]) {
    ++bucket;
  }
  add(m_fetch_buckets[bucket]);
  add(m_fetch_count);
  m_fetch_nanoseconds.fetch_add(
      static_cast<std::uint64_t>(std::max<std::int64_t>(duration.count(), 0)),
      std::memory_order_relaxed);
}

std::uint64_t Metrics::requests(Route route, int status) const noexcept {
  if (status < k_first_status || status >= k_first_status + static_cast<int>(k_statuses)) {
    return 0;
  }
  return load(m_requests[static_cast<std::size_t>(route)]
                        [static_cast<std::size_t>(status - k_first_status)]);
}

std::uint64_t Metrics::signature_failures() const noexcept {
  return load(m_signature_failures);
}

std::string Metrics::render(std::span<const io::StoredDatafile> datafiles,
                            std::chrono::system_clock::time_point now) const {
  std::string out;
  out.reserve(4096);
  auto to = std::back_inserter(out);

  header(out, "dfhook_http_requests_total", "counter",
         "HTTP requests answered, by route and status.");
  for (std::size_t route = 0; route < k_routes; ++route) {
    for (std::size_t status = 0; status < k_statuses; ++status) {
      const std::uint64_t count = load(m_requests[route][status]);
      if (count != 0) {
        fmt::format_to(to, "dfhook_http_requests_total{{route=\"{}\",status=\"{}\"}} {}\n",
                       k_route_names[route], static_cast<int>(status) + k_first_status, count);
      }
    }
  }

  header(out, "dfhook_webhook_deliveries_total", "counter",
         "Signed webhook deliveries, by what became of them.");
  for (std::size_t outcome = 0; outcome < k_outcome_names.size(); ++outcome) {
    fmt::format_to(to, "dfhook_webhook_deliveries_total{{outcome=\"{}\"}} {}\n",
                   k_outcome_names[outcome], load(m_deliveries[outcome]));
  }

  scalar(out, "dfhook_signature_failures_total",
         "Webhooks refused for a missing, malformed or wrong signature.", m_signature_failures);
  scalar(out, "dfhook_updates_total", "Datafiles stored with a newer revision.", m_updates);
  scalar(out, "dfhook_fetch_errors_total", "Datafile downloads or validations that failed.",
         m_fetch_errors);
  scalar(out, "dfhook_stale_retries_total",
         "Downloads retried because the CDN still served an older revision.", m_stale_retries);
  scalar(out, "dfhook_hook_runs_total", "Runs of the --on-update hook.", m_hook_runs);
  scalar(out, "dfhook_hook_failures_total",
         "Runs of the --on-update hook that failed or timed out.", m_hook_failures);

  header(out, "dfhook_fetch_duration_seconds", "histogram", "Duration of datafile downloads.");
  std::uint64_t cumulative = 0;
  for (std::size_t bucket = 0; bucket < k_fetch_buckets.size(); ++bucket) {
    cumulative += load(m_fetch_buckets[bucket]);
    fmt::format_to(to, "dfhook_fetch_duration_seconds_bucket{{le=\"{}\"}} {}\n",
                   k_fetch_buckets[bucket], cumulative);
  }
  cumulative += load(m_fetch_buckets.back());
  fmt::format_to(to, "dfhook_fetch_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", cumulative);
  fmt::format_to(to, "dfhook_fetch_duration_seconds_sum {}\n",
                 static_cast<double>(load(m_fetch_nanoseconds)) / 1e9);
  fmt::format_to(to, "dfhook_fetch_duration_seconds_count {}\n", load(m_fetch_count));

  header(out, "dfhook_datafile_revision", "gauge", "Revision of each stored datafile.");
  for (const io::StoredDatafile& datafile : datafiles) {
    fmt::format_to(to, "dfhook_datafile_revision{{datafile=\"{}\"}} {}\n",
                   label_value(datafile.name), datafile.meta.revision);
  }
  header(out, "dfhook_datafile_age_seconds", "gauge",
         "Seconds since each stored datafile's revision was stored.");
  for (const io::StoredDatafile& datafile : datafiles) {
    const double age = std::chrono::duration<double>(now - datafile.meta.updated_at).count();
    fmt::format_to(to, "dfhook_datafile_age_seconds{{datafile=\"{}\"}} {:.3f}\n",
                   label_value(datafile.name), std::max(age, 0.0));
  }
  return out;
}

std::string format_rfc3339(std::chrono::system_clock::time_point time) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", utc.tm_year + 1900, utc.tm_mon + 1,
                     utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
}

std::string render_health(std::span<const io::StoredDatafile> datafiles) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("status");
  writer.String("ok");
  writer.Key("datafiles");
  writer.StartArray();
  for (const io::StoredDatafile& datafile : datafiles) {
    writer.StartObject();
    writer.Key("name");
    writer.String(datafile.name.data(), static_cast<rapidjson::SizeType>(datafile.name.size()));
    writer.Key("revision");
    writer.Uint64(datafile.meta.revision);
    writer.Key("updated_at");
    const std::string updated_at = format_rfc3339(datafile.meta.updated_at);
    writer.String(updated_at.data(), static_cast<rapidjson::SizeType>(updated_at.size()));
    writer.EndObject();
  }
  writer.EndArray();
  writer.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

}  // namespace dfhook::service
