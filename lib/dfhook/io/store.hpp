#pragma once

#include <sys/types.h>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dfhook::io {

// What is known about a stored datafile (OUT_DIR/.dfhook/<name>.meta.json, DESIGN §5).
struct DatafileMeta {
  std::uint64_t revision = 0;
  // The validators exactly as received, byte for byte (a weak "W/\"…\"" included);
  // nullopt when the response had none.
  std::optional<std::string> etag;
  std::optional<std::string> last_modified;
  std::uint64_t size = 0;
  std::string sha256;  // 64 lowercase hex digits of the stored bytes
  std::string source_url;
  std::chrono::system_clock::time_point fetched_at;  // when these bytes were downloaded
  std::chrono::system_clock::time_point updated_at;  // when this revision was first stored
};

// A datafile of the out-dir that has metadata (for polling and /healthz).
struct StoredDatafile {
  std::string name;
  std::filesystem::path path;
  DatafileMeta meta;
};

// The reason `name` cannot be a datafile name, or empty when it can. A name comes from a URL
// sent over the internet: it must be a plain file name of at most 200 bytes, not empty, not
// starting with '.', without '/', NUL or control characters.
[[nodiscard]] std::string datafile_name_problem(std::string_view name);
[[nodiscard]] inline bool is_valid_datafile_name(std::string_view name) {
  return datafile_name_problem(name).empty();
}

// The lock of one datafile, held until destroyed. Writers of a datafile (any process, any
// thread) exclude each other through it; readers never need it.
class DatafileLock {
public:
  virtual ~DatafileLock() = default;
  [[nodiscard]] virtual const std::string& name() const noexcept = 0;
};

// A new version of a datafile being written (a download streams its chunks here). It becomes
// the datafile only through DatafileStore::commit; destroyed before that, it leaves no trace.
class PendingDatafile {
public:
  virtual ~PendingDatafile() = default;
  [[nodiscard]] virtual const std::string& name() const noexcept = 0;
  // Appends a chunk. Throws core::Error (failed) naming the path; the datafile is untouched.
  virtual void write(std::string_view chunk) = 0;
  [[nodiscard]] virtual std::uint64_t size() const noexcept = 0;
};

enum class CommitStatus {
  written,            // the datafile was replaced (or written the first time)
  unchanged,          // same revision already stored and intact: nothing replaced
  downgrade_refused,  // the stored revision is higher and allow_downgrade was not given
};

struct CommitResult {
  CommitStatus status = CommitStatus::written;
  // The metadata stored before, read under the lock; nullopt when there was none or it was
  // unreadable.
  std::optional<DatafileMeta> previous;
  // The revision stored before: the metadata's, or, when the metadata is missing, unreadable
  // or does not describe the bytes on disk, the "revision" of the datafile on disk when it is
  // a valid datafile (the higher of the two). A lost metadata file never lets the revision go
  // backwards. nullopt when neither is known.
  std::optional<std::uint64_t> previous_revision;
  // The metadata stored now: the new one when written; when unchanged, the previous one with
  // the new validators and fetched_at if the bytes are identical (so that the next conditional
  // GET can get a 304), else the previous one as it was; when refused, the previous one (or,
  // without usable metadata, one that holds previous_revision alone).
  DatafileMeta stored;
  std::filesystem::path path;  // the datafile
};

struct CommitOptions {
  bool allow_downgrade = false;
  // How long commit() waits for the lock when it takes it itself.
  std::chrono::milliseconds lock_timeout{60'000};
};

// Where datafiles live (DESIGN §5, §7). The filesystem store is the one implementation today;
// a Redis-mirrored backend will be another. Implementations are safe to use from several
// threads and processes at once; all names are checked with datafile_name_problem() and a bad
// one throws core::Error (failed) "invalid datafile name '…': …".
class DatafileStore {
public:
  virtual ~DatafileStore() = default;

  // The path the datafile has (or will have); DFHOOK_DATAFILE for the hook.
  [[nodiscard]] virtual std::filesystem::path datafile_path(std::string_view name) const = 0;

  // The stored metadata; nullopt when there is none or it is corrupt (logged as a warning).
  // It may not describe the bytes on disk: see verified().
  [[nodiscard]] virtual std::optional<DatafileMeta> current(std::string_view name) const = 0;

  // The stored metadata only when the datafile exists as a regular file and has the stored
  // size and sha256. When this returns nullopt the caller must fetch unconditionally and must
  // not send the stored validators.
  [[nodiscard]] virtual std::optional<DatafileMeta> verified(std::string_view name) const = 0;

  // Takes the datafile's lock, waiting up to `timeout` (0: one try). Throws core::Error with
  // ExitCode::lock_timeout "another dfhook holds the lock on '<datafile path>' (waited …)" when
  // it is not obtained in time, core::Error (failed) when the lock file cannot be opened.
  // The lock is per open: a second lock() of the same name in one process waits too.
  [[nodiscard]] virtual std::unique_ptr<DatafileLock> lock(std::string_view name,
                                                           std::chrono::milliseconds timeout) = 0;

  // Starts a new version of `name`. Throws core::Error (failed).
  [[nodiscard]] virtual std::unique_ptr<PendingDatafile> begin(std::string_view name) = 0;

  // Installs `pending` as the datafile, the caller holding `held` (the lock of the same name
  // from this store; anything else is a std::logic_error). Under the lock the stored revision
  // (CommitResult::previous_revision) is read again: a lower `meta.revision` is refused unless
  // `allow_downgrade`; an equal one is `unchanged` when the stored bytes are intact (or, without
  // usable metadata, identical), else the datafile is written again.
  // The store sets meta.size, meta.sha256 and meta.updated_at; meta.fetched_at left at the
  // epoch means now. The datafile is replaced first, then the metadata: if the process dies
  // between the two, the size/sha256 mismatch makes the next run download again.
  // Throws core::Error (failed) naming the path on I/O errors; the old datafile then stays
  // (when only the metadata could not be written, the new datafile is in place and
  // verified() reports a mismatch). `pending` is consumed in every case.
  virtual CommitResult commit_locked(const DatafileLock& held,
                                     std::unique_ptr<PendingDatafile> pending, DatafileMeta meta,
                                     bool allow_downgrade) = 0;

  // The datafiles of the store that have readable metadata, by name.
  [[nodiscard]] virtual std::vector<StoredDatafile> list() const = 0;

  // commit_locked() taking the lock itself (options.lock_timeout).
  CommitResult commit(std::unique_ptr<PendingDatafile> pending, DatafileMeta meta,
                      const CommitOptions& options = {});

  // One-shot: begin(name), write(bytes), commit().
  CommitResult commit(std::string_view name, std::string_view bytes, DatafileMeta meta,
                      const CommitOptions& options = {});
};

struct FileStoreOptions {
  mode_t file_mode = 0644;  // of datafiles and their metadata, applied whatever the umask
  // The clock for fetched_at/updated_at; system_clock::now when empty.
  std::function<std::chrono::system_clock::time_point()> clock;
};

// The filesystem store of DESIGN §5: OUT_DIR/<name>, OUT_DIR/.dfhook/<name>.meta.json and
// OUT_DIR/.dfhook/<name>.lock (flock, released by the kernel when the holder dies).
class FileDatafileStore final : public DatafileStore {
public:
  // Creates OUT_DIR and OUT_DIR/.dfhook when missing (mode 0755), checks that both are
  // writable and removes the temporary files killed writers left there
  // (remove_stale_temp_files). Throws core::Error (failed) naming the directory.
  explicit FileDatafileStore(std::filesystem::path out_dir, FileStoreOptions options = {});

  [[nodiscard]] const std::filesystem::path& out_dir() const noexcept { return m_out_dir; }
  // OUT_DIR/.dfhook: the metadata and lock files.
  [[nodiscard]] const std::filesystem::path& meta_dir() const noexcept { return m_meta_dir; }
  [[nodiscard]] std::filesystem::path meta_path(std::string_view name) const;
  [[nodiscard]] std::filesystem::path lock_path(std::string_view name) const;

  [[nodiscard]] std::filesystem::path datafile_path(std::string_view name) const override;
  [[nodiscard]] std::optional<DatafileMeta> current(std::string_view name) const override;
  [[nodiscard]] std::optional<DatafileMeta> verified(std::string_view name) const override;
  [[nodiscard]] std::unique_ptr<DatafileLock> lock(std::string_view name,
                                                   std::chrono::milliseconds timeout) override;
  [[nodiscard]] std::unique_ptr<PendingDatafile> begin(std::string_view name) override;
  CommitResult commit_locked(const DatafileLock& held, std::unique_ptr<PendingDatafile> pending,
                             DatafileMeta meta, bool allow_downgrade) override;
  [[nodiscard]] std::vector<StoredDatafile> list() const override;

private:
  [[nodiscard]] std::chrono::system_clock::time_point now() const;
  // The out-dir or its .dfhook removed while the store is open (an operator emptying it) is
  // made again, as the constructor does, before a datafile or lock is opened there.
  void restore_directories() const;

  std::filesystem::path m_out_dir;
  std::filesystem::path m_meta_dir;
  FileStoreOptions m_options;
};

// The metadata file's JSON text, and its parser: nullopt plus a reason in `problem` when the
// text is not a valid metadata document. Exposed for tests and tools.
[[nodiscard]] std::string format_datafile_meta(std::string_view name, const DatafileMeta& meta);
[[nodiscard]] std::optional<DatafileMeta> parse_datafile_meta(std::string_view text,
                                                              std::string* problem = nullptr);

}  // namespace dfhook::io
