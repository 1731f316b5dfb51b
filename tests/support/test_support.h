#pragma once
#include <filesystem>
#include <string>

#include <gtest/gtest.h>
#include <torch/types.h>
#include <nlohmann/json.hpp>

#include "mvadapter/io/safetensors.h"

namespace mva::test {

/// tests/fixtures/<name>: the repository's own copy of the golden files (no path outside the repo).
std::filesystem::path fixture_path(const std::string& name = "");

/// A golden-tensor fixture folder: its config.json and io.safetensors.
struct Fixture {
  std::filesystem::path dir;
  nlohmann::json config;
  TensorMap io;
};

/// Loads tests/fixtures/<name> (config.json and io.safetensors when present).
Fixture load_fixture(const std::string& name);

/// Path of the built `mvadapter` executable, for tests that run the CLI as a user would.
std::filesystem::path cli_binary();

/// Runs `command` through the shell; returns its exit status and fills `output` with stdout and
/// stderr together.
int run_command(const std::string& command, std::string* output);

/// A fresh empty directory under the system temp folder, removed by the caller if wanted.
std::filesystem::path temp_dir(const std::string& tag);

/// Relative error as DESIGN.md §9 defines it: max|got - want| / max(max|want|, 1e-6).
double relative_error(const torch::Tensor& got, const torch::Tensor& want);

/// gtest predicate behind EXPECT_TENSOR_NEAR: same shape and relative error <= tol; on failure the
/// message gives the worst element, its index and both values.
::testing::AssertionResult tensor_near(const char* got_expr, const char* want_expr,
                                       const char* tol_expr, const torch::Tensor& got,
                                       const torch::Tensor& want, double tol);

}  // namespace mva::test

/// First statement of a test that decodes or writes videos: in the model-only build
/// (MVA_WITH_VIDEO=OFF) the test is skipped, and the skip message says why.
#if MVA_WITH_VIDEO
#define MVA_REQUIRE_VIDEO() static_cast<void>(0)
#else
#define MVA_REQUIRE_VIDEO() \
  GTEST_SKIP() << "needs video decoding (OpenCV); this build has MVA_WITH_VIDEO=OFF"
#endif

#define EXPECT_TENSOR_NEAR(got, want, tol) \
  EXPECT_PRED_FORMAT3(::mva::test::tensor_near, got, want, tol)
#define ASSERT_TENSOR_NEAR(got, want, tol) \
  ASSERT_PRED_FORMAT3(::mva::test::tensor_near, got, want, tol)

/// Expects `stmt` to throw mva::Error whose message contains `needle`.
#define EXPECT_ERROR_CONTAINS(stmt, needle)                                             \
  do {                                                                                  \
    try {                                                                               \
      stmt;                                                                             \
      ADD_FAILURE() << "expected mva::Error containing '" << (needle) << "', got none"; \
    } catch (const ::mva::Error& e) {                                                   \
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)                  \
          << "error message '" << e.what() << "' lacks '" << (needle) << "'";           \
    }                                                                                   \
  } while (0)
