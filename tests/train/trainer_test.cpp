#include "mvadapter/train/trainer.h"

#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mvadapter/clip/clip_model.h"
#include "mvadapter/text/clip_tokenizer.h"
#include "test_support.h"
#include "tiny_model.h"

namespace mva {
namespace {

RetrievalMetrics metrics(double t2v_r1, double t2v_rsum, double v2t_r1, double v2t_rsum) {
  RetrievalMetrics m;
  m.convention = RankConvention::kOfficial;
  m.t2v.r1 = t2v_r1;
  m.t2v.rsum = t2v_rsum;
  m.v2t.r1 = v2t_r1;
  m.v2t.rsum = v2t_rsum;
  return m;
}

nlohmann::json entry(int64_t epoch, double value) {
  return {{"epoch", epoch}, {"value", value}};
}

// Three epochs whose criteria peak at different epochs, as the official runner's log_best reports
// them: T2V R@1 at 2, V2T R@1 at 1 (3 ties it and does not replace it), T2V sum at 3, V2T sum
// at 2, the total at 3 (190 + 200 = 390 > 185 + 201 = 386).
TEST(BestByMetric, EachCriterionKeepsItsOwnBestEpoch) {
  nlohmann::json best;
  update_best_by_metric(best, 1, metrics(40.0, 180.0, 45.0, 190.0));
  update_best_by_metric(best, 2, metrics(42.0, 185.0, 44.0, 201.0));
  update_best_by_metric(best, 3, metrics(41.0, 190.0, 45.0, 200.0));
  EXPECT_EQ(best, (nlohmann::json{{"t2v_r1", entry(2, 42.0)},
                                  {"v2t_r1", entry(1, 45.0)},
                                  {"t2v_sum", entry(3, 190.0)},
                                  {"v2t_sum", entry(2, 201.0)},
                                  {"sum", entry(3, 390.0)}}));
}

// A record restored from a training state continues where it stopped.
TEST(BestByMetric, ContinuesARestoredRecord) {
  nlohmann::json best = {{"t2v_r1", entry(1, 50.0)}};
  update_best_by_metric(best, 2, metrics(49.0, 1.0, 2.0, 3.0));
  EXPECT_EQ(best.at("t2v_r1"), entry(1, 50.0));
  EXPECT_EQ(best.at("v2t_r1"), entry(2, 2.0));
  EXPECT_EQ(best.at("sum"), entry(2, 4.0));
}

// Crash-safety settings that need no training run (the runs: tests/tools/train_crash_test.cpp).
TEST(Trainer, AutoSaveIntervalIsFourSavesPerEpochForEpochsOfAHundredStepsOrMore) {
  EXPECT_EQ(auto_save_interval(0), 0);
  EXPECT_EQ(auto_save_interval(6), 0);
  EXPECT_EQ(auto_save_interval(99), 0);
  EXPECT_EQ(auto_save_interval(100), 25);
  EXPECT_EQ(auto_save_interval(101), 26);    // ceil: never more than four saves per epoch
  EXPECT_EQ(auto_save_interval(1407), 352);  // MSR-VTT 9k at batch 128
}

TEST(Trainer, NonfiniteActionsHaveOneNameEach) {
  EXPECT_EQ(to_string(NonfiniteAction::kStop), "stop");
  EXPECT_EQ(to_string(NonfiniteAction::kSkip), "skip");
}

// ---- a real run on the eight fixture clips: callbacks and the stop token ---------------------

// The 8 real MSR-VTT clips with one caption each: 2 batches of 4 a training epoch.
Manifest clips_manifest() {
  Manifest m;
  m.dataset = "msrvtt";
  m.split = "train";
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(test::fixture_path("video/videos"))) {
    files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    m.captions.push_back(
        {static_cast<int64_t>(m.videos.size()), "a video called " + f.stem().string()});
    VideoEntry entry;
    entry.id = f.stem().string();
    entry.path = f;
    m.videos.push_back(entry);
  }
  return m;
}

struct TinyRun {
  explicit TinyRun(const std::string& tag) {
    LoaderOptions lo;
    lo.batch_size = 4;
    lo.clip.frames = 4;
    lo.clip.transform.size = 32;
    lo.max_words = 8;
    lo.threads = 2;
    auto tok = std::make_shared<const ClipTokenizer>();
    loader = std::make_unique<VideoLoader>(
        clips_manifest(), lo, [tok](const std::string& s) { return tok->encode_padded(s, 8).ids; });
    options.epochs = 2;
    options.log_every = 1;
    options.progress = false;
    options.optimizer.lr = 1e-3;
    options.optimizer.warmup = 0.0;
    options.run_dir = test::temp_dir(tag);
    options.name = tag;
  }
  std::unique_ptr<VideoLoader> loader;
  TrainerOptions options;
};

TEST(Trainer, CallbacksSeeEveryStepAndEpochAndNoReportUnlessAsked) {
  TinyRun run("trainer_callbacks");
  std::vector<TrainStepEvent> steps;
  std::vector<std::pair<int64_t, double>> epochs;
  int results = 0;
  run.options.callbacks.on_step = [&](const TrainStepEvent& e) { steps.push_back(e); };
  run.options.callbacks.on_epoch_end = [&](int64_t epoch, double loss) {
    epochs.emplace_back(epoch, loss);
  };
  run.options.callbacks.on_results = [&](const std::filesystem::path& dir) {
    EXPECT_EQ(dir, run.options.run_dir);
    EXPECT_TRUE(std::filesystem::exists(dir / "results.json")) << "written before the hook";
    ++results;
  };
  Trainer trainer(test::tiny_mv_adapter_model(), *run.loader, nullptr, run.options);
  const auto summary = trainer.run();
  ASSERT_FALSE(summary.interrupted);
  ASSERT_EQ(summary.steps, 4);  // 2 epochs x 2 batches of 4
  ASSERT_EQ(steps.size(), 4u);
  for (size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(steps[i].step, static_cast<int64_t>(i) + 1);
    EXPECT_EQ(steps[i].epoch, static_cast<int64_t>(i) / 2 + 1);
    EXPECT_TRUE(steps[i].applied);
    EXPECT_TRUE(std::isfinite(steps[i].loss));
    EXPECT_GT(steps[i].grad_norm, 0.0);
  }
  // An epoch's mean loss is the mean of its steps' losses (one loss per micro-batch here).
  ASSERT_EQ(epochs.size(), 2u);
  EXPECT_EQ(epochs[0].first, 1);
  EXPECT_NEAR(epochs[0].second, (steps[0].loss + steps[1].loss) / 2, 1e-5);
  EXPECT_NEAR(epochs[1].second, (steps[2].loss + steps[3].loss) / 2, 1e-5);
  EXPECT_EQ(results, 3);  // after each epoch and at the end
  EXPECT_FALSE(std::filesystem::exists(run.options.run_dir / "report.html"));
}

TEST(Trainer, AStopTokenRequestedFromACallbackEndsTheRunAfterThatStepWithItsStateSaved) {
  TinyRun run("trainer_stop_token");
  StopToken stop;
  run.options.stop = stop;
  int64_t last_step = 0;
  run.options.callbacks.on_step = [&](const TrainStepEvent& e) {
    last_step = e.step;
    if (e.step == 1) stop.request();
  };
  Trainer trainer(test::tiny_mv_adapter_model(), *run.loader, nullptr, run.options);
  const auto summary = trainer.run();
  EXPECT_TRUE(summary.interrupted);
  // The request made during step 1's hook is seen at step 2's gradient reduction.
  EXPECT_EQ(summary.steps, 2);
  EXPECT_EQ(last_step, 2);
  EXPECT_TRUE(std::filesystem::exists(Trainer::state_path(run.options.run_dir)));

  // Another token is not affected: a second trainer with its own runs to the end.
  TinyRun other("trainer_stop_token_other");
  EXPECT_TRUE(stop.requested());
  Trainer second(test::tiny_mv_adapter_model(), *other.loader, nullptr, other.options);
  EXPECT_FALSE(second.run().interrupted);
}

}  // namespace
}  // namespace mva
