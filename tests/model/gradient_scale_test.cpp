#include "mvadapter/model/gradient_scale.h"

#include <torch/torch.h>

#include "test_support.h"

namespace mva {
namespace {

TEST(ScaleGradient, ForwardIsIdentityAndBackwardScalesTheGradient) {
  auto x = torch::tensor({1.0, -2.0, 3.0}, torch::kDouble).set_requires_grad(true);
  auto y = scale_gradient(x, 0.25);
  EXPECT_TRUE(torch::equal(y.detach(), x.detach()));
  (y * y).sum().backward();  // d/dx = 2x, scaled by 0.25
  EXPECT_TRUE(torch::allclose(x.grad(), torch::tensor({0.5, -1.0, 1.5}, torch::kDouble)));
}

TEST(ScaleGradient, OnlyThePathThroughItIsScaled) {
  // A tensor used before and after the scaling point (logit_scale in the W-rank emulation)
  // keeps its full gradient on the unscaled path.
  auto x = torch::tensor({2.0}, torch::kDouble).set_requires_grad(true);
  auto s = torch::tensor({3.0}, torch::kDouble).set_requires_grad(true);
  (s * scale_gradient(x, 0.5)).sum().backward();
  EXPECT_DOUBLE_EQ(x.grad().item<double>(), 1.5);  // 3 · 0.5
  EXPECT_DOUBLE_EQ(s.grad().item<double>(), 2.0);  // unscaled
}

}  // namespace
}  // namespace mva
