#include "dfhook/service/delivery_log.hpp"

#include "dfhook/core/envelope.hpp"
#include "dfhook/io/file.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <array>

using dfhook::service::format_received_at;
using dfhook::service::SpoolDeliveryLog;

TEST_CASE("received_at is RFC 3339 UTC with microseconds") {
  const std::chrono::system_clock::time_point time{std::chrono::microseconds(1764756000123456)};
  CHECK(format_received_at(time) == "2025-12-03T10:00:00.123456Z");
  CHECK(format_received_at(std::chrono::system_clock::time_point{}) ==
        "1970-01-01T00:00:00.000000Z");
}

TEST_CASE("a saved delivery reads back with its exact body and headers, without credentials") {
  dfhook::test::TempDir dir;
  dfhook::io::Spool spool(dir.path() / "deliveries", 10);
  SpoolDeliveryLog log(spool);

  const std::string body = "{\"a\":\"\\/\xe2\x80\xa8\"}\n";
  const std::array headers{
      dfhook::net::HttpHeader{"Content-Type", "application/json"},
      dfhook::net::HttpHeader{"X-Hub-Signature", "sha1=00"},
      dfhook::net::HttpHeader{"Authorization", "Bearer secret-token"},
      dfhook::net::HttpHeader{"x-hub-signature", "sha1=00"},
  };
  dfhook::net::HttpRequest request{"POST", "/webhooks/optimizely?x=1", headers, body,
                                   "127.0.0.1:50000"};
  const std::chrono::system_clock::time_point time{std::chrono::microseconds(1764756000123456)};
  log.save(request, time);

  const auto files = dfhook::io::Spool::list(spool.dir());
  REQUIRE(files.size() == 1);
  CHECK(files[0].filename().string().starts_with("20251203T100000.123456Z-"));
  const std::string text = dfhook::io::read_file(files[0].string());
  CHECK(text.find("secret-token") == std::string::npos);
  const auto parsed = dfhook::core::parse_envelope(text);
  REQUIRE(parsed.ok());
  const dfhook::core::Envelope& envelope = parsed.value();
  CHECK(envelope.body == body);
  CHECK(envelope.path == "/webhooks/optimizely?x=1");
  CHECK(envelope.remote_addr == "127.0.0.1:50000");
  CHECK(envelope.received_at == "2025-12-03T10:00:00.123456Z");
  REQUIRE(envelope.headers.size() == 3);
  CHECK(envelope.headers[2].name == "x-hub-signature");
  CHECK(files[0].filename().string().find(envelope.id) != std::string::npos);
}
