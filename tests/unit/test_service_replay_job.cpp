#include "dfhook/service/replay_job.hpp"

#include "dfhook/core/envelope.hpp"
#include "dfhook/core/error.hpp"
#include "dfhook/core/signature.hpp"

#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace {

using dfhook::core::ExitCode;
using dfhook::core::SignatureSource;
using dfhook::net::ReplayOutcome;
using dfhook::net::ReplayRequest;
using dfhook::net::ReplayResult;
using dfhook::net::ReplaySender;
using dfhook::service::DeliveryReader;
using dfhook::service::ReplayDelivery;
using dfhook::service::ReplayEvents;
using dfhook::service::ReplayFiles;
using dfhook::service::ReplayInput;
using dfhook::service::ReplayInputProblem;
using dfhook::service::ReplayJob;
using dfhook::service::ReplayJobOptions;
using dfhook::service::ReplaySummary;
using dfhook::service::ReplayTransport;

const std::string k_body =
    R"({"project_id":1234,"timestamp":1,"event":"project.datafile_updated","data":{"revision":2,)"
    R"("cdn_url":"https:\/\/cdn.optimizely.com\/json\/1234.json","origin_url":"x","note":"é"}})";

std::string envelope(const std::string& id, const std::string& body,
                     std::vector<dfhook::core::Header> headers) {
  dfhook::core::Envelope e;
  e.id = id;
  e.received_at = "2025-01-01T00:00:00.000000Z";
  e.remote_addr = "127.0.0.1:1";
  e.method = "POST";
  e.path = "/webhooks/optimizely";
  e.headers = std::move(headers);
  e.body = body;
  return dfhook::core::serialize_envelope(e);
}

// Serves its text `chunk` bytes at a time; fails once `fail_at` bytes were served.
class FakeInput : public ReplayInput {
public:
  FakeInput(std::string path, std::string text, std::size_t chunk, std::size_t fail_at,
            std::size_t& served)
      : m_path(std::move(path)),
        m_text(std::move(text)),
        m_chunk(chunk),
        m_fail_at(fail_at),
        m_total(served) {}
  std::size_t read(std::span<char> buffer) override {
    if (m_served >= m_fail_at) {
      throw dfhook::core::usage_error("cannot read '" + m_path + "': Input/output error");
    }
    const std::size_t n =
        std::min({buffer.size(), m_chunk, m_text.size() - m_served, m_fail_at - m_served});
    m_text.copy(buffer.data(), n, m_served);
    if (n == 0 && m_endless) {
      FAIL("read() of an input that is not ready, which would wait");
    }
    m_served += n;
    m_total += n;
    return n;
  }
  bool ready() override { return !m_endless || m_served < m_text.size(); }
  // Once its text is served, the input neither ends nor has more (a pipe kept open).
  void endless() { m_endless = true; }

private:
  std::string m_path;
  std::string m_text;
  std::size_t m_chunk;
  std::size_t m_fail_at;
  std::size_t m_served = 0;
  std::size_t& m_total;
  bool m_endless = false;
};

class FakeFiles : public ReplayFiles {
public:
  std::vector<std::string> expand(const std::string& argument) override {
    const auto dir = dirs.find(argument);
    if (dir != dirs.end()) {
      return dir->second;
    }
    if (files.count(argument) == 0) {
      throw dfhook::core::usage_error("cannot read '" + argument + "': No such file or directory");
    }
    return {argument};
  }
  std::unique_ptr<ReplayInput> open(const std::string& path) override {
    reads.push_back(path);
    const auto fail = fail_at.find(path);
    auto input = std::make_unique<FakeInput>(
        path, files.at(path), chunk, fail == fail_at.end() ? std::string::npos : fail->second,
        served);
    if (endless.count(path) > 0) {
      input->endless();
    }
    return input;
  }
  std::map<std::string, std::string> files;
  std::map<std::string, std::vector<std::string>> dirs;
  std::map<std::string, std::size_t> fail_at;  // a read fails once this many bytes were served
  std::size_t chunk = std::string::npos;       // bytes served by one read at most
  std::size_t served = 0;                      // bytes served by every input so far
  std::set<std::string> endless;               // inputs that never end (FakeInput::endless)
  std::vector<std::string> reads;
};

// Answers each request at once with what `answer` says, one at a time.
class FakeTransport : public ReplayTransport {
public:
  void run(const ReplaySender::NextRequest& next,
           const ReplaySender::OnResult& on_result) override {
    ReplayRequest request;
    std::size_t index = 0;
    while (next(request)) {
      requests.push_back(request);
      ReplayResult result = answer(request);
      result.index = index++;
      if (!on_result(result)) {
        return;
      }
      request = {};
    }
  }
  std::function<ReplayResult(const ReplayRequest&)> answer = [](const ReplayRequest&) {
    ReplayResult r;
    r.outcome = ReplayOutcome::ok;
    r.status = 202;
    r.attempts = 1;
    return r;
  };
  std::vector<ReplayRequest> requests;
};

std::string header(const ReplayRequest& request, const std::string& name) {
  for (const auto& [key, value] : request.headers) {
    if (key == name) {
      return value;
    }
  }
  return "<none>";
}

struct Run {
  ReplaySummary summary;
  std::vector<ReplayInputProblem> problems;
  std::vector<std::string> results;  // "id status"
};

Run run_job(ReplayJobOptions options, FakeFiles& files, ReplayTransport* transport) {
  Run out;
  ReplayEvents events;
  events.on_problem = [&](const ReplayInputProblem& p) { out.problems.push_back(p); };
  events.on_result = [&](const ReplayDelivery& d, const ReplayResult& r) {
    out.results.push_back((d.id.empty() ? d.input : d.id) + " " + std::to_string(r.status));
  };
  ReplayJob job(std::move(options), files, transport);
  out.summary = job.run(events);
  return out;
}

}  // namespace

TEST_CASE("replays a directory's envelopes in its order with the saved bytes and headers") {
  FakeFiles files;
  files.dirs["saved"] = {"saved/a.json", "saved/b.json"};
  files.files["saved/a.json"] =
      envelope("000000000000000a", k_body,
               {{"Content-Type", "application/json"},
                {"User-Agent", "Optimizely"},
                {"Content-Length", "999"},
                {"X-Hub-Signature", "sha1=0000000000000000000000000000000000000000"}});
  files.files["saved/b.json"] = envelope("000000000000000b", "{\n  \"pretty\": true\n}", {});
  FakeTransport transport;
  ReplayJobOptions options;
  options.inputs = {"saved"};
  const Run run = run_job(options, files, &transport);

  REQUIRE(transport.requests.size() == 2);
  CHECK(transport.requests[0].body == k_body);
  CHECK(transport.requests[0].headers ==
        std::vector<std::pair<std::string, std::string>>{
            {"Content-Type", "application/json"},
            {"User-Agent", "Optimizely"},
            {"X-Hub-Signature", "sha1=0000000000000000000000000000000000000000"}});
  CHECK(transport.requests[1].body == "{\n  \"pretty\": true\n}");
  CHECK(transport.requests[1].headers.empty());
  CHECK(run.results == std::vector<std::string>{"000000000000000a 202", "000000000000000b 202"});
  CHECK(run.summary.deliveries == 2);
  CHECK(run.summary.ok == 2);
  CHECK(run.summary.unsigned_sent == 1);
  CHECK(run.summary.exit_code(false) == ExitCode::ok);
}

TEST_CASE("a secret signs each body afresh in place of the saved signature") {
  FakeFiles files;
  files.files["a.json"] = envelope(
      "000000000000000a", k_body,
      {{"X-Hub-Signature", "sha1=0000000000000000000000000000000000000000"}, {"X-Other", "1"}});
  FakeTransport transport;
  ReplayJobOptions options;
  options.inputs = {"a.json"};
  options.secret = "test-webhook-secret";
  (void)run_job(options, files, &transport);
  REQUIRE(transport.requests.size() == 1);
  CHECK(transport.requests[0].headers[0].first == "X-Hub-Signature");
  CHECK(transport.requests[0].headers[0].second ==
        dfhook::core::format_signature(dfhook::core::hmac_sha1("test-webhook-secret", k_body)));
  CHECK(header(transport.requests[0], "X-Other") == "1");
}

TEST_CASE("bare payloads are sent as their document's bytes with the payload defaults") {
  FakeFiles files;
  files.files["p.json"] = "  " + k_body + "\n{\"event\":\"x\"}\n\n";
  FakeTransport transport;
  ReplayJobOptions options;
  options.inputs = {"p.json"};
  options.payload_user_agent = "dfhook-replay/test";
  std::vector<SignatureSource> signatures;
  ReplayEvents events;
  events.on_prepared = [&](const ReplayDelivery& d) { signatures.push_back(d.signature); };
  ReplayJob job(options, files, &transport);
  const ReplaySummary summary = job.run(events);
  REQUIRE(transport.requests.size() == 2);
  CHECK(transport.requests[0].body == k_body);
  CHECK(transport.requests[1].body == R"({"event":"x"})");
  CHECK(header(transport.requests[0], "Content-Type") == "application/json");
  CHECK(header(transport.requests[0], "User-Agent") == "dfhook-replay/test");
  CHECK(header(transport.requests[0], "X-Hub-Signature") == "<none>");
  CHECK(signatures == std::vector<SignatureSource>{SignatureSource::none, SignatureSource::none});
  CHECK(summary.unsigned_sent == 2);
}

TEST_CASE("a --header replaces the saved header of that name") {
  FakeFiles files;
  files.files["a.json"] =
      envelope("000000000000000a", k_body, {{"Content-Type", "text/plain"}, {"X-Keep", "k"}});
  FakeTransport transport;
  ReplayJobOptions options;
  options.inputs = {"a.json"};
  options.headers = {{"content-type", std::string("application/json")}, {"X-Keep", std::nullopt}};
  (void)run_job(options, files, &transport);
  REQUIRE(transport.requests.size() == 1);
  CHECK(transport.requests[0].headers ==
        std::vector<std::pair<std::string, std::string>>{{"content-type", "application/json"}});
}

TEST_CASE("a broken document is reported at its place and the others are still sent") {
  FakeFiles files;
  files.files["mixed.json"] =
      k_body + "\n{\"broken\": }\n" + envelope("00000000000000zz", "{}", {}) + "\n" + k_body + "\n";
  FakeTransport transport;
  ReplayJobOptions options;
  options.inputs = {"mixed.json"};
  const Run run = run_job(options, files, &transport);
  CHECK(transport.requests.size() == 2);
  REQUIRE(run.problems.size() == 2);
  CHECK(run.problems[0].input == "mixed.json");
  CHECK(run.problems[0].document == 2);
  CHECK(run.problems[0].start.line == 2);
  CHECK(run.problems[0].start.column == 12);
  CHECK(run.problems[1].document == 3);
  CHECK(run.problems[1].start.line == 3);
  CHECK(run.problems[1].reason.starts_with("/id: "));
  CHECK(run.summary.problems == 2);
  CHECK(run.summary.exit_code(false) == ExitCode::usage);
}

TEST_CASE("an envelope header that cannot be sent faithfully is not sent") {
  FakeFiles files;
  files.files["a.json"] = envelope("000000000000000a", k_body, {{"X-Bad", "a\r\nInjected: 1"}});
  FakeTransport transport;
  ReplayJobOptions options;
  options.inputs = {"a.json"};
  const Run run = run_job(options, files, &transport);
  CHECK(transport.requests.empty());
  REQUIRE(run.problems.size() == 1);
  CHECK(run.problems[0].reason.find("line break") != std::string::npos);
}

TEST_CASE("an input that cannot be read stops everything before anything is sent") {
  FakeFiles files;
  files.files["a.json"] = k_body;
  FakeTransport transport;
  ReplayJobOptions options;
  options.inputs = {"a.json", "missing.json"};
  const Run run = run_job(options, files, &transport);
  CHECK(transport.requests.empty());
  CHECK(files.reads.empty());
  REQUIRE(run.problems.size() == 1);
  CHECK(run.problems[0].reason == "cannot read 'missing.json': No such file or directory");
  CHECK(run.summary.exit_code(false) == ExitCode::usage);
}

TEST_CASE("an input without any document is reported") {
  FakeFiles files;
  files.files["empty.json"] = " \n";
  ReplayJobOptions options;
  options.inputs = {"empty.json"};
  FakeTransport transport;
  const Run run = run_job(options, files, &transport);
  REQUIRE(run.problems.size() == 1);
  CHECK(run.problems[0].reason == "'empty.json' holds no delivery");
}

TEST_CASE("redirects and error statuses are failures") {
  FakeFiles files;
  files.files["p.json"] = k_body + "\n" + k_body + "\n" + k_body;
  FakeTransport transport;
  int n = 0;
  transport.answer = [&n](const ReplayRequest&) {
    ReplayResult r;
    const int statuses[] = {302, 500, 200};
    r.status = statuses[n++];
    r.outcome = r.status == 302   ? ReplayOutcome::redirect
                : r.status == 500 ? ReplayOutcome::http_status
                                  : ReplayOutcome::ok;
    return r;
  };
  ReplayJobOptions options;
  options.inputs = {"p.json"};
  const Run run = run_job(options, files, &transport);
  CHECK(run.summary.redirects == 1);
  CHECK(run.summary.http_errors == 1);
  CHECK(run.summary.ok == 1);
  CHECK(run.summary.failed() == 2);
  CHECK(run.summary.exit_code(false) == ExitCode::failed);
}

TEST_CASE("an unreachable receiver stops the replay") {
  FakeFiles files;
  files.files["p.json"] = k_body + "\n" + k_body + "\n" + k_body;
  SUBCASE("read whole") {}
  SUBCASE("read a byte at a time") {
    files.chunk = 1;
  }
  FakeTransport transport;
  transport.answer = [](const ReplayRequest&) {
    ReplayResult r;
    r.outcome = ReplayOutcome::network;
    r.unreachable = true;
    r.error = "couldn't connect to server";
    return r;
  };
  ReplayJobOptions options;
  options.inputs = {"p.json"};
  const Run run = run_job(options, files, &transport);
  CHECK(transport.requests.size() == 1);
  CHECK(run.summary.stopped);
  CHECK(run.summary.network_errors == 1);
  CHECK(run.summary.exit_code(false) == ExitCode::failed);
}

TEST_CASE("an unreachable receiver for the last delivery is no early stop") {
  FakeFiles files;
  files.files["p.json"] = k_body + " \n\n";
  SUBCASE("read whole") {}
  SUBCASE("read a byte at a time") {
    files.chunk = 1;
  }
  FakeTransport transport;
  transport.answer = [](const ReplayRequest&) {
    ReplayResult r;
    r.outcome = ReplayOutcome::network;
    r.unreachable = true;
    return r;
  };
  ReplayJobOptions options;
  options.inputs = {"p.json"};
  const Run run = run_job(options, files, &transport);
  CHECK_FALSE(run.summary.stopped);
  CHECK(run.summary.exit_code(false) == ExitCode::failed);
}

TEST_CASE("an unreachable receiver does not wait for an input that has nothing more yet") {
  FakeFiles files;
  files.files["-"] = k_body + "\n";
  files.endless.insert("-");
  FakeTransport transport;
  transport.answer = [](const ReplayRequest&) {
    ReplayResult r;
    r.outcome = ReplayOutcome::network;
    r.unreachable = true;
    return r;
  };
  ReplayJobOptions options;
  options.inputs = {"-"};
  const Run run = run_job(options, files, &transport);
  CHECK(transport.requests.size() == 1);
  // What would follow is not known: later deliveries may be missed.
  CHECK(run.summary.stopped);
}

namespace {

// What a run took from its inputs, as text that compares in one CHECK.
std::vector<std::string> taken(FakeFiles& files, const ReplayJobOptions& options) {
  std::vector<std::string> out;
  ReplayEvents events;
  events.on_prepared = [&](const ReplayDelivery& d) {
    std::string line = d.input + ":" + std::to_string(d.start.line) + ":" +
                       std::to_string(d.start.column) + " #" + std::to_string(d.document) + " " +
                       d.id + " [" + d.request.body + "]";
    for (const auto& [name, value] : d.request.headers) {
      line += " " + name + "=" + value;
    }
    out.push_back(line);
  };
  events.on_problem = [&](const ReplayInputProblem& p) {
    out.push_back("problem " + p.input + ":" + std::to_string(p.start.line) + ":" +
                  std::to_string(p.start.column) + " #" +
                  (p.document ? std::to_string(*p.document) : std::string("-")) + " " + p.reason);
  };
  FakeTransport transport;
  ReplayJob job(options, files, &transport);
  (void)job.run(events);
  return out;
}

}  // namespace

TEST_CASE("an input read in small chunks gives the same deliveries and problems as read whole") {
  const std::string big = "{\"big\":\"" + std::string(3000, 'x') + "\"}";
  FakeFiles files;
  files.files["mixed.json"] =
      envelope("000000000000000a", k_body,
               {{"Content-Type", "application/json"},
                {"X-Hub-Signature", "sha1=0000000000000000000000000000000000000000"}}) +
      "\n  " + k_body + "\r\n" +
      "{\n  \"pretty\": [1, 2.5e3, true, null, \"\\u00e9\\ud83d\\ude00 \xc3\xa9\"]\n}" +
      "{\"broken\": }\n" + big + "\n" + big + k_body + "\n" +
      envelope("000000000000000b", "{}", {}) + "12345\n\t" + k_body;
  ReplayJobOptions options;
  options.inputs = {"mixed.json"};
  options.max_document = 1024;
  const std::vector<std::string> whole = taken(files, options);
  REQUIRE(whole.size() == 9);
  CHECK(whole[0].starts_with("mixed.json:1:1 #1 000000000000000a [" + k_body + "]"));
  CHECK(whole[1].starts_with("mixed.json:2:3 #2  [" + k_body + "]"));
  CHECK(whole[2].starts_with("mixed.json:3:1 #3  [{\n  \"pretty\""));
  CHECK(whole[3] == "problem mixed.json:5:13 #4 /broken: expected a JSON value");
  CHECK(whole[4] == "problem mixed.json:6:1 #5 document larger than the limit of 1024 bytes");
  CHECK(whole[5] == "problem mixed.json:7:1 #6 document larger than the limit of 1024 bytes");
  CHECK(whole[6].starts_with("mixed.json:8:1 #7 000000000000000b [{}]"));
  CHECK(whole[7].starts_with("mixed.json:8:"));
  CHECK(whole[7].find(" #8  [12345]") != std::string::npos);
  CHECK(whole[8].starts_with("mixed.json:9:2 #9  [" + k_body + "]"));
  for (const std::size_t chunk : {1, 2, 3, 7, 16, 100, 1000, 1024, 1025, 4096}) {
    CAPTURE(chunk);
    files.chunk = chunk;
    CHECK(taken(files, options) == whole);
  }
}

TEST_CASE("an input is read as its deliveries are taken, not whole first") {
  std::string text;
  while (text.size() < 4 * DeliveryReader::k_chunk) {
    text += k_body + "\n";
  }
  FakeFiles files;
  files.files["p.json"] = text;
  files.chunk = 1000;
  FakeTransport transport;
  std::vector<std::size_t> read_when_taken;
  transport.answer = [&](const ReplayRequest&) {
    read_when_taken.push_back(files.served);
    ReplayResult r;
    r.outcome = ReplayOutcome::ok;
    r.status = 200;
    return r;
  };
  ReplayJobOptions options;
  options.inputs = {"p.json"};
  const Run run = run_job(options, files, &transport);
  REQUIRE(run.summary.ok == text.size() / (k_body.size() + 1));
  // Each document was taken as soon as the chunk that completes it had been read.
  for (std::size_t n = 0; n < read_when_taken.size(); ++n) {
    CAPTURE(n);
    const std::size_t end = (n + 1) * (k_body.size() + 1) - 1;
    CHECK(read_when_taken[n] >= end);
    CHECK(read_when_taken[n] < end + 1000 + 1);
  }
}

TEST_CASE("an input that cannot be read to its end is reported after what was read is sent") {
  FakeFiles files;
  files.files["a.json"] = k_body + "\n" + k_body + "\n" + k_body + "\n";
  files.files["b.json"] = k_body;
  files.fail_at["a.json"] = 2 * (k_body.size() + 1) + 10;
  files.chunk = 7;
  FakeTransport transport;
  ReplayJobOptions options;
  options.inputs = {"a.json", "b.json"};
  const Run run = run_job(options, files, &transport);
  CHECK(run.results == std::vector<std::string>{"a.json 202", "a.json 202", "b.json 202"});
  REQUIRE(run.problems.size() == 1);
  CHECK(run.problems[0].input == "a.json");
  CHECK_FALSE(run.problems[0].document);
  CHECK(run.problems[0].reason == "cannot read 'a.json': Input/output error");
  CHECK(run.summary.exit_code(false) == ExitCode::usage);
}

TEST_CASE("a dry run prepares every delivery and sends nothing") {
  FakeFiles files;
  files.files["p.json"] = k_body + "\n" + k_body;
  FakeTransport transport;
  ReplayJobOptions options;
  options.inputs = {"p.json"};
  options.dry_run = true;
  std::size_t prepared = 0;
  ReplayEvents events;
  events.on_prepared = [&](const ReplayDelivery& d) {
    ++prepared;
    CHECK(d.request.body == k_body);
  };
  ReplayJob job(options, files, &transport);
  const ReplaySummary summary = job.run(events);
  CHECK(prepared == 2);
  CHECK(transport.requests.empty());
  CHECK(summary.exit_code(true) == ExitCode::ok);
}

TEST_CASE("a local directory stands for its *.json files in name order") {
  const dfhook::test::TempDir dir;
  for (const char* name : {"b.json", "a.json", ".hidden.json", "notes.txt", "c.json.tmp"}) {
    std::ofstream(dir / name) << "{}";
  }
  std::filesystem::create_directory(dir / "sub.json");
  dfhook::service::LocalReplayFiles files;
  const std::string root = dir.path().string();
  CHECK(files.expand(root) == std::vector<std::string>{root + "/a.json", root + "/b.json"});
  CHECK(files.expand(root + "/notes.txt") == std::vector<std::string>{root + "/notes.txt"});
  CHECK(files.expand("-") == std::vector<std::string>{"-"});
  CHECK_THROWS_WITH_AS(files.expand(root + "/none"),
                       ("cannot read '" + root + "/none': No such file or directory").c_str(),
                       dfhook::core::Error);
  std::filesystem::create_directory(dir / "empty");
  CHECK_THROWS_WITH_AS(files.expand(root + "/empty"),
                       ("'" + root + "/empty' holds no delivery (no *.json file)").c_str(),
                       dfhook::core::Error);
}
