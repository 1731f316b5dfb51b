#pragma once
#include <string>

namespace mva {

/// Sets LibTorch's intra-op thread count. n <= 0 means "all cores"; the environment variable
/// MVA_THREADS, when set, wins over n (tests and CI pin it). Returns the count now in force.
/// Where OpenBLAS runs its own pthread pool (Debian's LibTorch), the n threads go to OpenBLAS
/// and LibTorch's intra-op pool gets one (see blas_owns_threads).
int set_threads(int n);

/// Gives n threads to OpenBLAS and one to LibTorch when the BLAS is OpenBLAS with its own
/// pthread pool and MVA_THREADING is not "omp"; returns whether it did.
bool blas_owns_threads(int n);

/// Number of hardware threads, at least 1.
int hardware_threads();

/// The installed or in-tree path of a data file shipped with the program (e.g. the BPE vocab).
/// Looks in $MVADAPTER_DATA, next to the executable (../share/mvadapter), the install prefix and
/// the source tree's assets/; throws Error listing the places it looked.
std::string find_asset(const std::string& file_name);

}  // namespace mva
