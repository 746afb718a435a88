#include "dfhook/core/payload.hpp"

#include <algorithm>
#include <limits>

namespace dfhook::core {

namespace {

constexpr auto k_max_project_id =
    static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

// The first of `text`'s bytes that is one of `set`: std::string_view::find_first_of calls memchr
// once per byte.
std::size_t find_any(std::string_view text, std::string_view set) {
  const auto at = std::find_if(text.begin(), text.end(), [set](char c) {
    return std::find(set.begin(), set.end(), c) != set.end();
  });
  return at == text.end() ? std::string_view::npos : static_cast<std::size_t>(at - text.begin());
}

Problem missing(JsonValue object, std::string pointer) {
  return Problem{std::move(pointer), object.offset(), "missing required field"};
}

Problem wrong_type(JsonValue value, std::string pointer, std::string_view expected) {
  return Problem{
      std::move(pointer), value.offset(),
      "expected " + std::string(expected) + ", found " + std::string(json_type_name(value.type()))};
}

// An integer member within [min, max]; the problem names both ends of the range.
std::optional<Problem> read_integer(JsonValue value, const char* pointer, std::uint64_t min,
                                    std::uint64_t max, std::uint64_t& out) {
  if (!value.is_integer()) {
    return wrong_type(value, pointer, "an integer");
  }
  const std::optional<std::uint64_t> number = value.uint64();
  if (!number || *number < min || *number > max) {
    return Problem{pointer, value.offset(),
                   "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                       ", found " + std::string(value.number_text())};
  }
  out = *number;
  return std::nullopt;
}

std::optional<Problem> read_url(JsonValue value, const char* pointer, std::string& out) {
  if (!value.is_string()) {
    return wrong_type(value, pointer, "an absolute URL string");
  }
  if (!is_absolute_url(value.string())) {
    return Problem{pointer, value.offset(),
                   "expected an absolute URL, found " + quote(value.string())};
  }
  out.assign(value.string());
  return std::nullopt;
}

bool is_safe_file_name(std::string_view name) {
  if (name.empty() || name.front() == '.') {
    return false;
  }
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

std::optional<Problem> read_data(JsonValue data, Payload& out) {
  std::optional<JsonValue> revision;
  std::optional<JsonValue> cdn_url;
  std::optional<JsonValue> origin_url;
  std::optional<JsonValue> environment;
  for (const JsonValue member : data.children()) {
    const std::string_view key = member.key();
    if (key == "revision") {
      revision = member;
    } else if (key == "cdn_url") {
      cdn_url = member;
    } else if (key == "origin_url") {
      origin_url = member;
    } else if (key == "environment") {
      environment = member;
    }
  }
  if (!revision) {
    return missing(data, "/data/revision");
  }
  if (auto problem = read_integer(*revision, "/data/revision", 1,
                                  std::numeric_limits<std::uint64_t>::max(), out.revision)) {
    return problem;
  }
  if (!cdn_url) {
    return missing(data, "/data/cdn_url");
  }
  if (auto problem = read_url(*cdn_url, "/data/cdn_url", out.cdn_url)) {
    return problem;
  }
  const std::string_view name = url_file_name(out.cdn_url);
  if (!is_safe_file_name(name)) {
    return Problem{"/data/cdn_url", cdn_url->offset(),
                   "the URL's last path segment " + quote(name) +
                       " is not a datafile name (letters, digits, '.', '_', '-')"};
  }
  out.datafile_name.assign(name);
  if (!origin_url) {
    return missing(data, "/data/origin_url");
  }
  if (auto problem = read_url(*origin_url, "/data/origin_url", out.origin_url)) {
    return problem;
  }
  if (environment) {
    if (!environment->is_string()) {
      return wrong_type(*environment, "/data/environment", "a string");
    }
    out.environment.emplace(environment->string());
  } else {
    out.environment.reset();
  }
  return std::nullopt;
}

}  // namespace

bool is_absolute_url(std::string_view url) {
  for (const char c : url) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20U || byte >= 0x7FU) {
      return false;
    }
  }
  const std::size_t separator = url.find("://");
  if (separator == std::string_view::npos || separator == 0) {
    return false;
  }
  const auto is_alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!is_alpha(url.front())) {
    return false;
  }
  for (const char c : url.substr(1, separator - 1)) {
    if (!is_alpha(c) && !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.') {
      return false;
    }
  }
  const std::string_view rest = url.substr(separator + 3);
  const std::size_t authority_end = find_any(rest, "/?#");
  return authority_end != 0 && !rest.empty();
}

std::string_view url_file_name(std::string_view url) {
  const std::size_t separator = url.find("://");
  if (separator == std::string_view::npos) {
    return {};
  }
  std::string_view rest = url.substr(separator + 3);
  rest = rest.substr(0, find_any(rest, "?#"));
  const std::size_t path = rest.find('/');
  if (path == std::string_view::npos) {
    return {};
  }
  return rest.substr(rest.rfind('/') + 1);
}

std::optional<Problem> read_payload(JsonValue root, Payload& out) {
  if (!root.is_object()) {
    return wrong_type(root, "", "an object");
  }
  std::optional<JsonValue> event;
  std::optional<JsonValue> project_id;
  std::optional<JsonValue> timestamp;
  std::optional<JsonValue> data;
  for (const JsonValue member : root.children()) {
    const std::string_view key = member.key();
    if (key == "event") {
      event = member;
    } else if (key == "project_id") {
      project_id = member;
    } else if (key == "timestamp") {
      timestamp = member;
    } else if (key == "data") {
      data = member;
    }
  }
  if (!event) {
    return missing(root, "/event");
  }
  if (!event->is_string()) {
    return wrong_type(*event, "/event", "a string");
  }
  if (event->string().empty()) {
    return Problem{"/event", event->offset(), "must not be empty"};
  }
  out.event.assign(event->string());
  out.is_datafile_update = out.event == k_datafile_updated_event;
  out.project_id = 0;
  out.timestamp = 0;
  out.revision = 0;
  if (!out.is_datafile_update) {
    // Acknowledged and ignored: what it carries must not make it invalid.
    if (project_id) {
      const std::optional<std::uint64_t> id = project_id->uint64();
      out.project_id = id && *id <= k_max_project_id ? *id : 0;
    }
    if (timestamp) {
      const std::optional<std::int64_t> seconds = timestamp->int64();
      out.timestamp = seconds && *seconds >= 0 ? *seconds : 0;
    }
    out.cdn_url.clear();
    out.origin_url.clear();
    out.environment.reset();
    out.datafile_name.clear();
    return std::nullopt;
  }
  if (!project_id) {
    return missing(root, "/project_id");
  }
  if (auto problem =
          read_integer(*project_id, "/project_id", 1, k_max_project_id, out.project_id)) {
    return problem;
  }
  if (!timestamp) {
    return missing(root, "/timestamp");
  }
  std::uint64_t seconds = 0;
  if (auto problem = read_integer(*timestamp, "/timestamp", 0, k_max_project_id, seconds)) {
    return problem;
  }
  out.timestamp = static_cast<std::int64_t>(seconds);
  if (!data) {
    return missing(root, "/data");
  }
  if (!data->is_object()) {
    return wrong_type(*data, "/data", "an object");
  }
  return read_data(*data, out);
}

Parsed<Payload> parse_payload(std::string_view text) {
  JsonDocument document;
  if (std::optional<Problem> problem = document.parse(text)) {
    return std::move(*problem);
  }
  Payload payload;
  if (std::optional<Problem> problem = read_payload(document.root(), payload)) {
    return std::move(*problem);
  }
  return payload;
}

}  // namespace dfhook::core
