#include "dfhook/io/file.hpp"

#include "dfhook/core/error.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>
#include <cstdio>
#include <string>
#include <vector>

using dfhook::core::Error;
using dfhook::core::ExitCode;
using dfhook::io::read_file;

namespace {

// A temporary directory removed with its files when the test ends.
class TempDir {
public:
  TempDir() {
    char pattern[] = "/tmp/dfhook-test-XXXXXX";
    REQUIRE(::mkdtemp(pattern) != nullptr);
    m_path = pattern;
  }
  ~TempDir() {
    for (const std::string& file : m_files) {
      std::remove(file.c_str());
    }
    ::rmdir(m_path.c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string write(const std::string& name, const std::string& content) {
    const std::string path = m_path + "/" + name;
    std::FILE* file = std::fopen(path.c_str(), "wb");
    REQUIRE(file != nullptr);
    REQUIRE(std::fwrite(content.data(), 1, content.size(), file) == content.size());
    REQUIRE(std::fclose(file) == 0);
    m_files.push_back(path);
    return path;
  }
  [[nodiscard]] const std::string& path() const { return m_path; }

private:
  std::string m_path;
  std::vector<std::string> m_files;
};

std::string read_error(const std::string& path) {
  try {
    (void)read_file(path);
  } catch (const Error& error) {
    CHECK(error.code() == ExitCode::usage);
    return error.what();
  }
  FAIL("no error thrown");
  return {};
}

}  // namespace

TEST_CASE("reads a file byte for byte") {
  TempDir dir;
  const std::string content("line\r\n\0binary\xff\n", 15);
  CHECK(read_file(dir.write("a.bin", content)) == content);
  CHECK(read_file(dir.write("empty", "")).empty());
}

TEST_CASE("reads a file larger than one read") {
  TempDir dir;
  std::string content;
  for (int i = 0; content.size() < 300000; ++i) {
    content += std::to_string(i) + ",";
  }
  CHECK(read_file(dir.write("big", content)) == content);
}

TEST_CASE("reads a fixture as the bytes the signature covers") {
  CHECK(read_file(DFHOOK_FIXTURES "/seed-payload.json").size() == 219);
}

TEST_CASE("a missing file is a usage error naming it") {
  TempDir dir;
  CHECK(read_error(dir.path() + "/missing.json") ==
        "cannot read '" + dir.path() + "/missing.json': No such file or directory");
}

TEST_CASE("a directory is a usage error naming it") {
  TempDir dir;
  CHECK(read_error(dir.path()) == "cannot read '" + dir.path() + "': Is a directory");
}

TEST_CASE("'-' reads standard input to its end") {
  TempDir dir;
  const std::string content = "{\"from\":\"stdin\"}\n";
  const std::string path = dir.write("stdin.json", content);
  const int saved = ::dup(STDIN_FILENO);
  REQUIRE(saved >= 0);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::dup2(fd, STDIN_FILENO) == STDIN_FILENO);
  ::close(fd);
  std::string read;
  CHECK_NOTHROW(read = read_file("-"));
  REQUIRE(::dup2(saved, STDIN_FILENO) == STDIN_FILENO);
  ::close(saved);
  CHECK(read == content);
}
