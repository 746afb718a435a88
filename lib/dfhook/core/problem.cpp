#include "dfhook/core/problem.hpp"

#include <array>

namespace dfhook::core {

void append_pointer_token(std::string& pointer, std::string_view token) {
  pointer += '/';
  for (const char c : token) {
    if (c == '~') {
      pointer += "~0";
    } else if (c == '/') {
      pointer += "~1";
    } else {
      pointer += c;
    }
  }
}

std::string quote(std::string_view value) {
  constexpr std::size_t k_max_bytes = 60;
  constexpr std::array<char, 16> k_hex{'0', '1', '2', '3', '4', '5', '6', '7',
                                       '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  bool cut = false;
  if (value.size() > k_max_bytes) {
    std::size_t end = k_max_bytes;
    // Never split a UTF-8 sequence: back up over continuation bytes.
    while (end > 0 && (static_cast<unsigned char>(value[end]) & 0xC0U) == 0x80U) {
      --end;
    }
    value = value.substr(0, end);
    cut = true;
  }
  std::string out;
  out.reserve(value.size() + 8);
  out += '\'';
  for (const char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\'' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (byte < 0x20U || byte == 0x7FU) {
      out += "\\x";
      out += k_hex[byte >> 4U];
      out += k_hex[byte & 0x0FU];
    } else {
      out += c;
    }
  }
  if (cut) {
    out += "...";
  }
  out += '\'';
  return out;
}

}  // namespace dfhook::core
