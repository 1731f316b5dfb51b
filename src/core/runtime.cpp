#include "mvadapter/core/runtime.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"

namespace mva {

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

int set_threads(int n) {
  if (const char* env = std::getenv("MVA_THREADS"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end == env || *end != '\0' || v < 0) {
      throw Error(fmt::format("MVA_THREADS='{}': expected a non-negative integer", env));
    }
    n = static_cast<int>(v);
  }
  // LibTorch on this platform starts with one intra-op thread; without this call every
  // matmul runs on a single core.
  if (n <= 0) n = hardware_threads();
  if (blas_owns_threads(n)) return n;
  torch::set_num_threads(n);
  return torch::get_num_threads();
}

bool blas_owns_threads(int n) {
  // Debian's LibTorch calls OpenBLAS built with its own pthread pool. With an OpenMP intra-op
  // pool as well, each pool spin-waits while the other works: a training step of a
  // transformer ran 1.7-1.9x slower than with one pool (bench/RESULTS.md, "thread pools").
  // GEMMs dominate these models, so the cores go to OpenBLAS and LibTorch runs one thread.
  // MVA_THREADING=omp keeps both pools (for comparison).
  if (const char* env = std::getenv("MVA_THREADING"); env != nullptr && std::string(env) == "omp") {
    return false;
  }
  using GetParallel = int (*)();
  using SetThreads = void (*)(int);
  auto get_parallel = reinterpret_cast<GetParallel>(::dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
  auto set_blas = reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  constexpr int kOpenBlasPthreads = 1;  // 0: sequential build, 2: OpenMP build (shares LibTorch's)
  if (get_parallel == nullptr || set_blas == nullptr || get_parallel() != kOpenBlasPthreads) {
    return false;
  }
  set_blas(n);
  torch::set_num_threads(1);
  return true;
}

namespace {
std::filesystem::path executable_dir() {
  std::vector<char> buf(4096);
  ssize_t len = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (len <= 0) return {};
  return std::filesystem::path(std::string(buf.data(), static_cast<size_t>(len))).parent_path();
}
}  // namespace

std::string find_asset(const std::string& file_name) {
  std::vector<std::filesystem::path> places;
  if (const char* env = std::getenv("MVADAPTER_DATA"); env != nullptr && *env != '\0') {
    places.emplace_back(env);
  }
  if (auto exe = executable_dir(); !exe.empty()) {
    places.push_back(exe / ".." / "share" / "mvadapter");
    places.push_back(exe / ".." / "assets");  // build tree next to the sources
  }
  places.emplace_back(MVA_INSTALL_DATADIR);
  places.emplace_back(std::filesystem::path(MVA_SOURCE_DIR) / "assets");
  std::string looked;
  for (const auto& dir : places) {
    auto p = dir / file_name;
    if (std::filesystem::is_regular_file(p)) return std::filesystem::weakly_canonical(p).string();
    looked += (looked.empty() ? "" : ", ") + dir.string();
  }
  throw Error(fmt::format("{}: not found (looked in {}; set MVADAPTER_DATA to its folder)",
                          file_name, looked));
}

}  // namespace mva
