#pragma once

namespace mva {

/// The library's version, "MAJOR.MINOR.PATCH": CMake's `project(mvadapter VERSION ...)`, the one
/// place it is written (the CLI's `version`, checkpoint metadata, the installed package).
const char* library_version();

}  // namespace mva
