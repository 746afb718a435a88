#include "dfhook/service/webhook_handler.hpp"

#include "dfhook/core/ascii.hpp"
#include "dfhook/core/json.hpp"
#include "dfhook/core/payload.hpp"
#include "dfhook/core/rapidjson_reader.hpp"
#include "dfhook/core/signature.hpp"
#include "dfhook/core/units.hpp"
#include "dfhook/io/log.hpp"
#include "dfhook/io/store.hpp"
#include "dfhook/net/url.hpp"

#include <fmt/format.h>

#include <sys/stat.h>
#include <algorithm>
#include <array>
#include <cctype>
#include <iterator>

namespace dfhook::service {

using core::iequals;

namespace {

constexpr std::string_view k_invalid_signature =
    R"({"status":"error","error":"invalid signature"})";
constexpr std::string_view k_up_to_date = R"({"status":"up-to-date"})";
constexpr std::string_view k_not_found = R"({"status":"error","error":"not found"})";
constexpr std::string_view k_method_not_allowed =
    R"({"status":"error","error":"method not allowed"})";
constexpr std::string_view k_send_json =
    R"({"status":"error","error":"send Content-Type: application/json"})";
constexpr std::string_view k_send_identity =
    R"({"status":"error","error":"send the body without Content-Encoding"})";
constexpr std::string_view k_send_chunked_only =
    R"({"status":"error","error":"send the body without transfer codings other than chunked"})";
constexpr std::string_view k_queue_full =
    R"({"status":"error","error":"too many datafiles waiting for an update; retry later"})";
constexpr std::string_view k_spool_failed =
    R"({"status":"error","error":"cannot save the delivery; retry later"})";
constexpr std::string_view k_metrics_type = "text/plain; version=0.0.4; charset=utf-8";

// More X-Hub-Signature fields than this in one request is not a sender we know: refused.
constexpr std::size_t k_max_signature_fields = 8;
// URL verdicts kept by the handler; when full they are forgotten at once (a signed sender
// that names this many different URLs gains nothing from the memory).
constexpr std::size_t k_remembered_urls = 64;
// Values from the payload are cut to this in log lines.
constexpr std::size_t k_log_value_limit = 100;

std::string_view trim(std::string_view text) noexcept {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return text;
}

// A Transfer-Encoding value naming no coding but chunked ("chunked", "Chunked , chunked" is
// left to the parser): any other coding would be ignored by the parser, and the signature
// checked over bytes the sender did not sign.
bool only_chunked(std::string_view value) noexcept {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    const std::string_view coding = trim(value.substr(0, comma));
    if (!coding.empty() && !iequals(coding, "chunked")) {
      return false;
    }
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
  }
  return true;
}

std::string_view path_of(std::string_view target) noexcept {
  return target.substr(0, target.find('?'));
}

// application/json with any parameters, the type compared case-insensitively.
bool is_json_media_type(std::string_view value) noexcept {
  return iequals(trim(value.substr(0, value.find(';'))), "application/json");
}

void method_not_allowed(net::HttpResponse& response, std::string_view allow) {
  response.status = 405;
  response.headers.push_back({"Allow", std::string(allow)});
  response.body.assign(k_method_not_allowed);
}

void answer_error(net::HttpResponse& response, int status, std::string_view message,
                  std::string_view pointer = {}) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("status");
  writer.String("error");
  writer.Key("error");
  writer.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
  if (!pointer.empty()) {
    writer.Key("pointer");
    writer.String(pointer.data(), static_cast<rapidjson::SizeType>(pointer.size()));
  }
  writer.EndObject();
  response.status = status;
  response.body.assign(buffer.GetString(), buffer.GetSize());
}

void answer_ignored(net::HttpResponse& response, std::string_view reason) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("status");
  writer.String("ignored");
  writer.Key("reason");
  writer.String(reason.data(), static_cast<rapidjson::SizeType>(reason.size()));
  writer.EndObject();
  response.status = 200;
  response.body.assign(buffer.GetString(), buffer.GetSize());
}

// A payload value for a log line: at most k_log_value_limit bytes, cut at a UTF-8 boundary.
std::string log_value(std::string_view value) {
  if (value.size() <= k_log_value_limit) {
    return std::string(value);
  }
  std::size_t cut = k_log_value_limit;
  while (cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xC0U) == 0x80U) {
    --cut;
  }
  return std::string(value.substr(0, cut)) + "...";
}

// The JSON reader's buffers, reused by every request of an I/O thread.
struct ParseScratch {
  core::JsonDocument document;
  core::Payload payload;
};

ParseScratch& parse_scratch() {
  thread_local ParseScratch scratch;
  return scratch;
}

}  // namespace

WebhookHandler::WebhookHandler(WebhookOptions options, WebhookContext context,
                               std::shared_ptr<const core::SecretSet> secrets)
    : m_options(std::move(options)), m_context(std::move(context)), m_secrets(std::move(secrets)) {
  for (std::string& environment : m_options.environments) {
    std::transform(environment.begin(), environment.end(), environment.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  }
}

void WebhookHandler::replace_secrets(std::shared_ptr<const core::SecretSet> secrets) {
  m_secrets.store(std::move(secrets));
}

std::chrono::system_clock::time_point WebhookHandler::now() const {
  return m_context.clock ? m_context.clock() : std::chrono::system_clock::now();
}

Route WebhookHandler::route_of(std::string_view target) const noexcept {
  const std::string_view path = path_of(target);
  if (path == m_options.path) {
    return Route::webhook;
  }
  if (path == "/healthz") {
    return Route::healthz;
  }
  if (path == "/metrics") {
    return Route::metrics;
  }
  return Route::other;
}

bool WebhookHandler::on_route(const net::HttpRequestHead& head, net::HttpResponse& response) {
  switch (route_of(head.target)) {
  case Route::webhook:
    if (head.method != "POST") {
      method_not_allowed(response, "POST");
      return true;
    }
    return false;
  case Route::healthz:
  case Route::metrics:
    if (head.method != "GET" && head.method != "HEAD") {
      method_not_allowed(response, "GET, HEAD");
      return true;
    }
    return false;
  case Route::other:
    break;
  }
  response.status = 404;
  response.body.assign(k_not_found);
  return true;
}

bool WebhookHandler::on_head(const net::HttpRequestHead& head, net::HttpResponse& response) {
  if (route_of(head.target) != Route::webhook) {
    return false;
  }
  for (const net::HttpHeader& header : head.headers) {
    if (iequals(header.name, "content-type") && !is_json_media_type(header.value)) {
      response.status = 415;
      response.body.assign(k_send_json);
      return true;
    }
    if (iequals(header.name, "content-encoding") && !iequals(trim(header.value), "identity")) {
      response.status = 415;
      response.body.assign(k_send_identity);
      return true;
    }
    if (iequals(header.name, "transfer-encoding") && !only_chunked(header.value)) {
      response.status = 415;
      response.body.assign(k_send_chunked_only);
      return true;
    }
  }
  return false;
}

void WebhookHandler::on_request(const net::HttpRequest& request, net::HttpResponse& response) {
  switch (route_of(request.target)) {
  case Route::webhook:
    handle_webhook(request, response);
    return;
  case Route::healthz:
    response.body = render_health(m_context.datafiles ? m_context.datafiles()
                                                      : std::vector<io::StoredDatafile>{});
    return;
  case Route::metrics:
    response.content_type = k_metrics_type;
    response.body = m_context.metrics.render(
        m_context.datafiles ? m_context.datafiles() : std::vector<io::StoredDatafile>{}, now());
    return;
  case Route::other:
    break;
  }
  response.status = 404;
  response.body.assign(k_not_found);
}

void WebhookHandler::on_answered(std::string_view target, int status) noexcept {
  m_context.metrics.count_request(route_of(target), status);
}

net::UrlCheck WebhookHandler::check_url(std::string_view url) {
  {
    const std::lock_guard lock(m_url_mutex);
    if (const auto found = m_url_verdicts.find(url); found != m_url_verdicts.end()) {
      return found->second;
    }
  }
  net::UrlCheck check = net::check_datafile_url(url, m_options.allowed_hosts, m_options.allow_http);
  const std::lock_guard lock(m_url_mutex);
  if (m_url_verdicts.size() >= k_remembered_urls) {
    m_url_verdicts.clear();
  }
  m_url_verdicts.emplace(std::string(url), check);
  return check;
}

void WebhookHandler::handle_webhook(const net::HttpRequest& request, net::HttpResponse& response) {
  // Step 4: the signature, before anything looks at the body.
  std::optional<core::SecretSet::Match> match;
  if (!m_options.skip_signature) {
    std::array<std::string_view, k_max_signature_fields> values;
    std::size_t count = 0;
    bool too_many = false;
    for (const net::HttpHeader& header : request.headers) {
      if (iequals(header.name, "x-hub-signature")) {
        if (count == values.size()) {
          too_many = true;
          break;
        }
        values[count++] = header.value;
      }
    }
    const std::shared_ptr<const core::SecretSet> secrets = m_secrets.load();
    std::optional<core::Digest> digest;
    if (!too_many) {
      digest = core::combine_signature_headers(std::span(values.data(), count));
    }
    if (digest && secrets) {
      match = secrets->verify(request.body, *digest);
    }
    if (!match) {
      m_context.metrics.count_signature_failure();
      response.status = 401;
      response.body.assign(k_invalid_signature);
      return;
    }
  }

  const std::chrono::system_clock::time_point received_at = now();
  if (m_context.spool != nullptr) {
    try {
      m_context.spool->save(request, received_at);
    } catch (const std::exception& error) {
      io::log(io::LogLevel::error, "cannot save the delivery",
              {{"error", error.what()}, {"remote", request.remote_addr}});
      response.status = 503;
      response.body.assign(k_spool_failed);
      m_context.metrics.count_delivery(DeliveryOutcome::unavailable);
      return;
    }
  }

  // Every outcome from here on is logged once, as it is decided.
  auto log_delivery = [&](DeliveryOutcome outcome, std::string_view what,
                          const core::Payload* payload, std::string_view detail) {
    m_context.metrics.count_delivery(outcome);
    if (!io::log_enabled(io::LogLevel::info)) {
      return;
    }
    if (payload == nullptr) {
      io::log(io::LogLevel::info, "delivery",
              {{"status", std::to_string(response.status)},
               {"outcome", what},
               {"error", detail},
               {"remote", request.remote_addr}});
      return;
    }
    if (!payload->is_datafile_update) {
      io::log(io::LogLevel::info, "delivery",
              {{"status", std::to_string(response.status)},
               {"outcome", what},
               {"event", log_value(payload->event)},
               {"detail", detail},
               {"remote", request.remote_addr}});
      return;
    }
    io::log(io::LogLevel::info, "delivery",
            {{"status", std::to_string(response.status)},
             {"outcome", what},
             {"event", log_value(payload->event)},
             {"project", std::to_string(payload->project_id)},
             {"revision", std::to_string(payload->revision)},
             {"datafile", payload->datafile_name},
             {"detail", detail},
             {"remote", request.remote_addr}});
  };

  // Step 5: the payload.
  ParseScratch& scratch = parse_scratch();
  std::optional<core::Problem> problem = scratch.document.parse(request.body);
  if (!problem) {
    problem = core::read_payload(scratch.document.root(), scratch.payload);
  }
  if (problem) {
    answer_error(response, 400, problem->reason, problem->pointer);
    log_delivery(
        DeliveryOutcome::invalid, "invalid", nullptr,
        problem->pointer.empty() ? problem->reason : problem->pointer + ": " + problem->reason);
    return;
  }
  const core::Payload& payload = scratch.payload;

  // Step 6: who may send it, and whether it concerns this listener.
  if (match && payload.project_id != 0 && !match->allows_project(payload.project_id)) {
    m_context.metrics.count_signature_failure();
    response.status = 401;
    response.body.assign(k_invalid_signature);
    log_delivery(DeliveryOutcome::invalid, "rejected", &payload,
                 "the secret is bound to another project");
    return;
  }
  if (!payload.is_datafile_update) {
    const std::string reason = fmt::format("event {} is not handled", core::quote(payload.event));
    answer_ignored(response, reason);
    log_delivery(DeliveryOutcome::ignored, "ignored", &payload, reason);
    return;
  }
  if (!m_options.project_ids.empty() &&
      std::find(m_options.project_ids.begin(), m_options.project_ids.end(), payload.project_id) ==
          m_options.project_ids.end()) {
    const std::string reason =
        fmt::format("project {} is not one of --project-id", payload.project_id);
    answer_ignored(response, reason);
    log_delivery(DeliveryOutcome::ignored, "ignored", &payload, reason);
    return;
  }
  if (!m_options.environments.empty()) {
    std::string reason;
    if (!payload.environment) {
      reason = "the payload names no environment and --environment is given";
    } else if (std::none_of(m_options.environments.begin(), m_options.environments.end(),
                            [&](const std::string& wanted) {
                              return iequals(wanted, *payload.environment);
                            })) {
      reason = fmt::format("environment {} is not one of --environment",
                           core::quote(*payload.environment));
    }
    if (!reason.empty()) {
      answer_ignored(response, reason);
      log_delivery(DeliveryOutcome::ignored, "ignored", &payload, reason);
      return;
    }
  }
  if (m_options.max_age) {
    const std::int64_t now_seconds =
        std::chrono::duration_cast<std::chrono::seconds>(received_at.time_since_epoch()).count();
    // A timestamp from the future passes within the same bound (clock skew), never forever:
    // else a signed delivery stamped years ahead could be replayed for years.
    const std::int64_t age = now_seconds - payload.timestamp;
    const std::int64_t bound = m_options.max_age->count();
    if (age > bound || -age > bound) {
      const std::string max_age = core::format_duration(
          std::chrono::duration_cast<std::chrono::milliseconds>(*m_options.max_age));
      const std::string reason =
          age > bound
              ? fmt::format("timestamp {} is older than --max-age {}", payload.timestamp, max_age)
              : fmt::format("timestamp {} is more than --max-age {} in the future",
                            payload.timestamp, max_age);
      answer_ignored(response, reason);
      log_delivery(DeliveryOutcome::ignored, "ignored", &payload, reason);
      return;
    }
  }
  for (const auto& [url, pointer] : {std::pair{&payload.cdn_url, "/data/cdn_url"},
                                     std::pair{&payload.origin_url, "/data/origin_url"}}) {
    const net::UrlCheck check = check_url(*url);
    if (!check.ok()) {
      answer_error(response, 400, check.reason, pointer);
      log_delivery(DeliveryOutcome::invalid, "invalid", &payload,
                   fmt::format("{}: {}", pointer, check.reason));
      return;
    }
  }

  // Step 7: nothing to do when that revision (or a newer one) is stored.
  const std::optional<std::uint64_t> stored =
      m_context.revisions.stored_revision(payload.datafile_name);
  if (stored && *stored >= payload.revision) {
    response.status = 200;
    response.body.assign(k_up_to_date);
    log_delivery(DeliveryOutcome::up_to_date, "up-to-date", &payload,
                 fmt::format("stored revision {}", *stored));
    return;
  }

  // Step 8: the update worker takes it from here.
  UpdateRequest update;
  update.name = payload.datafile_name;
  update.project_id = payload.project_id;
  update.revision = payload.revision;
  update.cdn_url = payload.cdn_url;
  update.origin_url = payload.origin_url;
  update.environment = payload.environment;
  if (m_context.queue.enqueue(std::move(update)) == EnqueueResult::full) {
    response.status = 503;
    response.body.assign(k_queue_full);
    log_delivery(DeliveryOutcome::unavailable, "queue full", &payload, {});
    return;
  }
  response.status = 202;
  response.body.clear();
  fmt::format_to(std::back_inserter(response.body), R"({{"status":"accepted","revision":{}}})",
                 payload.revision);
  log_delivery(DeliveryOutcome::accepted, "accepted", &payload,
               stored ? fmt::format("stored revision {}", *stored) : std::string("none stored"));
  // The update worker is already at it: its lines about this delivery must come after this one.
  io::flush_log();
}

StoreRevisionLookup::StoreRevisionLookup(const io::FileDatafileStore& store,
                                         Clock::duration recheck_after,
                                         std::function<Clock::time_point()> clock)
    : m_store(store),
      m_recheck_after(recheck_after),
      m_clock(std::move(clock)),
      m_watch({store.out_dir(), store.meta_dir()}),
      m_paths_followed_at(m_clock ? m_clock() : Clock::now()) {}

namespace {

// The identity and version of a file, or nullopt when it is missing or not a regular file.
template <typename Stamp>
std::optional<Stamp> stamp_of(const std::filesystem::path& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) {
    return std::nullopt;
  }
  Stamp stamp;
  stamp.device = static_cast<std::uint64_t>(info.st_dev);
  stamp.inode = static_cast<std::uint64_t>(info.st_ino);
  stamp.modified_ns = static_cast<std::int64_t>(info.st_mtim.tv_sec) * 1'000'000'000 +
                      static_cast<std::int64_t>(info.st_mtim.tv_nsec);
  stamp.changed_ns = static_cast<std::int64_t>(info.st_ctim.tv_sec) * 1'000'000'000 +
                     static_cast<std::int64_t>(info.st_ctim.tv_nsec);
  stamp.size = static_cast<std::uint64_t>(info.st_size);
  return stamp;
}

}  // namespace

std::optional<std::uint64_t> StoreRevisionLookup::stored_revision(std::string_view name) {
  if (!io::is_valid_datafile_name(name)) {
    return std::nullopt;
  }
  const Clock::time_point now = m_clock ? m_clock() : Clock::now();
  std::uint64_t generation = 0;
  {
    const std::lock_guard lock(m_mutex);
    if (m_watch.changed()) {
      ++m_generation;
    }
    const auto found = m_cache.find(name);
    if (found != m_cache.end() && found->second.generation == m_generation &&
        now - found->second.checked_at < m_recheck_after) {
      return found->second.revision;
    }
    if (now - m_paths_followed_at >= m_recheck_after) {
      m_paths_followed_at = now;
      if (m_watch.follow_paths()) {
        ++m_generation;
      }
    }
    generation = m_generation;
  }
  // A change from here on bumps m_generation at the next question, so this entry is checked
  // again then.
  const auto meta = stamp_of<FileStamp>(m_store.meta_path(name));
  const auto datafile = stamp_of<FileStamp>(m_store.datafile_path(name));
  if (!meta || !datafile) {
    // A datafile without metadata (or the reverse) counts as not stored: the update writes it.
    return std::nullopt;
  }
  {
    const std::lock_guard lock(m_mutex);
    const auto found = m_cache.find(name);
    if (found != m_cache.end() && found->second.meta == *meta &&
        found->second.datafile == *datafile) {
      found->second.generation = generation;
      found->second.checked_at = now;
      return found->second.revision;
    }
  }
  std::optional<std::uint64_t> revision;
  if (const std::optional<io::DatafileMeta> current = m_store.current(name)) {
    revision = current->revision;
  }
  const std::lock_guard lock(m_mutex);
  m_cache[std::string(name)] = Entry{*meta, *datafile, revision, generation, now};
  return revision;
}

}  // namespace dfhook::service
