#include "mvadapter/train/trainer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

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

}  // namespace
}  // namespace mva
