#include "dfhook/io/store.hpp"

#include "dfhook/core/datafile.hpp"
#include "dfhook/core/error.hpp"
#include "dfhook/core/rapidjson_reader.hpp"
#include "dfhook/core/units.hpp"
#include "dfhook/io/atomic_file.hpp"
#include "dfhook/io/log.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <cerrno>
#include <ctime>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>

#include <dirent.h>

namespace dfhook::io {

namespace {

using Clock = std::chrono::system_clock;

constexpr std::size_t k_max_name_length = 200;
constexpr std::size_t k_max_meta_size = std::size_t{64} * 1024;
constexpr std::string_view k_meta_suffix = ".meta.json";
constexpr std::string_view k_lock_suffix = ".lock";
constexpr mode_t k_directory_mode = 0755;

// A name as it may appear in a message: bytes outside printable ASCII as \xNN, so a hostile
// name cannot forge log lines or terminal escapes.
std::string printable(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '\\') {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  return out;
}

void require_valid_name(std::string_view name) {
  const std::string problem = datafile_name_problem(name);
  if (!problem.empty()) {
    throw core::failure(fmt::format("invalid datafile name '{}': {}", printable(name), problem));
  }
}

std::string format_rfc3339(Clock::time_point when) {
  const std::time_t seconds =
      std::chrono::floor<std::chrono::seconds>(when.time_since_epoch()).count();
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", utc.tm_year + 1900, utc.tm_mon + 1,
                     utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
}

// "YYYY-MM-DDTHH:MM:SS[.fraction]Z", as format_rfc3339 writes it (fraction accepted, dropped).
std::optional<Clock::time_point> parse_rfc3339(std::string_view text) {
  const auto number = [&](std::size_t at, std::size_t digits) -> int {
    int value = 0;
    for (std::size_t i = at; i < at + digits; ++i) {
      if (i >= text.size() || text[i] < '0' || text[i] > '9') {
        return -1;
      }
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  if (text.size() < 20 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' ||
      text[16] != ':' || text.back() != 'Z') {
    return std::nullopt;
  }
  std::tm utc{};
  utc.tm_year = number(0, 4) - 1900;
  utc.tm_mon = number(5, 2) - 1;
  utc.tm_mday = number(8, 2);
  utc.tm_hour = number(11, 2);
  utc.tm_min = number(14, 2);
  utc.tm_sec = number(17, 2);
  if (utc.tm_year < -1900 || utc.tm_mon < 0 || utc.tm_mon > 11 || utc.tm_mday < 1 ||
      utc.tm_mday > 31 || utc.tm_hour < 0 || utc.tm_hour > 23 || utc.tm_min < 0 ||
      utc.tm_min > 59 || utc.tm_sec < 0 || utc.tm_sec > 60) {
    return std::nullopt;
  }
  if (text.size() > 20) {
    if (text[19] != '.' || text.size() == 21) {
      return std::nullopt;
    }
    for (std::size_t i = 20; i + 1 < text.size(); ++i) {
      if (text[i] < '0' || text[i] > '9') {
        return std::nullopt;
      }
    }
  }
  return Clock::from_time_t(timegm(&utc));
}

struct DigestDeleter {
  void operator()(EVP_MD_CTX* context) const noexcept { EVP_MD_CTX_free(context); }
};

class Sha256 {
public:
  Sha256() : m_context(EVP_MD_CTX_new()) {
    if (!m_context || EVP_DigestInit_ex(m_context.get(), EVP_sha256(), nullptr) != 1) {
      throw core::failure("cannot set up SHA-256 in OpenSSL");
    }
  }

  void update(std::string_view bytes) {
    if (EVP_DigestUpdate(m_context.get(), bytes.data(), bytes.size()) != 1) {
      throw core::failure("cannot compute SHA-256 in OpenSSL");
    }
  }

  std::string hex() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(m_context.get(), digest.data(), &length) != 1) {
      throw core::failure("cannot compute SHA-256 in OpenSSL");
    }
    std::string out;
    out.reserve(std::size_t{length} * 2);
    for (unsigned int i = 0; i < length; ++i) {
      out += fmt::format("{:02x}", digest[i]);
    }
    return out;
  }

private:
  std::unique_ptr<EVP_MD_CTX, DigestDeleter> m_context;
};

class Descriptor {
public:
  explicit Descriptor(int fd) noexcept : m_fd(fd) {}
  ~Descriptor() {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
  }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  [[nodiscard]] int get() const noexcept { return m_fd; }

private:
  int m_fd;
};

// Whether the file at `path` (not followed if a symlink) is a regular file with exactly
// `size` bytes whose SHA-256 is `sha256`.
bool file_matches(const std::filesystem::path& path, std::uint64_t size,
                  const std::string& sha256) {
  const Descriptor fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) {
    return false;
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0 || !S_ISREG(info.st_mode) ||
      static_cast<std::uint64_t>(info.st_size) != size) {
    return false;
  }
  Sha256 hash;
  std::array<char, std::size_t{64} * 1024> buffer{};
  std::uint64_t total = 0;
  for (;;) {
    const ssize_t got = ::read(fd.get(), buffer.data(), buffer.size());
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      return false;
    }
    if (got == 0) {
      break;
    }
    total += static_cast<std::uint64_t>(got);
    hash.update(std::string_view(buffer.data(), static_cast<std::size_t>(got)));
  }
  return total == size && hash.hex() == sha256;
}

// The content of a small file, nullopt when it does not exist; throws std::runtime_error with
// the reason when it cannot be read or is larger than `limit`.
std::optional<std::string> read_small_file(const std::filesystem::path& path, std::size_t limit) {
  const Descriptor fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) {
      return std::nullopt;
    }
    throw std::runtime_error(errno_text(errno));
  }
  std::string content;
  std::array<char, std::size_t{16} * 1024> buffer{};
  for (;;) {
    const ssize_t got = ::read(fd.get(), buffer.data(), buffer.size());
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw std::runtime_error(errno_text(errno));
    }
    if (got == 0) {
      return content;
    }
    content.append(buffer.data(), static_cast<std::size_t>(got));
    if (content.size() > limit) {
      throw std::runtime_error(fmt::format("larger than {} bytes", limit));
    }
  }
}

// The largest datafile on disk whose own revision is read when its metadata is lost.
constexpr std::size_t k_max_datafile_on_disk = std::size_t{256} << 20U;

// What the datafile on disk says of itself, for when its metadata cannot be trusted.
struct OnDisk {
  std::uint64_t revision = 0;
  std::string sha256;
};

// The revision and SHA-256 of the regular file at `path` when it is a valid datafile; nullopt
// when it is missing, not a regular file, too large or not a valid datafile.
std::optional<OnDisk> read_on_disk(const std::filesystem::path& path) {
  std::optional<std::string> bytes;
  try {
    bytes = read_small_file(path, k_max_datafile_on_disk);
  } catch (const std::runtime_error&) {
    return std::nullopt;
  }
  if (!bytes) {
    return std::nullopt;
  }
  const core::Parsed<core::DatafileInfo> info = core::validate_datafile(*bytes);
  if (!info) {
    return std::nullopt;
  }
  Sha256 hash;
  hash.update(*bytes);
  return OnDisk{info->revision, hash.hex()};
}

bool is_lower_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Reads the top-level members of a metadata document; nested values are skipped.
class MetaHandler : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, MetaHandler> {
public:
  bool Null() { return scalar(Value{Kind::null, 0, {}}); }
  bool Bool(bool) { return scalar(Value{Kind::other, 0, {}}); }
  bool Int(int) { return scalar(Value{Kind::other, 0, {}}); }
  bool Int64(std::int64_t) { return scalar(Value{Kind::other, 0, {}}); }
  bool Double(double) { return scalar(Value{Kind::other, 0, {}}); }
  bool Uint(unsigned value) { return scalar(Value{Kind::uint, value, {}}); }
  bool Uint64(std::uint64_t value) { return scalar(Value{Kind::uint, value, {}}); }
  bool String(const char* text, rapidjson::SizeType length, bool) {
    return scalar(Value{Kind::string, 0, std::string_view(text, length)});
  }
  bool StartObject() { return open(); }
  bool StartArray() { return m_depth == 0 ? fail("not a JSON object") : open(); }
  bool EndObject(rapidjson::SizeType) { return close(); }
  bool EndArray(rapidjson::SizeType) { return close(); }
  bool Key(const char* text, rapidjson::SizeType length, bool) {
    if (m_depth == 1) {
      m_key.assign(text, length);
    }
    return true;
  }

  // The metadata when every required member was present and valid.
  std::optional<DatafileMeta> result(std::string* problem) {
    if (m_problem.empty()) {
      for (const char* required : {"revision", "size", "sha256", "fetched_at"}) {
        if (!m_seen.contains(required)) {
          m_problem = fmt::format("'{}' is missing", required);
          break;
        }
      }
    }
    if (!m_problem.empty()) {
      if (problem != nullptr) {
        *problem = m_problem;
      }
      return std::nullopt;
    }
    if (!m_seen.contains("updated_at")) {
      m_meta.updated_at = m_meta.fetched_at;
    }
    return m_meta;
  }

  [[nodiscard]] const std::string& problem() const { return m_problem; }

private:
  enum class Kind { null, uint, string, other };
  struct Value {
    Kind kind;
    std::uint64_t number = 0;
    std::string_view text;
  };

  bool fail(std::string problem) {
    m_problem = std::move(problem);
    return false;
  }

  bool open() {
    if (m_depth == 1 && is_known(m_key)) {
      return fail(fmt::format("'{}' has the wrong type", m_key));
    }
    ++m_depth;
    return true;
  }

  bool close() {
    --m_depth;
    return true;
  }

  static bool is_known(std::string_view key) {
    for (const std::string_view known : {"dfhook_meta", "revision", "etag", "last_modified", "size",
                                         "sha256", "source_url", "fetched_at", "updated_at"}) {
      if (key == known) {
        return true;
      }
    }
    return false;
  }

  bool scalar(const Value& value) {
    if (m_depth == 0) {
      return fail("not a JSON object");
    }
    if (m_depth > 1 || !is_known(m_key)) {
      return true;
    }
    if (!m_seen.insert(m_key).second) {
      return fail(fmt::format("'{}' appears twice", m_key));
    }
    const auto wrong_type = [&] { return fail(fmt::format("'{}' has the wrong type", m_key)); };
    const auto optional_text = [&](std::optional<std::string>& field) {
      if (value.kind == Kind::null) {
        field.reset();
        return true;
      }
      if (value.kind != Kind::string) {
        return wrong_type();
      }
      field = std::string(value.text);
      return true;
    };
    const auto time = [&](Clock::time_point& field) {
      const auto parsed = value.kind == Kind::string ? parse_rfc3339(value.text) : std::nullopt;
      if (!parsed) {
        return fail(fmt::format("'{}' is not an RFC 3339 UTC time", m_key));
      }
      field = *parsed;
      return true;
    };
    if (m_key == "dfhook_meta") {
      return value.kind == Kind::uint && value.number == 1 ? true
                                                           : fail("unknown 'dfhook_meta' version");
    }
    if (m_key == "revision" || m_key == "size") {
      if (value.kind != Kind::uint) {
        return wrong_type();
      }
      (m_key == "revision" ? m_meta.revision : m_meta.size) = value.number;
      return true;
    }
    if (m_key == "sha256") {
      if (value.kind != Kind::string || value.text.size() != 64 || !is_lower_hex(value.text)) {
        return fail("'sha256' is not 64 lowercase hex digits");
      }
      m_meta.sha256 = std::string(value.text);
      return true;
    }
    if (m_key == "etag") {
      return optional_text(m_meta.etag);
    }
    if (m_key == "last_modified") {
      return optional_text(m_meta.last_modified);
    }
    if (m_key == "source_url") {
      if (value.kind != Kind::string) {
        return wrong_type();
      }
      m_meta.source_url = std::string(value.text);
      return true;
    }
    return time(m_key == "fetched_at" ? m_meta.fetched_at : m_meta.updated_at);
  }

  int m_depth = 0;
  std::string m_key;
  std::set<std::string, std::less<>> m_seen;
  std::string m_problem;
  DatafileMeta m_meta;
};

class FileLock final : public DatafileLock {
public:
  FileLock(std::string name, std::filesystem::path path, int fd)
      : m_name(std::move(name)), m_path(std::move(path)), m_fd(fd) {}
  ~FileLock() override { ::close(m_fd); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  [[nodiscard]] const std::string& name() const noexcept override { return m_name; }
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return m_path; }

private:
  std::string m_name;
  std::filesystem::path m_path;
  int m_fd;
};

class FilePending final : public PendingDatafile {
public:
  FilePending(std::string name, const std::filesystem::path& target, mode_t mode)
      : m_name(std::move(name)), m_file(target, mode) {}

  [[nodiscard]] const std::string& name() const noexcept override { return m_name; }
  void write(std::string_view chunk) override {
    m_file.write(chunk);
    m_hash.update(chunk);
  }
  [[nodiscard]] std::uint64_t size() const noexcept override { return m_file.size(); }

  AtomicFile& file() noexcept { return m_file; }
  std::string sha256() { return m_hash.hex(); }

private:
  std::string m_name;
  AtomicFile m_file;
  Sha256 m_hash;
};

}  // namespace

std::string datafile_name_problem(std::string_view name) {
  if (name.empty()) {
    return "the name is empty";
  }
  if (name == "." || name == "..") {
    return "not a file name";
  }
  if (name.size() > k_max_name_length) {
    return fmt::format("longer than {} bytes", k_max_name_length);
  }
  if (name[0] == '.') {
    return "starts with '.'";
  }
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '/') {
      return "contains '/'";
    }
    if (u < 0x20 || u == 0x7f) {
      return "contains a control character";
    }
  }
  return {};
}

std::string format_datafile_meta(std::string_view name, const DatafileMeta& meta) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  const auto string = [&](std::string_view text) {
    writer.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
  };
  const auto optional_string = [&](const std::optional<std::string>& text) {
    if (text) {
      string(*text);
    } else {
      writer.Null();
    }
  };
  writer.StartObject();
  writer.Key("dfhook_meta");
  writer.Uint(1);
  writer.Key("name");
  string(name);
  writer.Key("revision");
  writer.Uint64(meta.revision);
  writer.Key("etag");
  optional_string(meta.etag);
  writer.Key("last_modified");
  optional_string(meta.last_modified);
  writer.Key("size");
  writer.Uint64(meta.size);
  writer.Key("sha256");
  string(meta.sha256);
  writer.Key("source_url");
  string(meta.source_url);
  writer.Key("fetched_at");
  string(format_rfc3339(meta.fetched_at));
  writer.Key("updated_at");
  string(format_rfc3339(meta.updated_at));
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

std::optional<DatafileMeta> parse_datafile_meta(std::string_view text, std::string* problem) {
  rapidjson::MemoryStream stream(text.data(), text.size());
  rapidjson::Reader reader;
  MetaHandler handler;
  // Iterative: a hostile or corrupt file cannot exhaust the stack with deep nesting.
  const rapidjson::ParseResult parsed =
      reader.Parse<rapidjson::kParseIterativeFlag>(stream, handler);
  if (parsed.IsError()) {
    if (problem != nullptr) {
      *problem = handler.problem().empty()
                     ? fmt::format("not valid JSON at byte {}", parsed.Offset())
                     : handler.problem();
    }
    return std::nullopt;
  }
  return handler.result(problem);
}

CommitResult DatafileStore::commit(std::unique_ptr<PendingDatafile> pending, DatafileMeta meta,
                                   const CommitOptions& options) {
  const auto held = lock(pending->name(), options.lock_timeout);
  return commit_locked(*held, std::move(pending), std::move(meta), options.allow_downgrade);
}

CommitResult DatafileStore::commit(std::string_view name, std::string_view bytes, DatafileMeta meta,
                                   const CommitOptions& options) {
  auto pending = begin(name);
  pending->write(bytes);
  return commit(std::move(pending), std::move(meta), options);
}

FileDatafileStore::FileDatafileStore(std::filesystem::path out_dir, FileStoreOptions options)
    : m_out_dir(std::move(out_dir)),
      m_meta_dir(m_out_dir / ".dfhook"),
      m_options(std::move(options)) {
  ensure_directory(m_meta_dir, k_directory_mode);
  require_writable_directory(m_out_dir);
  require_writable_directory(m_meta_dir);
  remove_stale_temp_files(m_out_dir);
  remove_stale_temp_files(m_meta_dir);
}

Clock::time_point FileDatafileStore::now() const {
  return m_options.clock ? m_options.clock() : Clock::now();
}

std::filesystem::path FileDatafileStore::datafile_path(std::string_view name) const {
  require_valid_name(name);
  return m_out_dir / std::string(name);
}

std::filesystem::path FileDatafileStore::meta_path(std::string_view name) const {
  require_valid_name(name);
  return m_meta_dir / (std::string(name) + std::string(k_meta_suffix));
}

std::filesystem::path FileDatafileStore::lock_path(std::string_view name) const {
  require_valid_name(name);
  return m_meta_dir / (std::string(name) + std::string(k_lock_suffix));
}

std::optional<DatafileMeta> FileDatafileStore::current(std::string_view name) const {
  const std::filesystem::path path = meta_path(name);
  std::string problem;
  try {
    const auto text = read_small_file(path, k_max_meta_size);
    if (!text) {
      return std::nullopt;
    }
    if (auto meta = parse_datafile_meta(*text, &problem)) {
      return meta;
    }
  } catch (const std::runtime_error& error) {
    problem = error.what();
  }
  log(LogLevel::warning, "ignoring unreadable datafile metadata",
      {{"path", path.string()}, {"reason", problem}});
  return std::nullopt;
}

std::optional<DatafileMeta> FileDatafileStore::verified(std::string_view name) const {
  auto meta = current(name);
  if (!meta || !file_matches(datafile_path(name), meta->size, meta->sha256)) {
    return std::nullopt;
  }
  return meta;
}

std::unique_ptr<DatafileLock> FileDatafileStore::lock(std::string_view name,
                                                      std::chrono::milliseconds timeout) {
  const std::filesystem::path path = lock_path(name);
  // Read-only is enough for flock, so a group member can lock a file it cannot write; nobody
  // else may open it at all, or any local user could hold every update back. The file is never
  // removed: unlinking a lock file lets two holders lock different inodes.
  restore_directories();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) {
    throw core::failure(
        fmt::format("cannot open lock file '{}': {}", path.string(), errno_text(errno)));
  }
  struct stat info {};
  if (::fstat(fd, &info) == 0 && info.st_uid == ::geteuid() && (info.st_mode & 0007) != 0) {
    (void)::fchmod(fd, info.st_mode & 0770);  // a lock file of an older version
  }
  auto guard = std::make_unique<FileLock>(std::string(name), path, fd);
  // flock has no timed wait; a bounded exponential backoff keeps the waiting cheap without a
  // helper thread or signals, and the holder's release is noticed within 100 ms.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto delay = std::chrono::milliseconds(1);
  for (;;) {
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      return guard;
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno != EWOULDBLOCK) {
      throw core::failure(fmt::format("cannot lock '{}': {}", path.string(), errno_text(errno)));
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      throw core::Error(
          core::ExitCode::lock_timeout,
          fmt::format("another dfhook holds the lock on '{}' (waited {})",
                      datafile_path(name).string(), core::format_duration(timeout)),
          fmt::format("raise --lock-timeout, or find the holder of '{}' with fuser or lsof",
                      path.string()));
    }
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(delay, deadline - now));
    delay = std::min(delay * 2, std::chrono::milliseconds(100));
  }
}

void FileDatafileStore::restore_directories() const {
  struct stat info {};
  if (::stat(m_meta_dir.c_str(), &info) == 0) {
    return;
  }
  log(LogLevel::warning, "the out-dir or its .dfhook was removed: created again",
      {{"path", m_meta_dir.string()}});
  ensure_directory(m_meta_dir, k_directory_mode);
}

std::unique_ptr<PendingDatafile> FileDatafileStore::begin(std::string_view name) {
  restore_directories();
  return std::make_unique<FilePending>(std::string(name), datafile_path(name), m_options.file_mode);
}

CommitResult FileDatafileStore::commit_locked(const DatafileLock& held,
                                              std::unique_ptr<PendingDatafile> pending,
                                              DatafileMeta meta, bool allow_downgrade) {
  auto* file_pending = dynamic_cast<FilePending*>(pending.get());
  const auto* file_lock = dynamic_cast<const FileLock*>(&held);
  if (file_pending == nullptr || file_pending->file().target() != datafile_path(pending->name())) {
    throw std::logic_error("commit_locked: the pending datafile is not from this store");
  }
  if (file_lock == nullptr || file_lock->path() != lock_path(pending->name())) {
    throw std::logic_error("commit_locked: the lock held is not the lock of this datafile");
  }
  const std::string& name = pending->name();
  CommitResult result;
  result.path = datafile_path(name);
  result.previous = current(name);
  meta.size = file_pending->size();
  meta.sha256 = file_pending->sha256();
  if (meta.fetched_at == Clock::time_point()) {
    meta.fetched_at = now();
  }

  const bool intact =
      result.previous && file_matches(result.path, result.previous->size, result.previous->sha256);
  std::optional<OnDisk> on_disk;
  if (result.previous) {
    result.previous_revision = result.previous->revision;
  }
  if (!intact) {
    on_disk = read_on_disk(result.path);
    if (on_disk) {
      result.previous_revision = std::max(result.previous_revision.value_or(0), on_disk->revision);
    }
  }
  // What stands for the stored metadata when the metadata file cannot be used.
  const DatafileMeta stored_before = result.previous.value_or([&] {
    DatafileMeta known;
    known.revision = result.previous_revision.value_or(0);
    return known;
  }());

  if (result.previous_revision) {
    if (meta.revision < *result.previous_revision && !allow_downgrade) {
      result.status = CommitStatus::downgrade_refused;
      result.stored = stored_before;
      return result;
    }
    const bool same_bytes_intact =
        intact && meta.sha256 == result.previous->sha256 && meta.size == result.previous->size;
    const bool same_bytes_on_disk = on_disk && on_disk->sha256 == meta.sha256;
    if (meta.revision == *result.previous_revision && (intact || same_bytes_on_disk)) {
      result.status = CommitStatus::unchanged;
      result.stored = intact ? *result.previous : stored_before;
      // Same bytes under new validators (a re-uploaded object), or metadata to rebuild: store
      // them, or every later conditional GET would download the same bytes again.
      if (same_bytes_intact || same_bytes_on_disk) {
        if (!intact) {
          result.stored = meta;
          result.stored.updated_at = now();
        }
        result.stored.etag = meta.etag;
        result.stored.last_modified = meta.last_modified;
        result.stored.source_url = meta.source_url;
        result.stored.fetched_at = meta.fetched_at;
        write_file_atomically(meta_path(name), format_datafile_meta(name, result.stored),
                              m_options.file_mode);
      }
      return result;
    }
  }

  meta.updated_at = now();
  file_pending->file().commit();
  write_file_atomically(meta_path(name), format_datafile_meta(name, meta), m_options.file_mode);
  result.status = CommitStatus::written;
  result.stored = std::move(meta);
  return result;
}

std::vector<StoredDatafile> FileDatafileStore::list() const {
  std::vector<StoredDatafile> datafiles;
  DIR* stream = ::opendir(m_meta_dir.c_str());
  if (stream == nullptr) {
    throw core::failure(
        fmt::format("cannot read directory '{}': {}", m_meta_dir.string(), errno_text(errno)));
  }
  std::vector<std::string> names;
  while (const dirent* entry = ::readdir(stream)) {
    const std::string_view file_name = entry->d_name;
    if (file_name.size() > k_meta_suffix.size() && file_name.ends_with(k_meta_suffix)) {
      const std::string_view name = file_name.substr(0, file_name.size() - k_meta_suffix.size());
      if (is_valid_datafile_name(name)) {
        names.emplace_back(name);
      }
    }
  }
  ::closedir(stream);
  std::sort(names.begin(), names.end());
  for (auto& name : names) {
    std::filesystem::path path = m_out_dir / name;
    struct stat info {};
    if (::lstat(path.c_str(), &info) != 0) {
      continue;
    }
    if (auto meta = current(name)) {
      datafiles.push_back(StoredDatafile{std::move(name), std::move(path), std::move(*meta)});
    }
  }
  return datafiles;
}

}  // namespace dfhook::io
