// The official 2-rank training run (fixture dist_steps: official AllGather, DDP's averaging,
// global clip, BertAdam, logit clamp) replayed on 2 real Gloo ranks: each rank encodes its rows,
// gather_rows with the official 1/W scaling (train.emulate_world_size = W), the trainer's rule of
// gradients summed over ranks and divided by W.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mvadapter/dist/gather.h"
#include "mvadapter/dist/process_group.h"
#include "mvadapter/train/reference_replay.h"
#include "rank_processes.h"
#include "test_support.h"

namespace mva {
namespace {

TEST(ReplayWorker, DistStepsOnRealRanksReachTheOfficialWeights) {
  if (!test::is_dist_worker()) GTEST_SKIP() << "runs inside a rank";
  auto env = dist_env_from_environment();
  ASSERT_TRUE(env.has_value());
  ProcessGroup pg(*env, torch::kCPU);
  const int w = pg.world_size(), r = pg.rank();
  ReplayOptions o;
  o.precision = "fp64";
  o.step = [&](RetrievalModelImpl& model, const ReplayBatch& b) {
    const int64_t rows = b.text.size(0) / w;
    auto mine = [&](const torch::Tensor& x) { return x.narrow(0, r * rows, rows); };
    auto t = gather_rows(model.embed_texts(mine(b.text)), &pg, 1.0 / w);
    auto v = gather_rows(model.embed_videos(mine(b.video), mine(b.v_mask)), &pg, 1.0 / w);
    auto loss = contrastive_loss(model.logits(t, v));
    loss.backward();
    torch::NoGradGuard no_grad;
    for (auto& p : model.parameters()) {
      if (!p.requires_grad() || !p.grad().defined()) continue;
      pg.all_reduce_sum(p.mutable_grad(), "gradients");
      p.mutable_grad().div_(w);
    }
    return loss.item<double>();
  };
  const auto report = replay_training_steps(test::fixture_path("mv_adapter_tiny"), "dist_steps", o);
  EXPECT_TRUE(report.ok()) << report.to_string();
  EXPECT_LT(report.worst_weight().rel_error, 1e-5) << report.to_string();
  EXPECT_LT(report.loss.rel_error, 1e-5) << report.to_string();
}

TEST(ReferenceReplay, DistStepsOnTwoRealGlooRanks) {
  std::string report;
  EXPECT_TRUE(test::run_worker_test(2, "ReplayWorker.DistStepsOnRealRanksReachTheOfficialWeights",
                                    &report, {}, std::chrono::seconds(300)))
      << report;
}

}  // namespace
}  // namespace mva
