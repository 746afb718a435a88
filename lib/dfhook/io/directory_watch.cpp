#include "dfhook/io/directory_watch.hpp"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <utility>

namespace dfhook::io {

namespace {

// Every change to an entry, and the directory itself going away.
constexpr std::uint32_t k_mask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
                                 IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF |
                                 IN_MOVE_SELF | IN_ONLYDIR;

// Events after which a watch no longer follows its path.
constexpr std::uint32_t k_watch_lost =
    IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED | IN_Q_OVERFLOW;

}  // namespace

DirectoryWatch::DirectoryWatch(std::vector<std::filesystem::path> directories)
    : m_directories(std::move(directories)) {
  (void)arm();
}

DirectoryWatch::~DirectoryWatch() {
  disarm();
}

std::optional<DirectoryWatch::Identity> DirectoryWatch::identity_of(
    const std::filesystem::path& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    return std::nullopt;
  }
  return Identity{info.st_dev, info.st_ino};
}

bool DirectoryWatch::arm() {
  m_fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (m_fd < 0) {
    return false;
  }
  m_watched.clear();
  for (const auto& directory : m_directories) {
    // Before the watch: a path switched in between then shows as a mismatch later.
    const std::optional<Identity> identity = identity_of(directory);
    if (!identity || ::inotify_add_watch(m_fd, directory.c_str(), k_mask) < 0) {
      disarm();
      return false;
    }
    m_watched.push_back(*identity);
  }
  return true;
}

bool DirectoryWatch::follow_paths() {
  if (m_fd < 0) {
    return true;  // changed() sets the watches up again
  }
  for (std::size_t i = 0; i < m_directories.size(); ++i) {
    if (identity_of(m_directories[i]) != m_watched[i]) {
      disarm();
      (void)arm();
      return true;
    }
  }
  return false;
}

void DirectoryWatch::disarm() noexcept {
  if (m_fd >= 0) {
    ::close(m_fd);
    m_fd = -1;
  }
}

bool DirectoryWatch::changed() {
  if (m_fd < 0) {
    // Whatever happened while nothing watched is unknown.
    (void)arm();
    return true;
  }
  alignas(inotify_event) char buffer[16 * (sizeof(inotify_event) + NAME_MAX + 1)];
  bool any = false;
  for (;;) {
    const ssize_t got = ::read(m_fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      if (got < 0 && errno != EAGAIN) {
        disarm();
        return true;
      }
      return any;
    }
    any = true;
    for (ssize_t at = 0; at < got;) {
      inotify_event event{};
      std::memcpy(&event, buffer + at, sizeof event);
      if ((event.mask & k_watch_lost) != 0) {
        disarm();
        return true;
      }
      at += static_cast<ssize_t>(sizeof(inotify_event) + event.len);
    }
  }
}

}  // namespace dfhook::io
