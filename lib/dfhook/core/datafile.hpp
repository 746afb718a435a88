#pragma once

#include "dfhook/core/problem.hpp"
#include "dfhook/core/revision.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// The datafile validator (DESIGN §1 "Datafile", §4). A datafile is accepted when it is one JSON
// object with
//  - "version": "2", "3" or "4";
//  - "projectId", "accountId": strings; "projectId" equal to the expected project when given;
//  - "revision": a string of digits that fits 64 bits;
//  - "groups", "experiments", "events", "audiences", "attributes": arrays;
//  - "featureFlags", "rollouts", "typedAudiences": arrays when present;
//  - "sdkKey", "environmentKey": strings when present (never compared with anything).
// Other members are ignored. Rejected anywhere in the document: invalid JSON, invalid UTF-8,
// NaN and Infinity, a \u escape of a high surrogate without its low surrogate, nesting deeper
// than k_datafile_max_depth, and anything but whitespace after the document; at the top
// level, a member name given twice. (A \u escape of a lone low surrogate, which RFC 8259's
// grammar allows, and integers beyond 64 bits are let through: the SDKs read them, and the
// datafile is stored as received.)
//
// The bytes are read once, in order, with constant memory besides the member names of the
// top level and the strings kept in DatafileInfo: a datafile of several MB is validated as it
// is downloaded and stored as the exact bytes received, never re-serialized.

namespace dfhook::core {

inline constexpr std::size_t k_datafile_max_depth = 256;

// What a valid datafile says about itself.
struct DatafileInfo {
  std::string version;  // "2", "3" or "4"
  std::string project_id;
  std::string account_id;
  Revision revision = 0;
  std::optional<std::string> sdk_key;
  std::optional<std::string> environment_key;
  std::uint64_t size = 0;  // bytes of the whole document, trailing whitespace included
};

// Where a streamed document's bytes come from.
class ByteSource {
public:
  virtual ~ByteSource() = default;

  // The next bytes of the document, or an empty view at its end (after which next() is not
  // called again). The view must stay valid until the following call. Exceptions thrown here
  // (a failed download, a size limit) propagate out of validate_datafile().
  virtual std::string_view next() = 0;
};

// Validates the document `source` yields, pulling chunks as it goes and stopping at the first
// problem (so a download can stop early). The Problem's pointer is an RFC 6901 JSON pointer
// ("/revision", "/featureFlags/3/key", "" for the document) and its offset a byte offset from
// the document's first byte. Reasons read like "expected a string of digits, found '1.5'",
// "missing required field", "expected project '1234', found '5678'".
[[nodiscard]] Parsed<DatafileInfo> validate_datafile(
    ByteSource& source, std::optional<std::string_view> expected_project_id = std::nullopt);

// The same for a document held in memory.
[[nodiscard]] Parsed<DatafileInfo> validate_datafile(
    std::string_view bytes, std::optional<std::string_view> expected_project_id = std::nullopt);

}  // namespace dfhook::core
