#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

// Datafile revisions (DESIGN §1, §4): a JSON string of digits in the datafile, a JSON integer
// in the webhook payload; both compare as unsigned 64-bit integers.

namespace dfhook::core {

using Revision = std::uint64_t;

// The value of a string of ASCII digits ("87", leading zeros allowed: "007" is 7). Gives
// nullopt for an empty string, any other character (sign, space, decimal point) or a value
// beyond 2^64-1.
[[nodiscard]] std::optional<Revision> parse_revision(std::string_view digits);

}  // namespace dfhook::core
