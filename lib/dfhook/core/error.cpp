#include "dfhook/core/error.hpp"

#include <utility>

namespace dfhook::core {

Error::Error(ExitCode code, const std::string& message, std::string hint)
    : std::runtime_error(message), m_code(code), m_hint(std::move(hint)) {}

Error usage_error(const std::string& message, std::string hint) {
  return Error(ExitCode::usage, message, std::move(hint));
}

Error failure(const std::string& message, std::string hint) {
  return Error(ExitCode::failed, message, std::move(hint));
}

}  // namespace dfhook::core
