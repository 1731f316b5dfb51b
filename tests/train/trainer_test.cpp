// The Trainer's crash-safety settings that need no training run (the runs themselves are in
// tests/tools/train_crash_test.cpp).
#include "mvadapter/train/trainer.h"

#include <gtest/gtest.h>

namespace mva {
namespace {

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
