#pragma once

#include <filesystem>
#include <vector>

namespace dfhook::io {

// Tells whether anything in a few directories may have changed since it was last asked, from
// inotify: a question costs one read(2) of a descriptor instead of a path lookup per file
// (a busy listener asks on every delivery). The kernel queues an event before the change's
// system call returns, so a change that completed before changed() is always reported.
//
// When inotify cannot answer, changed() says true and the caller looks for itself: no inotify
// instance left, a directory missing, removed, renamed or unmounted (the watch is then set up
// again on the paths at the next question), the event queue overflowed. inotify does not see
// changes that do not pass through this kernel (another client of a network filesystem) or
// that redirect a path without touching the directory (a symbolic link to it replaced): a
// caller that must notice those looks again now and then anyway.
//
// One thread at a time.
class DirectoryWatch {
public:
  explicit DirectoryWatch(std::vector<std::filesystem::path> directories);
  ~DirectoryWatch();
  DirectoryWatch(const DirectoryWatch&) = delete;
  DirectoryWatch& operator=(const DirectoryWatch&) = delete;

  // True when an entry of a watched directory may have been created, removed, renamed, written
  // or had its attributes changed since the previous call (or since construction), and
  // whenever the directories are not being watched.
  [[nodiscard]] bool changed();

  // Whether inotify watches every directory now.
  [[nodiscard]] bool watching() const noexcept { return m_fd >= 0; }

private:
  // Sets up the watches; false (and no descriptor) when any directory cannot be watched.
  bool arm();
  void disarm() noexcept;

  std::vector<std::filesystem::path> m_directories;
  int m_fd = -1;
};

}  // namespace dfhook::io
