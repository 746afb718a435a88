#include "dfhook/io/spool.hpp"

#include "dfhook/core/error.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <sys/stat.h>
#include <algorithm>
#include <set>
#include <thread>

namespace {

using dfhook::core::Error;
using dfhook::core::ExitCode;
using dfhook::io::Spool;
using dfhook::test::entries;
using dfhook::test::read_bytes;
using dfhook::test::TempDir;
using dfhook::test::write_bytes;
using namespace std::chrono_literals;

// 2024-05-01T12:00:00Z
const std::chrono::system_clock::time_point k_may_first{std::chrono::seconds(1714564800)};

std::string id_for(int n) {
  return fmt::format("{:016x}", n);
}

}  // namespace

TEST_CASE("file names carry the UTC time in microseconds and the id") {
  CHECK(dfhook::io::spool_file_name(k_may_first + 123456us + 789ns, "0123456789abcdef") ==
        "20240501T120000.123456Z-0123456789abcdef.json");
  CHECK(dfhook::io::spool_file_name(std::chrono::system_clock::time_point{}, "ffffffffffffffff") ==
        "19700101T000000.000000Z-ffffffffffffffff.json");
  CHECK(dfhook::io::is_spool_file_name("20240501T120000.123456Z-0123456789abcdef.json"));
  CHECK_FALSE(dfhook::io::is_spool_file_name("20240501T120000.123456Z-0123456789ABCDEF.json"));
  CHECK_FALSE(dfhook::io::is_spool_file_name("20240501T120000Z-0123456789abcdef.json"));
  CHECK_FALSE(dfhook::io::is_spool_file_name("notes.json"));
}

TEST_CASE("file names sort in delivery order") {
  const std::vector<std::chrono::system_clock::time_point> times = {
      k_may_first - 24h * 400, k_may_first - 1s,       k_may_first - 1us, k_may_first,
      k_may_first + 1us,       k_may_first + 999999us, k_may_first + 1s,  k_may_first + 24h * 3650};
  std::vector<std::string> names;
  for (std::size_t i = 0; i < times.size(); ++i) {
    // Ids in reverse, so that only the time can give the order.
    names.push_back(dfhook::io::spool_file_name(times[i], id_for(1000 - static_cast<int>(i))));
  }
  CHECK(std::is_sorted(names.begin(), names.end()));
  CHECK(std::set<std::string>(names.begin(), names.end()).size() == names.size());
}

TEST_CASE("random ids are 16 lowercase hex digits and differ") {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = dfhook::io::random_id();
    REQUIRE(id.size() == 16);
    CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
    ids.insert(id);
  }
  CHECK(ids.size() == 1000);
}

TEST_CASE("a saved delivery is in place, private, with no temp file left") {
  const TempDir dir;
  const mode_t saved_umask = ::umask(0);
  Spool spool(dir / "spool/deliveries");
  ::umask(saved_umask);
  const std::string envelope = R"({"dfhook_envelope":1,"id":"0123456789abcdef"})";
  const auto path = spool.save(envelope, k_may_first + 5us, "0123456789abcdef");
  CHECK(path == dir / "spool/deliveries/20240501T120000.000005Z-0123456789abcdef.json");
  CHECK(read_bytes(path) == envelope);
  struct stat info {};
  REQUIRE(::stat(path.c_str(), &info) == 0);
  CHECK((info.st_mode & 07777) == 0600);
  REQUIRE(::stat((dir / "spool/deliveries").c_str(), &info) == 0);
  CHECK((info.st_mode & 07777) == 0700);
  CHECK(entries(dir / "spool/deliveries") ==
        std::vector<std::string>{"20240501T120000.000005Z-0123456789abcdef.json"});
  CHECK(spool.size() == 1);
}

TEST_CASE("an id that is not 16 lowercase hex digits is refused") {
  const TempDir dir;
  Spool spool(dir.path());
  for (const char* id : {"", "0123456789ABCDEF", "../../etc/passwd", "0123456789abcdef0"}) {
    CHECK_THROWS_WITH_AS(spool.save("{}", k_may_first, id),
                         "invalid delivery id: use 16 lowercase hex digits", Error);
  }
  CHECK(entries(dir.path()).empty());
}

TEST_CASE("a delivery that cannot be written is an error naming the path") {
  const TempDir dir;
  Spool spool(dir / "spool");
  const std::string name = dfhook::io::spool_file_name(k_may_first, id_for(1));
  std::filesystem::create_directory(dir / "spool" / name);
  CHECK_THROWS_WITH_AS(
      spool.save("{}", k_may_first, id_for(1)),
      fmt::format("cannot replace '{}': is a directory", (dir / "spool" / name).string()).c_str(),
      Error);
  std::filesystem::remove_all(dir / "spool");
  try {
    (void)spool.save("{}", k_may_first, id_for(2));
    FAIL("saved into a removed directory");
  } catch (const Error& error) {
    CHECK(std::string(error.what())
              .starts_with(fmt::format("cannot create '{}/.", (dir / "spool").string())));
    CHECK(std::string(error.what()).ends_with("': no such file or directory"));
    CHECK(error.code() == ExitCode::failed);
  }
}

TEST_CASE("beyond max-files the oldest deliveries are removed, other files never") {
  const TempDir dir;
  // Deliveries of an earlier run, and files that are not deliveries.
  for (int i = 0; i < 3; ++i) {
    write_bytes(dir / dfhook::io::spool_file_name(k_may_first - 1h + i * 1s, id_for(i)), "old");
  }
  write_bytes(dir / "notes.json", "mine");
  write_bytes(dir / "00000000T000000.000000Z-x.json", "not a delivery name");
  Spool spool(dir.path(), 4);
  CHECK(spool.size() == 3);
  std::vector<std::string> expected;
  for (int i = 10; i < 16; ++i) {
    const auto path = spool.save("{}", k_may_first + i * 1s, id_for(i));
    expected.push_back(path.filename().string());
  }
  CHECK(spool.size() == 4);
  expected.erase(expected.begin(), expected.begin() + 2);
  expected.insert(expected.begin(), {"00000000T000000.000000Z-x.json"});
  expected.push_back("notes.json");
  CHECK(entries(dir.path()) == expected);
}

TEST_CASE("a delivery saved with a clock stepped back is kept even when it sorts first") {
  const TempDir dir;
  Spool spool(dir.path(), 2);
  (void)spool.save("{}", k_may_first, id_for(1));
  (void)spool.save("{}", k_may_first + 1s, id_for(2));
  const auto early = spool.save("{}", k_may_first - 1h, id_for(3));
  CHECK(std::filesystem::exists(early));
  CHECK(spool.size() == 2);
  CHECK(entries(dir.path()) ==
        std::vector<std::string>{early.filename().string(),
                                 dfhook::io::spool_file_name(k_may_first + 1s, id_for(2))});
}

TEST_CASE("saves from several threads keep exactly max-files deliveries") {
  const TempDir dir;
  Spool spool(dir.path(), 50);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const int n = i * 4 + t;
        (void)spool.save(fmt::format("{{\"n\":{}}}", n), k_may_first + n * 1ms, id_for(n));
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  // Which 50 remain depends on the order the threads finished in (a file saved late is never
  // removed by its own save); how many does not, and the newest is always among them.
  CHECK(spool.size() == 50);
  CHECK(std::filesystem::exists(dir / dfhook::io::spool_file_name(k_may_first + 99ms, id_for(99))));
  CHECK(entries(dir.path()).size() == 50);
}

TEST_CASE("list gives the delivery files of a directory in name order") {
  const TempDir dir;
  write_bytes(dir / "20240501T120000.000002Z-0000000000000002.json", "b");
  write_bytes(dir / "20240501T120000.000001Z-0000000000000001.json", "a");
  write_bytes(dir / "bare-payload.json", "p");
  write_bytes(dir / ".20240501T120000.000003Z-0000000000000003.json.tmp.1.00000000", "t");
  write_bytes(dir / ".hidden.json", "h");
  write_bytes(dir / "README.txt", "r");
  std::filesystem::create_directory(dir / "sub.json");
  std::filesystem::create_symlink(dir / "bare-payload.json", dir / "link.json");
  std::filesystem::create_symlink(dir / "missing", dir / "dangling.json");
  CHECK(Spool::list(dir.path()) ==
        std::vector<std::filesystem::path>{dir / "20240501T120000.000001Z-0000000000000001.json",
                                           dir / "20240501T120000.000002Z-0000000000000002.json",
                                           dir / "bare-payload.json", dir / "link.json"});
}

TEST_CASE("listing a directory that cannot be read is a usage error naming it") {
  const TempDir dir;
  CHECK_THROWS_WITH_AS((void)Spool::list(dir / "missing"),
                       fmt::format("cannot read directory '{}': no such file or directory",
                                   (dir / "missing").string())
                           .c_str(),
                       Error);
  try {
    (void)Spool::list(dir / "missing");
  } catch (const Error& error) {
    CHECK(error.code() == ExitCode::usage);
  }
}
