#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace dfhook::core {

// Why a document was rejected: which value (an RFC 6901 JSON pointer, "" for the whole
// document), where (a byte offset into the document's text, see location.hpp for line:column)
// and what is wrong (lowercase words, no final period, values quoted with quote()).
struct Problem {
  std::string pointer;
  std::size_t offset = 0;
  std::string reason;
};

// The outcome of reading a document: a value or the problem that prevented it.
template <typename T>
class Parsed {
public:
  Parsed(T value) : m_state(std::move(value)) {}            // NOLINT(google-explicit-constructor)
  Parsed(Problem problem) : m_state(std::move(problem)) {}  // NOLINT(google-explicit-constructor)

  [[nodiscard]] bool ok() const noexcept { return m_state.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  // Precondition: ok().
  [[nodiscard]] const T& value() const& { return std::get<0>(m_state); }
  [[nodiscard]] T& value() & { return std::get<0>(m_state); }
  [[nodiscard]] const T* operator->() const { return &value(); }
  // Precondition: !ok().
  [[nodiscard]] const Problem& problem() const { return std::get<1>(m_state); }

private:
  std::variant<T, Problem> m_state;
};

// Appends "/" and one reference token to a JSON pointer, escaping '~' as "~0" and '/' as "~1".
void append_pointer_token(std::string& pointer, std::string_view token);

// An input value quoted for a message: '…' around it, quotes, backslashes and control
// characters escaped (\n, \xNN), cut after 60 bytes (at a UTF-8 boundary) with "...".
// Input comes from untrusted documents; this keeps one message on one line.
[[nodiscard]] std::string quote(std::string_view value);

}  // namespace dfhook::core
