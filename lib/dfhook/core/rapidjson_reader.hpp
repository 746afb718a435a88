#pragma once

// RapidJSON (its SAX reader, writer and streams), included through this header by every file of
// the project that uses it.
//
// RapidJSON 1.1.0 (the last release, Debian 12's) allocates its parsing stack on the first
// push by comparing `nullptr + n` with the end, which is undefined behaviour; clang's UBSan
// stops the fuzz targets there on every input (fixed upstream after the release); the writer
// grows the same stack. Only
// RapidJSON's own functions, declared in this region, skip that one check; the project's code
// keeps it.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((no_sanitize("pointer-overflow"))), apply_to = function)
#endif
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#if defined(__clang__)
#pragma clang attribute pop
#endif

#include <string>

namespace dfhook::core {

// The project's words for a RapidJSON syntax error: `at_end` when the error is at the end of
// the input (a cut document), `non_finite` when the offending value starts like NaN or Infinity.
[[nodiscard]] std::string syntax_reason(rapidjson::ParseErrorCode code, bool at_end,
                                        bool non_finite);

}  // namespace dfhook::core
