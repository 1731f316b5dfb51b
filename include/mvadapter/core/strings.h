#pragma once
#include <string>

namespace mva {

/// `s` with ASCII letters lowered and every other byte (UTF-8 included) unchanged: for file
/// extensions and config words, which are compared case-insensitively.
std::string ascii_lower(std::string s);

}  // namespace mva
