#pragma once

#include <sys/types.h>
#include <filesystem>
#include <optional>
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
// changes that do not pass through this kernel (another client of a network filesystem), nor
// a path redirected without touching the directory (a symbolic link to it switched, a parent
// renamed): a caller that must notice those looks again now and then anyway, and calls
// follow_paths() then.
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

  // Checks (one stat(2) per directory) that each path still leads to the directory watched;
  // where one does not, sets the watches up again on the paths and returns true: anything may
  // have changed.
  bool follow_paths();

private:
  struct Identity {
    dev_t device = 0;
    ino_t inode = 0;
    bool operator==(const Identity&) const = default;
  };
  // The directory at `path` now; nullopt when it cannot be stat()ed.
  static std::optional<Identity> identity_of(const std::filesystem::path& path);

  // Sets up the watches; false (and no descriptor) when any directory cannot be watched.
  bool arm();
  void disarm() noexcept;

  std::vector<std::filesystem::path> m_directories;
  std::vector<Identity> m_watched;  // what each path led to when the watches were set up
  int m_fd = -1;
};

}  // namespace dfhook::io
