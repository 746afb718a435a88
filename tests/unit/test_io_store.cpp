#include "dfhook/io/store.hpp"

#include "dfhook/core/error.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <atomic>
#include <csignal>
#include <thread>

namespace {

using dfhook::core::Error;
using dfhook::core::ExitCode;
using dfhook::io::CommitOptions;
using dfhook::io::CommitStatus;
using dfhook::io::DatafileMeta;
using dfhook::io::FileDatafileStore;
using dfhook::io::FileStoreOptions;
using dfhook::test::entries;
using dfhook::test::read_bytes;
using dfhook::test::TempDir;
using dfhook::test::write_bytes;
using namespace std::chrono_literals;

// sha256("hello"), as `printf hello | sha256sum` prints it.
constexpr const char* k_hello_sha256 =
    "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

DatafileMeta meta_for(std::uint64_t revision, std::string etag = "\"e1\"") {
  DatafileMeta meta;
  meta.revision = revision;
  meta.etag = std::move(etag);
  meta.last_modified = "Wed, 01 May 2024 12:00:00 GMT";
  meta.source_url = "https://cdn.optimizely.com/json/1234.json";
  return meta;
}

std::chrono::system_clock::time_point at(std::int64_t unix_seconds) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(unix_seconds));
}

mode_t mode_of(const std::filesystem::path& path) {
  struct stat info {};
  REQUIRE(::lstat(path.c_str(), &info) == 0);
  return info.st_mode & 07777;
}

// Reads one line the child writes to `fd` (bounded by the child's exit).
std::string read_all(int fd) {
  std::string text;
  char buffer[256];
  for (;;) {
    const ssize_t got = ::read(fd, buffer, sizeof(buffer));
    if (got <= 0) {
      return text;
    }
    text.append(buffer, static_cast<std::size_t>(got));
  }
}

}  // namespace

TEST_CASE("a committed datafile and its metadata are stored and read back") {
  const TempDir dir;
  FileDatafileStore store(dir / "out", FileStoreOptions{0644, [] { return at(1714564800); }});
  const auto result = store.commit("1234.json", "hello", meta_for(7));
  CHECK(result.status == CommitStatus::written);
  CHECK_FALSE(result.previous);
  CHECK(result.path == dir / "out/1234.json");
  CHECK(read_bytes(dir / "out/1234.json") == "hello");

  const auto meta = store.current("1234.json");
  REQUIRE(meta);
  CHECK(meta->revision == 7);
  CHECK(meta->size == 5);
  CHECK(meta->sha256 == k_hello_sha256);
  CHECK(meta->etag == "\"e1\"");
  CHECK(meta->last_modified == "Wed, 01 May 2024 12:00:00 GMT");
  CHECK(meta->source_url == "https://cdn.optimizely.com/json/1234.json");
  CHECK(meta->fetched_at == at(1714564800));
  CHECK(meta->updated_at == at(1714564800));
  CHECK(store.verified("1234.json"));
  CHECK(read_bytes(dir / "out/.dfhook/1234.json.meta.json") ==
        "{\"dfhook_meta\":1,\"name\":\"1234.json\",\"revision\":7,\"etag\":\"\\\"e1\\\"\","
        "\"last_modified\":\"Wed, 01 May 2024 12:00:00 GMT\",\"size\":5,\"sha256\":\"" +
            std::string(k_hello_sha256) +
            "\",\"source_url\":\"https://cdn.optimizely.com/json/1234.json\","
            "\"fetched_at\":\"2024-05-01T12:00:00Z\",\"updated_at\":\"2024-05-01T12:00:00Z\"}\n");
  CHECK(entries(dir / "out") == std::vector<std::string>{".dfhook", "1234.json"});
}

TEST_CASE("an out-dir removed while the store is open is made again by the next commit") {
  const TempDir dir;
  FileDatafileStore store(dir / "out");
  (void)store.commit("1234.json", "hello", meta_for(7));
  SUBCASE("the whole out-dir") {
    std::filesystem::remove_all(dir / "out");
  }
  SUBCASE("an empty directory in its place") {
    std::filesystem::rename(dir / "out", dir / "old");
    std::filesystem::create_directory(dir / "out");
  }
  const auto result = store.commit("1234.json", "hello again", meta_for(8));
  CHECK(result.status == CommitStatus::written);
  CHECK(read_bytes(dir / "out/1234.json") == "hello again");
  REQUIRE(store.current("1234.json"));
  CHECK(store.current("1234.json")->revision == 8);
}

TEST_CASE("a pending datafile takes chunks and becomes the datafile on commit") {
  const TempDir dir;
  FileDatafileStore store(dir.path());
  auto pending = store.begin("1234.json");
  pending->write("hel");
  pending->write("lo");
  CHECK(pending->size() == 5);
  CHECK_FALSE(std::filesystem::exists(dir / "1234.json"));
  const auto result = store.commit(std::move(pending), meta_for(1));
  CHECK(result.status == CommitStatus::written);
  CHECK(result.stored.sha256 == k_hello_sha256);
  CHECK(read_bytes(dir / "1234.json") == "hello");
}

TEST_CASE("an abandoned pending datafile leaves no file behind") {
  const TempDir dir;
  FileDatafileStore store(dir.path());
  {
    auto pending = store.begin("1234.json");
    pending->write("partial");
  }
  CHECK(entries(dir.path()) == std::vector<std::string>{".dfhook"});
}

TEST_CASE("metadata keeps weak ETags and header bytes exactly as received") {
  const TempDir dir;
  FileDatafileStore store(dir.path());
  const std::string etag = "W/\"5f1-\xff\x01 \\ x\"";
  const std::string last_modified = "Tue, 15 Nov 1994 08:12:31 GMT";
  DatafileMeta meta = meta_for(3, etag);
  meta.last_modified = last_modified;
  (void)store.commit("k.json", "{}", meta);
  const auto stored = store.current("k.json");
  REQUIRE(stored);
  CHECK(stored->etag == etag);
  CHECK(stored->last_modified == last_modified);

  DatafileMeta no_validators = meta_for(4);
  no_validators.etag.reset();
  no_validators.last_modified.reset();
  (void)store.commit("k.json", "{ }", no_validators);
  const auto without = store.current("k.json");
  REQUIRE(without);
  CHECK_FALSE(without->etag);
  CHECK_FALSE(without->last_modified);
}

TEST_CASE("corrupt metadata counts as unknown, never as a crash") {
  const TempDir dir;
  FileDatafileStore store(dir.path());
  (void)store.commit("1234.json", "hello", meta_for(9));
  const auto meta_path = store.meta_path("1234.json");
  for (const std::string& text : std::vector<std::string>{
           "", "{", "[]", "null", "{\"revision\":\"9\"}", std::string(100000, '['),
           std::string(60000, '['),
           "{\"revision\":9,\"size\":5,\"sha256\":\"XYZ\",\"fetched_at\":\"2024-05-01T12:00:00Z\"}",
           "{\"revision\":9,\"revision\":9,\"size\":5,\"sha256\":\"" + std::string(k_hello_sha256) +
               "\",\"fetched_at\":\"2024-05-01T12:00:00Z\"}",
           "{\"revision\":-1,\"size\":5}"}) {
    CAPTURE(text.substr(0, 80));
    write_bytes(meta_path, text);
    CHECK_FALSE(store.current("1234.json"));
    CHECK_FALSE(store.verified("1234.json"));
  }
  CHECK(store.list().empty());
  // With the stored revision unknown, any revision is accepted.
  const auto result = store.commit("1234.json", "world", meta_for(2));
  CHECK(result.status == CommitStatus::written);
  CHECK_FALSE(result.previous);
  CHECK(store.current("1234.json")->revision == 2);
}

TEST_CASE("metadata parser accepts unknown members and nested values") {
  std::string problem;
  const auto meta = dfhook::io::parse_datafile_meta(
      "{\"future\":{\"revision\":[1,2]},\"revision\":18446744073709551615,\"size\":0,"
      "\"sha256\":\"" +
          std::string(k_hello_sha256) +
          "\",\"fetched_at\":\"2024-05-01T12:00:00.5Z\",\"source_url\":\"u\"}",
      &problem);
  REQUIRE_MESSAGE(meta, problem);
  CHECK(meta->revision == 18446744073709551615ULL);
  CHECK(meta->fetched_at == at(1714564800));
  CHECK(meta->updated_at == meta->fetched_at);
  CHECK_FALSE(dfhook::io::parse_datafile_meta("{\"revision\":1} x", &problem));
  CHECK_FALSE(dfhook::io::parse_datafile_meta("{\"revision\":1}", &problem));
  CHECK(problem == "'size' is missing");
}

TEST_CASE("verified() refuses a datafile that no longer matches its metadata") {
  const TempDir dir;
  FileDatafileStore store(dir.path());
  (void)store.commit("1234.json", "hello", meta_for(1));
  REQUIRE(store.verified("1234.json"));
  write_bytes(dir / "1234.json", "hellO");
  CHECK(store.current("1234.json"));
  CHECK_FALSE(store.verified("1234.json"));
  write_bytes(dir / "1234.json", "hello!");
  CHECK_FALSE(store.verified("1234.json"));
  std::filesystem::remove(dir / "1234.json");
  CHECK_FALSE(store.verified("1234.json"));
  write_bytes(dir / "elsewhere", "hello");
  std::filesystem::create_symlink(dir / "elsewhere", dir / "1234.json");
  CHECK_FALSE(store.verified("1234.json"));
}

TEST_CASE("a revision never goes backwards unless allow_downgrade") {
  const TempDir dir;
  FileDatafileStore store(dir.path());
  (void)store.commit("1234.json", "revision 5", meta_for(5));
  const auto refused = store.commit("1234.json", "revision 4", meta_for(4));
  CHECK(refused.status == CommitStatus::downgrade_refused);
  REQUIRE(refused.previous);
  CHECK(refused.previous->revision == 5);
  CHECK(refused.stored.revision == 5);
  CHECK(read_bytes(dir / "1234.json") == "revision 5");
  CHECK(entries(dir.path()) == std::vector<std::string>{".dfhook", "1234.json"});

  const auto allowed =
      store.commit("1234.json", "revision 4", meta_for(4), CommitOptions{.allow_downgrade = true});
  CHECK(allowed.status == CommitStatus::written);
  CHECK(allowed.previous->revision == 5);
  CHECK(read_bytes(dir / "1234.json") == "revision 4");
  CHECK(store.current("1234.json")->revision == 4);

  const auto upgraded = store.commit("1234.json", "revision 6", meta_for(6));
  CHECK(upgraded.status == CommitStatus::written);
  CHECK(upgraded.previous->revision == 4);
  CHECK(read_bytes(dir / "1234.json") == "revision 6");
}

TEST_CASE("an equal revision is unchanged unless the stored datafile is damaged") {
  const TempDir dir;
  auto clock = at(1000);
  FileDatafileStore store(dir.path(), FileStoreOptions{0644, [&] { return clock; }});
  (void)store.commit("1234.json", "hello", meta_for(5, "\"old\""));

  clock = at(2000);
  const auto same_bytes = store.commit("1234.json", "hello", meta_for(5, "\"new\""));
  CHECK(same_bytes.status == CommitStatus::unchanged);
  CHECK(same_bytes.stored.etag == "\"new\"");
  CHECK(store.current("1234.json")->etag == "\"new\"");
  CHECK(store.current("1234.json")->fetched_at == at(2000));
  CHECK(store.current("1234.json")->updated_at == at(1000));

  const auto other_bytes = store.commit("1234.json", "HELLO", meta_for(5, "\"other\""));
  CHECK(other_bytes.status == CommitStatus::unchanged);
  CHECK(read_bytes(dir / "1234.json") == "hello");
  CHECK(store.current("1234.json")->etag == "\"new\"");

  write_bytes(dir / "1234.json", "damaged");
  const auto repaired = store.commit("1234.json", "hello", meta_for(5, "\"new\""));
  CHECK(repaired.status == CommitStatus::written);
  CHECK(read_bytes(dir / "1234.json") == "hello");
  CHECK(store.verified("1234.json"));
}

TEST_CASE("a symlink at the datafile's name is replaced, never followed") {
  const TempDir dir;
  FileDatafileStore store(dir / "out");
  write_bytes(dir / "victim", "precious");
  std::filesystem::create_symlink(dir / "victim", dir / "out/1234.json");
  (void)store.commit("1234.json", "hello", meta_for(1));
  CHECK(read_bytes(dir / "victim") == "precious");
  CHECK_FALSE(std::filesystem::is_symlink(dir / "out/1234.json"));
  CHECK(read_bytes(dir / "out/1234.json") == "hello");
}

TEST_CASE("names that are not plain file names are rejected") {
  const TempDir dir;
  FileDatafileStore store(dir.path());
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "invalid datafile name '': the name is empty"},
      {".", "invalid datafile name '.': not a file name"},
      {"..", "invalid datafile name '..': not a file name"},
      {"../etc/passwd", "invalid datafile name '../etc/passwd': starts with '.'"},
      {"a/b.json", "invalid datafile name 'a/b.json': contains '/'"},
      {".hidden", "invalid datafile name '.hidden': starts with '.'"},
      {"a\nb", "invalid datafile name 'a\\x0ab': contains a control character"},
      {std::string("a\0b", 3), "invalid datafile name 'a\\x00b': contains a control character"},
      {"\x7f", "invalid datafile name '\\x7f': contains a control character"},
      {std::string(201, 'a'),
       "invalid datafile name '" + std::string(201, 'a') + "': longer than 200 bytes"},
  };
  for (const auto& [name, message] : bad) {
    CAPTURE(name);
    CHECK_FALSE(dfhook::io::is_valid_datafile_name(name));
    CHECK_THROWS_WITH_AS((void)store.begin(name), message.c_str(), Error);
    CHECK_THROWS_AS((void)store.current(name), Error);
    CHECK_THROWS_AS((void)store.lock(name, 0ms), Error);
  }
  for (const char* name : {"1234.json", "TestSdkKey123.json", "a b", "caf\xc3\xa9.json", "x.."}) {
    CHECK(dfhook::io::is_valid_datafile_name(name));
  }
  CHECK(dfhook::io::is_valid_datafile_name(std::string(200, 'a')));
  CHECK(entries(dir.path()) == std::vector<std::string>{".dfhook"});
}

TEST_CASE("a reader sees the whole old datafile or the whole new one, never a mix") {
  const TempDir dir;
  FileDatafileStore store(dir.path());
  const std::string old_bytes(64 * 1024, 'a');
  const std::string new_bytes(96 * 1024 + 7, 'b');
  (void)store.commit("1234.json", old_bytes, meta_for(1));
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::atomic<int> torn{0};
  std::thread reader([&] {
    while (!done.load()) {
      const std::string seen = read_bytes(dir / "1234.json");
      if (seen != old_bytes && seen != new_bytes) {
        ++torn;
      }
      ++reads;
    }
  });
  for (int i = 0; i < 200; ++i) {
    (void)store.commit("1234.json", i % 2 == 0 ? new_bytes : old_bytes, meta_for(2 + i));
  }
  done = true;
  reader.join();
  CHECK(torn.load() == 0);
  CHECK(reads.load() > 0);
  CHECK(read_bytes(dir / "1234.json") == old_bytes);
  CHECK(store.verified("1234.json")->revision == 201);
}

TEST_CASE("a second lock times out with exit code 3 and says who holds what") {
  const TempDir dir;
  FileDatafileStore store(dir.path());
  const auto held = store.lock("1234.json", 0ms);
  CHECK(held->name() == "1234.json");
  try {
    (void)store.lock("1234.json", 50ms);
    FAIL("the second lock was granted");
  } catch (const Error& error) {
    CHECK(error.code() == ExitCode::lock_timeout);
    CHECK(std::string(error.what()) ==
          fmt::format("another dfhook holds the lock on '{}' (waited 50ms)",
                      (dir / "1234.json").string()));
    CHECK(error.hint() ==
          fmt::format("raise --lock-timeout, or find the holder of '{}' with fuser or lsof",
                      (dir / ".dfhook/1234.json.lock").string()));
  }
  // Another datafile's lock is independent.
  CHECK(store.lock("other.json", 0ms));
  // commit() that takes the lock itself waits for it too, and leaves the datafile alone.
  CHECK_THROWS_AS(
      (void)store.commit("1234.json", "x", meta_for(1), CommitOptions{.lock_timeout = 20ms}),
      Error);
  CHECK(entries(dir.path()) == std::vector<std::string>{".dfhook"});
}

TEST_CASE("a lock is free again once its holder releases it") {
  const TempDir dir;
  FileDatafileStore store(dir.path());
  auto held = store.lock("1234.json", 0ms);
  std::thread releaser([&] { held.reset(); });
  const auto again = store.lock("1234.json", 10s);
  releaser.join();
  CHECK(again);
  // The caller holding the lock commits under it.
  const auto result = store.commit_locked(*again, store.begin("1234.json"), meta_for(1), false);
  CHECK(result.status == CommitStatus::written);
}

TEST_CASE("commit_locked refuses a lock of another datafile") {
  const TempDir dir;
  FileDatafileStore store(dir.path());
  const auto other = store.lock("other.json", 0ms);
  CHECK_THROWS_AS((void)store.commit_locked(*other, store.begin("1234.json"), meta_for(1), false),
                  std::logic_error);
  CHECK(entries(dir.path()) == std::vector<std::string>{".dfhook"});
}

TEST_CASE("the lock of a holder that is killed is released by the kernel") {
  const TempDir dir;
  FileDatafileStore store(dir.path());
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(ready[0]);
    const auto held = store.lock("1234.json", 0ms);
    (void)!::write(ready[1], "L", 1);
    for (;;) {
      ::pause();
    }
  }
  ::close(ready[1]);
  char byte = 0;
  REQUIRE(::read(ready[0], &byte, 1) == 1);
  ::close(ready[0]);
  CHECK_THROWS_AS((void)store.lock("1234.json", 0ms), Error);
  ::kill(child, SIGKILL);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(store.lock("1234.json", 10s));
}

TEST_CASE("datafile and metadata get the file mode whatever the umask") {
  const TempDir dir;
  const mode_t saved = ::umask(0077);
  FileDatafileStore store(dir / "new/out", FileStoreOptions{0644, {}});
  (void)store.commit("1234.json", "hello", meta_for(1));
  FileDatafileStore group(dir / "group", FileStoreOptions{0640, {}});
  ::umask(0);
  (void)group.commit("1234.json", "hello", meta_for(1));
  ::umask(saved);
  CHECK(mode_of(dir / "new/out/1234.json") == 0644);
  CHECK(mode_of(dir / "new/out/.dfhook/1234.json.meta.json") == 0644);
  CHECK(mode_of(dir / "new") == 0755);
  CHECK(mode_of(dir / "new/out") == 0755);
  CHECK(mode_of(dir / "new/out/.dfhook") == 0755);
  CHECK(mode_of(dir / "group/1234.json") == 0640);
  CHECK(mode_of(dir / "group/.dfhook/1234.json.meta.json") == 0640);
}

TEST_CASE("a write that fails (file size limit) leaves the old datafile intact") {
  const TempDir dir;
  FileDatafileStore store(dir.path());
  (void)store.commit("1234.json", "hello", meta_for(1));
  int report[2];
  REQUIRE(::pipe(report) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // RLIMIT_FSIZE stops root as well as anyone; ignored SIGXFSZ turns it into EFBIG.
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{4096, 4096};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    std::string message = "no error";
    try {
      (void)store.commit("1234.json", std::string(10000, 'x'), meta_for(2));
    } catch (const Error& error) {
      message = error.what();
    }
    (void)!::write(report[1], message.data(), message.size());
    ::_exit(0);
  }
  ::close(report[1]);
  const std::string message = read_all(report[0]);
  ::close(report[0]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(message.starts_with(fmt::format("cannot write '{}/.1234.json.tmp.", dir.path().string())));
  CHECK(message.ends_with("': file too large"));
  CHECK(read_bytes(dir / "1234.json") == "hello");
  CHECK(store.verified("1234.json")->revision == 1);
  CHECK(entries(dir.path()) == std::vector<std::string>{".dfhook", "1234.json"});
}

TEST_CASE("a directory in the datafile's place fails the commit naming the path") {
  const TempDir dir;
  FileDatafileStore store(dir.path());
  std::filesystem::create_directory(dir / "1234.json");
  CHECK_THROWS_WITH_AS(
      (void)store.commit("1234.json", "hello", meta_for(1)),
      fmt::format("cannot replace '{}': is a directory", (dir / "1234.json").string()).c_str(),
      Error);
  CHECK(entries(dir.path()) == std::vector<std::string>{".dfhook", "1234.json"});
  CHECK_FALSE(store.current("1234.json"));
}

TEST_CASE("an out-dir that cannot be created is an error naming it") {
  const TempDir dir;
  write_bytes(dir / "file", "");
  CHECK_THROWS_WITH_AS(FileDatafileStore(dir / "file/out"),
                       fmt::format("'{}' is not a directory", (dir / "file").string()).c_str(),
                       Error);
}

TEST_CASE("opening the store removes temp files that killed writers left") {
  const TempDir dir;
  std::filesystem::create_directories(dir / ".dfhook");
  const auto stale = ".1234.json.tmp.999999999.0a0b0c0d";
  write_bytes(dir / stale, "half a download");
  const auto when = std::chrono::system_clock::now() - std::chrono::minutes(5);
  const auto seconds =
      std::chrono::duration_cast<std::chrono::seconds>(when.time_since_epoch()).count();
  const timespec times[2] = {{seconds, 0}, {seconds, 0}};
  REQUIRE(::utimensat(AT_FDCWD, (dir / stale).c_str(), times, 0) == 0);
  const FileDatafileStore store(dir.path());
  CHECK(entries(dir.path()) == std::vector<std::string>{".dfhook"});
}

TEST_CASE("list() returns the datafiles that have metadata, by name") {
  const TempDir dir;
  FileDatafileStore store(dir.path(), FileStoreOptions{0644, [] { return at(1714564800); }});
  (void)store.commit("b.json", "b", meta_for(2));
  (void)store.commit("a.json", "a", meta_for(1));
  (void)store.commit("gone.json", "g", meta_for(3));
  std::filesystem::remove(dir / "gone.json");
  (void)store.commit("corrupt.json", "c", meta_for(4));
  write_bytes(store.meta_path("corrupt.json"), "{");
  write_bytes(dir / "no-meta.json", "n");
  (void)store.lock("b.json", 0ms);

  const auto listed = store.list();
  REQUIRE(listed.size() == 2);
  CHECK(listed[0].name == "a.json");
  CHECK(listed[0].path == dir / "a.json");
  CHECK(listed[0].meta.revision == 1);
  CHECK(listed[0].meta.updated_at == at(1714564800));
  CHECK(listed[0].meta.source_url == "https://cdn.optimizely.com/json/1234.json");
  CHECK(listed[1].name == "b.json");
  CHECK(listed[1].meta.revision == 2);
}

TEST_CASE("other users cannot open a lock file, so they cannot hold updates back") {
  TempDir dir;
  FileDatafileStore store(dir.path());
  write_bytes(dir / ".dfhook/old.json.lock", "");
  ::chmod((dir / ".dfhook/old.json.lock").c_str(), 0644);
  { const auto held = store.lock("1234.json", std::chrono::milliseconds(0)); }
  { const auto held = store.lock("old.json", std::chrono::milliseconds(0)); }
  CHECK((mode_of(dir / ".dfhook/1234.json.lock") & 0007) == 0);
  CHECK(mode_of(dir / ".dfhook/old.json.lock") == 0640);
}
