#include "dfhook/core/secrets.hpp"

#include "dfhook/core/error.hpp"

#include <doctest/doctest.h>

#include <string>
#include <thread>

using dfhook::core::AuthToken;
using dfhook::core::Error;
using dfhook::core::ExitCode;
using dfhook::core::find_token;
using dfhook::core::hmac_sha1;
using dfhook::core::parse_secret_lines;
using dfhook::core::parse_token_lines;
using dfhook::core::Secret;
using dfhook::core::SecretSet;

namespace {

constexpr std::string_view k_body = R"({"project_id":1234,"event":"project.datafile_updated"})";

// The message of the core::Error `fn` throws; fails the test when it throws none.
template <typename Fn>
std::string usage_message(Fn fn) {
  try {
    fn();
  } catch (const Error& error) {
    CHECK(error.code() == ExitCode::usage);
    return error.what();
  }
  FAIL("no error thrown");
  return {};
}

SecretSet set_of(std::string_view text) {
  SecretSet set;
  set.add(parse_secret_lines(text, "keys.txt"));
  return set;
}

}  // namespace

TEST_CASE("reads one secret per line, CR/LF stripped, blank lines skipped") {
  const auto secrets = parse_secret_lines("new-secret\r\n\r\n  \nold-secret\r\n", "keys.txt");
  REQUIRE(secrets.size() == 2);
  CHECK(secrets[0].value == "new-secret");
  CHECK_FALSE(secrets[0].project_id);
  CHECK(secrets[0].origin == "'keys.txt':1");
  CHECK(secrets[1].value == "old-secret");
  CHECK(secrets[1].origin == "'keys.txt':4");
}

TEST_CASE("reads a last line without a newline and ignores blanks around a line") {
  const auto secrets = parse_secret_lines("\t first \nsecond", "keys.txt");
  REQUIRE(secrets.size() == 2);
  CHECK(secrets[0].value == "first");
  CHECK(secrets[1].value == "second");
  CHECK(secrets[1].origin == "'keys.txt':2");
}

TEST_CASE("a line 'PROJECT_ID SECRET' binds the secret to that project") {
  const auto secrets =
      parse_secret_lines("10847551550 bound-secret\n1234\t\tother one\n", "keys.txt");
  REQUIRE(secrets.size() == 2);
  CHECK(secrets[0].value == "bound-secret");
  CHECK(secrets[0].project_id == 10847551550U);
  CHECK(secrets[1].value == "other one");
  CHECK(secrets[1].project_id == 1234U);
}

TEST_CASE("a line that does not start with a project id is a secret, whole") {
  const auto secrets = parse_secret_lines("12ab secret\n1234\nsecret with spaces\n", "k");
  REQUIRE(secrets.size() == 3);
  CHECK(secrets[0].value == "12ab secret");
  CHECK_FALSE(secrets[0].project_id);
  CHECK(secrets[1].value == "1234");
  CHECK_FALSE(secrets[1].project_id);
  CHECK(secrets[2].value == "secret with spaces");
}

TEST_CASE("a project id out of range is a usage error naming the line") {
  CHECK(usage_message([] { (void)parse_secret_lines("a\n0 secret\n", "keys.txt"); }) ==
        "'keys.txt':2: project id '0' is out of range 1..9223372036854775807");
  CHECK(usage_message([] { (void)parse_secret_lines("9223372036854775808 secret", "keys.txt"); }) ==
        "'keys.txt':1: project id '9223372036854775808' is out of range "
        "1..9223372036854775807");
  CHECK(usage_message([] {
          (void)parse_secret_lines("99999999999999999999999 secret", "keys.txt");
        }).find("'keys.txt':1: project id") == 0);
  CHECK(parse_secret_lines("9223372036854775807 s", "k")[0].project_id == 9223372036854775807U);
}

TEST_CASE("a file with no secret is a usage error") {
  CHECK(usage_message([] { (void)parse_secret_lines("", "keys.txt"); }) ==
        "'keys.txt' holds no secret");
  CHECK(usage_message([] { (void)parse_secret_lines("\r\n\n \t\n", "keys.txt"); }) ==
        "'keys.txt' holds no secret");
}

TEST_CASE("an empty secret is a usage error") {
  SecretSet set;
  CHECK(usage_message([&] {
          set.add(Secret{"", std::nullopt, "DFHOOK_SECRET"});
        }) == "empty secret from DFHOOK_SECRET");
  CHECK(set.empty());
}

TEST_CASE("verifies against any secret of a rotation file") {
  const SecretSet set = set_of("new-secret\nold-secret\n");
  CHECK(set.size() == 2);
  CHECK(set.first().value == "new-secret");

  const auto with_new = set.verify(k_body, hmac_sha1("new-secret", k_body));
  REQUIRE(with_new);
  CHECK(with_new->index == 0);
  CHECK(with_new->origin == "'keys.txt':1");
  CHECK_FALSE(with_new->project_id);
  CHECK(with_new->allows_project(1234));

  const auto with_old = set.verify(k_body, hmac_sha1("old-secret", k_body));
  REQUIRE(with_old);
  CHECK(with_old->index == 1);
  CHECK(with_old->origin == "'keys.txt':2");

  CHECK_FALSE(set.verify(k_body, hmac_sha1("unknown", k_body)));
  CHECK_FALSE(set.verify("tampered", hmac_sha1("new-secret", k_body)));
}

TEST_CASE("a secret bound to a project allows that project only") {
  const SecretSet set = set_of("1234 bound-secret\nshared-secret\n");
  const auto match = set.verify(k_body, hmac_sha1("bound-secret", k_body));
  REQUIRE(match);
  CHECK(match->project_id == 1234U);
  CHECK(match->allows_project(1234));
  CHECK_FALSE(match->allows_project(5678));

  const auto shared = set.verify(k_body, hmac_sha1("shared-secret", k_body));
  REQUIRE(shared);
  CHECK(shared->allows_project(5678));
}

TEST_CASE("one secret listed for several projects allows each of them") {
  const SecretSet set = set_of("1234 s\n5678 s\n");
  const auto match = set.verify(k_body, hmac_sha1("s", k_body));
  REQUIRE(match);
  CHECK(match->index == 0);
  CHECK(match->allows_project(1234));
  CHECK(match->allows_project(5678));
  CHECK_FALSE(match->allows_project(9));
}

TEST_CASE("one secret also listed unbound serves every project") {
  SecretSet set = set_of("1234 s\n");
  set.add(Secret{"s", std::nullopt, "--secret"});
  const auto match = set.verify(k_body, hmac_sha1("s", k_body));
  REQUIRE(match);
  CHECK_FALSE(match->project_id);
  CHECK(match->allows_project(9));
  CHECK(set.size() == 2);
}

TEST_CASE("an empty set verifies nothing") {
  const SecretSet set;
  CHECK(set.empty());
  CHECK_FALSE(set.verify(k_body, hmac_sha1("", k_body)));
}

TEST_CASE("two threads verify against one set at once") {
  const SecretSet set = set_of("a\nb\n1234 c\n");
  const auto good = hmac_sha1("c", k_body);
  int failures[2] = {0, 0};
  std::thread first([&] {
    for (int i = 0; i < 5000; ++i) {
      failures[0] += set.verify(k_body, good) ? 0 : 1;
    }
  });
  std::thread second([&] {
    for (int i = 0; i < 5000; ++i) {
      failures[1] += set.verify(k_body, good) ? 0 : 1;
    }
  });
  first.join();
  second.join();
  CHECK(failures[0] == 0);
  CHECK(failures[1] == 0);
}

TEST_CASE("reads tokens, each for every SDK key or for one") {
  const auto tokens = parse_token_lines("tok-any\r\nSdkKey1  tok-one\r\n", "tokens.txt");
  REQUIRE(tokens.size() == 2);
  CHECK(tokens[0].token == "tok-any");
  CHECK_FALSE(tokens[0].sdk_key);
  CHECK(tokens[0].origin == "'tokens.txt':1");
  CHECK(tokens[1].token == "tok-one");
  CHECK(tokens[1].sdk_key == "SdkKey1");
  CHECK(tokens[1].origin == "'tokens.txt':2");
}

TEST_CASE("a token line of three words is a usage error that does not show the token") {
  const std::string message =
      usage_message([] { (void)parse_token_lines("key tok-secret extra\n", "tokens.txt"); });
  CHECK(message == "'tokens.txt':1: expected 'TOKEN' or 'SDK_KEY TOKEN'");
  CHECK(message.find("tok-secret") == std::string::npos);
  CHECK(usage_message([] { (void)parse_token_lines("\n\n", "tokens.txt"); }) ==
        "'tokens.txt' holds no token");
}

TEST_CASE("a token that cannot be sent in a header is a usage error that does not show it") {
  using namespace std::string_literals;
  for (const std::string& text : {"tok\0secret\n"s, "key tok\x01secret\n"s, "tok\xc3\xa9secret"s}) {
    CAPTURE(text);
    const std::string message = usage_message([&] { (void)parse_token_lines(text, "tokens.txt"); });
    CHECK(message.starts_with("'tokens.txt':1: the token holds a character that cannot be sent"));
    CHECK(message.find("secret") == std::string::npos);
  }
  CHECK(dfhook::core::is_sendable_token("abc-DEF_123.~+/="));
  CHECK_FALSE(dfhook::core::is_sendable_token("tok\r\nX-Injected: yes"));
}

TEST_CASE("picks the token bound to the SDK key, else the unbound one") {
  const std::vector<AuthToken> tokens{
      {"t-a", "KeyA", "x"},
      {"t-any", std::nullopt, "x"},
      {"t-b", "KeyB", "x"},
  };
  CHECK(find_token(tokens, "KeyA") == "t-a");
  CHECK(find_token(tokens, "KeyB") == "t-b");
  CHECK(find_token(tokens, "KeyC") == "t-any");
  const std::vector<AuthToken> bound_only{{"t-a", "KeyA", "x"}};
  CHECK_FALSE(find_token(bound_only, "KeyC"));
}
