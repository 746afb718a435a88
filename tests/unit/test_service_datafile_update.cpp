#include "dfhook/service/datafile_update.hpp"

#include "temp_dir.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <deque>

using namespace dfhook;
using namespace dfhook::service;
using dfhook::test::read_bytes;
using dfhook::test::TempDir;
using dfhook::test::write_bytes;

namespace {

std::string datafile(std::string_view project, std::uint64_t revision) {
  return fmt::format(
      R"({{"version":"4","projectId":"{}","accountId":"1","revision":"{}","groups":[],)"
      R"("experiments":[],"events":[],"audiences":[],"attributes":[]}})",
      project, revision);
}

// Answers each fetch with the next canned response and records what was asked.
class FakeDownloader final : public net::Downloader {
public:
  struct Answer {
    long status = 200;
    std::string body;
    std::string etag;
    std::string last_modified;
    net::FetchError error = net::FetchError::none;
  };
  struct Asked {
    std::string url;
    net::Validators validators;
    std::vector<std::string> headers;
  };

  FakeDownloader& answer(Answer a) {
    m_answers.push_back(std::move(a));
    return *this;
  }

  net::FetchResult fetch(std::string_view url, const net::Validators& validators,
                         net::BodySink& sink, std::span<const std::string> headers) override {
    const bool conditional = !validators.etag.empty() || !validators.last_modified.empty();
    if (conditional && validators.confirm && !validators.confirm()) {
      // As the real client: nothing is sent.
      net::FetchResult result;
      result.error = net::FetchError::unconfirmed;
      result.url = std::string(url);
      return result;
    }
    asked.push_back({std::string(url), validators, {headers.begin(), headers.end()}});
    REQUIRE_FALSE(m_answers.empty());
    Answer a = std::move(m_answers.front());
    m_answers.pop_front();
    net::FetchResult result;
    result.url = std::string(url);
    result.status = a.status;
    result.error = a.error;
    if (a.error != net::FetchError::none) {
      result.message = fmt::format("cannot download '{}': HTTP {}", url, a.status);
      return result;
    }
    if (!failed_attempt.empty()) {
      sink.reset();
      REQUIRE(sink.write(failed_attempt));
      failed_attempt.clear();
    }
    sink.reset();
    if (a.status == 200) {
      const std::size_t step =
          chunk_size == 0 ? std::max<std::size_t>(a.body.size(), 1) : chunk_size;
      for (std::size_t at = 0; at < a.body.size(); at += step) {
        REQUIRE(sink.write(std::string_view(a.body).substr(at, step)));
      }
    }
    result.etag = a.etag;
    result.last_modified = a.last_modified;
    return result;
  }

  std::vector<Asked> asked;
  std::size_t chunk_size = 0;  // bodies are written in chunks of this size; 0: in one
  std::string failed_attempt;  // written before a reset, as by an attempt that broke off

private:
  std::deque<Answer> m_answers;
};

struct Fixture {
  TempDir dir;
  io::FileDatafileStore store{dir.path()};
  FakeDownloader cdn;
  std::vector<io::HookRequest> hooks;
  HookRunner hook = [this](const io::HookRequest& request) {
    hooks.push_back(request);
    io::HookResult result;
    result.outcome = io::HookOutcome::exited;
    result.exit_status = 0;
    return result;
  };
  UpdatePolicy policy = [] {
    UpdatePolicy p;
    p.hook_command = "true";
    return p;
  }();
  DatafileSource source{"1234.json", "https://cdn.optimizely.com/json/1234.json", {}, 1234, {}, {},
                        {}};

  UpdateReport update() { return update_datafile(cdn, store, source, policy, hook); }
};

}  // namespace

TEST_CASE("a first download is stored byte for byte with its validators and hooked") {
  Fixture f;
  const std::string body = datafile("1234", 7) + "\n";
  f.cdn.answer({200, body, "W/\"abc\"", "Tue, 01 Aug 2023 10:00:00 GMT"});
  const UpdateReport report = f.update();
  REQUIRE(report.status == UpdateStatus::updated);
  CHECK(report.revision == 7U);
  CHECK_FALSE(report.previous_revision);
  CHECK(report.size == body.size());
  CHECK(read_bytes(f.dir / "1234.json") == body);
  const auto meta = f.store.verified("1234.json");
  REQUIRE(meta);
  CHECK(meta->etag == "W/\"abc\"");
  CHECK(meta->last_modified == "Tue, 01 Aug 2023 10:00:00 GMT");
  CHECK(meta->source_url == "https://cdn.optimizely.com/json/1234.json");
  REQUIRE(f.hooks.size() == 1);
  CHECK(f.hooks[0].revision == 7);
  CHECK_FALSE(f.hooks[0].previous_revision);
  CHECK(f.hooks[0].project_id == "1234");
  CHECK(f.hooks[0].datafile == (f.dir / "1234.json").string());
  CHECK(f.cdn.asked[0].validators.etag.empty());
}

TEST_CASE("the next request carries the stored validators exactly; a 304 changes nothing") {
  Fixture f;
  f.cdn.answer({200, datafile("1234", 7), "W/\"abc\"", "Tue, 01 Aug 2023 10:00:00 GMT"});
  f.cdn.answer({304, "", "W/\"abc\"", ""});
  REQUIRE(f.update().status == UpdateStatus::updated);
  const UpdateReport report = f.update();
  CHECK(report.status == UpdateStatus::not_modified);
  CHECK(report.revision == 7U);
  CHECK(f.cdn.asked[1].validators.etag == "W/\"abc\"");
  CHECK(f.cdn.asked[1].validators.last_modified == "Tue, 01 Aug 2023 10:00:00 GMT");
  CHECK(f.hooks.size() == 1);
}

TEST_CASE("a damaged or missing local copy makes the request unconditional") {
  Fixture f;
  f.cdn.answer({200, datafile("1234", 7), "\"v7\"", ""});
  f.cdn.answer({200, datafile("1234", 7), "\"v7\"", ""});
  f.cdn.answer({200, datafile("1234", 7), "\"v7\"", ""});
  REQUIRE(f.update().status == UpdateStatus::updated);
  write_bytes(f.dir / "1234.json", "{\"truncated");
  CHECK(f.update().status == UpdateStatus::updated);
  CHECK(f.cdn.asked[1].validators.etag.empty());
  CHECK(read_bytes(f.dir / "1234.json") == datafile("1234", 7));
  std::filesystem::remove(f.dir / "1234.json");
  CHECK(f.update().status == UpdateStatus::updated);
  CHECK(f.cdn.asked[2].validators.etag.empty());
}

TEST_CASE("force sends no validators") {
  Fixture f;
  f.cdn.answer({200, datafile("1234", 7), "\"v7\"", ""});
  f.cdn.answer({200, datafile("1234", 7), "\"v7\"", ""});
  REQUIRE(f.update().status == UpdateStatus::updated);
  f.policy.force = true;
  CHECK(f.update().status == UpdateStatus::not_modified);
  CHECK(f.cdn.asked[1].validators.etag.empty());
  CHECK(f.hooks.size() == 1);
}

TEST_CASE("invalid bodies fail with the place of the problem and leave the old file") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"<!DOCTYPE html><html></html>",
       "'https://cdn.optimizely.com/json/1234.json':1:1: "
       "invalid datafile: "},
      {datafile("1234", 8).substr(0, 40), ":1:41: invalid datafile: "},
      {"", ":1:1: invalid datafile: "},
      {"[]", ":1:1: invalid datafile: "},
      {datafile("5678", 8), "invalid datafile: /projectId: expected project '1234', found '5678'"},
      {R"({"version":"5",)" + datafile("1234", 8).substr(15), "invalid datafile: /version: "},
  };
  for (const auto& [body, expected] : cases) {
    CAPTURE(body);
    Fixture f;
    f.cdn.answer({200, datafile("1234", 7), "\"v7\"", ""});
    REQUIRE(f.update().status == UpdateStatus::updated);
    f.cdn.answer({200, body, "\"bad\"", ""});
    const UpdateReport report = f.update();
    CHECK(report.status == UpdateStatus::failed);
    CHECK(report.message.find(expected) != std::string::npos);
    CHECK(read_bytes(f.dir / "1234.json") == datafile("1234", 7));
    CHECK(f.store.verified("1234.json")->etag == "\"v7\"");
    CHECK(f.hooks.size() == 1);
  }
}

TEST_CASE("a revision below the wanted one is stale and not stored") {
  Fixture f;
  f.source.wanted_revision = 9;
  f.cdn.answer({200, datafile("1234", 8), "\"v8\"", ""});
  const UpdateReport report = f.update();
  CHECK(report.status == UpdateStatus::stale);
  CHECK(report.revision == 8U);
  CHECK_FALSE(std::filesystem::exists(f.dir / "1234.json"));
  CHECK(f.hooks.empty());
}

TEST_CASE("a 304 while a newer revision is wanted is stale") {
  Fixture f;
  f.cdn.answer({200, datafile("1234", 8), "\"v8\"", ""});
  f.cdn.answer({304, "", "\"v8\"", ""});
  REQUIRE(f.update().status == UpdateStatus::updated);
  f.source.wanted_revision = 9;
  CHECK(f.update().status == UpdateStatus::stale);
}

TEST_CASE("an older revision is kept out unless downgrades are allowed") {
  Fixture f;
  f.cdn.answer({200, datafile("1234", 8), "\"v8\"", ""});
  f.cdn.answer({200, datafile("1234", 7), "\"v7\"", ""});
  f.cdn.answer({200, datafile("1234", 7), "\"v7\"", ""});
  REQUIRE(f.update().status == UpdateStatus::updated);
  UpdateReport report = f.update();
  CHECK(report.status == UpdateStatus::older);
  CHECK(report.revision == 7U);
  CHECK(report.previous_revision == 8U);
  CHECK(read_bytes(f.dir / "1234.json") == datafile("1234", 8));
  f.policy.allow_downgrade = true;
  report = f.update();
  CHECK(report.status == UpdateStatus::updated);
  CHECK(read_bytes(f.dir / "1234.json") == datafile("1234", 7));
  REQUIRE(f.hooks.size() == 2);
  CHECK(f.hooks[1].previous_revision == 8U);
}

TEST_CASE("a failed download is reported with the client's words and stores nothing") {
  Fixture f;
  f.cdn.answer({503, "", "", "", net::FetchError::http_status});
  const UpdateReport report = f.update();
  CHECK(report.status == UpdateStatus::failed);
  CHECK(report.message == "cannot download 'https://cdn.optimizely.com/json/1234.json': HTTP 503");
  CHECK_FALSE(std::filesystem::exists(f.dir / "1234.json"));
}

TEST_CASE("a held lock is reported as a lock timeout") {
  Fixture f;
  f.policy.lock_timeout = std::chrono::milliseconds(0);
  const auto held = f.store.lock("1234.json", std::chrono::milliseconds(0));
  f.cdn.answer({200, datafile("1234", 7), "", ""});
  const UpdateReport report = f.update();
  CHECK(report.status == UpdateStatus::failed);
  CHECK(report.lock_timeout);
  CHECK(report.message.find("another dfhook holds the lock") != std::string::npos);
  CHECK(f.hooks.empty());
}

TEST_CASE("extra header lines are passed to the downloader") {
  Fixture f;
  f.source.headers = {"Authorization: Bearer t"};
  f.cdn.answer({200, datafile("1234", 7), "", ""});
  REQUIRE(f.update().status == UpdateStatus::updated);
  CHECK(f.cdn.asked[0].headers == std::vector<std::string>{"Authorization: Bearer t"});
}

TEST_CASE("a body that arrives in many chunks is stored whole and its problems located") {
  // Blocks of 1 MiB inside the job: the body spans several.
  std::string big = datafile("1234", 9);
  big.insert(big.size() - 1, R"(,"padding":")" + std::string(std::size_t{3} << 20, 'x') + "\"");
  Fixture f;
  f.cdn.chunk_size = 16384;
  f.cdn.answer({200, big, "\"v9\"", ""});
  REQUIRE(f.update().status == UpdateStatus::updated);
  CHECK(read_bytes(f.dir / "1234.json") == big);
  CHECK(f.store.verified("1234.json")->size == big.size());

  // A problem past the first block, on line 3: its line and column count every chunk.
  std::string bad = datafile("1234", 10);
  bad.insert(bad.size() - 1,
             R"(,"padding":")" + std::string(std::size_t{3} << 20, 'x') + "\"\n,\n \"groups\":[]");
  f.cdn.chunk_size = 1000;
  f.cdn.answer({200, bad, "\"v10\"", ""});
  const UpdateReport report = f.update();
  CHECK(report.status == UpdateStatus::failed);
  CHECK(report.message.find(":3:2: invalid datafile: ") != std::string::npos);
  CHECK(read_bytes(f.dir / "1234.json") == big);
}

TEST_CASE("bytes of an attempt that broke off are forgotten") {
  Fixture f;
  f.cdn.failed_attempt = R"({"version":"4","projectId":"5678")";
  f.cdn.chunk_size = 7;
  f.cdn.answer({200, datafile("1234", 7), "\"v7\"", ""});
  REQUIRE(f.update().status == UpdateStatus::updated);
  CHECK(read_bytes(f.dir / "1234.json") == datafile("1234", 7));
  for (const auto& entry : std::filesystem::directory_iterator(f.dir.path())) {
    CHECK(entry.path().filename().string().find(".tmp.") == std::string::npos);
  }
}

TEST_CASE("a lost metadata file never lets the revision go backwards, nor reruns the hook") {
  Fixture f;
  f.cdn.answer({200, datafile("1234", 6), "\"v6\"", ""});
  REQUIRE(f.update().status == UpdateStatus::updated);
  std::filesystem::remove(f.dir / ".dfhook" / "1234.json.meta.json");
  f.cdn.answer({200, datafile("1234", 3), "\"v3\"", ""});
  UpdateReport report = f.update();
  CHECK(report.status == UpdateStatus::older);
  CHECK(report.previous_revision == 6U);
  CHECK(read_bytes(f.dir / "1234.json") == datafile("1234", 6));
  write_bytes(f.dir / ".dfhook" / "1234.json.meta.json", "garbage");
  f.cdn.answer({200, datafile("1234", 6), "\"v6b\"", ""});
  report = f.update();
  CHECK(report.status == UpdateStatus::not_modified);
  CHECK(f.hooks.size() == 1);
  // The metadata was rebuilt: the next request is conditional again.
  REQUIRE(f.store.verified("1234.json"));
  CHECK(f.store.verified("1234.json")->etag == "\"v6b\"");
  f.cdn.answer({200, datafile("1234", 7), "\"v7\"", ""});
  report = f.update();
  CHECK(f.cdn.asked.back().validators.etag == "\"v6b\"");
  CHECK(report.status == UpdateStatus::updated);
  CHECK(report.previous_revision == 6U);
}

TEST_CASE("validators that could not be sent back or would bloat the metadata are not kept") {
  Fixture f;
  f.cdn.answer({200, datafile("1234", 6), std::string(2000, 'e'), "Tue,\x01 01 Aug"});
  REQUIRE(f.update().status == UpdateStatus::updated);
  const auto meta = f.store.verified("1234.json");
  REQUIRE(meta);
  CHECK_FALSE(meta->etag);
  CHECK_FALSE(meta->last_modified);
}

TEST_CASE("the source URL recorded for polls can differ from the one fetched") {
  Fixture f;
  f.source.url = "https://optimizely.s3.amazonaws.com/json/1234.json";
  f.source.record_url = "https://cdn.optimizely.com/json/1234.json";
  f.cdn.answer({200, datafile("1234", 6), "", ""});
  REQUIRE(f.update().status == UpdateStatus::updated);
  CHECK(f.store.current("1234.json")->source_url == "https://cdn.optimizely.com/json/1234.json");
}
