#pragma once

#include "dfhook/core/json.hpp"
#include "dfhook/core/problem.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dfhook::core {

// The event whose payload announces a new datafile revision.
inline constexpr std::string_view k_datafile_updated_event = "project.datafile_updated";

// A webhook body (DESIGN §1, §4).
struct Payload {
  std::string event;                // never empty
  bool is_datafile_update = false;  // event == k_datafile_updated_event
  // Datafile updates: always set, 1..2^63-1. Other events: the body's project_id when it is
  // such an integer, else 0 (unknown).
  std::uint64_t project_id = 0;
  // Unix seconds. Datafile updates: always set, >= 0. Other events: as project_id, else 0.
  std::int64_t timestamp = 0;
  // The members below are set for datafile updates only.
  std::uint64_t revision = 0;  // >= 1
  std::string cdn_url;         // absolute URL (syntax only; hosts are checked by net/)
  std::string origin_url;      // absolute URL
  std::optional<std::string> environment;
  // The last path segment of cdn_url ("1234.json", "TestSdkKey123.json"): the file name the
  // datafile is stored under. Only [A-Za-z0-9._-], not starting with '.', so it is always a
  // plain file name.
  std::string datafile_name;
};

// Reads a payload from a parsed JSON document into `out` (whose buffers are reused).
// For project.datafile_updated every rule of DESIGN §4 applies; any other event only needs an
// object with a non-empty string `event` (its `data` may be anything). Unknown members are
// ignored. Returns the first problem found, with the JSON pointer of the member at fault
// ("/data/revision", "/project_id" …; a missing member is named by the pointer it would have
// and located at its object) and its byte offset; `out` is unspecified then.
[[nodiscard]] std::optional<Problem> read_payload(JsonValue root, Payload& out);

// Parses and reads a payload body: the strict JSON rules of json.hpp, then read_payload.
[[nodiscard]] Parsed<Payload> parse_payload(std::string_view text);

// True for an absolute URL by RFC 3986's syntax: scheme (ALPHA *(ALPHA / DIGIT / "+" / "-" /
// ".")), "://", a non-empty authority, then anything; only printable ASCII, no spaces.
// This is a cheap first check; net/ parses URLs with curl_url() and checks the host.
[[nodiscard]] bool is_absolute_url(std::string_view url);

// The last segment of an absolute URL's path, query and fragment removed ("" when the path
// is empty or ends with '/').
[[nodiscard]] std::string_view url_file_name(std::string_view url);

}  // namespace dfhook::core
