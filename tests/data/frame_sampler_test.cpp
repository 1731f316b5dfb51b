#include <gtest/gtest.h>

#include "mvadapter/core/error.h"
#include "mvadapter/data/frame_sampler.h"
#include "test_support.h"

namespace mva {
namespace {

using V = std::vector<int64_t>;

TEST(FrameSampler, OfficialTakesFloorOfINOverF) {
  // floor(i * 30 / 12) = floor(2.5 i)
  EXPECT_EQ(sample_frames(30, 12, FrameSampling::kOfficial),
            (V{0, 2, 5, 7, 10, 12, 15, 17, 20, 22, 25, 27}));
  // floor(i * 16 / 12) = floor(4 i / 3)
  EXPECT_EQ(sample_frames(16, 12, FrameSampling::kOfficial),
            (V{0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14}));
  EXPECT_EQ(sample_frames(7, 3, FrameSampling::kOfficial), (V{0, 2, 4}));
}

TEST(FrameSampler, LinspaceTruncatesAndEndsOnTheLastFrame) {
  // np.linspace(0, 29, 12): step 29/11 = 2.6364 -> 0, 2.64, 5.27, 7.91, 10.5, 13.2, 15.8, ...
  EXPECT_EQ(sample_frames(30, 12, FrameSampling::kLinspace),
            (V{0, 2, 5, 7, 10, 13, 15, 18, 21, 23, 26, 29}));
  // step 19/6 = 3.1667 -> 0, 3.17, 6.33, 9.5, 12.67, 15.83, 19
  EXPECT_EQ(sample_frames(20, 7, FrameSampling::kLinspace), (V{0, 3, 6, 9, 12, 15, 19}));
  // step 1.5 -> 0, 1.5, 3
  EXPECT_EQ(sample_frames(4, 3, FrameSampling::kLinspace), (V{0, 1, 3}));
  EXPECT_EQ(sample_frames(9, 1, FrameSampling::kLinspace), (V{0}));
}

TEST(FrameSampler, HeadAndTail) {
  EXPECT_EQ(sample_frames(10, 4, FrameSampling::kHead), (V{0, 1, 2, 3}));
  EXPECT_EQ(sample_frames(10, 4, FrameSampling::kTail), (V{6, 7, 8, 9}));
  EXPECT_EQ(sample_frames(10, 1, FrameSampling::kTail), (V{9}));
}

TEST(FrameSampler, FewerFramesThanAskedKeepsAllInEveryMode) {
  for (auto mode : {FrameSampling::kOfficial, FrameSampling::kLinspace, FrameSampling::kHead,
                    FrameSampling::kTail}) {
    EXPECT_EQ(sample_frames(11, 12, mode), (V{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
    EXPECT_EQ(sample_frames(3, 3, mode), (V{0, 1, 2}));
    EXPECT_TRUE(sample_frames(0, 12, mode).empty());
  }
}

TEST(FrameSampler, ParsesNamesAndRejectsOthers) {
  EXPECT_EQ(parse_frame_sampling("official"), FrameSampling::kOfficial);
  EXPECT_EQ(parse_frame_sampling("linspace"), FrameSampling::kLinspace);
  EXPECT_EQ(parse_frame_sampling("head"), FrameSampling::kHead);
  EXPECT_EQ(parse_frame_sampling("tail"), FrameSampling::kTail);
  EXPECT_EQ(frame_sampling_name(FrameSampling::kLinspace), "linspace");
  EXPECT_ERROR_CONTAINS(parse_frame_sampling("uniform"), "expected one of official");
  EXPECT_ERROR_CONTAINS(sample_frames(10, 0, FrameSampling::kOfficial), "frame count 0");
}

}  // namespace
}  // namespace mva
