#pragma once
#include <string>

namespace mva {

/// Sets LibTorch's intra-op thread count. n <= 0 means "all cores"; the environment variable
/// MVA_THREADS, when set, wins over n (tests and CI pin it). Returns the count now in force.
int set_threads(int n);

/// Number of hardware threads, at least 1.
int hardware_threads();

/// The installed or in-tree path of a data file shipped with the program (e.g. the BPE vocab).
/// Looks in $MVADAPTER_DATA, next to the executable (../share/mvadapter), the install prefix and
/// the source tree's assets/; throws Error listing the places it looked.
std::string find_asset(const std::string& file_name);

}  // namespace mva
