#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace dfhook::io {

// 16 lowercase hex digits from OpenSSL's CSPRNG (RAND_bytes): a delivery's id.
// Throws core::Error (failed) when OpenSSL cannot provide random bytes.
[[nodiscard]] std::string random_id();

// "<YYYYMMDDTHHMMSS.ffffffZ>-<id>.json" (DESIGN §6): names sort in delivery order.
// `received_at` is written in UTC, truncated to microseconds.
[[nodiscard]] std::string spool_file_name(std::chrono::system_clock::time_point received_at,
                                          std::string_view id);

// Whether `file_name` has the form spool_file_name() gives.
[[nodiscard]] bool is_spool_file_name(std::string_view file_name);

// The delivery spool of listen --save-dir: one envelope file per delivery, written durably
// before the delivery is answered. Thread-safe.
class Spool {
public:
  // Creates `dir` when missing (mode 0700: saved deliveries carry valid signatures and could
  // be replayed), checks that it is writable, removes temporary files killed writers left,
  // and reads the names of the delivery files already there, once. `max_files` 0 keeps every
  // file. Throws core::Error (failed) naming the directory.
  explicit Spool(std::filesystem::path dir, std::size_t max_files = 10'000);

  // Writes `envelope_json` to dir/spool_file_name(received_at, id) with mode 0600, durably
  // (temporary file, fsync, rename, fsync of the directory), and returns its path. Then, when
  // more than max_files delivery files are known, the oldest by name are removed; files that
  // were not delivery files (other names) are never removed, and neither is the file just
  // written. `id` must be 16 lowercase hex digits. Throws core::Error (failed) naming the path
  // when the file cannot be written (the caller answers 503).
  std::filesystem::path save(std::string_view envelope_json,
                             std::chrono::system_clock::time_point received_at,
                             std::string_view id);

  [[nodiscard]] const std::filesystem::path& dir() const noexcept { return m_dir; }
  // How many delivery files the spool knows of (those there at start plus those it saved,
  // minus those it removed).
  [[nodiscard]] std::size_t size() const;

  // The deliveries of `dir`, for replay: the regular files (symlinks followed) whose name
  // ends in ".json" and does not start with '.', sorted by name, which for files the spool
  // wrote is delivery order. Throws core::Error (usage) "cannot read directory '…': …".
  [[nodiscard]] static std::vector<std::filesystem::path> list(const std::filesystem::path& dir);

private:
  std::filesystem::path m_dir;
  std::size_t m_max_files;
  mutable std::mutex m_mutex;
  // Names of the delivery files, in delivery order; read from the directory once, then kept
  // up to date, so that a save never rescans a directory of thousands of files.
  std::set<std::string, std::less<>> m_index;
};

}  // namespace dfhook::io
