// The fused attention core against hand-computed values and against the ATen reference path
// (which the golden-fixture suites check against the official code).
#include "mvadapter/clip/fused_attention.h"

#include <cmath>
#include <limits>
#include <string>

#include <torch/torch.h>

#include "mvadapter/clip/transformer.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/runtime.h"
#include "test_support.h"

namespace mva {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

/// qkv [L=2, N=1, 3] with one head of width 1: q = (1, 2), k = (0, ln 3), v = (4, 8), so the
/// scores are q_i k_j (scale 1/√1) and every probability is a small fraction.
torch::Tensor two_position_qkv() {
  const float ln3 = std::log(3.0f);
  return torch::tensor({1.0f, 0.0f, 4.0f, 2.0f, ln3, 8.0f}).view({2, 1, 3});
}

std::string grad_fn_name(const torch::Tensor& t) {
  return t.grad_fn() ? t.grad_fn()->name() : "(none)";
}

/// Output and gradient of the input for one upstream gradient, through `f`.
std::pair<torch::Tensor, torch::Tensor> run(
    const std::function<torch::Tensor(const torch::Tensor&)>& f, const torch::Tensor& qkv,
    const torch::Tensor& grad_out) {
  auto x = qkv.detach().clone().requires_grad_(true);
  auto out = f(x);
  out.backward(grad_out);
  return {out.detach(), x.grad()};
}

TEST(FusedAttention, TwoPositionsByHand) {
  if (!fused_attention_applies(two_position_qkv())) GTEST_SKIP() << "built without a CBLAS";
  // Rows of softmax(q kᵀ): (1/4, 3/4) and (1/10, 9/10); out = P v = (7, 7.6). With ones as the
  // upstream gradient, dv = Pᵀ 1 = (0.35, 1.65).
  auto [out, grad] = run([](const torch::Tensor& x) { return fused_attention(x, 1, {}); },
                         two_position_qkv(), torch::ones({2, 1, 1}));
  EXPECT_TENSOR_NEAR(out.flatten(), torch::tensor({7.0f, 7.6f}), 1e-6);
  EXPECT_TENSOR_NEAR(grad.view({2, 3}).select(1, 2), torch::tensor({0.35f, 1.65f}), 1e-6);
  // dq_i = Σ_j P_ij (v_j - out_i) k_j: row 1: 3/4 (8 - 7) ln3; row 2: 9/10 (8 - 7.6) ln3.
  const float ln3 = std::log(3.0f);
  EXPECT_TENSOR_NEAR(grad.view({2, 3}).select(1, 0), torch::tensor({0.75f * ln3, 0.36f * ln3}),
                     1e-6);

  // A causal mask leaves position 1 only itself: out_1 = v_1.
  auto causal = causal_mask(2, torch::TensorOptions());
  auto masked = fused_attention(two_position_qkv(), 1, causal);
  EXPECT_TENSOR_NEAR(masked.flatten(), torch::tensor({4.0f, 7.6f}), 1e-6);
}

struct Case {
  int64_t L, N, heads, head_dim;
  std::string mask;  // none, causal, keys
};

class FusedMatchesReference : public ::testing::TestWithParam<Case> {};

TEST_P(FusedMatchesReference, OutputAndGradient) {
  const auto c = GetParam();
  torch::manual_seed(7);
  auto qkv = torch::randn({c.L, c.N, 3 * c.heads * c.head_dim});
  if (!fused_attention_applies(qkv)) GTEST_SKIP() << "built without a CBLAS";
  torch::Tensor mask;
  if (c.mask == "causal") mask = causal_mask(c.L, torch::TensorOptions());
  if (c.mask == "keys") {
    // Per-key mask [N, 1, 1, L]: sample n hides its last n keys (never all of them).
    mask = torch::zeros({c.N, 1, 1, c.L});
    for (int64_t n = 0; n < c.N; ++n) {
      for (int64_t j = std::max<int64_t>(1, c.L - n); j < c.L; ++j) mask[n][0][0][j] = -kInf;
    }
  }
  auto grad_out = torch::randn({c.L, c.N, c.heads * c.head_dim});
  const auto heads = c.heads;
  auto [out, grad] =
      run([&](const torch::Tensor& x) { return fused_attention(x, heads, mask); }, qkv, grad_out);
  // The truth in fp64 through the reference operators.
  auto [want_out, want_grad] = run(
      [&](const torch::Tensor& x) {
        return attention_reference(x, heads, mask.defined() ? mask.to(torch::kDouble) : mask);
      },
      qkv.to(torch::kDouble), grad_out.to(torch::kDouble));
  EXPECT_TENSOR_NEAR(out.to(torch::kDouble), want_out, 1e-6);
  EXPECT_TENSOR_NEAR(grad.to(torch::kDouble), want_grad, 1e-5);
  // And the fp32 reference path: the two routes round alike.
  auto [ref_out, ref_grad] = run(
      [&](const torch::Tensor& x) { return attention_reference(x, heads, mask); }, qkv, grad_out);
  EXPECT_TENSOR_NEAR(out, ref_out, 1e-6);
  EXPECT_TENSOR_NEAR(grad, ref_grad, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, FusedMatchesReference,
    ::testing::Values(Case{7, 3, 2, 4, "none"},      // small ViT-like block
                      Case{5, 2, 4, 8, "causal"},    // text transformer
                      Case{6, 3, 2, 6, "keys"},      // temporal head; √6 is not a power of two
                      Case{1, 2, 3, 2, "none"},      // one position
                      Case{50, 2, 12, 64, "none"}),  // ViT-B/32 geometry, 2 frames
    [](const ::testing::TestParamInfo<Case>& info) {
      const auto& c = info.param;
      return "L" + std::to_string(c.L) + "N" + std::to_string(c.N) + "H" + std::to_string(c.heads) +
             "d" + std::to_string(c.head_dim) + "_" + c.mask;
    });

TEST(FusedAttention, TwoBlasThreadsGiveTheOneThreadResult) {
  torch::manual_seed(9);
  // 3 samples x 12 heads: 36 heads, split unevenly into blocks of 8 on each thread.
  auto qkv = torch::randn({50, 3, 3 * 12 * 8});
  if (!fused_attention_applies(qkv)) GTEST_SKIP() << "built without a CBLAS";
  auto grad_out = torch::randn({50, 3, 12 * 8});
  auto mask = causal_mask(50, torch::TensorOptions());
  auto f = [&](const torch::Tensor& x) { return fused_attention(x, 12, mask); };
  auto [one_out, one_grad] = run(f, qkv, grad_out);
  const bool owned = blas_owns_threads(2);
  auto [two_out, two_grad] = run(f, qkv, grad_out);
  blas_owns_threads(1);
  if (!owned) GTEST_SKIP() << "OpenBLAS does not run this LibTorch's matmuls: one thread only";
  EXPECT_TENSOR_NEAR(two_out, one_out, 1e-6);
  EXPECT_TENSOR_NEAR(two_grad, one_grad, 1e-6);
}

TEST(FusedAttention, PackedAttentionTakesTheFusedPathOnlyWhereItApplies) {
  auto qkv = torch::randn({4, 2, 12}, torch::requires_grad());
  if (!fused_attention_applies(qkv)) GTEST_SKIP() << "built without a CBLAS";
  EXPECT_NE(grad_fn_name(packed_attention(qkv, 2, {})).find("FusedAttention"), std::string::npos);
  // fp64, a mask that takes a gradient, a strided qkv: the reference operators.
  auto dbl = torch::randn({4, 2, 12}, torch::dtype(torch::kDouble).requires_grad(true));
  EXPECT_EQ(grad_fn_name(packed_attention(dbl, 2, {})).find("FusedAttention"), std::string::npos);
  auto learnt_mask = torch::zeros({4, 4}, torch::requires_grad());
  EXPECT_EQ(grad_fn_name(packed_attention(qkv, 2, learnt_mask)).find("FusedAttention"),
            std::string::npos);
  auto strided = torch::randn({2, 4, 12}).transpose(0, 1);
  EXPECT_FALSE(fused_attention_applies(strided));
  EXPECT_TENSOR_NEAR(packed_attention(strided, 2, {}),
                     attention_reference(strided.contiguous(), 2, {}), 1e-6);
  EXPECT_THROW(fused_attention(strided, 2, {}), Error);
}

TEST(FusedAttention, NoGradGivesTheSameOutput) {
  torch::manual_seed(3);
  auto qkv = torch::randn({9, 2, 24});
  if (!fused_attention_applies(qkv)) GTEST_SKIP() << "built without a CBLAS";
  auto with_grad = fused_attention(qkv.requires_grad_(true), 2, {}).detach();
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(fused_attention(qkv, 2, {}), with_grad));
}

TEST(FusedAttention, BadShapeIsOneClearError) {
  try {
    packed_attention(torch::randn({4, 2, 10}), 3, {});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("divisible by 3 heads, got 4x2x10"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace mva
