#include "test_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

#include <atomic>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "mvadapter/core/tensor_format.h"

namespace mva::test {

std::filesystem::path fixture_path(const std::string& name) {
  std::filesystem::path root(MVA_TEST_FIXTURES);
  return name.empty() ? root : root / name;
}

Fixture load_fixture(const std::string& name) {
  Fixture fx;
  fx.dir = fixture_path(name);
  if (auto cfg = fx.dir / "config.json"; std::filesystem::exists(cfg)) {
    std::ifstream in(cfg);
    fx.config = nlohmann::json::parse(in);
  }
  if (auto io = fx.dir / "io.safetensors"; std::filesystem::exists(io)) {
    fx.io = read_safetensors(io).tensors;
  }
  return fx;
}

std::filesystem::path cli_binary() {
  return std::filesystem::path(MVA_TEST_BINARY);
}

int run_command(const std::string& command, std::string* output) {
  std::string cmd = command + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) throw Error("popen failed for: " + command);
  std::string out;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  int status = ::pclose(pipe);
  if (output != nullptr) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::filesystem::path temp_dir(const std::string& tag) {
  static std::atomic<int> counter{0};
  auto dir = std::filesystem::temp_directory_path() /
             fmt::format("mva_test_{}_{}_{}", tag, ::getpid(), counter++);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

double relative_error(const torch::Tensor& got, const torch::Tensor& want) {
  auto g = got.detach().to(torch::kCPU, torch::kFloat64);
  auto w = want.detach().to(torch::kCPU, torch::kFloat64);
  if (w.numel() == 0) return 0.0;
  double denom = std::max(w.abs().max().item<double>(), 1e-6);
  return (g - w).abs().max().item<double>() / denom;
}

::testing::AssertionResult tensor_near(const char* got_expr, const char* want_expr,
                                       const char* tol_expr, const torch::Tensor& got,
                                       const torch::Tensor& want, double tol) {
  if (!got.defined() || !want.defined()) {
    return ::testing::AssertionFailure() << got_expr << " or " << want_expr << " is undefined";
  }
  if (got.sizes() != want.sizes()) {
    return ::testing::AssertionFailure()
           << got_expr << " has shape " << shape_str(got.sizes()) << ", " << want_expr
           << " has shape " << shape_str(want.sizes());
  }
  double rel = relative_error(got, want);
  if (rel <= tol) return ::testing::AssertionSuccess();
  auto g = got.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  auto w = want.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  auto diff = (g - w).abs().reshape({-1});
  int64_t flat = diff.argmax().item<int64_t>();
  std::vector<int64_t> index;
  int64_t rest = flat;
  for (int64_t d = g.dim() - 1; d >= 0; --d) {
    index.insert(index.begin(), rest % g.size(d));
    rest /= g.size(d);
  }
  return ::testing::AssertionFailure()
         << got_expr << " vs " << want_expr << ": relative error " << rel << " > " << tol_expr
         << " (" << tol << "); worst at " << shape_str(index) << ": got "
         << g.reshape({-1})[flat].item<double>() << ", want "
         << w.reshape({-1})[flat].item<double>();
}

}  // namespace mva::test
