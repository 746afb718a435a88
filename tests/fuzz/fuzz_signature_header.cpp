// X-Hub-Signature parsing: the input is one or more header values separated by '\n'.
#include "dfhook/core/signature.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using dfhook::core::Digest;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  const std::optional<Digest> whole = dfhook::core::parse_signature_header(input);
  if (whole) {
    // What parses formats back to the canonical form, which parses to the same digest.
    const std::string canonical = dfhook::core::format_signature(*whole);
    if (canonical.size() != 45 || dfhook::core::parse_signature_header(canonical) != whole) {
      std::abort();
    }
  }

  std::vector<std::string_view> values;
  std::string_view rest = input;
  while (true) {
    const std::size_t newline = rest.find('\n');
    values.push_back(rest.substr(0, newline));
    if (newline == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(newline + 1);
  }
  const std::optional<Digest> combined = dfhook::core::combine_signature_headers(values);
  // A combination is the digest of every value, so it is the digest of the first one.
  if (combined && dfhook::core::parse_signature_header(values.front()) != combined) {
    std::abort();
  }
  if (values.size() == 1 && combined != whole) {
    std::abort();
  }
  return 0;
}
