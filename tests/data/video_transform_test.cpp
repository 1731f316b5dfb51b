#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mvadapter/core/error.h"
#include "mvadapter/data/frame_sampler.h"
#include "mvadapter/data/video_decoder.h"
#include "mvadapter/data/video_transform.h"
#include "mvadapter/io/safetensors.h"
#include "test_support.h"

namespace mva {
namespace {

// The 12 reference crops of a fixture clip and ours, both uint8 [12, 3, 224, 224].
struct CropPair {
  torch::Tensor ours, reference;
};

CropPair crops_of(const std::string& file, ResizeMethod method) {
  const auto ref = read_safetensors(test::fixture_path("video/frames_u8.safetensors"));
  VideoEntry v;
  v.path = test::fixture_path("video/videos") / file;
  const auto got =
      read_video(v, [](int64_t n) { return sample_frames(n, 12, FrameSampling::kOfficial); });
  TransformOptions opts;
  opts.resize = method;
  std::vector<torch::Tensor> crops;
  for (const auto& f : got.frames) crops.push_back(resize_center_crop(f, opts));
  // The fixture stores [F, H, W, 3] (numpy image layout).
  return {torch::stack(crops), ref.tensors.at(file).permute({0, 3, 1, 2})};
}

double mean_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().mean().item<double>();
}

int64_t max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kInt64) - b.to(torch::kInt64)).abs().max().item<int64_t>();
}

TEST(VideoTransform, ShortSideSizeTruncatesTheLongSideAsTorchvision) {
  // 224 * 320 / 240 = 298.67 -> 298: torchvision's int(), not rounding (the reference crops are
  // made at 298 x 224)
  EXPECT_EQ(short_side_size(240, 320, 224), (std::pair<int64_t, int64_t>{224, 298}));
  EXPECT_EQ(short_side_size(320, 240, 224), (std::pair<int64_t, int64_t>{298, 224}));
  // 224 * 640 / 360 = 398.2 -> 398; 224 * 427 / 240 = 398.53 -> 398, not 399
  EXPECT_EQ(short_side_size(360, 640, 224), (std::pair<int64_t, int64_t>{224, 398}));
  EXPECT_EQ(short_side_size(240, 427, 224), (std::pair<int64_t, int64_t>{224, 398}));
  EXPECT_EQ(short_side_size(100, 100, 224), (std::pair<int64_t, int64_t>{224, 224}));
  EXPECT_ERROR_CONTAINS(short_side_size(0, 10, 224), "cannot resize a 0x10 image");
}

TEST(VideoTransform, PilBicubicReproducesTheReferenceCropsExactly) {
  MVA_REQUIRE_VIDEO();
  for (const std::string file : {"audio_0__gt_7348.mp4", "audio_0__pred_8807.mp4"}) {
    SCOPED_TRACE(file);
    const auto pair = crops_of(file, ResizeMethod::kPilBicubic);
    ASSERT_EQ(pair.ours.sizes(), pair.reference.sizes());
    // Same decoder, same 298x224 size, same resampling arithmetic: every pixel equal. A long
    // side rounded to 299 instead is ~3.5 levels off on average.
    EXPECT_EQ(max_abs_diff(pair.ours, pair.reference), 0)
        << "mean abs diff " << mean_abs_diff(pair.ours, pair.reference);
  }
}

TEST(VideoTransform, OpenCvResamplersStayWithinTwoLevelsOfTheReference) {
  MVA_REQUIRE_VIDEO();
  for (auto method : {ResizeMethod::kOpenCvCubic, ResizeMethod::kOpenCvArea}) {
    const auto pair = crops_of("audio_0__gt_7348.mp4", method);
    const double mad = mean_abs_diff(pair.ours, pair.reference);
    EXPECT_LE(mad, 2.0);
    EXPECT_GT(mad, 0.0);  // they are approximations: a zero would mean the method was ignored
  }
}

TEST(VideoTransform, PerFrameMeansEqualTheReferenceOnAllClips) {
  MVA_REQUIRE_VIDEO();
  std::ifstream in(test::fixture_path("video/videos.json"));
  const auto cases = nlohmann::json::parse(in);
  for (const auto& c : cases["cases"]) {
    SCOPED_TRACE(c["file"].get<std::string>());
    VideoEntry v;
    v.path = test::fixture_path("video") / c["file"].get<std::string>();
    const auto got =
        read_video(v, [](int64_t n) { return sample_frames(n, 12, FrameSampling::kOfficial); });
    const auto want = c["per_frame_mean"].get<std::vector<double>>();
    ASSERT_EQ(got.frames.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      const double mean =
          resize_center_crop(got.frames[i]).to(torch::kFloat64).mean().item<double>();
      // The crops equal the reference's, so their means agree to rounding in the last digits.
      EXPECT_NEAR(mean, want[i], 1e-9) << "frame " << i;
    }
  }
}

TEST(VideoTransform, CropIsTheCentreOfTheFullResize) {
  auto img = torch::randint(0, 256, {240, 320, 3}, torch::kUInt8);
  const auto full = resize_short_side(img, 224);
  ASSERT_EQ(full.sizes(), (std::vector<int64_t>{224, 298, 3}));
  // left = round((298 - 224) / 2) = 37, top = 0
  const auto want = full.slice(1, 37, 37 + 224).permute({2, 0, 1});
  EXPECT_TRUE(torch::equal(resize_center_crop(img), want));
  // 224 x 299 (no resize): left = round(37.5) = 38, ties to even as Python's round
  auto wide = torch::randint(0, 256, {224, 299, 3}, torch::kUInt8);
  EXPECT_TRUE(
      torch::equal(resize_center_crop(wide), wide.slice(1, 38, 38 + 224).permute({2, 0, 1})));
  // Portrait, upscaled: 100x60 -> 373x224 (224 * 100 / 60 = 373.3), top = round(74.5) = 74
  auto tall = torch::randint(0, 256, {100, 60, 3}, torch::kUInt8);
  const auto tall_full = resize_short_side(tall, 224);
  ASSERT_EQ(tall_full.sizes(), (std::vector<int64_t>{373, 224, 3}));
  EXPECT_TRUE(
      torch::equal(resize_center_crop(tall), tall_full.slice(0, 74, 74 + 224).permute({2, 0, 1})));
}

TEST(VideoTransform, ConstantImageStaysConstant) {
  auto img = torch::full({240, 320, 3}, 77, torch::kUInt8);
  img.select(2, 1).fill_(200);
  const auto crop = resize_center_crop(img);
  EXPECT_EQ(crop.sizes(), (std::vector<int64_t>{3, 224, 224}));
  EXPECT_TRUE(torch::all(crop[0] == 77).item<bool>());
  EXPECT_TRUE(torch::all(crop[1] == 200).item<bool>());
}

TEST(VideoTransform, NormalizeUsesClipMeanAndStd) {
  auto px = torch::zeros({1, 3, 1, 2}, torch::kUInt8);
  px.index_put_({0, torch::indexing::Slice(), 0, 1}, 255);
  const auto out = normalize_clip(px);
  ASSERT_EQ(out.scalar_type(), torch::kFloat32);
  const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  const float stdv[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  for (int c = 0; c < 3; ++c) {
    EXPECT_FLOAT_EQ(out[0][c][0][0].item<float>(), (0.0f - mean[c]) / stdv[c]);
    EXPECT_FLOAT_EQ(out[0][c][0][1].item<float>(), (1.0f - mean[c]) / stdv[c]);
  }
  EXPECT_ERROR_CONTAINS(normalize_clip(torch::zeros({2, 4, 4}, torch::kUInt8)), "expected frames");
}

TEST(VideoTransform, RejectsNonRgbInput) {
  EXPECT_ERROR_CONTAINS(resize_center_crop(torch::zeros({4, 4, 1}, torch::kUInt8)),
                        "expected an RGB uint8 image");
  EXPECT_ERROR_CONTAINS(parse_resize_method("bilinear"), "expected one of pil");
}

}  // namespace
}  // namespace mva
