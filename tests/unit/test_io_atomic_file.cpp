#include "dfhook/io/atomic_file.hpp"

#include "dfhook/core/error.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <chrono>

namespace {

using dfhook::io::AtomicFile;
using dfhook::test::entries;
using dfhook::test::read_bytes;
using dfhook::test::TempDir;
using dfhook::test::write_bytes;

// A pid that was just used by a child that has been reaped, so no process has it now.
pid_t dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) {
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

void set_mtime(const std::filesystem::path& path, std::chrono::system_clock::time_point when) {
  const auto since_epoch = when.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  timespec times[2];
  times[0].tv_sec = seconds.count();
  times[0].tv_nsec = 0;
  times[1] = times[0];
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0);
}

}  // namespace

TEST_CASE("errno_text is strerror with a lowercase first letter") {
  CHECK(dfhook::io::errno_text(ENOSPC) == "no space left on device");
  CHECK(dfhook::io::errno_text(ENOENT) == "no such file or directory");
}

TEST_CASE("an atomic file replaces its target only on commit") {
  const TempDir dir;
  write_bytes(dir / "target", "old");
  {
    AtomicFile file(dir / "target", 0644);
    file.write("new ");
    file.write("bytes");
    CHECK(file.size() == 9);
    CHECK(file.temp_path().parent_path() == dir.path());
    CHECK(read_bytes(dir / "target") == "old");
    file.commit();
  }
  CHECK(read_bytes(dir / "target") == "new bytes");
  CHECK(entries(dir.path()) == std::vector<std::string>{"target"});
}

TEST_CASE("an atomic file destroyed without commit leaves the target and no temp file") {
  const TempDir dir;
  write_bytes(dir / "target", "old");
  {
    AtomicFile file(dir / "target", 0644);
    file.write("half");
    CHECK(entries(dir.path()).size() == 2);
  }
  CHECK(read_bytes(dir / "target") == "old");
  CHECK(entries(dir.path()) == std::vector<std::string>{"target"});
}

TEST_CASE("an atomic file gets its mode whatever the umask") {
  const TempDir dir;
  const mode_t saved = ::umask(0077);
  dfhook::io::write_file_atomically(dir / "a", "x", 0644);
  ::umask(0);
  dfhook::io::write_file_atomically(dir / "b", "x", 0640);
  ::umask(saved);
  struct stat info {};
  REQUIRE(::stat((dir / "a").c_str(), &info) == 0);
  CHECK((info.st_mode & 07777) == 0644);
  REQUIRE(::stat((dir / "b").c_str(), &info) == 0);
  CHECK((info.st_mode & 07777) == 0640);
}

TEST_CASE("a rename onto a directory fails naming the target and leaves no temp file") {
  const TempDir dir;
  std::filesystem::create_directory(dir / "target");
  AtomicFile file(dir / "target", 0644);
  file.write("x");
  try {
    file.commit();
    FAIL("commit onto a directory succeeded");
  } catch (const dfhook::core::Error& error) {
    CHECK(std::string(error.what()) ==
          fmt::format("cannot replace '{}': is a directory", (dir / "target").string()));
    CHECK(error.code() == dfhook::core::ExitCode::failed);
  }
  file.discard();
  CHECK(entries(dir.path()) == std::vector<std::string>{"target"});
}

TEST_CASE("ensure_directory creates missing parents with the exact mode") {
  const TempDir dir;
  const mode_t saved = ::umask(0077);
  dfhook::io::ensure_directory(dir / "a/b/c", 0755);
  ::umask(saved);
  for (const char* path : {"a", "a/b", "a/b/c"}) {
    struct stat info {};
    REQUIRE(::stat((dir / path).c_str(), &info) == 0);
    CHECK(S_ISDIR(info.st_mode));
    CHECK((info.st_mode & 07777) == 0755);
  }
  dfhook::io::ensure_directory(dir / "a/b/c", 0700);
}

TEST_CASE("ensure_directory names a path component that is a file") {
  const TempDir dir;
  write_bytes(dir / "file", "");
  CHECK_THROWS_WITH_AS(dfhook::io::ensure_directory(dir / "file/sub", 0755),
                       fmt::format("'{}' is not a directory", (dir / "file").string()).c_str(),
                       dfhook::core::Error);
}

TEST_CASE("temp file names are recognised") {
  CHECK(dfhook::io::is_temp_file_name(".1234.json.tmp.42.0a1b2c3d"));
  CHECK_FALSE(dfhook::io::is_temp_file_name("1234.json.tmp.42.0a1b2c3d"));
  CHECK_FALSE(dfhook::io::is_temp_file_name(".1234.json.tmp.x.0a1b2c3d"));
  CHECK_FALSE(dfhook::io::is_temp_file_name(".1234.json.tmp.42.0a1b"));
  CHECK_FALSE(dfhook::io::is_temp_file_name(".1234.json"));
}

TEST_CASE("stale temp files of dead writers are removed, live and recent ones kept") {
  const TempDir dir;
  const auto now = std::chrono::system_clock::now();
  const pid_t dead = dead_pid();
  const pid_t alive = ::getppid();
  const auto name = [](pid_t pid, const char* hex) {
    return fmt::format(".1234.json.tmp.{}.{}", pid, hex);
  };
  write_bytes(dir / name(dead, "00000001"), "old, dead writer");
  set_mtime(dir / name(dead, "00000001"), now - std::chrono::minutes(2));
  write_bytes(dir / name(dead, "00000002"), "recent, dead writer");
  write_bytes(dir / name(alive, "00000003"), "old, live writer");
  set_mtime(dir / name(alive, "00000003"), now - std::chrono::minutes(2));
  write_bytes(dir / name(alive, "00000004"), "abandoned for days");
  set_mtime(dir / name(alive, "00000004"), now - std::chrono::hours(49));
  write_bytes(dir / name(::getpid(), "00000005"), "this process, before it started");
  set_mtime(dir / name(::getpid(), "00000005"), now - std::chrono::hours(2));
  write_bytes(dir / "1234.json", "not a temp file");
  set_mtime(dir / "1234.json", now - std::chrono::hours(49));

  CHECK(dfhook::io::remove_stale_temp_files(dir.path(), now) == 3);
  std::vector<std::string> kept{name(dead, "00000002"), name(alive, "00000003"), "1234.json"};
  std::sort(kept.begin(), kept.end());
  CHECK(entries(dir.path()) == kept);
}
