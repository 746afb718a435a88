#pragma once

#include <sys/types.h>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace dfhook::io {

// strerror(error_number) with a lowercase first letter, as the project's messages are written
// ("no space left on device"). Thread-safe.
[[nodiscard]] std::string errno_text(int error_number);

// Creates `dir` and its missing parents. Each directory created gets exactly `mode` (umask is
// not applied); existing ones are left alone. A symlink to a directory is accepted.
// Throws core::Error (failed) naming the directory that could not be created or is not one.
void ensure_directory(const std::filesystem::path& dir, mode_t mode);

// Throws core::Error (failed) "directory '…' is not writable: …" unless the calling process
// may create files in `dir` (checked with the effective ids; a read-only mount fails for root).
void require_writable_directory(const std::filesystem::path& dir);

// fsync(2) of a directory, so that a rename or unlink in it survives a crash.
// Throws core::Error (failed) naming the directory.
void fsync_directory(const std::filesystem::path& dir);

// A new version of `target`, written to a temporary file in the same directory and moved over
// `target` by commit(). Readers of `target` see the old bytes or the new ones, never a mix.
//
// The temporary file is ".<target name>.tmp.<pid>.<8 hex>", created with O_EXCL (never an
// existing file or symlink) and given exactly `mode` with fchmod, whatever the umask. Every
// descriptor is close-on-exec. An AtomicFile destroyed without a successful commit() removes
// its temporary file; remove_stale_temp_files() cleans those of processes that were killed.
// Move-only; not thread-safe (one writer per AtomicFile).
class AtomicFile {
public:
  // Throws core::Error (failed) naming the temporary file when it cannot be created.
  AtomicFile(std::filesystem::path target, mode_t mode);
  ~AtomicFile();
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&& other) noexcept;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Appends bytes. Throws core::Error (failed) naming the temporary file (disk full, EFBIG …);
  // the target is untouched.
  void write(std::string_view bytes);

  // fsync of the file, rename(2) over `target` (a symlink at `target` is replaced, never
  // followed), fsync of the directory. Throws core::Error (failed) naming the path; when the
  // rename failed the target is untouched and the temporary file is removed by the destructor.
  // After a successful commit() the object is spent.
  void commit();

  // Removes the temporary file now (what the destructor does). Idempotent.
  void discard() noexcept;

  [[nodiscard]] const std::filesystem::path& target() const noexcept { return m_target; }
  [[nodiscard]] const std::filesystem::path& temp_path() const noexcept { return m_temp; }
  [[nodiscard]] std::uint64_t size() const noexcept { return m_size; }

private:
  std::filesystem::path m_target;
  std::filesystem::path m_temp;
  int m_fd = -1;
  std::uint64_t m_size = 0;
};

// Replaces `target` with `bytes` durably: AtomicFile write + commit.
void write_file_atomically(const std::filesystem::path& target, std::string_view bytes,
                           mode_t mode);

// True for names AtomicFile gives its temporary files (".<name>.tmp.<pid>.<8 hex>").
[[nodiscard]] bool is_temp_file_name(std::string_view file_name);

// Removes the temporary files of dead writers from `dir` (not recursive) and returns how many
// it removed. A temporary file is stale when it was last modified more than a minute before
// `now` and the process named by its pid is gone (or is this process, started after the file
// was last written: a restarted container reuses its pids); any temporary file untouched for
// a day is stale whatever its pid says. The age guard keeps a live writer in another pid
// namespace that shares the directory safe. Errors are logged, never thrown.
std::size_t remove_stale_temp_files(
    const std::filesystem::path& dir,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

}  // namespace dfhook::io
