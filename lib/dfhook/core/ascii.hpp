#pragma once

#include <algorithm>
#include <string_view>

// ASCII case folding for protocol text (header names, media types, hex digits), which is ASCII
// by definition; unlike std::tolower it never consults the locale. Bytes outside A-Z are
// compared as they are.

namespace dfhook::core {

[[nodiscard]] constexpr char ascii_lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// a == b, ignoring the case of ASCII letters.
[[nodiscard]] constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return ascii_lower(x) == ascii_lower(y);
         });
}

// `text` starts with `prefix`, ignoring the case of ASCII letters.
[[nodiscard]] constexpr bool istarts_with(std::string_view text, std::string_view prefix) noexcept {
  return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

}  // namespace dfhook::core
