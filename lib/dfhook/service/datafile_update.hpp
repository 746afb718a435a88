#pragma once

#include "dfhook/io/hook.hpp"
#include "dfhook/io/store.hpp"
#include "dfhook/net/http_client.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

// One datafile brought up to date: the job shared by listen's update worker and
// fetch-datafile (DESIGN §3, §5). Download with the stored validators, validate the bytes,
// store them atomically under the lock (the revision only goes up), run the hook.

namespace dfhook::service {

// What to download and what it must be.
struct DatafileSource {
  std::string name;  // the datafile's name in the store ("1234.json", "<SDK_KEY>.json")
  std::string url;
  // Recorded as the datafile's source URL, which polls fetch (the CDN URL when `url` is the
  // origin's); empty: `url`.
  std::string record_url;
  // When known: the datafile's "projectId" must be this project.
  std::optional<std::uint64_t> project_id;
  // From a webhook: a lower revision served is stale (nothing is stored).
  std::optional<std::uint64_t> wanted_revision;
  std::optional<std::string> environment;  // DFHOOK_ENVIRONMENT for the hook
  // Extra request header lines ("Authorization: Bearer …"); never logged.
  std::vector<std::string> headers;
};

struct UpdatePolicy {
  bool force = false;            // unconditional GET, whatever is stored
  bool allow_downgrade = false;  // store a revision lower than the stored one
  std::chrono::milliseconds lock_timeout{60'000};
  std::string hook_command;  // run by /bin/sh -c after a datafile was written; empty: none
  std::chrono::milliseconds hook_timeout{60'000};
};

enum class UpdateStatus {
  updated,       // a new datafile was stored (and the hook run, when there is one: see hook)
  not_modified,  // 304, or the revision already stored: nothing was replaced
  stale,         // the server serves a revision below wanted_revision: nothing was stored
  older,         // the server serves a revision below the stored one: kept the stored one
  failed,        // download, validation or store failed: see message; nothing was replaced
};

struct UpdateReport {
  UpdateStatus status = UpdateStatus::failed;
  // The revision served (updated, stale, older) or stored (not_modified), when known.
  std::optional<std::uint64_t> revision;
  std::optional<std::uint64_t> previous_revision;  // stored before, when known
  std::uint64_t size = 0;                          // bytes of the datafile served
  std::filesystem::path path;                      // the datafile's path in the store
  std::string project_id;                          // the datafile's "projectId", when read
  std::optional<io::HookResult> hook;              // when the hook ran
  // failed: "cannot download '…': HTTP 503", "'https://…/1234.json':1:1: invalid datafile:
  // …", "another dfhook holds the lock on …"; never a header value or token.
  std::string message;
  bool lock_timeout = false;                   // failed because the lock was not obtained in time
  std::chrono::nanoseconds fetch_duration{0};  // the download alone

  [[nodiscard]] bool hook_failed() const { return hook && !hook->ok(); }
};

// Runs a hook; io::run_hook, or a fake in tests.
using HookRunner = std::function<io::HookResult(const io::HookRequest&)>;

// Brings `source.name` in `store` up to date from `source.url`:
//  - the request is conditional (stored ETag and Last-Modified, exactly as received) only when
//    the stored datafile is intact (store.verified) and not policy.force;
//  - a 200 body must be a valid datafile (core::validate_datafile), of source.project_id when
//    given; it is validated on a second thread and written to a pending datafile while it
//    downloads, and stored (committed) as the exact bytes received, never re-serialized, only
//    once the whole body is valid;
//  - a revision below wanted_revision is stale, a revision below the stored one is older
//    (unless allow_downgrade), and neither is stored;
//  - when written and policy.hook_command is set, the hook runs (outside the lock) with
//    DFHOOK_DATAFILE, DFHOOK_REVISION, DFHOOK_PREVIOUS_REVISION, DFHOOK_PROJECT_ID and
//    DFHOOK_ENVIRONMENT.
// Never throws for a failed update (see UpdateReport::message); std::bad_alloc only.
[[nodiscard]] UpdateReport update_datafile(net::Downloader& downloader, io::DatafileStore& store,
                                           const DatafileSource& source, const UpdatePolicy& policy,
                                           const HookRunner& run_hook = io::run_hook);

}  // namespace dfhook::service
