#include "dfhook/io/atomic_file.hpp"

#include "dfhook/core/error.hpp"
#include "dfhook/io/log.hpp"

#include <fmt/format.h>
#include <openssl/rand.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <utility>

#include <dirent.h>

namespace dfhook::io {

namespace {

// Taken when the program is loaded: a temporary file carrying this process's own pid that was
// last written before then belongs to an earlier process that had the same pid.
const std::chrono::system_clock::time_point g_process_start = std::chrono::system_clock::now();

constexpr std::string_view k_temp_marker = ".tmp.";
constexpr auto k_stale_after = std::chrono::minutes(1);
constexpr auto k_abandoned_after = std::chrono::hours(24);

std::filesystem::path directory_of(const std::filesystem::path& path) {
  std::filesystem::path dir = path.parent_path();
  return dir.empty() ? std::filesystem::path(".") : dir;
}

std::string random_hex(std::size_t bytes) {
  std::array<unsigned char, 16> buffer{};
  if (bytes > buffer.size() || RAND_bytes(buffer.data(), static_cast<int>(bytes)) != 1) {
    throw core::failure("cannot draw random bytes from OpenSSL");
  }
  std::string hex;
  hex.reserve(bytes * 2);
  for (std::size_t i = 0; i < bytes; ++i) {
    hex += fmt::format("{:02x}", buffer[i]);
  }
  return hex;
}

void close_quietly(int fd) noexcept {
  if (fd >= 0) {
    // On Linux the descriptor is gone even when close reports EINTR: never retry.
    ::close(fd);
  }
}

// The pid in ".<name>.tmp.<pid>.<hex>", or 0 when the name is not one of ours.
pid_t temp_file_pid(std::string_view file_name) {
  if (file_name.size() < 2 || file_name[0] != '.') {
    return 0;
  }
  const std::size_t marker = file_name.rfind(k_temp_marker);
  if (marker == std::string_view::npos || marker == 0) {
    return 0;
  }
  const std::string_view rest = file_name.substr(marker + k_temp_marker.size());
  const std::size_t dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0) {
    return 0;
  }
  const std::string_view hex = rest.substr(dot + 1);
  if (hex.size() != 8) {
    return 0;
  }
  for (const char c : hex) {
    if (std::isxdigit(static_cast<unsigned char>(c)) == 0) {
      return 0;
    }
  }
  pid_t pid = 0;
  const std::string_view digits = rest.substr(0, dot);
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
  if (error != std::errc() || end != digits.data() + digits.size() || pid <= 0) {
    return 0;
  }
  return pid;
}

bool process_exists(pid_t pid) {
  // EPERM: it exists but belongs to someone else.
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

}  // namespace

std::string errno_text(int error_number) {
  char buffer[256];
  // GNU strerror_r: returns a pointer to the message, which may or may not be `buffer`.
  std::string text = ::strerror_r(error_number, buffer, sizeof(buffer));
  if (!text.empty()) {
    text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  }
  return text;
}

void ensure_directory(const std::filesystem::path& dir, mode_t mode) {
  std::filesystem::path prefix;
  for (const auto& part : dir.lexically_normal()) {
    prefix /= part;
    if (part.empty() || part == "/" || part == "." || part == "..") {
      continue;
    }
    if (::mkdir(prefix.c_str(), mode) == 0) {
      if (::chmod(prefix.c_str(), mode) != 0) {
        throw core::failure(
            fmt::format("cannot set the mode of '{}': {}", prefix.string(), errno_text(errno)));
      }
      continue;
    }
    const int error = errno;
    struct stat info {};
    if (error == EEXIST && ::stat(prefix.c_str(), &info) == 0) {
      if (!S_ISDIR(info.st_mode)) {
        throw core::failure(fmt::format("'{}' is not a directory", prefix.string()));
      }
      continue;
    }
    throw core::failure(
        fmt::format("cannot create directory '{}': {}", prefix.string(), errno_text(error)));
  }
}

void require_writable_directory(const std::filesystem::path& dir) {
  if (::faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS) != 0) {
    throw core::failure(
        fmt::format("directory '{}' is not writable: {}", dir.string(), errno_text(errno)));
  }
}

void fsync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    throw core::failure(
        fmt::format("cannot open directory '{}': {}", dir.string(), errno_text(errno)));
  }
  if (::fsync(fd) != 0) {
    const int error = errno;
    close_quietly(fd);
    throw core::failure(
        fmt::format("cannot sync directory '{}': {}", dir.string(), errno_text(error)));
  }
  close_quietly(fd);
}

AtomicFile::AtomicFile(std::filesystem::path target, mode_t mode) : m_target(std::move(target)) {
  const std::filesystem::path dir = directory_of(m_target);
  const std::string prefix =
      fmt::format(".{}{}{}.", m_target.filename().string(), k_temp_marker, ::getpid());
  // O_EXCL makes a clash (a stale file of an earlier process with our pid) visible: draw again.
  for (int attempt = 0;; ++attempt) {
    m_temp = dir / (prefix + random_hex(4));
    m_fd = ::open(m_temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (m_fd >= 0) {
      break;
    }
    if (errno != EEXIST || attempt == 8) {
      throw core::failure(
          fmt::format("cannot create '{}': {}", m_temp.string(), errno_text(errno)));
    }
  }
  if (::fchmod(m_fd, mode) != 0) {
    const int error = errno;
    discard();
    throw core::failure(
        fmt::format("cannot set the mode of '{}': {}", m_temp.string(), errno_text(error)));
  }
}

AtomicFile::~AtomicFile() {
  discard();
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : m_target(std::move(other.m_target)),
      m_temp(std::move(other.m_temp)),
      m_fd(std::exchange(other.m_fd, -1)),
      m_size(other.m_size) {
  other.m_temp.clear();
}

AtomicFile& AtomicFile::operator=(AtomicFile&& other) noexcept {
  if (this != &other) {
    discard();
    m_target = std::move(other.m_target);
    m_temp = std::move(other.m_temp);
    m_fd = std::exchange(other.m_fd, -1);
    m_size = other.m_size;
    other.m_temp.clear();
  }
  return *this;
}

void AtomicFile::write(std::string_view bytes) {
  if (m_fd < 0) {
    throw core::failure(fmt::format("cannot write '{}': already closed", m_temp.string()));
  }
  while (!bytes.empty()) {
    const ssize_t written = ::write(m_fd, bytes.data(), bytes.size());
    if (written < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw core::failure(fmt::format("cannot write '{}': {}", m_temp.string(), errno_text(errno)));
    }
    bytes.remove_prefix(static_cast<std::size_t>(written));
    m_size += static_cast<std::uint64_t>(written);
  }
}

void AtomicFile::commit() {
  if (m_fd < 0) {
    throw core::failure(fmt::format("cannot commit '{}': already closed", m_temp.string()));
  }
  if (::fsync(m_fd) != 0) {
    throw core::failure(fmt::format("cannot sync '{}': {}", m_temp.string(), errno_text(errno)));
  }
  // close() can report a delayed write error (NFS); after a successful fsync it rarely does,
  // but a failure here must still stop the rename.
  const int fd = std::exchange(m_fd, -1);
  if (::close(fd) != 0 && errno != EINTR) {
    throw core::failure(fmt::format("cannot write '{}': {}", m_temp.string(), errno_text(errno)));
  }
  if (::rename(m_temp.c_str(), m_target.c_str()) != 0) {
    throw core::failure(
        fmt::format("cannot replace '{}': {}", m_target.string(), errno_text(errno)));
  }
  m_temp.clear();
  fsync_directory(directory_of(m_target));
}

void AtomicFile::discard() noexcept {
  close_quietly(std::exchange(m_fd, -1));
  if (!m_temp.empty()) {
    ::unlink(m_temp.c_str());
    m_temp.clear();
  }
}

void write_file_atomically(const std::filesystem::path& target, std::string_view bytes,
                           mode_t mode) {
  AtomicFile file(target, mode);
  file.write(bytes);
  file.commit();
}

bool is_temp_file_name(std::string_view file_name) {
  return temp_file_pid(file_name) != 0;
}

std::size_t remove_stale_temp_files(const std::filesystem::path& dir,
                                    std::chrono::system_clock::time_point now) {
  DIR* stream = ::opendir(dir.c_str());
  if (stream == nullptr) {
    log(LogLevel::warning, "cannot scan for stale temporary files",
        {{"dir", dir.string()}, {"error", errno_text(errno)}});
    return 0;
  }
  std::size_t removed = 0;
  const int dir_fd = ::dirfd(stream);
  while (const dirent* entry = ::readdir(stream)) {
    const std::string_view name = entry->d_name;
    const pid_t pid = temp_file_pid(name);
    if (pid == 0) {
      continue;
    }
    struct stat info {};
    if (::fstatat(dir_fd, entry->d_name, &info, AT_SYMLINK_NOFOLLOW) != 0) {
      continue;
    }
    const auto modified = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::seconds(info.st_mtim.tv_sec) +
            std::chrono::nanoseconds(info.st_mtim.tv_nsec)));
    const bool writer_gone = pid == ::getpid() ? modified < g_process_start : !process_exists(pid);
    const bool stale =
        (writer_gone && now - modified > k_stale_after) || now - modified > k_abandoned_after;
    if (!stale) {
      continue;
    }
    if (::unlinkat(dir_fd, entry->d_name, 0) == 0) {
      ++removed;
      log(LogLevel::info, "removed a stale temporary file",
          {{"path", (dir / std::string(name)).string()}});
    } else if (errno != ENOENT) {
      log(LogLevel::warning, "cannot remove a stale temporary file",
          {{"path", (dir / std::string(name)).string()}, {"error", errno_text(errno)}});
    }
  }
  ::closedir(stream);
  return removed;
}

}  // namespace dfhook::io
