#include "mvadapter/core/runtime.h"

#include <dlfcn.h>

#include <cstdlib>

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

TEST(Runtime, OnePoolOwnsTheCoresWithPthreadOpenBlas) {
  using GetInt = int (*)();
  auto get_parallel = reinterpret_cast<GetInt>(::dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
  auto get_blas = reinterpret_cast<GetInt>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  const bool pthread_openblas = get_parallel != nullptr && get_parallel() == 1;
  ::setenv("MVA_THREADS", "2", 1);
  ::unsetenv("MVA_THREADING");
  EXPECT_EQ(set_threads(0), 2);
  if (pthread_openblas) {
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
