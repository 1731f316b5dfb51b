#pragma once
#include <stdexcept>
#include <string>

namespace mva {

/// The one exception the library throws: its message names the file or field at fault and what
/// was expected. The CLI catches it once, prints the message on one line and exits 1.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace mva
