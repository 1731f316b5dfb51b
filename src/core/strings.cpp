#include "mvadapter/core/strings.h"

namespace mva {

std::string ascii_lower(std::string s) {
  // Not std::tolower: its result depends on the C locale, and a byte >= 0x80 must stay as it is.
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

}  // namespace mva
