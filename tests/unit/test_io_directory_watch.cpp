#include "dfhook/io/directory_watch.hpp"

#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <filesystem>

namespace {

using dfhook::io::DirectoryWatch;
using dfhook::test::TempDir;
using dfhook::test::write_bytes;

TEST_CASE("DirectoryWatch reports each kind of change once, in every watched directory") {
  TempDir dir;
  std::filesystem::create_directory(dir / "out");
  std::filesystem::create_directory(dir / "out" / ".dfhook");
  DirectoryWatch watch({dir / "out", dir / "out" / ".dfhook"});
  REQUIRE(watch.watching());
  CHECK_FALSE(watch.changed());

  write_bytes(dir / "out" / "a.json", "{}");  // created and written
  CHECK(watch.changed());
  CHECK_FALSE(watch.changed());

  write_bytes(dir / "elsewhere.json", "{}");  // outside: not reported
  CHECK_FALSE(watch.changed());
  std::filesystem::rename(dir / "elsewhere.json", dir / "out" / "b.json");
  CHECK(watch.changed());
  CHECK_FALSE(watch.changed());

  write_bytes(dir / "out" / ".dfhook" / "a.json.meta.json", "{}");
  CHECK(watch.changed());
  CHECK_FALSE(watch.changed());

  ::chmod((dir / "out" / "a.json").c_str(), 0600);
  CHECK(watch.changed());
  std::filesystem::rename(dir / "out" / "b.json", dir / "b.json");  // moved out
  CHECK(watch.changed());
  std::filesystem::remove(dir / "out" / "a.json");
  CHECK(watch.changed());
  CHECK_FALSE(watch.changed());

  // Many events between two questions are one answer.
  for (int i = 0; i < 2000; ++i) {
    write_bytes(dir / "out" / ("f" + std::to_string(i)), "x");
  }
  CHECK(watch.changed());
  CHECK_FALSE(watch.changed());
  CHECK(watch.watching());
}

TEST_CASE("DirectoryWatch says changed while a directory is gone, and watches it again") {
  TempDir dir;
  std::filesystem::create_directories(dir / "out" / ".dfhook");
  DirectoryWatch watch({dir / "out", dir / "out" / ".dfhook"});
  REQUIRE_FALSE(watch.changed());

  std::filesystem::remove(dir / "out" / ".dfhook");
  CHECK(watch.changed());
  CHECK_FALSE(watch.watching());
  CHECK(watch.changed());  // still missing: nothing can be known
  CHECK(watch.changed());

  std::filesystem::create_directory(dir / "out" / ".dfhook");
  CHECK(watch.changed());  // watched again from here; what happened before is unknown
  CHECK(watch.watching());
  CHECK_FALSE(watch.changed());

  // The out-dir replaced by another directory of the same name.
  std::filesystem::rename(dir / "out", dir / "old");
  std::filesystem::create_directories(dir / "out" / ".dfhook");
  CHECK(watch.changed());  // the watch followed the old directory: lost
  CHECK(watch.changed());  // set up again, on the new directory
  CHECK_FALSE(watch.changed());
  write_bytes(dir / "old" / "a.json", "{}");  // the old directory is no longer watched
  CHECK_FALSE(watch.changed());
  write_bytes(dir / "out" / "a.json", "{}");
  CHECK(watch.changed());
}

TEST_CASE("DirectoryWatch of a directory that does not exist always says changed") {
  TempDir dir;
  DirectoryWatch watch({dir / "missing"});
  CHECK_FALSE(watch.watching());
  CHECK(watch.changed());
  CHECK(watch.changed());
}

}  // namespace

TEST_CASE("DirectoryWatch follows a path that was switched to another directory") {
  TempDir dir;
  std::filesystem::create_directory(dir / "release-1");
  std::filesystem::create_directory(dir / "release-2");
  std::filesystem::create_directory_symlink("release-1", dir / "current");
  DirectoryWatch watch({dir / "current"});
  REQUIRE(watch.watching());
  CHECK_FALSE(watch.follow_paths());  // nothing switched

  std::filesystem::create_directory_symlink("release-2", dir / "next");
  std::filesystem::rename(dir / "next", dir / "current");
  CHECK_FALSE(watch.changed());  // the watched directory itself did not change
  CHECK(watch.follow_paths());
  CHECK(watch.watching());
  CHECK_FALSE(watch.changed());
  write_bytes(dir / "release-1" / "a.json", "{}");  // the old target: no longer watched
  CHECK_FALSE(watch.changed());
  write_bytes(dir / "release-2" / "a.json", "{}");
  CHECK(watch.changed());
  CHECK_FALSE(watch.follow_paths());
}
