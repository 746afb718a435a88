#pragma once

#include "dfhook/io/spool.hpp"
#include "dfhook/service/webhook_handler.hpp"

#include <chrono>
#include <string>

namespace dfhook::service {

// "2025-12-03T10:00:00.123456Z": the received_at of an envelope (RFC 3339, UTC, microseconds).
[[nodiscard]] std::string format_received_at(std::chrono::system_clock::time_point time);

// listen --save-dir: each delivery that passed the signature check becomes a §6 envelope,
// written durably by the spool before the delivery is answered.
class SpoolDeliveryLog final : public DeliverySpool {
public:
  explicit SpoolDeliveryLog(io::Spool& spool) : m_spool(spool) {}

  // Throws core::Error when the envelope cannot be written (the handler answers 503).
  void save(const net::HttpRequest& request,
            std::chrono::system_clock::time_point received_at) override;

private:
  io::Spool& m_spool;
};

}  // namespace dfhook::service
