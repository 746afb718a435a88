#include "dfhook/service/delivery_log.hpp"

#include "dfhook/core/envelope.hpp"

#include <fmt/format.h>

#include <ctime>

namespace dfhook::service {

std::string format_received_at(std::chrono::system_clock::time_point time) {
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch()).count();
  const auto seconds = static_cast<std::time_t>(micros / 1'000'000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                     micros % 1'000'000);
}

void SpoolDeliveryLog::save(const net::HttpRequest& request,
                            std::chrono::system_clock::time_point received_at) {
  core::Envelope envelope;
  envelope.id = io::random_id();
  envelope.received_at = format_received_at(received_at);
  envelope.remote_addr = request.remote_addr;
  envelope.method = request.method;
  envelope.path = request.target;
  envelope.headers.reserve(request.headers.size());
  for (const net::HttpHeader& header : request.headers) {
    envelope.headers.push_back({std::string(header.name), std::string(header.value)});
  }
  envelope.body = request.body;
  m_spool.save(core::serialize_envelope(envelope), received_at, envelope.id);
}

}  // namespace dfhook::service
