#include "dfhook/core/payload.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

using dfhook::core::parse_payload;
using dfhook::core::Parsed;
using dfhook::core::Payload;
using dfhook::core::Problem;

namespace {

std::string read_fixture(const std::string& name) {
  std::ifstream file(std::string(DFHOOK_FIXTURES) + "/" + name, std::ios::binary);
  REQUIRE(file);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

// A valid datafile update with `data_members` as the members of "data" and `top` replacing
// the members before it.
std::string update(std::string_view data_members,
                   std::string_view top = R"("project_id":1234,"timestamp":1468447113)") {
  return "{" + std::string(top) + R"(,"event":"project.datafile_updated","data":{)" +
         std::string(data_members) + "}}";
}

constexpr std::string_view k_urls =
    R"("cdn_url":"https://cdn.optimizely.com/json/1234.json","origin_url":"https://optimizely.s3.amazonaws.com/json/1234.json")";

Problem problem_of(std::string_view text) {
  const Parsed<Payload> parsed = parse_payload(text);
  REQUIRE_MESSAGE(!parsed.ok(), "accepted: " << text);
  return parsed.problem();
}

}  // namespace

TEST_CASE("reads the payload from Optimizely's documentation") {
  const Parsed<Payload> parsed = parse_payload(read_fixture("seed-payload.json"));
  REQUIRE(parsed.ok());
  const Payload& payload = parsed.value();
  CHECK(payload.project_id == 1234);
  CHECK(payload.timestamp == 1468447113);
  CHECK(payload.event == "project.datafile_updated");
  CHECK(payload.is_datafile_update);
  CHECK(payload.revision == 1);
  CHECK(payload.cdn_url == "https://cdn.optimizely.com/json/1234.json");
  CHECK(payload.origin_url == "https://optimizely.s3.amazonaws.com/json/1234.json");
  CHECK_FALSE(payload.environment);
  CHECK(payload.datafile_name == "1234.json");
}

TEST_CASE("reads a newer payload with a 64-bit project id and an environment") {
  const Parsed<Payload> parsed = parse_payload(read_fixture("payload-environment.json"));
  REQUIRE(parsed.ok());
  CHECK(parsed->project_id == 10847551550ULL);
  CHECK(parsed->revision == 87);
  CHECK(parsed->environment == "Production");
  CHECK(parsed->datafile_name == "TestSdkKey123.json");
}

TEST_CASE("ignores unknown members") {
  const Parsed<Payload> parsed =
      parse_payload(update(std::string(k_urls) + R"(,"revision":2,"extra":[1,{"x":null}])",
                           R"("new":true,"project_id":1234,"timestamp":0)"));
  REQUIRE(parsed.ok());
  CHECK(parsed->revision == 2);
  CHECK(parsed->timestamp == 0);
}

TEST_CASE("another event needs only a string event, and its data may be an array") {
  const Parsed<Payload> parsed =
      parse_payload(R"({"event":"project.flag_updated","project_id":42,"data":[{"key":"f"}]})");
  REQUIRE(parsed.ok());
  CHECK_FALSE(parsed->is_datafile_update);
  CHECK(parsed->event == "project.flag_updated");
  CHECK(parsed->project_id == 42);
  // Members that would be wrong in a datafile update do not make it invalid.
  const Parsed<Payload> odd =
      parse_payload(R"({"event":"project.snippet_updated","project_id":"x","timestamp":-1})");
  REQUIRE(odd.ok());
  CHECK(odd->project_id == 0);
  CHECK(odd->timestamp == 0);
}

TEST_CASE("rejects a payload that is not an object") {
  const Problem problem = problem_of(R"([{"event":"project.datafile_updated"}])");
  CHECK(problem.pointer.empty());
  CHECK(problem.reason == "expected an object, found an array");
}

TEST_CASE("rejects a missing, mistyped or empty event") {
  Problem problem = problem_of(R"({"project_id":1})");
  CHECK(problem.pointer == "/event");
  CHECK(problem.reason == "missing required field");
  CHECK(problem.offset == 0);
  problem = problem_of(R"({"event":7})");
  CHECK(problem.pointer == "/event");
  CHECK(problem.reason == "expected a string, found an integer");
  CHECK(problem.offset == 9);
  CHECK(problem_of(R"({"event":""})").reason == "must not be empty");
}

TEST_CASE("rejects a bad project id with its pointer") {
  Problem problem =
      problem_of(update(std::string(k_urls) + R"(,"revision":1)", R"("timestamp":1)"));
  CHECK(problem.pointer == "/project_id");
  CHECK(problem.reason == "missing required field");
  problem = problem_of(
      update(std::string(k_urls) + R"(,"revision":1)", R"("project_id":"1234","timestamp":1)"));
  CHECK(problem.pointer == "/project_id");
  CHECK(problem.offset == 14);
  CHECK(problem.reason == "expected an integer, found a string");
  problem = problem_of(
      update(std::string(k_urls) + R"(,"revision":1)", R"("project_id":0,"timestamp":1)"));
  CHECK(problem.reason == "must be between 1 and 9223372036854775807, found 0");
  problem = problem_of(update(std::string(k_urls) + R"(,"revision":1)",
                              R"("project_id":9223372036854775808,"timestamp":1)"));
  CHECK(problem.reason == "must be between 1 and 9223372036854775807, found 9223372036854775808");
  CHECK(problem_of(
            update(std::string(k_urls) + R"(,"revision":1)", R"("project_id":12.0,"timestamp":1)"))
            .reason == "expected an integer, found a number");
}

TEST_CASE("rejects a bad timestamp with its pointer") {
  Problem problem =
      problem_of(update(std::string(k_urls) + R"(,"revision":1)", R"("project_id":1)"));
  CHECK(problem.pointer == "/timestamp");
  CHECK(problem.reason == "missing required field");
  problem = problem_of(
      update(std::string(k_urls) + R"(,"revision":1)", R"("project_id":1,"timestamp":-1)"));
  CHECK(problem.pointer == "/timestamp");
  CHECK(problem.reason == "must be between 0 and 9223372036854775807, found -1");
  CHECK(problem_of(
            update(std::string(k_urls) + R"(,"revision":1)", R"("project_id":1,"timestamp":null)"))
            .reason == "expected an integer, found null");
}

TEST_CASE("rejects missing or mistyped data") {
  Problem problem =
      problem_of(R"({"project_id":1,"timestamp":1,"event":"project.datafile_updated"})");
  CHECK(problem.pointer == "/data");
  CHECK(problem.reason == "missing required field");
  problem =
      problem_of(R"({"project_id":1,"timestamp":1,"event":"project.datafile_updated","data":[]})");
  CHECK(problem.pointer == "/data");
  CHECK(problem.reason == "expected an object, found an array");
}

TEST_CASE("rejects a bad revision with its pointer") {
  Problem problem = problem_of(update(k_urls));
  CHECK(problem.pointer == "/data/revision");
  CHECK(problem.reason == "missing required field");
  const std::string as_string = update(std::string(k_urls) + R"(,"revision":"1")");
  problem = problem_of(as_string);
  CHECK(problem.pointer == "/data/revision");
  CHECK(problem.reason == "expected an integer, found a string");
  CHECK(problem.offset == as_string.find("\"1\""));
  problem = problem_of(update(std::string(k_urls) + R"(,"revision":0)"));
  CHECK(problem.reason == "must be between 1 and 18446744073709551615, found 0");
  problem = problem_of(update(std::string(k_urls) + R"(,"revision":18446744073709551617)"));
  CHECK(problem.pointer == "/data/revision");
  CHECK(problem.reason == "integer '18446744073709551617' does not fit in 64 bits");
  // The largest revision is fine.
  const Parsed<Payload> max =
      parse_payload(update(std::string(k_urls) + R"(,"revision":18446744073709551615)"));
  REQUIRE(max.ok());
  CHECK(max->revision == 18446744073709551615ULL);
}

TEST_CASE("rejects URLs that are missing, mistyped or not absolute") {
  Problem problem = problem_of(
      update(R"("revision":1,"origin_url":"https://optimizely.s3.amazonaws.com/json/1.json")"));
  CHECK(problem.pointer == "/data/cdn_url");
  CHECK(problem.reason == "missing required field");
  problem =
      problem_of(update(R"("revision":1,"cdn_url":"https://cdn.optimizely.com/json/1.json")"));
  CHECK(problem.pointer == "/data/origin_url");
  CHECK(problem.reason == "missing required field");
  problem = problem_of(update(R"("revision":1,"cdn_url":["x"],"origin_url":"https://a/b")"));
  CHECK(problem.pointer == "/data/cdn_url");
  CHECK(problem.reason == "expected an absolute URL string, found an array");
  problem =
      problem_of(update(R"("revision":1,"cdn_url":"/json/1.json","origin_url":"https://a/b")"));
  CHECK(problem.reason == "expected an absolute URL, found '/json/1.json'");
  problem = problem_of(update(
      R"("revision":1,"cdn_url":"https://cdn.optimizely.com/json/1.json","origin_url":"https://a b/c")"));
  CHECK(problem.pointer == "/data/origin_url");
  CHECK(problem.reason == "expected an absolute URL, found 'https://a b/c'");
}

TEST_CASE("rejects a cdn_url whose last segment is not a plain file name") {
  for (const char* url : {"https://cdn.optimizely.com/json/", "https://cdn.optimizely.com",
                          "https://cdn.optimizely.com/json/..", "https://cdn.optimizely.com/.x",
                          "https://cdn.optimizely.com/a%2Fb.json"}) {
    const Problem problem = problem_of(update(std::string(R"("revision":1,"cdn_url":")") + url +
                                              R"(","origin_url":"https://a/b")"));
    CHECK(problem.pointer == "/data/cdn_url");
    CHECK(problem.reason.find("is not a datafile name") != std::string::npos);
  }
}

TEST_CASE("rejects a mistyped environment") {
  const Problem problem =
      problem_of(update(std::string(k_urls) + R"(,"revision":1,"environment":null)"));
  CHECK(problem.pointer == "/data/environment");
  CHECK(problem.reason == "expected a string, found null");
}

TEST_CASE("applies the strict JSON rules to payloads") {
  CHECK(problem_of(update(std::string(k_urls) + R"(,"revision":1,"revision":2)")).reason ==
        "duplicate member name 'revision'");
  CHECK(problem_of(update(std::string(k_urls) + R"(,"revision":1)") + "x").reason ==
        "unexpected data after the document");
  CHECK(problem_of(update(std::string(k_urls) + R"(,"revision":NaN)")).pointer == "/data/revision");
}

TEST_CASE("checks URL syntax") {
  using dfhook::core::is_absolute_url;
  CHECK(is_absolute_url("https://cdn.optimizely.com/json/1234.json"));
  CHECK(is_absolute_url("git+ssh://host"));
  CHECK(is_absolute_url("h://x?y"));
  CHECK_FALSE(is_absolute_url("https:///path"));
  CHECK_FALSE(is_absolute_url("https://"));
  CHECK_FALSE(is_absolute_url("://host/x"));
  CHECK_FALSE(is_absolute_url("1http://host/x"));
  CHECK_FALSE(is_absolute_url("ht_tp://host/x"));
  CHECK_FALSE(is_absolute_url("https:/host/x"));
  CHECK_FALSE(is_absolute_url("https://host/\x01"));
  CHECK_FALSE(is_absolute_url("https://host/\xC3\xA9"));
  CHECK_FALSE(is_absolute_url(" https://host/"));
}

TEST_CASE("finds the file name of a URL") {
  using dfhook::core::url_file_name;
  CHECK(url_file_name("https://cdn.optimizely.com/datafiles/TestSdkKey123.json") ==
        "TestSdkKey123.json");
  CHECK(url_file_name("https://cdn.optimizely.com/json/1234.json?x=/y#z/w") == "1234.json");
  CHECK(url_file_name("https://cdn.optimizely.com/json/").empty());
  CHECK(url_file_name("https://cdn.optimizely.com?a/b").empty());
}
