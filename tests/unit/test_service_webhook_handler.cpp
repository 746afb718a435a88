#include "dfhook/service/webhook_handler.hpp"

#include "dfhook/core/payload.hpp"
#include "dfhook/core/signature.hpp"
#include "dfhook/io/file.hpp"
#include "dfhook/io/store.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using dfhook::net::HttpHeader;
using dfhook::net::HttpRequest;
using dfhook::net::HttpRequestHead;
using dfhook::net::HttpResponse;
using dfhook::service::DeliverySpool;
using dfhook::service::EnqueueResult;
using dfhook::service::Metrics;
using dfhook::service::RevisionLookup;
using dfhook::service::Route;
using dfhook::service::UpdateQueue;
using dfhook::service::UpdateRequest;
using dfhook::service::WebhookContext;
using dfhook::service::WebhookHandler;
using dfhook::service::WebhookOptions;

constexpr std::string_view k_secret = "test-webhook-secret";
constexpr std::string_view k_path = "/webhooks/optimizely";
// The documented body and its signature (tests/fixtures/README.md).
constexpr std::string_view k_seed_signature = "sha1=e8c4e277c194cf9e38f998e1334028645534b7b2";
constexpr std::string_view k_invalid_signature =
    R"({"status":"error","error":"invalid signature"})";
// 2025-12-03T00:00:00Z: the environment fixture's timestamp is 1764720000.
constexpr std::int64_t k_now = 1764720000;

std::string fixture(const char* name) {
  return dfhook::io::read_file(std::string(DFHOOK_FIXTURES) + "/" + name);
}

std::string sign(std::string_view body, std::string_view secret = k_secret) {
  return dfhook::core::format_signature(dfhook::core::hmac_sha1(secret, body));
}

std::string datafile_update(
    std::string_view extra_data = {}, std::uint64_t revision = 5, std::uint64_t project = 1234,
    std::string_view cdn = "https://cdn.optimizely.com/json/1234.json",
    std::string_view origin = "https://optimizely.s3.amazonaws.com/json/1234.json",
    std::int64_t timestamp = k_now) {
  return R"({"project_id":)" + std::to_string(project) + R"(,"timestamp":)" +
         std::to_string(timestamp) + R"(,"event":"project.datafile_updated","data":{"revision":)" +
         std::to_string(revision) + R"(,"origin_url":")" + std::string(origin) +
         R"(","cdn_url":")" + std::string(cdn) + "\"" + std::string(extra_data) + "}}";
}

class FakeRevisions : public RevisionLookup {
public:
  std::optional<std::uint64_t> stored_revision(std::string_view name) override {
    ++calls;
    const auto found = revisions.find(std::string(name));
    if (found == revisions.end()) {
      return std::nullopt;
    }
    return found->second;
  }
  std::map<std::string, std::uint64_t> revisions;
  int calls = 0;
};

class FakeQueue : public UpdateQueue {
public:
  EnqueueResult enqueue(UpdateRequest request) override {
    if (full) {
      return EnqueueResult::full;
    }
    requests.push_back(std::move(request));
    return EnqueueResult::accepted;
  }
  bool full = false;
  std::vector<UpdateRequest> requests;
};

class FakeSpool : public DeliverySpool {
public:
  void save(const HttpRequest& request,
            std::chrono::system_clock::time_point received_at) override {
    if (fail) {
      throw std::runtime_error("cannot write 'spool/x.json': No space left on device");
    }
    bodies.emplace_back(request.body);
    times.push_back(received_at);
  }
  bool fail = false;
  std::vector<std::string> bodies;
  std::vector<std::chrono::system_clock::time_point> times;
};

std::shared_ptr<const dfhook::core::SecretSet> secrets(
    std::string_view value = k_secret, std::optional<std::uint64_t> project = std::nullopt) {
  auto set = std::make_shared<dfhook::core::SecretSet>();
  set->add(dfhook::core::Secret{std::string(value), project, "--secret"});
  return set;
}

// A handler with fakes around it, and a way to send it a request as the server would.
struct Harness {
  explicit Harness(WebhookOptions options = {},
                   std::shared_ptr<const dfhook::core::SecretSet> set = secrets())
      : handler(std::move(options),
                WebhookContext{revisions, queue, metrics, &spool, [this] { return datafiles; },
                               [] { return std::chrono::system_clock::from_time_t(k_now); }},
                std::move(set)) {}

  struct Answer {
    int status = 0;
    std::string body;
    std::string allow;
    std::string content_type;
    bool early = false;  // answered before the body
  };

  Answer send(std::string_view method, std::string_view target, std::string_view body,
              std::vector<HttpHeader> headers) {
    Answer answer;
    HttpResponse response;
    const HttpRequestHead head{method, target, headers};
    bool early = handler.on_route(head, response);
    if (!early) {
      response.reset();
      early = handler.on_head(head, response);
    }
    if (!early) {
      response.reset();
      handler.on_request(HttpRequest{method, target, headers, body, "127.0.0.1:50000"}, response);
    }
    handler.on_answered(target, response.status);
    answer.status = response.status;
    answer.body = response.body;
    answer.content_type = std::string(response.content_type);
    answer.early = early;
    for (const auto& field : response.headers) {
      if (field.name == "Allow") {
        answer.allow = field.value;
      }
    }
    return answer;
  }

  // A POST of `body` to the webhook path with Content-Type JSON and `signature` (none when
  // empty).
  Answer post(std::string_view body, std::string_view signature) {
    std::vector<HttpHeader> headers = {{"Content-Type", "application/json"}};
    if (!signature.empty()) {
      headers.push_back({"X-Hub-Signature", signature});
    }
    return send("POST", k_path, body, headers);
  }

  Answer post_signed(std::string_view body) {
    const std::string signature = sign(body);
    return post(body, signature);
  }

  FakeRevisions revisions;
  FakeQueue queue;
  FakeSpool spool;
  Metrics metrics;
  std::vector<dfhook::io::StoredDatafile> datafiles;
  WebhookHandler handler;
};

// A fresh directory under the temporary directory, removed at the end of the test.
struct TempDir {
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "dfhook-test-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  std::filesystem::path path;
};

}  // namespace

TEST_SUITE("step 1: route") {
  TEST_CASE("a POST to the webhook path reaches the webhook, whatever the query string") {
    Harness h;
    const std::string body = fixture("seed-payload.json");
    const auto answer = h.send("POST", "/webhooks/optimizely?source=optimizely", body,
                               {{"X-Hub-Signature", k_seed_signature}});
    CHECK(answer.status == 202);
    CHECK(h.handler.route_of("/webhooks/optimizely?x") == Route::webhook);
  }

  TEST_CASE("another method on the webhook path is a 405 allowing POST") {
    Harness h;
    const auto answer = h.send("GET", k_path, {}, {});
    CHECK(answer.status == 405);
    CHECK(answer.early);
    CHECK(answer.allow == "POST");
    CHECK(answer.body == R"({"status":"error","error":"method not allowed"})");
  }

  TEST_CASE("an unknown path is a 404 answered before the body") {
    Harness h;
    const auto answer = h.send("POST", "/webhooks/other", "{}", {});
    CHECK(answer.status == 404);
    CHECK(answer.early);
    CHECK(answer.body == R"({"status":"error","error":"not found"})");
  }

  TEST_CASE("a configured path replaces the default one") {
    WebhookOptions options;
    options.path = "/hooks/dfhook";
    Harness h(options);
    CHECK(h.send("POST", k_path, "{}", {}).status == 404);
    CHECK(h.handler.route_of("/hooks/dfhook") == Route::webhook);
  }

  TEST_CASE("/healthz answers GET and HEAD with the stored datafiles, and 405 otherwise") {
    Harness h;
    dfhook::io::StoredDatafile stored;
    stored.name = "1234.json";
    stored.meta.revision = 3;
    stored.meta.updated_at = std::chrono::system_clock::from_time_t(k_now);
    h.datafiles.push_back(stored);
    const auto answer = h.send("GET", "/healthz", {}, {});
    CHECK(answer.status == 200);
    CHECK(answer.content_type == "application/json");
    CHECK(answer.body == R"({"status":"ok","datafiles":[{"name":"1234.json","revision":3,)"
                         R"("updated_at":"2025-12-03T00:00:00Z"}]})");
    CHECK(h.send("HEAD", "/healthz", {}, {}).status == 200);
    const auto post = h.send("POST", "/healthz", {}, {});
    CHECK(post.status == 405);
    CHECK(post.allow == "GET, HEAD");
  }

  TEST_CASE("/metrics answers Prometheus text counting requests by route and status") {
    Harness h;
    h.send("GET", "/nowhere", {}, {});
    h.post("{}", {});
    const auto answer = h.send("GET", "/metrics", {}, {});
    CHECK(answer.status == 200);
    CHECK(answer.content_type == "text/plain; version=0.0.4; charset=utf-8");
    CHECK(answer.body.find(R"(dfhook_http_requests_total{route="other",status="404"} 1)") !=
          std::string::npos);
    CHECK(answer.body.find(R"(dfhook_http_requests_total{route="webhook",status="401"} 1)") !=
          std::string::npos);
    CHECK(h.send("DELETE", "/metrics", {}, {}).status == 405);
  }
}

TEST_SUITE("step 3: content type and encoding") {
  TEST_CASE("application/json with parameters in any case is accepted, and so is none") {
    Harness h;
    const std::string body = fixture("seed-payload.json");
    CHECK(h.send("POST", k_path, body,
                 {{"content-type", "Application/JSON; charset=utf-8"},
                  {"X-Hub-Signature", k_seed_signature}})
              .status == 202);
    CHECK(h.send("POST", k_path, body, {{"X-Hub-Signature", k_seed_signature}}).status == 202);
  }

  TEST_CASE("another content type is a 415 answered before the body") {
    Harness h;
    const auto answer =
        h.send("POST", k_path, "a=1", {{"Content-Type", "application/x-www-form-urlencoded"}});
    CHECK(answer.status == 415);
    CHECK(answer.early);
    CHECK(answer.body == R"({"status":"error","error":"send Content-Type: application/json"})");
    CHECK(h.send("POST", k_path, "{}", {{"Content-Type", "application/jsonx"}}).status == 415);
  }

  TEST_CASE("a Content-Encoding other than identity is a 415") {
    Harness h;
    const auto gzip = h.send("POST", k_path, "\x1f\x8b", {{"Content-Encoding", "gzip"}});
    CHECK(gzip.status == 415);
    CHECK(gzip.early);
    CHECK(gzip.body == R"({"status":"error","error":"send the body without Content-Encoding"})");
    const std::string body = fixture("seed-payload.json");
    CHECK(h.send("POST", k_path, body,
                 {{"Content-Encoding", " Identity "}, {"X-Hub-Signature", k_seed_signature}})
              .status == 202);
  }

  TEST_CASE("a transfer coding other than chunked is a 415, never ignored") {
    Harness h;
    for (const char* coding : {"gzip, chunked", "chunked, gzip", "deflate"}) {
      CAPTURE(coding);
      const auto answer = h.send("POST", k_path, "{}", {{"Transfer-Encoding", coding}});
      CHECK(answer.status == 415);
      CHECK(answer.early);
      CHECK(answer.body == R"({"status":"error","error":"send the body without transfer )"
                           R"(codings other than chunked"})");
    }
    const std::string body = fixture("seed-payload.json");
    CHECK(h.send("POST", k_path, body,
                 {{"Transfer-Encoding", " Chunked "}, {"X-Hub-Signature", k_seed_signature}})
              .status == 202);
  }
}

TEST_SUITE("step 4: signature") {
  TEST_CASE("the documented body with its documented signature is accepted") {
    Harness h;
    const auto answer = h.post(fixture("seed-payload.json"), k_seed_signature);
    CHECK(answer.status == 202);
    CHECK(answer.body == R"({"status":"accepted","revision":1})");
  }

  TEST_CASE("missing, malformed and wrong signatures get the same 401 words") {
    Harness h;
    const std::string body = fixture("seed-payload.json");
    for (const std::string_view signature :
         {std::string_view{}, std::string_view{"sha1=xyz"}, std::string_view{"sha256=abc"},
          std::string_view{"sha1=0000000000000000000000000000000000000000"}}) {
      CAPTURE(signature);
      const auto answer = h.post(body, signature);
      CHECK(answer.status == 401);
      CHECK(answer.body == k_invalid_signature);
    }
    CHECK(h.metrics.signature_failures() == 4);
    CHECK(h.queue.requests.empty());
    CHECK(h.revisions.calls == 0);
  }

  TEST_CASE("a signature made with another secret is a 401") {
    Harness h;
    const std::string body = fixture("seed-payload.json");
    CHECK(h.post(body, sign(body, "another-secret")).status == 401);
  }

  TEST_CASE("the header name is matched in any case and the hex in any case") {
    Harness h;
    const std::string body = fixture("seed-payload.json");
    std::string upper(k_seed_signature);
    for (std::size_t i = 5; i < upper.size(); ++i) {
      upper[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(upper[i])));
    }
    CHECK(h.send("POST", k_path, body, {{"x-hub-signature", upper}}).status == 202);
  }

  TEST_CASE("repeated identical signatures are one; differing ones are a 401") {
    Harness h;
    const std::string body = fixture("seed-payload.json");
    CHECK(h.send("POST", k_path, body,
                 {{"X-Hub-Signature", k_seed_signature}, {"x-hub-signature", k_seed_signature}})
              .status == 202);
    const std::string other = sign(body, "another-secret");
    const auto answer = h.send("POST", k_path, body,
                               {{"X-Hub-Signature", k_seed_signature}, {"X-Hub-Signature", other}});
    CHECK(answer.status == 401);
    CHECK(answer.body == k_invalid_signature);
  }

  TEST_CASE("any of several secrets signs, and secrets can be replaced") {
    auto set = std::make_shared<dfhook::core::SecretSet>();
    set->add(dfhook::core::Secret{"old-secret", std::nullopt, "'s':1"});
    set->add(dfhook::core::Secret{std::string(k_secret), std::nullopt, "'s':2"});
    Harness h({}, set);
    const std::string body = fixture("seed-payload.json");
    CHECK(h.post(body, sign(body, "old-secret")).status == 202);
    h.handler.replace_secrets(secrets("new-secret"));
    CHECK(h.post(body, k_seed_signature).status == 401);
    CHECK(h.post(body, sign(body, "new-secret")).status == 202);
  }

  TEST_CASE("--insecure-skip-signature accepts an unsigned delivery") {
    WebhookOptions options;
    options.skip_signature = true;
    Harness h(options, nullptr);
    CHECK(h.post(fixture("seed-payload.json"), {}).status == 202);
  }
}

TEST_SUITE("spool (--save-dir)") {
  TEST_CASE("every delivery that passed the signature is saved before it is answered") {
    Harness h;
    const std::string body = fixture("seed-payload.json");
    h.post(body, k_seed_signature);
    h.post(body, "sha1=0000000000000000000000000000000000000000");
    const std::string flag = R"({"event":"project.flag_updated","data":[1]})";
    h.post_signed(flag);
    REQUIRE(h.spool.bodies.size() == 2);
    CHECK(h.spool.bodies[0] == body);
    CHECK(h.spool.bodies[1] == flag);
    CHECK(h.spool.times[0] == std::chrono::system_clock::from_time_t(k_now));
  }

  TEST_CASE("a delivery that cannot be saved is a 503 and is not enqueued") {
    Harness h;
    h.spool.fail = true;
    const auto answer = h.post(fixture("seed-payload.json"), k_seed_signature);
    CHECK(answer.status == 503);
    CHECK(answer.body == R"({"status":"error","error":"cannot save the delivery; retry later"})");
    CHECK(h.queue.requests.empty());
    CHECK(h.metrics.render({}, {}).find(
              "dfhook_webhook_deliveries_total{outcome=\"unavailable\"} 1\n") != std::string::npos);
  }
}

TEST_SUITE("step 5: payload") {
  TEST_CASE("a payload breaking the rules is a 400 with the pointer of the problem") {
    Harness h;
    const std::string body =
        R"({"project_id":1234,"timestamp":1,"event":"project.datafile_updated",)"
        R"("data":{"revision":"7","origin_url":"https://optimizely.s3.amazonaws.com/json/1234.json",)"
        R"("cdn_url":"https://cdn.optimizely.com/json/1234.json"}})";
    const auto expected = dfhook::core::parse_payload(body);
    REQUIRE_FALSE(expected.ok());
    REQUIRE(expected.problem().pointer == "/data/revision");
    const auto answer = h.post_signed(body);
    CHECK(answer.status == 400);
    CHECK(answer.body == R"({"status":"error","error":")" + expected.problem().reason +
                             R"(","pointer":"/data/revision"})");
    CHECK(h.queue.requests.empty());
  }

  TEST_CASE("a body that is not JSON is a 400") {
    Harness h;
    const auto answer = h.post_signed("not json");
    CHECK(answer.status == 400);
    CHECK(answer.body.rfind(R"({"status":"error","error":")", 0) == 0);
  }

  TEST_CASE("a duplicate key is a 400 even though the signature is right") {
    Harness h;
    const auto answer = h.post_signed(R"({"event":"a","event":"b"})");
    CHECK(answer.status == 400);
    CHECK(answer.body.find(R"("pointer":"/event")") != std::string::npos);
  }
}

TEST_SUITE("step 6: filters") {
  TEST_CASE("another event, even with array data, is acknowledged as ignored") {
    Harness h;
    const auto answer = h.post_signed(
        R"({"project_id":1234,"timestamp":1,"event":"project.flag_updated","data":[{"a":1}]})");
    CHECK(answer.status == 200);
    CHECK(answer.body ==
          R"({"status":"ignored","reason":"event 'project.flag_updated' is not handled"})");
    CHECK(h.queue.requests.empty());
  }

  TEST_CASE("a project outside --project-id is ignored; one inside is accepted") {
    WebhookOptions options;
    options.project_ids = {99, 1234};
    Harness h(options);
    CHECK(h.post_signed(datafile_update()).status == 202);
    const auto answer = h.post_signed(datafile_update({}, 5, 4321));
    CHECK(answer.status == 200);
    CHECK(answer.body ==
          R"({"status":"ignored","reason":"project 4321 is not one of --project-id"})");
  }

  TEST_CASE("--environment matches case-insensitively") {
    WebhookOptions options;
    options.environments = {"production"};
    Harness h(options);
    const auto answer = h.post(fixture("payload-environment.json"),
                               "sha1=d28db150d48e41897f554652d04312fa64392a41");
    CHECK(answer.status == 202);
    REQUIRE(h.queue.requests.size() == 1);
    CHECK(h.queue.requests[0].environment == "Production");
    const auto staging = h.post_signed(datafile_update(R"(,"environment":"Staging")"));
    CHECK(staging.status == 200);
    CHECK(staging.body ==
          R"({"status":"ignored","reason":"environment 'Staging' is not one of --environment"})");
  }

  TEST_CASE("a payload without environment is ignored when --environment is given") {
    WebhookOptions options;
    options.environments = {"Production"};
    Harness h(options);
    const auto answer = h.post_signed(datafile_update());
    CHECK(answer.status == 200);
    CHECK(answer.body == R"({"status":"ignored","reason":"the payload names no environment and )"
                         R"(--environment is given"})");
  }

  TEST_CASE("a timestamp older than --max-age is ignored; a recent one is accepted") {
    WebhookOptions options;
    options.max_age = std::chrono::minutes(5);
    Harness h(options);
    CHECK(h.post_signed(datafile_update({}, 5, 1234, "https://cdn.optimizely.com/json/1234.json",
                                        "https://optimizely.s3.amazonaws.com/json/1234.json",
                                        k_now - 300))
              .status == 202);
    const auto answer = h.post(fixture("seed-payload.json"), k_seed_signature);
    CHECK(answer.status == 200);
    CHECK(answer.body ==
          R"({"status":"ignored","reason":"timestamp 1468447113 is older than --max-age 5m"})");
  }

  TEST_CASE("a timestamp further in the future than --max-age is ignored too") {
    WebhookOptions options;
    options.max_age = std::chrono::minutes(5);
    Harness h(options);
    const auto url = "https://cdn.optimizely.com/json/1234.json";
    const auto origin = "https://optimizely.s3.amazonaws.com/json/1234.json";
    CHECK(h.post_signed(datafile_update({}, 5, 1234, url, origin, k_now + 300)).status == 202);
    const auto answer = h.post_signed(datafile_update({}, 6, 1234, url, origin, k_now + 301));
    CHECK(answer.status == 200);
    CHECK(answer.body == R"({"status":"ignored","reason":"timestamp )" +
                             std::to_string(k_now + 301) +
                             R"( is more than --max-age 5m in the future"})");
  }

  TEST_CASE("a secret bound to another project is a 401; bound to this one, accepted") {
    auto set = std::make_shared<dfhook::core::SecretSet>();
    set->add(dfhook::core::Secret{"bound-secret", 4321, "'s':1"});
    set->add(dfhook::core::Secret{"mine", 1234, "'s':2"});
    Harness h({}, set);
    const std::string body = datafile_update();
    const auto answer = h.post(body, sign(body, "bound-secret"));
    CHECK(answer.status == 401);
    CHECK(answer.body == k_invalid_signature);
    CHECK(h.post(body, sign(body, "mine")).status == 202);
  }

  TEST_CASE("a cdn_url on a host not allowed is a 400 pointing at /data/cdn_url") {
    Harness h;
    const auto answer =
        h.post_signed(datafile_update({}, 5, 1234, "https://evil.example/json/1234.json"));
    CHECK(answer.status == 400);
    CHECK(answer.body == R"({"status":"error","error":"host 'evil.example' is not allowed",)"
                         R"("pointer":"/data/cdn_url"})");
    CHECK(h.queue.requests.empty());
  }

  TEST_CASE("a cdn_url over plain HTTP is a 400 unless --allow-http") {
    const std::string body =
        datafile_update({}, 5, 1234, "http://cdn.optimizely.com/json/1234.json");
    Harness h;
    const auto answer = h.post_signed(body);
    CHECK(answer.status == 400);
    CHECK(answer.body ==
          R"({"status":"error","error":"only https is allowed","pointer":"/data/cdn_url"})");
    WebhookOptions options;
    options.allow_http = true;
    Harness allowing(options);
    CHECK(allowing.post_signed(body).status == 202);
  }

  TEST_CASE("an origin_url on a host not allowed is a 400 pointing at /data/origin_url") {
    Harness h;
    const auto answer =
        h.post_signed(datafile_update({}, 5, 1234, "https://cdn.optimizely.com/json/1234.json",
                                      "https://origin.example/1234.json"));
    CHECK(answer.status == 400);
    CHECK(answer.body.find(R"("pointer":"/data/origin_url")") != std::string::npos);
  }

  TEST_CASE("--allow-host replaces the default hosts") {
    WebhookOptions options;
    options.allowed_hosts = {"cdn.example", "origin.example"};
    Harness h(options);
    CHECK(h.post_signed(datafile_update({}, 5, 1234, "https://cdn.example/json/1234.json",
                                        "https://origin.example/json/1234.json"))
              .status == 202);
    CHECK(h.post_signed(datafile_update()).status == 400);
  }

  TEST_CASE("a URL seen before gets the same verdict, also after many other URLs") {
    Harness h;
    const std::string evil = datafile_update({}, 5, 1234, "https://evil.example/json/1234.json");
    const std::string refused = R"({"status":"error","error":"host 'evil.example' is not allowed",)"
                                R"("pointer":"/data/cdn_url"})";
    CHECK(h.post_signed(evil).body == refused);
    CHECK(h.post_signed(evil).body == refused);
    CHECK(h.post_signed(datafile_update()).status == 202);
    CHECK(h.post_signed(datafile_update()).status == 202);
    // More distinct URLs than the handler remembers: the first ones are judged again.
    for (int i = 0; i < 100; ++i) {
      const std::string host = "cdn" + std::to_string(i) + ".example";
      const auto answer =
          h.post_signed(datafile_update({}, 5, 1234, "https://" + host + "/1.json"));
      REQUIRE(answer.status == 400);
      CHECK(answer.body.find("host '" + host + "' is not allowed") != std::string::npos);
    }
    CHECK(h.post_signed(evil).body == refused);
    CHECK(h.post_signed(datafile_update()).status == 202);
    CHECK(h.queue.requests.size() == 3);
  }
}

TEST_SUITE("step 7: stored revision") {
  TEST_CASE("the stored revision or a newer one is up-to-date; an older one is updated") {
    Harness h;
    h.revisions.revisions["1234.json"] = 5;
    const auto same = h.post_signed(datafile_update({}, 5));
    CHECK(same.status == 200);
    CHECK(same.body == R"({"status":"up-to-date"})");
    CHECK(h.post_signed(datafile_update({}, 4)).body == R"({"status":"up-to-date"})");
    const auto newer = h.post_signed(datafile_update({}, 6));
    CHECK(newer.status == 202);
    CHECK(newer.body == R"({"status":"accepted","revision":6})");
    CHECK(h.queue.requests.size() == 1);
  }
}

TEST_SUITE("step 8: enqueue") {
  TEST_CASE("an accepted delivery enqueues the datafile with what the worker needs") {
    Harness h;
    const auto answer = h.post(fixture("payload-environment.json"),
                               "sha1=d28db150d48e41897f554652d04312fa64392a41");
    CHECK(answer.status == 202);
    CHECK(answer.body == R"({"status":"accepted","revision":87})");
    REQUIRE(h.queue.requests.size() == 1);
    const UpdateRequest& request = h.queue.requests[0];
    CHECK(request.name == "TestSdkKey123.json");
    CHECK(request.project_id == 10847551550U);
    CHECK(request.revision == 87U);
    CHECK(request.cdn_url == "https://cdn.optimizely.com/datafiles/TestSdkKey123.json");
    CHECK(request.origin_url == "https://optimizely.s3.amazonaws.com/datafiles/TestSdkKey123.json");
    CHECK(request.environment == "Production");
  }

  TEST_CASE("a full queue is a 503 so the sender retries") {
    Harness h;
    h.queue.full = true;
    const auto answer = h.post(fixture("seed-payload.json"), k_seed_signature);
    CHECK(answer.status == 503);
    CHECK(answer.body == R"({"status":"error","error":"too many datafiles waiting for an )"
                         R"(update; retry later"})");
    const std::string text = h.metrics.render({}, {});
    CHECK(text.find("dfhook_webhook_deliveries_total{outcome=\"unavailable\"} 1\n") !=
          std::string::npos);
    CHECK(text.find("dfhook_webhook_deliveries_total{outcome=\"invalid\"} 0\n") !=
          std::string::npos);
  }
}

TEST_CASE("StoreRevisionLookup follows the store as datafiles are written") {
  TempDir dir;
  dfhook::io::FileDatafileStore store(dir.path / "datafiles");
  dfhook::service::StoreRevisionLookup lookup(store);
  CHECK_FALSE(lookup.stored_revision("1234.json").has_value());
  const std::string r1 = fixture("datafile-1234-r1.json");
  dfhook::io::DatafileMeta meta;
  meta.revision = 1;
  meta.source_url = "https://cdn.optimizely.com/json/1234.json";
  (void)store.commit("1234.json", r1, meta);
  CHECK(lookup.stored_revision("1234.json") == 1U);
  CHECK(lookup.stored_revision("1234.json") == 1U);
  meta.revision = 2;
  (void)store.commit("1234.json", r1 + " ", meta);
  CHECK(lookup.stored_revision("1234.json") == 2U);
  std::filesystem::remove(store.datafile_path("1234.json"));
  CHECK_FALSE(lookup.stored_revision("1234.json").has_value());
  CHECK_FALSE(lookup.stored_revision("../1234.json").has_value());
}

TEST_CASE("StoreRevisionLookup sees outside changes between rechecks") {
  TempDir dir;
  dfhook::io::FileDatafileStore store(dir.path / "datafiles");
  // No recheck for an hour: inotify alone must tell that the out-dir changed.
  dfhook::service::StoreRevisionLookup lookup(store, std::chrono::hours(1));
  const std::string r1 = fixture("datafile-1234-r1.json");
  dfhook::io::DatafileMeta meta;
  meta.revision = 1;
  meta.source_url = "https://cdn.optimizely.com/json/1234.json";
  (void)store.commit("1234.json", r1, meta);
  REQUIRE(lookup.stored_revision("1234.json") == 1U);

  SUBCASE("another writer of the same out-dir (fetch-datafile from cron)") {
    dfhook::io::FileDatafileStore other(dir.path / "datafiles");
    meta.revision = 2;
    (void)other.commit("1234.json", r1 + " ", meta);
    CHECK(lookup.stored_revision("1234.json") == 2U);
  }
  SUBCASE("the datafile deleted by hand") {
    std::filesystem::remove(store.datafile_path("1234.json"));
    CHECK_FALSE(lookup.stored_revision("1234.json").has_value());
  }
  SUBCASE("the metadata deleted by hand") {
    std::filesystem::remove(store.meta_path("1234.json"));
    CHECK_FALSE(lookup.stored_revision("1234.json").has_value());
  }
  SUBCASE("the metadata edited in place to a lower revision") {
    std::string text = dfhook::io::read_file(store.meta_path("1234.json").string());
    const auto at = text.find("\"revision\":1");
    REQUIRE(at != std::string::npos);
    std::ofstream(store.meta_path("1234.json"), std::ios::binary | std::ios::trunc)
        << text.replace(at, 12, "\"revision\":0");
    CHECK(lookup.stored_revision("1234.json") == 0U);
  }
  SUBCASE("the out-dir moved away and an empty one made in its place") {
    std::filesystem::rename(dir.path / "datafiles", dir.path / "old");
    std::filesystem::create_directories(dir.path / "datafiles" / ".dfhook");
    CHECK_FALSE(lookup.stored_revision("1234.json").has_value());
    CHECK_FALSE(lookup.stored_revision("1234.json").has_value());
  }
}

TEST_CASE("StoreRevisionLookup rechecks what inotify cannot see, and follows the path then") {
  // The out-dir is a symbolic link, switched to another directory: nothing in the watched
  // directory changes, so only the recheck notices; from then on the new one is watched.
  TempDir dir;
  const std::string r1 = fixture("datafile-1234-r1.json");
  dfhook::io::DatafileMeta meta;
  meta.source_url = "https://cdn.optimizely.com/json/1234.json";
  for (const std::uint64_t revision : {1U, 2U}) {
    dfhook::io::FileDatafileStore release(dir.path / ("release-" + std::to_string(revision)));
    meta.revision = revision;
    (void)release.commit("1234.json", r1, meta);
  }
  std::filesystem::create_directory_symlink("release-1", dir.path / "current");
  dfhook::io::FileDatafileStore store(dir.path / "current");
  auto now = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  dfhook::service::StoreRevisionLookup lookup(store, std::chrono::seconds(1), [&] { return now; });
  REQUIRE(lookup.stored_revision("1234.json") == 1U);
  std::filesystem::create_directory_symlink("release-2", dir.path / "next");
  std::filesystem::rename(dir.path / "next", dir.path / "current");
  now += std::chrono::seconds(1);
  CHECK(lookup.stored_revision("1234.json") == 2U);
  // The same instant: only a watch on release-2 can tell.
  std::filesystem::remove(dir.path / "release-2" / "1234.json");
  CHECK_FALSE(lookup.stored_revision("1234.json").has_value());
}

TEST_CASE("StoreRevisionLookup sees metadata edited in place with its mtime put back") {
  TempDir dir;
  dfhook::io::FileDatafileStore store(dir.path / "datafiles");
  dfhook::service::StoreRevisionLookup lookup(store, std::chrono::hours(1));
  dfhook::io::DatafileMeta meta;
  meta.revision = 1;
  meta.source_url = "https://cdn.optimizely.com/json/1234.json";
  (void)store.commit("1234.json", fixture("datafile-1234-r1.json"), meta);
  REQUIRE(lookup.stored_revision("1234.json") == 1U);
  const std::filesystem::path path = store.meta_path("1234.json");
  struct stat before {};
  REQUIRE(::stat(path.c_str(), &before) == 0);
  std::string text = dfhook::io::read_file(path.string());
  const auto at = text.find("\"revision\":1");
  REQUIRE(at != std::string::npos);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text.replace(at, 12, "\"revision\":9");
  const timespec times[2] = {before.st_atim, before.st_mtim};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
  CHECK(lookup.stored_revision("1234.json") == 9U);
}
