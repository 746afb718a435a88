#pragma once

#include <string>

namespace dfhook::io {

// The whole content of the file at `path`, byte for byte; "-" reads standard input to its end.
// Throws core::usage_error("cannot read 'PATH': <strerror>") when the file cannot be opened or
// read (a directory gives "Is a directory"); for "-" the input is named "standard input".
[[nodiscard]] std::string read_file(const std::string& path);

}  // namespace dfhook::io
