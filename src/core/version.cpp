#include "mvadapter/core/version.h"

namespace mva {

// MVA_VERSION is defined for this file alone (CMakeLists.txt), so a version bump recompiles one
// file, not the tree.
const char* library_version() {
  return MVA_VERSION;
}

}  // namespace mva
