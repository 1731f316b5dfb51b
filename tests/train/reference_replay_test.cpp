#include "mvadapter/train/reference_replay.h"

#include <cmath>
#include <fstream>

#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "test_support.h"

namespace mva {
namespace {

std::filesystem::path tiny() {
  return test::fixture_path("mv_adapter_tiny");
}

ReplayReport replay(const std::string& fixture, ReplayOptions o = {}) {
  return replay_training_steps(tiny(), fixture, o);
}

// fp32 needs no looser tolerance than fp64 here (unlike the forward check's 5e-5, which judges
// small gradients against their own scale): the replay judges losses, norms and weights, whose
// scale is ~1, and the official run is fp32 itself. Measured worst: loss 1.8e-6, grad norm
// 5.5e-7, final weights 1.7e-6 (fp64: 1.3e-6, 1.5e-6, 2.9e-6), the same with 1, 2 or all threads.
constexpr double kFp32Tolerance = 1e-5;

// ---- the official loop, as the fixtures recorded it -------------------------------------------

TEST(ReferenceReplay, TrainStepsMatchOfficialLossesGradNormsLrsAndFinalWeightsInFp64) {
  auto r = replay("train_steps");
  EXPECT_TRUE(r.ok()) << r.to_string();
  EXPECT_EQ(r.steps, 6);
  EXPECT_EQ(r.ranks, 1);
  ASSERT_EQ(r.lr.size(), 1u);  // train_steps records the adapter lr of each step
  // Every trainable tensor of the fixture is compared, the split q/k/v biases included.
  EXPECT_EQ(r.weights.size(), 128u) << r.to_string();
  for (const auto& c : r.weights) EXPECT_TRUE(std::isfinite(c.rel_error)) << c.name;
}

TEST(ReferenceReplay, DistStepsWithTwoEmulatedRanksMatchInFp64) {
  auto r = replay("dist_steps");
  EXPECT_TRUE(r.ok()) << r.to_string();
  EXPECT_EQ(r.ranks, 2);  // the fixture's world_size
  EXPECT_EQ(r.weights.size(), 128u);
}

TEST(ReferenceReplay, Fp32PathMatchesWithinFloatRounding) {
  for (const char* fixture : {"train_steps", "dist_steps"}) {
    ReplayOptions o;
    o.precision = "fp32";
    o.tolerance = kFp32Tolerance;
    auto r = replay(fixture, o);
    EXPECT_TRUE(r.ok()) << r.to_string();
  }
}

// ---- negative controls: each piece of the loop, left out, is seen -----------------------------

TEST(ReferenceReplay, WithoutTheGlobalClipTheReplayFails) {
  ReplayOptions o;
  o.global_clip = false;  // the gradient norm is ~21: unclipped, every update differs
  auto r = replay("train_steps", o);
  EXPECT_FALSE(r.ok()) << r.to_string();
  EXPECT_GT(r.worst_weight().rel_error, 1e-3) << r.to_string();
}

TEST(ReferenceReplay, FullLrOnTheFirstStepFails) {
  ReplayOptions o;
  o.warmup = false;  // the official first step has lr 0 (warm-up read before the count moves)
  auto r = replay("train_steps", o);
  EXPECT_FALSE(r.ok()) << r.to_string();
  ASSERT_EQ(r.lr.size(), 1u);
  EXPECT_FALSE(r.lr[0].ok);
  EXPECT_FALSE(r.loss.ok) << r.to_string();
}

TEST(ReferenceReplay, WithoutTheLogitClampTheReplayFails) {
  ReplayOptions o;
  o.clamp_logit_scale = false;  // the fixture's 4.6052 is just above ln 100: the clamp moves it
  auto r = replay("train_steps", o);
  EXPECT_FALSE(r.ok()) << r.to_string();
  EXPECT_FALSE(r.loss.ok) << r.to_string();
}

TEST(ReferenceReplay, ForgettingTheDivisionByTheRanksFails) {
  ReplayOptions o;
  o.ranks = 1;  // the global-batch gradient undivided: norm ~1.5, so the global clip fires
  auto r = replay("dist_steps", o);
  EXPECT_FALSE(r.ok()) << r.to_string();
  EXPECT_FALSE(r.grad_norm.ok) << r.to_string();
  EXPECT_GT(r.worst_weight().rel_error, 1e-4) << r.to_string();
}

TEST(ReferenceReplay, PerTensorClipCannotFireAfterTheOfficialGlobalClip) {
  // After clip_grad_norm_(all, 1.0) no tensor's norm exceeds 1, so BertAdam's per-tensor clip at
  // 1.0 multiplies by exactly 1: removing it changes no bit, and these fixtures cannot tell.
  ReplayOptions off;
  off.per_tensor_clip = false;
  auto with = replay("train_steps");
  auto without = replay("train_steps", off);
  EXPECT_TRUE(without.ok()) << without.to_string();
  ASSERT_EQ(with.weights.size(), without.weights.size());
  for (size_t i = 0; i < with.weights.size(); ++i) {
    EXPECT_EQ(with.weights[i].max_abs_error, without.weights[i].max_abs_error)
        << with.weights[i].name;
  }
}

TEST(ReferenceReplay, PerTensorClipDecidesOnceTheGlobalClipIsOff) {
  // The per-tensor switch does reach the optimiser: without the global clip, tensors have norms
  // above 1, and keeping or removing BertAdam's own clip gives other losses (both are wrong).
  ReplayOptions no_global;
  no_global.global_clip = false;
  ReplayOptions neither = no_global;
  neither.per_tensor_clip = false;
  auto a = replay("train_steps", no_global);
  auto b = replay("train_steps", neither);
  EXPECT_FALSE(a.ok());
  EXPECT_FALSE(b.ok());
  // measured: 4.90e-3 and 4.73e-3 absolute on the worst step's loss
  EXPECT_GT(std::abs(a.loss.max_abs_error - b.loss.max_abs_error), 1e-4)
      << a.to_string() << b.to_string();
}

// ---- the step function can be swapped ---------------------------------------------------------

// The official W-rank algorithm run rank after rank in one process: each rank's gather passes
// gradient only into its own rows (the other rows are detached), the gradients of the W backward
// passes add up, then DDP's average divides by W.
ReplayStepFn sequential_ranks_step(int64_t world, int* calls) {
  return [world, calls](RetrievalModelImpl& model, const ReplayBatch& b) {
    ++*calls;
    const int64_t rows = b.text.size(0) / world;
    double loss_value = 0.0;
    for (int64_t r = 0; r < world; ++r) {
      auto local_only = [&](const torch::Tensor& x) {
        std::vector<torch::Tensor> parts;
        for (int64_t q = 0; q < world; ++q) {
          auto slice = x.narrow(0, q * rows, rows);
          parts.push_back(q == r ? slice : slice.detach());
        }
        return torch::cat(parts);
      };
      auto t = local_only(model.embed_texts(b.text));
      auto v = local_only(model.embed_videos(b.video, b.v_mask));
      auto loss = contrastive_loss(model.logits(t, v));
      loss.backward();
      loss_value = loss.item<double>();
    }
    torch::NoGradGuard no_grad;
    for (auto& p : model.parameters()) {
      if (p.grad().defined()) p.mutable_grad().div_(static_cast<double>(world));
    }
    return loss_value;
  };
}

TEST(ReferenceReplay, ASwappedStepFunctionIsUsedAndRanksOneAfterAnotherMatchDistSteps) {
  int calls = 0;
  ReplayOptions o;
  o.step = sequential_ranks_step(2, &calls);
  auto r = replay("dist_steps", o);
  EXPECT_EQ(calls, 6);
  EXPECT_TRUE(r.ok()) << r.to_string();
}

// ---- inputs ------------------------------------------------------------------------------------

TEST(ReferenceReplay, OptimizerOptionsComeFromTheOfficialConfig) {
  std::ifstream in(tiny() / "train_steps.json");
  auto j = nlohmann::json::parse(in);
  auto o = official_optimizer_options(j["official_optimizer_cfg"], "train_steps.json");
  EXPECT_EQ(o.kind, OptimizerKind::kBertAdam);
  EXPECT_DOUBLE_EQ(o.lr, 1e-3);
  EXPECT_DOUBLE_EQ(o.clip_lr, 2e-5);
  EXPECT_DOUBLE_EQ(o.weight_decay, 0.2);
  EXPECT_TRUE(o.decay_clip_biases);  // clip_no_decay has weight decay 0.2 officially
  EXPECT_DOUBLE_EQ(o.warmup, 0.1);
  EXPECT_DOUBLE_EQ(o.max_grad_norm, 1.0);

  auto bad = j["official_optimizer_cfg"];
  bad["adapter_no_decay"]["lr"] = 5e-4;
  EXPECT_ERROR_CONTAINS(official_optimizer_options(bad, "x.json"),
                        "x.json: official_optimizer_cfg.adapter_no_decay.lr must equal");
  bad = j["official_optimizer_cfg"];
  bad.erase("clip_decay");
  EXPECT_ERROR_CONTAINS(official_optimizer_options(bad, "x.json"),
                        "x.json: missing field 'official_optimizer_cfg.clip_decay'");
}

TEST(ReferenceReplay, FindsTheTrainingFixturesOfAFolder) {
  EXPECT_EQ(training_fixtures_in(tiny()), (std::vector<std::string>{"train_steps", "dist_steps"}));
  EXPECT_TRUE(training_fixtures_in(test::temp_dir("replay_none")).empty());
}

TEST(ReferenceReplay, MissingFixtureIsNamed) {
  EXPECT_ERROR_CONTAINS(replay("no_such_steps"), "no_such_steps.json: cannot open");
  EXPECT_ERROR_CONTAINS(emulated_ranks_step(0), "0 ranks, expected >= 1");
  ReplayOptions o;
  o.ranks = -1;
  EXPECT_ERROR_CONTAINS(replay("train_steps", o), "ranks: -1, expected >= 0");
}

}  // namespace
}  // namespace mva
