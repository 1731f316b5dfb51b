#include "mvadapter/core/runtime.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include <ATen/ThreadLocalState.h>
#include <ATen/Version.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "mvadapter/core/strings.h"

namespace mva {

bool torch_has_cuda() {
  // The CUDA hooks are the real ones only when libtorch_cuda is loaded; the stub says false.
  return at::detail::getCUDAHooks().hasCUDART();
}

std::string memory_allocator() {
  if (::dlsym(RTLD_DEFAULT, "tc_malloc") != nullptr) return "tcmalloc";
  if (::dlsym(RTLD_DEFAULT, "mallctl") != nullptr) return "jemalloc";
  return "glibc malloc";
}

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

namespace {

// The value of `key=` in the "Build settings:" line of at::show_config(), "" if absent.
std::string_view config_value(std::string_view config, std::string_view key) {
  for (size_t at = config.find(key); at != std::string_view::npos; at = config.find(key, at + 1)) {
    const bool starts =
        at == 0 || config[at - 1] == ' ' || config[at - 1] == ',' || config[at - 1] == '\n';
    const size_t eq = at + key.size();
    if (!starts || eq >= config.size() || config[eq] != '=') continue;
    const size_t end = config.find_first_of(",\n", eq + 1);
    return config.substr(eq + 1, end == std::string_view::npos ? end : end - eq - 1);
  }
  return {};
}

}  // namespace

std::string blas_library_file() {
  void* sgemm = ::dlsym(RTLD_DEFAULT, "sgemm_");
  Dl_info info{};
  if (sgemm == nullptr || ::dladdr(sgemm, &info) == 0 || info.dli_fname == nullptr) return {};
  // The loader names the file as it found it (/lib/x86_64-linux-gnu/libblas.so.3); Debian's
  // alternatives make that a link to the library that decides.
  std::error_code ec;
  auto real = std::filesystem::canonical(info.dli_fname, ec);
  return ec ? std::string(info.dli_fname) : real.string();
}

TorchBlas torch_blas(std::string_view show_config) {
  const std::string blas = ascii_lower(std::string(config_value(show_config, "BLAS_INFO")));
  if (blas == "mkl") return TorchBlas::kMkl;
  if (blas == "open" || blas == "openblas") return TorchBlas::kOpenBlas;
  if (blas == "generic") return TorchBlas::kSystem;
  const std::string mkl = ascii_lower(std::string(config_value(show_config, "USE_MKL")));
  if (mkl == "on" || mkl == "1" || mkl == "true") return TorchBlas::kMkl;
  return TorchBlas::kOther;
}

bool openblas_should_own_threads(std::string_view show_config, int openblas_parallel,
                                 std::string_view sgemm_library) {
  // Only OpenBLAS's own pthread pool fights LibTorch's OpenMP pool; a sequential (0) or OpenMP
  // (2) OpenBLAS shares LibTorch's threads.
  constexpr int kOpenBlasPthreads = 1;
  if (openblas_parallel != kOpenBlasPthreads) return false;
  switch (torch_blas(show_config)) {
    case TorchBlas::kOpenBlas:
      return true;
    case TorchBlas::kSystem:
      // Debian's LibTorch calls the system libblas.so.3, whichever library the alternatives
      // system points it at: OpenBLAS's (.../openblas-pthread/libblas.so.3) or another.
      return ascii_lower(std::string(sgemm_library)).find("openblas") != std::string::npos;
    case TorchBlas::kMkl:
    case TorchBlas::kOther:
      // An OpenBLAS loaded by another library (Debian's OpenCV) does not run LibTorch's matmuls.
      return false;
  }
  return false;
}

namespace {

using OpenBlasSetThreads = void (*)(int);

OpenBlasSetThreads openblas_set_threads() {
  return reinterpret_cast<OpenBlasSetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
}

/// What blas_owns_threads gave OpenBLAS; 0 while it gave nothing.
std::atomic<int> g_blas_threads{0};

}  // namespace

bool blas_owns_threads(int n) {
  // Where LibTorch's matmuls run on OpenBLAS built with its own pthread pool (Debian's LibTorch),
  // an OpenMP intra-op pool as well makes each pool spin-wait while the other works: a training
  // step of a transformer ran 1.7-1.9x slower than with one pool (bench/RESULTS.md, "thread
  // pools"). GEMMs dominate these models, so the cores go to OpenBLAS and LibTorch runs one
  // thread. MVA_THREADING=omp keeps both pools (for comparison).
  g_blas_threads = 0;
  if (const char* env = std::getenv("MVA_THREADING"); env != nullptr && std::string(env) == "omp") {
    return false;
  }
  using GetParallel = int (*)();
  auto get_parallel = reinterpret_cast<GetParallel>(::dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
  auto set_blas = openblas_set_threads();
  if (get_parallel == nullptr || set_blas == nullptr) return false;
  if (!openblas_should_own_threads(at::show_config(), get_parallel(), blas_library_file())) {
    return false;
  }
  set_blas(n);
  torch::set_num_threads(1);
  g_blas_threads = n;
  return true;
}

int blas_threads() {
  return std::max(1, g_blas_threads.load());
}

void parallel_for_blas(int64_t count, const std::function<void(int64_t, int64_t)>& body,
                       int64_t grain) {
  // Set on every thread running a range: a nested call runs inline instead of waiting for the
  // region it is part of.
  static thread_local bool in_region = false;
  const int64_t threads =
      in_region ? 1 : std::min<int64_t>(blas_threads(), count / std::max<int64_t>(grain, 1));
  if (threads <= 1) {
    if (count > 0) body(0, count);
    return;
  }
  static std::mutex region;
  std::lock_guard<std::mutex> lock(region);
  const auto set_blas = openblas_set_threads();
  // OpenBLAS single-threaded while the ranges run; its count back however this ends.
  struct RestoreBlasThreads {
    OpenBlasSetThreads set;
    int threads;
    ~RestoreBlasThreads() { set(threads); }
  } restore{set_blas, blas_threads()};
  set_blas(1);
  const at::ThreadLocalState state;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
  auto run = [&](int64_t t) {
    in_region = true;
    try {
      at::ThreadLocalStateGuard guard(state);
      body(count * t / threads, count * (t + 1) / threads);
    } catch (...) {
      errors[static_cast<size_t>(t)] = std::current_exception();
    }
    in_region = false;
  };
  std::vector<std::thread> workers;
  try {
    for (int64_t t = 1; t < threads; ++t) workers.emplace_back(run, t);
  } catch (...) {  // no thread to be had: the ranges not started run here
    for (auto t = static_cast<int64_t>(workers.size()) + 1; t < threads; ++t) run(t);
  }
  run(0);
  for (auto& w : workers) w.join();
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

// Defined (weakly) by the source file that mvadapterConfig.cmake adds to every program linking the
// installed package: that installation's data folder, which a static library cannot know (the
// prefix may change at `cmake --install --prefix`). Null elsewhere.
extern "C" __attribute__((weak)) const char mva_package_data_dir[];

namespace {
std::filesystem::path executable_dir() {
  std::vector<char> buf(4096);
  ssize_t len = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (len <= 0) return {};
  return std::filesystem::path(std::string(buf.data(), static_cast<size_t>(len))).parent_path();
}

// The folder of the file holding this code: libmvadapter.so in a shared build (a program linking
// it may live anywhere), the program itself in a static one.
std::filesystem::path code_dir() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&code_dir), &info) == 0 || info.dli_fname == nullptr) {
    return {};
  }
  return std::filesystem::weakly_canonical(info.dli_fname).parent_path();
}
}  // namespace

std::string find_asset(const std::string& file_name) {
  std::vector<std::filesystem::path> places;
  if (const char* env = std::getenv("MVADAPTER_DATA"); env != nullptr && *env != '\0') {
    places.emplace_back(env);
  }
  if (mva_package_data_dir != nullptr) places.emplace_back(mva_package_data_dir);
  if (auto exe = executable_dir(); !exe.empty()) {
    places.push_back(exe / ".." / "share" / "mvadapter");
    places.push_back(exe / ".." / "assets");  // build tree next to the sources
  }
  if (auto lib = code_dir(); !lib.empty()) places.push_back(lib / ".." / "share" / "mvadapter");
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
