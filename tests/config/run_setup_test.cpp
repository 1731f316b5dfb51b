#include "mvadapter/config/run_setup.h"

#include <torch/torch.h>

#include "mvadapter/config/run_config.h"
#include "test_support.h"

namespace mva {
namespace {

bool same_weights(torch::nn::Module& a, torch::nn::Module& b) {
  auto pb = b.named_parameters();
  for (const auto& p : a.named_parameters()) {
    if (!torch::equal(p.value(), pb[p.key()])) return false;
  }
  return true;
}

constexpr const char* kFromScratch =
    "model: {clip: '', arch: Tiny-32, use_adapters: false, trainable: full}\n"
    "data: {size: 32, words: 16}\n";

TEST(RunSetup, RandomBackboneDependsOnTheSeedOnly) {
  const auto cfg = parse_run_config(kFromScratch, "seeded.yaml", {"train.seed=7"});
  torch::manual_seed(1);
  auto a = build_model(cfg);
  // Whatever drew from the global generator before must not change the weights.
  torch::manual_seed(2);
  (void)torch::rand({1000});
  auto b = build_model(cfg);
  EXPECT_TRUE(same_weights(*a, *b));

  auto other = parse_run_config(kFromScratch, "seeded.yaml", {"train.seed=8"});
  auto c = build_model(other);
  EXPECT_FALSE(same_weights(*a, *c));
}

TEST(RunSetup, BertAdamKeepsTheGlobalClipAndItsPerTensorClip) {
  // The official runner clips the global norm to 1.0 and BertAdam clips each tensor again
  // (replayed against tests/fixtures/mv_adapter_tiny/train_steps); neither may switch the other
  // off.
  const auto cfg = parse_run_config(
      kFromScratch, "clips.yaml",
      {"train.optimizer=bert_adam", "train.grad_clip=0.5", "train.max_grad_norm=2"});
  const auto o = trainer_options(cfg, "runs/clips");
  EXPECT_EQ(o.optimizer.kind, OptimizerKind::kBertAdam);
  EXPECT_DOUBLE_EQ(o.grad_clip, 0.5);
  EXPECT_DOUBLE_EQ(o.optimizer.max_grad_norm, 2.0);

  const auto adamw = trainer_options(parse_run_config(kFromScratch, "clips.yaml", {}), "runs/x");
  EXPECT_DOUBLE_EQ(adamw.grad_clip, 1.0);
}

}  // namespace
}  // namespace mva
