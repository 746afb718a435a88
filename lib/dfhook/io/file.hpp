#pragma once

#include <string>

namespace dfhook::io {

// How messages name an input: "standard input" for "-", else the path in quotes.
[[nodiscard]] std::string input_name(const std::string& path);

// "cannot read <input_name(path)>: <strerror(error)>", the one wording of an unreadable input.
[[nodiscard]] std::string unreadable_message(const std::string& path, int error);

// The whole content of the file at `path`, byte for byte; "-" reads standard input to its end.
// Throws core::usage_error("cannot read 'PATH': <strerror>") when the file cannot be opened or
// read (a directory gives "Is a directory"); for "-" the input is named "standard input".
[[nodiscard]] std::string read_file(const std::string& path);

}  // namespace dfhook::io
