#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace mva {

/// Sets LibTorch's intra-op thread count. n <= 0 means "all cores"; the environment variable
/// MVA_THREADS, when set, wins over n (tests and CI pin it). Returns the count now in force.
/// Where LibTorch's matmuls run on OpenBLAS with its own pthread pool (Debian's LibTorch), the n
/// threads go to OpenBLAS and LibTorch's intra-op pool gets one (see blas_owns_threads).
int set_threads(int n);

/// The BLAS a LibTorch's CPU matmuls call, as its build description says.
enum class TorchBlas {
  kMkl,       // BLAS_INFO=mkl or USE_MKL=ON (the official x86 LibTorch, pip wheels)
  kOpenBlas,  // BLAS_INFO=open: linked against OpenBLAS
  kSystem,    // BLAS_INFO=generic: the system's libblas.so.3 (Debian's LibTorch)
  kOther,     // anything else (Accelerate, Eigen, none)
};

/// Reads BLAS_INFO (then USE_MKL) from at::show_config()'s "Build settings:" line.
TorchBlas torch_blas(std::string_view show_config);

/// The thread policy's one decision: true when LibTorch's matmuls run on an OpenBLAS with its own
/// pthread pool, which should then get the cores. show_config: at::show_config();
/// openblas_parallel: openblas_get_parallel() of the OpenBLAS loaded in the process (1: pthreads;
/// -1: none loaded); sgemm_library: blas_library_file().
bool openblas_should_own_threads(std::string_view show_config, int openblas_parallel,
                                 std::string_view sgemm_library);

/// The file, links resolved, that the process's sgemm_ comes from ("" when none is loaded).
std::string blas_library_file();

/// Gives n threads to OpenBLAS and one to LibTorch when openblas_should_own_threads says so for
/// this process and MVA_THREADING is not "omp"; returns whether it did.
bool blas_owns_threads(int n);

/// Threads that parallel_for_blas splits its work across: what blas_owns_threads gave OpenBLAS
/// (1 when it gave nothing).
int blas_threads();

/// Runs body(begin, end) over [0, count) in contiguous ranges, one per thread blas_owns_threads
/// gave OpenBLAS, with OpenBLAS single-threaded meanwhile: for many small independent GEMMs (the
/// heads of an attention), where threading each call costs more than it gains. The ranges run
/// with the caller's LibTorch thread-local state (grad and inference mode, autocast); an
/// exception from any of them is rethrown here after all have ended. Calls are serialised (the
/// BLAS thread count is process-wide); a call from inside a range runs inline. Each thread gets at
/// least `grain` indices (fewer threads when count is small; a thread costs ~50 µs). With one
/// thread: body(0, count) on this thread.
void parallel_for_blas(int64_t count, const std::function<void(int64_t, int64_t)>& body,
                       int64_t grain = 1);

/// The malloc this process runs on: "tcmalloc" or "jemalloc" (linked or preloaded), else
/// "glibc malloc". The programs link tcmalloc where the build found it (MVA_WITH_TCMALLOC).
std::string memory_allocator();

/// Whether the LibTorch this process runs was built with CUDA, whether or not a GPU is visible
/// (torch::cuda::is_available() says that).
bool torch_has_cuda();

/// Number of hardware threads, at least 1.
int hardware_threads();

/// The installed or in-tree path of a data file shipped with the program (e.g. the BPE vocab).
/// Looks in $MVADAPTER_DATA, the data folder of the installed package a program was built against
/// (find_package(mvadapter)), next to the executable (../share/mvadapter), next to the library
/// (a shared libmvadapter.so: ../share/mvadapter), the configured install prefix and the source
/// tree's assets/; throws Error listing the places it looked.
std::string find_asset(const std::string& file_name);

}  // namespace mva
