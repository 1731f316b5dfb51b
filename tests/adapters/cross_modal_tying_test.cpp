#include "mvadapter/adapters/cross_modal_tying.h"

#include <cmath>

#include <torch/torch.h>

#include "mvadapter/adapters/text_adapter.h"
#include "mvadapter/adapters/video_adapter.h"
#include "mvadapter/core/error.h"
#include "test_support.h"

namespace mva {
namespace {

TEST(Kronecker, WeightIsTheSumOfKroneckerProducts) {
  torch::manual_seed(0);
  auto a = torch::randn({3, 3, 3}, torch::kFloat64);
  auto b = torch::randn({3, 2, 5}, torch::kFloat64);
  auto want = torch::zeros({6, 15}, torch::kFloat64);
  for (int i = 0; i < 3; ++i) want += torch::kron(a[i], b[i]);
  EXPECT_TENSOR_NEAR(kronecker_sum(a, b), want, 1e-12);
}

TEST(Kronecker, HandComputedTwoByTwo) {
  // k = 2: A_0 = [[1,0],[0,0]], A_1 = [[0,0],[0,2]], B_0 = [[1,2]], B_1 = [[3,4]] ->
  // A_0 (x) B_0 = [[1,2,0,0],[0,0,0,0]], A_1 (x) B_1 = [[0,0,0,0],[0,0,6,8]].
  auto a = torch::tensor({{{1.0, 0.0}, {0.0, 0.0}}, {{0.0, 0.0}, {0.0, 2.0}}});
  auto b = torch::tensor({{{1.0, 2.0}}, {{3.0, 4.0}}});
  auto want = torch::tensor({{1.0, 2.0, 0.0, 0.0}, {0.0, 0.0, 6.0, 8.0}});
  EXPECT_TENSOR_NEAR(kronecker_sum(a, b), want, 0.0);
}

TyingConfig kron_config(int64_t k) {
  TyingConfig t;
  t.mode = TyingMode::kKronecker;
  t.kron_k = k;
  t.layers = {0};
  return t;
}

TEST(Kronecker, AdaptersGenerateDownWeightsOfTheRightShapeAndNoStoredWeight) {
  auto t = kron_config(4);
  auto shared = make_shared_tying_tensor(t);
  EXPECT_EQ(shared.sizes(), (std::vector<int64_t>{4, 4, 4}));
  BranchAdapterConfig vb;
  vb.mid_dim = 16;
  vb.seq_len = 3;
  VideoAdapter v(64, vb, t, shared);
  BranchAdapterConfig tb = vb;
  tb.seq_len = 5;
  TextAdapter x(32, tb, t, shared);
  EXPECT_FALSE(v->down->weight.defined());
  auto named = v->named_parameters();
  EXPECT_TRUE(named.contains("kron_b"));
  EXPECT_EQ(named["kron_b"].sizes(), (std::vector<int64_t>{4, 4, 16}));
  EXPECT_EQ(x->named_parameters()["kron_b"].sizes(), (std::vector<int64_t>{4, 4, 8}));
}

TEST(Kronecker, GradientReachesTheSharedFactorsFromBothBranches) {
  torch::manual_seed(1);
  auto t = kron_config(2);
  auto shared = make_shared_tying_tensor(t).set_requires_grad(true);
  BranchAdapterConfig cfg;
  cfg.mid_dim = 4;
  cfg.seq_len = 2;
  VideoAdapter v(8, cfg, t, shared);
  TextAdapter x(8, cfg, t, shared);
  {
    torch::NoGradGuard g;
    v->up->weight.normal_();  // otherwise the zero-initialised W_up blocks every gradient
    x->up->weight.normal_();
  }
  auto video_tokens = torch::randn({5, 2 * 2, 8});  // 1 CLS + 4 patches, B=2 videos x F=2 frames
  auto mask = torch::ones({2, 2});
  v->forward(video_tokens, AdapterContext{mask}).sum().backward();
  auto from_video = shared.grad().clone();
  EXPECT_GT(from_video.abs().sum().item<double>(), 0.0);
  shared.mutable_grad().zero_();
  x->forward(torch::randn({2, 3, 8}), AdapterContext{}).sum().backward();
  EXPECT_GT(shared.grad().abs().sum().item<double>(), 0.0);
  EXPECT_FALSE(torch::allclose(shared.grad(), from_video));
}

TEST(Kronecker, InitialisationKeepsThePlainVarianceOfWDown) {
  torch::manual_seed(2);
  auto t = kron_config(4);
  BranchAdapterConfig cfg;
  cfg.mid_dim = 64;
  cfg.seq_len = 4;
  // Averaged over draws of A, Var(W_down) = Var(B) = the untied init's variance.
  double video_var = 0, text_var = 0;
  const int draws = 20;
  for (int i = 0; i < draws; ++i) {
    auto shared = make_shared_tying_tensor(t);
    VideoAdapter v(768, cfg, t, shared);
    TextAdapter x(512, cfg, t, shared);
    video_var +=
        kronecker_sum(shared, v->named_parameters()["kron_b"]).var().item<double>() / draws;
    text_var += kronecker_sum(shared, x->named_parameters()["kron_b"]).var().item<double>() / draws;
  }
  EXPECT_NEAR(video_var / (1.0 / (3.0 * 768)), 1.0, 0.15);  // kaiming_uniform(a=√5): 1/(3d)
  EXPECT_NEAR(text_var / (1.0 / (2.0 * 512)), 1.0, 0.15);   // official text init N(0, (2d)^-1/2)
}

TEST(ScaleTying, DownInScalesInputColumnsDownOutScalesRows) {
  auto w = torch::tensor({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}});
  EXPECT_TENSOR_NEAR(scale_weight(w, torch::tensor({1.0, 0.0, 2.0}), true),
                     torch::tensor({{1.0, 0.0, 6.0}, {4.0, 0.0, 12.0}}), 0.0);
  EXPECT_TENSOR_NEAR(scale_weight(w, torch::tensor({0.5, 2.0}), false),
                     torch::tensor({{0.5, 1.0, 1.5}, {8.0, 10.0, 12.0}}), 0.0);
}

TEST(AdapterConfigValidation, KroneckerFactorMustDivideWidths) {
  auto a = AdapterConfig::mv_adapter(4, 8, 2);
  a.tying.mode = TyingMode::kKronecker;
  a.tying.kron_k = 5;
  EXPECT_ERROR_CONTAINS(a.validate(128, 128, 2, 2), "adapters.tying.kron_k: 5 must divide");
}

}  // namespace
}  // namespace mva
