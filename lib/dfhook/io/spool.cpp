#include "dfhook/io/spool.hpp"

#include "dfhook/core/error.hpp"
#include "dfhook/io/atomic_file.hpp"
#include "dfhook/io/log.hpp"

#include <fmt/format.h>
#include <openssl/rand.h>

#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <cerrno>
#include <ctime>

#include <dirent.h>

namespace dfhook::io {

namespace {

constexpr std::size_t k_id_length = 16;
constexpr std::string_view k_suffix = ".json";
constexpr mode_t k_directory_mode = 0700;
constexpr mode_t k_file_mode = 0600;

bool is_lower_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool is_digits(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Calls `visit(name)` for every entry of `dir`; throws core::Error with `code` when the
// directory cannot be read.
template <typename Visit>
void for_each_entry(const std::filesystem::path& dir, core::ExitCode code, Visit visit) {
  DIR* stream = ::opendir(dir.c_str());
  if (stream == nullptr) {
    throw core::Error(
        code, fmt::format("cannot read directory '{}': {}", dir.string(), errno_text(errno)));
  }
  while (const dirent* entry = ::readdir(stream)) {
    visit(std::string_view(entry->d_name));
  }
  ::closedir(stream);
}

}  // namespace

std::string random_id() {
  std::array<unsigned char, k_id_length / 2> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    throw core::failure("cannot draw random bytes from OpenSSL");
  }
  std::string id;
  id.reserve(k_id_length);
  for (const unsigned char byte : bytes) {
    id += fmt::format("{:02x}", byte);
  }
  return id;
}

std::string spool_file_name(std::chrono::system_clock::time_point received_at,
                            std::string_view id) {
  const auto micros =
      std::chrono::floor<std::chrono::microseconds>(received_at.time_since_epoch()).count();
  const auto seconds =
      static_cast<std::time_t>(micros >= 0 ? micros / 1'000'000 : (micros - 999'999) / 1'000'000);
  const auto fraction = micros - static_cast<std::int64_t>(seconds) * 1'000'000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}.{:06}Z-{}{}", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, fraction, id,
                     k_suffix);
}

bool is_spool_file_name(std::string_view file_name) {
  // 20240501T120000.123456Z-0123456789abcdef.json
  constexpr std::size_t k_length = 8 + 1 + 6 + 1 + 6 + 1 + 1 + k_id_length + k_suffix.size();
  if (file_name.size() != k_length || !file_name.ends_with(k_suffix)) {
    return false;
  }
  return is_digits(file_name.substr(0, 8)) && file_name[8] == 'T' &&
         is_digits(file_name.substr(9, 6)) && file_name[15] == '.' &&
         is_digits(file_name.substr(16, 6)) && file_name[22] == 'Z' && file_name[23] == '-' &&
         is_lower_hex(file_name.substr(24, k_id_length));
}

Spool::Spool(std::filesystem::path dir, std::size_t max_files)
    : m_dir(std::move(dir)), m_max_files(max_files) {
  ensure_directory(m_dir, k_directory_mode);
  require_writable_directory(m_dir);
  remove_stale_temp_files(m_dir);
  for_each_entry(m_dir, core::ExitCode::failed, [&](std::string_view name) {
    if (is_spool_file_name(name)) {
      m_index.emplace(name);
    }
  });
}

std::size_t Spool::size() const {
  const std::lock_guard lock(m_mutex);
  return m_index.size();
}

std::filesystem::path Spool::save(std::string_view envelope_json,
                                  std::chrono::system_clock::time_point received_at,
                                  std::string_view id) {
  if (id.size() != k_id_length || !is_lower_hex(id)) {
    throw core::failure("invalid delivery id: use 16 lowercase hex digits");
  }
  std::string name = spool_file_name(received_at, id);
  std::filesystem::path path = m_dir / name;
  // The write, the slow part, runs outside the lock: deliveries on other threads go on.
  write_file_atomically(path, envelope_json, k_file_mode);

  const std::lock_guard lock(m_mutex);
  m_index.insert(name);
  while (m_max_files > 0 && m_index.size() > m_max_files) {
    auto oldest = m_index.begin();
    // With the clock stepped back the new file can sort first: it is kept all the same.
    if (*oldest == name) {
      ++oldest;
    }
    const std::filesystem::path old_path = m_dir / *oldest;
    if (::unlink(old_path.c_str()) != 0 && errno != ENOENT) {
      log(LogLevel::warning, "cannot remove an old delivery",
          {{"path", old_path.string()}, {"error", errno_text(errno)}});
    }
    m_index.erase(oldest);
  }
  return path;
}

std::vector<std::filesystem::path> Spool::list(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for_each_entry(dir, core::ExitCode::usage, [&](std::string_view name) {
    if (name.size() <= k_suffix.size() || name[0] == '.' || !name.ends_with(k_suffix)) {
      return;
    }
    struct stat info {};
    if (::stat((dir / name).c_str(), &info) == 0 && S_ISREG(info.st_mode)) {
      names.emplace_back(name);
    }
  });
  std::sort(names.begin(), names.end());
  std::vector<std::filesystem::path> paths;
  paths.reserve(names.size());
  for (const auto& name : names) {
    paths.push_back(dir / name);
  }
  return paths;
}

}  // namespace dfhook::io
