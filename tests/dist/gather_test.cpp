// The autograd-aware gather behind the global-batch contrastive loss.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mvadapter/dist/gather.h"
#include "mvadapter/dist/process_group.h"
#include "rank_processes.h"
#include "test_support.h"

namespace mva {
namespace {

TEST(GatherRows, OneProcessIsTheIdentityWithAScaledGradient) {
  auto x = torch::randn({3, 4}, torch::kFloat64).requires_grad_();
  auto y = gather_rows(x, nullptr, 0.25);
  EXPECT_TRUE(torch::equal(y, x));
  auto w = torch::randn({3, 4}, torch::kFloat64);
  (y * w).sum().backward();
  EXPECT_TENSOR_NEAR(x.grad(), w * 0.25, 0.0);
  // A tensor used after the scaling point (logit_scale in the W-rank emulation) keeps its full
  // gradient.
  auto a = torch::tensor({2.0}, torch::kFloat64).requires_grad_();
  auto s = torch::tensor({3.0}, torch::kFloat64).requires_grad_();
  (s * gather_rows(a, nullptr, 0.5)).sum().backward();
  EXPECT_DOUBLE_EQ(a.grad().item<double>(), 1.5);  // 3 x 0.5
  EXPECT_DOUBLE_EQ(s.grad().item<double>(), 2.0);  // unscaled
  // Scale 1 without a group is x itself (no autograd node at all).
  EXPECT_TRUE(gather_rows(x, nullptr, 1.0).is_same(x));
}

TEST(GatherRowsWorker, ForwardConcatenatesBackwardSumsThisRanksRows) {
  if (!test::is_dist_worker()) GTEST_SKIP() << "runs inside a rank";
  auto env = dist_env_from_environment();
  ASSERT_TRUE(env.has_value());
  ProcessGroup pg(*env, torch::kCPU);
  const int r = pg.rank(), w = pg.world_size();
  const auto f64 = torch::kFloat64;
  auto x = (torch::arange(6, f64).view({2, 3}) + 10.0 * r).requires_grad_();
  auto y = gather_rows(x, &pg, 0.5);
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{2 * w, 3}));
  for (int k = 0; k < w; ++k) {
    EXPECT_TENSOR_NEAR(y.narrow(0, 2 * k, 2), torch::arange(6, f64).view({2, 3}) + 10.0 * k, 0.0);
  }
  // Each rank's loss weighs the gathered rows differently: dL_r/dy = (r + 1) * coeff.
  auto coeff = torch::arange(2 * w * 3, f64).view({2 * w, 3});
  ((y * coeff).sum() * (r + 1)).backward();
  const double ranks_sum = w * (w + 1) / 2.0;  // sum over ranks of (r + 1)
  EXPECT_TENSOR_NEAR(x.grad(), coeff.narrow(0, 2 * r, 2) * ranks_sum * 0.5, 1e-12);
}

TEST(GatherRows, TwoRanksGradientIsThisRanksSliceOfTheSum) {
  std::string report;
  EXPECT_TRUE(test::run_worker_test(
      2, "GatherRowsWorker.ForwardConcatenatesBackwardSumsThisRanksRows", &report))
      << report;
}

}  // namespace
}  // namespace mva
