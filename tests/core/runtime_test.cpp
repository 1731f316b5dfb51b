#include "mvadapter/core/runtime.h"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <ATen/Version.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "mvadapter/core/tensor_format.h"
#include "test_support.h"

namespace mva {
namespace {

TEST(Runtime, EnvironmentOverridesRequestedThreads) {
  ::setenv("MVA_THREADS", "2", 1);
  EXPECT_EQ(set_threads(1), 2);
  ::setenv("MVA_THREADS", "1", 1);
  EXPECT_EQ(set_threads(8), 1);
}

// at::show_config() of three LibTorch builds, trimmed to the lines that matter: Debian 12's
// libtorch 1.13 (system BLAS), an official x86 CUDA LibTorch 2.x (MKL), and an OpenBLAS build (as
// the aarch64 wheels).
constexpr const char* kDebianConfig =
    "PyTorch built with:\n  - GCC 12.2\n  - LAPACK is enabled (usually provided by MKL)\n"
    "  - Build settings: BLAS_INFO=generic, BUILD_TYPE=RelWithDebInfo, LAPACK_INFO=generic, "
    "TORCH_VERSION=1.13.0, USE_CUDA=OFF, USE_MKLDNN=ON, USE_NCCL=OFF, USE_OPENMP=ON, \n";
constexpr const char* kMklConfig =
    "PyTorch built with:\n  - GCC 9.3\n  - Intel(R) oneAPI Math Kernel Library Version 2022.2\n"
    "  - CUDA Runtime 12.1\n"
    "  - Build settings: BLAS_INFO=mkl, BUILD_TYPE=Release, CUDA_VERSION=12.1, LAPACK_INFO=mkl, "
    "TORCH_VERSION=2.2.0, USE_CUDA=ON, USE_MKL=ON, USE_MKLDNN=ON, USE_NCCL=1, USE_OPENMP=ON, \n";
constexpr const char* kOpenBlasConfig =
    "PyTorch built with:\n  - GCC 10.2\n"
    "  - Build settings: BLAS_INFO=open, BUILD_TYPE=Release, LAPACK_INFO=open, "
    "TORCH_VERSION=2.2.0, USE_CUDA=OFF, USE_MKL=OFF, USE_OPENMP=ON, \n";
constexpr const char* kOpenBlasSystemBlas =
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3";
constexpr const char* kReferenceSystemBlas = "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3";

TEST(Runtime, ReadsWhichBlasLibTorchWasBuiltWith) {
  EXPECT_EQ(torch_blas(kDebianConfig), TorchBlas::kSystem);
  EXPECT_EQ(torch_blas(kMklConfig), TorchBlas::kMkl);
  EXPECT_EQ(torch_blas(kOpenBlasConfig), TorchBlas::kOpenBlas);
  EXPECT_EQ(torch_blas("Build settings: BUILD_TYPE=Release, USE_MKL=ON, "), TorchBlas::kMkl);
  EXPECT_EQ(torch_blas("Build settings: BLAS_INFO=accelerate, "), TorchBlas::kOther);
  EXPECT_EQ(torch_blas(""), TorchBlas::kOther);
  // A key is matched whole: LAPACK_INFO=open alone is no BLAS.
  EXPECT_EQ(torch_blas("Build settings: LAPACK_INFO=open, "), TorchBlas::kOther);
}

TEST(Runtime, OpenBlasGetsTheCoresOnlyWhenItRunsLibTorchsMatmuls) {
  // Debian: LibTorch's matmuls go to the system libblas.so.3, OpenBLAS's here.
  EXPECT_TRUE(openblas_should_own_threads(kDebianConfig, 1, kOpenBlasSystemBlas));
  EXPECT_FALSE(openblas_should_own_threads(kDebianConfig, 1, kReferenceSystemBlas));
  // An MKL LibTorch in a process where OpenCV loaded a pthread OpenBLAS: MKL runs the matmuls.
  EXPECT_FALSE(openblas_should_own_threads(kMklConfig, 1, kOpenBlasSystemBlas));
  EXPECT_TRUE(openblas_should_own_threads(kOpenBlasConfig, 1, ""));
  // OpenMP (2) or sequential (0) OpenBLAS shares LibTorch's pool; -1: none loaded.
  for (int parallel : {-1, 0, 2}) {
    EXPECT_FALSE(openblas_should_own_threads(kOpenBlasConfig, parallel, "")) << parallel;
    EXPECT_FALSE(openblas_should_own_threads(kDebianConfig, parallel, kOpenBlasSystemBlas))
        << parallel;
  }
}

TEST(Runtime, OnePoolOwnsTheCoresWhereOpenBlasRunsTheMatmuls) {
  using GetInt = int (*)();
  auto get_parallel = reinterpret_cast<GetInt>(::dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
  auto get_blas = reinterpret_cast<GetInt>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  const int parallel = get_parallel != nullptr ? get_parallel() : -1;
  const std::string config = at::show_config();
  if (torch_blas(config) == TorchBlas::kSystem && parallel == 1) {
    // Debian's LibTorch with libopenblas0-pthread (bootstrap installs it): libblas.so.3 is a
    // link, through the alternatives system, to OpenBLAS's; the policy must see through it.
    EXPECT_NE(blas_library_file().find("openblas"), std::string::npos) << blas_library_file();
  }
  const bool openblas_owns = openblas_should_own_threads(config, parallel, blas_library_file());
  ::setenv("MVA_THREADS", "2", 1);
  ::unsetenv("MVA_THREADING");
  EXPECT_EQ(set_threads(0), 2);
  if (openblas_owns) {
    EXPECT_EQ(torch::get_num_threads(), 1);
    ASSERT_NE(get_blas, nullptr);
    EXPECT_EQ(get_blas(), 2);
  } else {
    EXPECT_EQ(torch::get_num_threads(), 2);
  }
  ::setenv("MVA_THREADING", "omp", 1);
  EXPECT_EQ(set_threads(0), 2);
  EXPECT_EQ(torch::get_num_threads(), 2);
  ::unsetenv("MVA_THREADING");
  ::setenv("MVA_THREADS", "1", 1);
  set_threads(0);
}

/// Gives OpenBLAS two threads for one test where it runs LibTorch's matmuls (else nothing
/// changes), and the one-thread setting of the test run back afterwards.
struct TwoBlasThreads {
  TwoBlasThreads() { owned = blas_owns_threads(2); }
  ~TwoBlasThreads() { blas_owns_threads(1); }
  bool owned;
};

TEST(ParallelForBlas, CoversEveryIndexOnceOnTheBlasThreadsWithTheCallersGradMode) {
  TwoBlasThreads two;
  EXPECT_EQ(blas_threads(), two.owned ? 2 : 1);
  for (int64_t count : {0, 1, 2, 7, 288}) {
    std::vector<int> seen(static_cast<size_t>(count), 0);
    std::mutex m;
    std::set<std::thread::id> threads;
    std::vector<bool> grad_mode;
    torch::NoGradGuard no_grad;
    parallel_for_blas(count, [&](int64_t begin, int64_t end) {
      std::lock_guard<std::mutex> lock(m);
      threads.insert(std::this_thread::get_id());
      grad_mode.push_back(torch::GradMode::is_enabled());
      for (int64_t i = begin; i < end; ++i) ++seen[static_cast<size_t>(i)];
    });
    EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), count) << count;
    EXPECT_EQ(threads.size(), static_cast<size_t>(std::min<int64_t>(count, blas_threads())))
        << count;
    for (bool enabled : grad_mode) EXPECT_FALSE(enabled) << count;
  }
}

TEST(ParallelForBlas, GivesEachThreadAtLeastItsGrain) {
  TwoBlasThreads two;
  for (auto [count, want] : {std::pair<int64_t, size_t>{127, 1}, {128, two.owned ? 2 : 1}}) {
    std::mutex m;
    std::set<std::thread::id> threads;
    std::vector<int> seen(static_cast<size_t>(count), 0);
    parallel_for_blas(
        count,
        [&](int64_t begin, int64_t end) {
          std::lock_guard<std::mutex> lock(m);
          threads.insert(std::this_thread::get_id());
          for (int64_t i = begin; i < end; ++i) ++seen[static_cast<size_t>(i)];
        },
        64);
    EXPECT_EQ(threads.size(), want) << count;
    EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), count) << count;
  }
}

TEST(ParallelForBlas, ANestedCallRunsInlineInsteadOfWaitingForItsOwnRegion) {
  TwoBlasThreads two;
  std::vector<std::atomic<int>> seen(64);
  parallel_for_blas(4, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      parallel_for_blas(16, [&](int64_t b, int64_t e) {
        for (int64_t j = b; j < e; ++j) ++seen[static_cast<size_t>(i * 16 + j)];
      });
    }
  });
  for (const auto& s : seen) EXPECT_EQ(s.load(), 1);
}

TEST(ParallelForBlas, RethrowsARangesErrorAfterAllEndAndRestoresTheBlasThreads) {
  TwoBlasThreads two;
  std::atomic<int> ended{0};
  EXPECT_ERROR_CONTAINS(parallel_for_blas(10,
                                          [&](int64_t begin, int64_t end) {
                                            if (begin == 0) throw Error("range 0 failed");
                                            ++ended;
                                          }),
                        "range 0 failed");
  EXPECT_EQ(ended.load(), blas_threads() - 1);
  using GetInt = int (*)();
  auto get_blas = reinterpret_cast<GetInt>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (two.owned) EXPECT_EQ(get_blas(), 2);
}

TEST(Runtime, BadThreadVariableIsAnError) {
  ::setenv("MVA_THREADS", "many", 1);
  EXPECT_ERROR_CONTAINS(set_threads(0), "MVA_THREADS='many'");
  ::setenv("MVA_THREADS", "1", 1);
}

TEST(Runtime, FindsTheBpeVocabulary) {
  auto p = find_asset("bpe_simple_vocab_16e6.txt.gz");
  EXPECT_NE(p.find("bpe_simple_vocab_16e6.txt.gz"), std::string::npos);
  EXPECT_ERROR_CONTAINS(find_asset("no_such_file.bin"), "no_such_file.bin: not found");
}

TEST(TensorFormat, CheckShapeNamesWhatAndBothShapes) {
  auto t = torch::zeros({2, 3});
  EXPECT_NO_THROW(check_shape(t, {2, -1}, "x"));
  EXPECT_ERROR_CONTAINS(check_shape(t, {2, 4}, "in.video"),
                        "in.video: expected shape [2, 4], got [2, 3]");
}

}  // namespace
}  // namespace mva
