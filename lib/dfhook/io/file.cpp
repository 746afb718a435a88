#include "dfhook/io/file.hpp"

#include "dfhook/core/error.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>

namespace dfhook::io {

std::string input_name(const std::string& path) {
  return path == "-" ? std::string("standard input") : "'" + path + "'";
}

std::string unreadable_message(const std::string& path, int error) {
  return "cannot read " + input_name(path) + ": " + std::strerror(error);
}

namespace {

[[noreturn]] void throw_unreadable(const std::string& path, int error) {
  throw core::usage_error(unreadable_message(path, error));
}

// Reads `fd` to its end; false with errno set on a read error.
bool read_all(int fd, std::string& out) {
  constexpr std::size_t k_chunk = 64 * 1024;
  // A regular file's size is known: one allocation, and the read that returns 0 fits in the
  // extra byte.
  struct stat info {};
  if (::fstat(fd, &info) == 0 && S_ISREG(info.st_mode) && info.st_size > 0) {
    out.reserve(static_cast<std::size_t>(info.st_size) + 1);
  }
  std::size_t length = 0;
  for (;;) {
    if (length == out.size()) {
      out.resize(std::max(out.capacity(), length + k_chunk));
    }
    const ssize_t got = ::read(fd, out.data() + length, out.size() - length);
    if (got == 0) {
      out.resize(length);
      return true;
    }
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    length += static_cast<std::size_t>(got);
  }
}

}  // namespace

std::string read_file(const std::string& path) {
  std::string content;
  if (path == "-") {
    if (!read_all(STDIN_FILENO, content)) {
      throw_unreadable(path, errno);
    }
    return content;
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    throw_unreadable(path, errno);
  }
  const bool ok = read_all(fd, content);
  const int error = errno;
  ::close(fd);
  if (!ok) {
    throw_unreadable(path, error);
  }
  return content;
}

}  // namespace dfhook::io
