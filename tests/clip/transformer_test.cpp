// The transformer's own maths: QuickGELU's single-node form and the MLP's fused bias, against
// hand-computed values and the plain operator forms they replace.
#include "mvadapter/clip/transformer.h"

#include <cmath>

#include <torch/torch.h>

#include "mvadapter/core/runtime.h"
#include "test_support.h"

namespace mva {
namespace {

TEST(QuickGelu, ValuesAndDerivativeByHand) {
  // x·σ(1.702x) at 0, 1, -2 and its derivative σ(t) + t·σ(t)(1 - σ(t)) with t = 1.702x,
  // written out in double.
  const double xs[] = {0.0, 1.0, -2.0};
  auto x = torch::tensor({0.0, 1.0, -2.0}, torch::kDouble).requires_grad_(true);
  auto y = quick_gelu(x);
  y.sum().backward();
  for (int i = 0; i < 3; ++i) {
    const double t = 1.702 * xs[i], s = 1.0 / (1.0 + std::exp(-t));
    EXPECT_NEAR(y[i].item<double>(), xs[i] * s, 1e-15) << "x = " << xs[i];
    EXPECT_NEAR(x.grad()[i].item<double>(), s + t * s * (1.0 - s), 1e-15) << "x = " << xs[i];
  }
}

TEST(QuickGelu, Fp32MatchesTheProductFormAndItsGradient) {
  torch::manual_seed(11);
  auto x = (torch::randn({64, 3, 40}) * 4).requires_grad_(true);
  auto g = torch::randn({64, 3, 40});
  quick_gelu(x).backward(g);
  auto xr = x.detach().clone().requires_grad_(true);
  auto want = xr * torch::sigmoid(1.702 * xr);
  want.backward(g);
  EXPECT_TENSOR_NEAR(quick_gelu(x.detach()), want.detach(), 1e-6);
  EXPECT_TENSOR_NEAR(x.grad(), xr.grad(), 1e-6);
}

TEST(QuickGelu, SplitAcrossTwoBlasThreadsGivesTheSameBits) {
  torch::manual_seed(12);
  // Above the size that stays on one thread, and odd, so the two ranges differ in length.
  auto x = torch::randn({3, 77, 1001});
  auto g = torch::randn({3, 77, 1001});
  auto pass = [&] {
    auto xi = x.clone().requires_grad_(true);
    auto y = quick_gelu(xi);
    y.backward(g);
    return std::make_pair(y.detach(), xi.grad());
  };
  const auto [y1, g1] = pass();
  const bool owned = blas_owns_threads(2);
  const auto [y2, g2] = pass();
  blas_owns_threads(1);
  EXPECT_TRUE(torch::equal(y1, y2));
  EXPECT_TRUE(torch::equal(g1, g2));
  auto xr = x.clone().requires_grad_(true);
  auto want = xr * torch::sigmoid(1.702 * xr);
  want.backward(g);
  EXPECT_TENSOR_NEAR(y2, want.detach(), 1e-6);
  EXPECT_TENSOR_NEAR(g2, xr.grad(), 1e-6);
  if (!owned) GTEST_SKIP() << "OpenBLAS does not run this LibTorch's matmuls: one thread only";
}

TEST(ClipMlp, FusedBiasEqualsTheModulesOwnForward) {
  torch::manual_seed(5);
  ClipMlp mlp(16);
  auto x = torch::randn({7, 3, 16}, torch::requires_grad());
  auto g = torch::randn({7, 3, 16});
  auto got = mlp->forward(x);
  got.backward(g);
  auto xr = x.detach().clone().requires_grad_(true);
  auto h = mlp->c_fc(xr);  // torch::nn::Linear: matmul, then the bias added apart
  auto want = mlp->c_proj(h * torch::sigmoid(1.702 * h));
  want.backward(g);
  EXPECT_TENSOR_NEAR(got.detach(), want.detach(), 1e-6);
  EXPECT_TENSOR_NEAR(x.grad(), xr.grad(), 1e-6);
}

}  // namespace
}  // namespace mva
