// `mvadapter frames` and `mvadapter preprocess` run as a user would. Both decode videos: the
// model-only build (MVA_WITH_VIDEO=OFF) compiles the tests below out and checks instead that the
// commands say they need video support.
#include <fstream>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>
#if MVA_WITH_VIDEO
#include <opencv2/imgcodecs.hpp>
#endif

#include "mvadapter/io/safetensors.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace mva {
namespace {

std::string cli() {
  return test::cli_binary().string();
}

#if MVA_WITH_VIDEO
TEST(FramesCli, WritesReferenceCropsMaskIndicesAndASheet) {
  const auto dir = test::temp_dir("frames_cli");
  const auto out = dir / "f.safetensors";
  const auto sheet = dir / "f.png";
  std::string log;
  const int rc = test::run_command(
      fmt::format("{} frames {} --out {} --sheet {}", cli(),
                  test::fixture_path("video/videos/audio_0__gt_7348.mp4").string(), out.string(),
                  sheet.string()),
      &log);
  ASSERT_EQ(rc, 0) << log;
  const auto st = read_safetensors(out);
  const auto& frames = st.tensors.at("frames");
  EXPECT_EQ(frames.sizes(), (std::vector<int64_t>{12, 3, 224, 224}));
  EXPECT_EQ(frames.scalar_type(), torch::kUInt8);
  const auto ref = read_safetensors(test::fixture_path("video/frames_u8.safetensors"))
                       .tensors.at("audio_0__gt_7348.mp4")
                       .permute({0, 3, 1, 2});
  // The default resampler is the reference's, at the reference's 298x224: every pixel equal.
  EXPECT_EQ((frames.to(torch::kInt64) - ref.to(torch::kInt64)).abs().max().item<int64_t>(), 0);
  EXPECT_TRUE(torch::equal(st.tensors.at("mask"), torch::ones({12}, torch::kInt64)));
  // picked positions [0, 2, 5, ...] of the 1-fps frames, at 30 fps
  EXPECT_TRUE(
      torch::equal(st.tensors.at("positions"),
                   torch::tensor({0, 2, 5, 7, 10, 12, 15, 17, 20, 22, 25, 27}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(
      st.tensors.at("indices"),
      torch::tensor({0, 60, 150, 210, 300, 360, 450, 510, 600, 660, 750, 810}, torch::kInt64)));
  EXPECT_EQ(st.metadata.at("decoded_frames"), "900");
  const cv::Mat png = cv::imread(sheet.string());
  ASSERT_FALSE(png.empty());
  EXPECT_EQ(png.cols, 4 + 4 * (224 + 4));  // 4 columns of 224 px tiles with 4 px gaps
  EXPECT_EQ(png.rows, 4 + 3 * (224 + 4));
  fs::remove_all(dir);
}

TEST(FramesCli, PadsShortClipsAndNamesMissingFiles) {
  const auto dir = test::temp_dir("frames_cli_pad");
  const auto out = dir / "f.safetensors";
  std::string log;
  ASSERT_EQ(test::run_command(
                fmt::format("{} frames {} --frames 12 --size 32 --out {}", cli(),
                            test::fixture_path("video/videos/audio_1__pred_7375.mp4").string(),
                            out.string()),
                &log),
            0)
      << log;
  const auto st = read_safetensors(out);
  EXPECT_TRUE(torch::equal(st.tensors.at("mask"),
                           torch::tensor({1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0}, torch::kInt64)));
  EXPECT_EQ(st.tensors.at("indices")[11].item<int64_t>(), -1);
  EXPECT_EQ(st.tensors.at("frames")[11].count_nonzero().item<int64_t>(), 0);

  const int rc = test::run_command(
      fmt::format("{} frames /nonexistent/v.mp4 --out {}", cli(), out.string()), &log);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(log.find("/nonexistent/v.mp4: no such video file"), std::string::npos) << log;
  fs::remove_all(dir);
}

TEST(PreprocessCli, ExtractsFramesResumesAndReportsBadVideos) {
  const auto dir = test::temp_dir("preprocess_cli");
  const auto in = dir / "in";
  fs::create_directories(in / "sub");
  fs::copy_file(test::fixture_path("video/faststart_7375_5s.mp4"), in / "a.mp4");
  fs::copy_file(test::fixture_path("video/faststart_7375_5s.mp4"), in / "sub" / "b.mp4");
  std::ofstream(in / "sub" / "bad.mp4") << "this is not a video";
  const auto out = dir / "out";
  std::string log;
  const std::string cmd = fmt::format("{} preprocess --videos {} --out {} --jobs 2 --size 112",
                                      cli(), in.string(), out.string());
  EXPECT_EQ(test::run_command(cmd, &log), 1) << log;  // one video failed
  EXPECT_NE(log.find("bad.mp4: cannot open as a video"), std::string::npos) << log;
  EXPECT_NE(log.find("3 videos"), std::string::npos) << log;
  EXPECT_NE(log.find("2 extracted, 0 already complete, 1 failed"), std::string::npos) << log;
  // 127 frames at 25 fps: seconds 0..5 -> 6 frames, short side 112 (320x240 -> 149x112)
  for (const auto& folder : {out / "a", out / "sub" / "b"}) {
    ASSERT_TRUE(fs::is_directory(folder)) << folder;
    int n = 0;
    for (const auto& e : fs::directory_iterator(folder)) {
      (void)e;
      ++n;
    }
    EXPECT_EQ(n, 6) << folder;
    const cv::Mat first = cv::imread((folder / "000000.jpg").string());
    EXPECT_EQ(first.rows, 112);
    EXPECT_EQ(first.cols, 149);
  }
  EXPECT_FALSE(fs::exists(out / "sub" / "bad"));
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    EXPECT_EQ(e.path().filename().string().rfind(".tmp-", 0), std::string::npos) << e.path();
  }
  // A rerun skips what is complete and still reports the bad one.
  fs::remove(in / "sub" / "bad.mp4");
  ASSERT_EQ(test::run_command(cmd, &log), 0) << log;
  EXPECT_NE(log.find("0 extracted, 2 already complete, 0 failed"), std::string::npos) << log;
  fs::remove_all(dir);
}

TEST(PreprocessCli, ReencodesToOneFrameASecond) {
  const auto dir = test::temp_dir("preprocess_reencode");
  fs::create_directories(dir / "in");
  fs::copy_file(test::fixture_path("video/faststart_7375_5s.mp4"), dir / "in" / "a.mp4");
  std::string log;
  ASSERT_EQ(
      test::run_command(fmt::format("{} preprocess --videos {} --out {} --mode reencode --size 64",
                                    cli(), (dir / "in").string(), (dir / "out").string()),
                        &log),
      0)
      << log;
  // The re-encoded clip decodes to the 6 sampled frames at 1 fps.
  std::string info;
  ASSERT_EQ(test::run_command(
                fmt::format("{} frames {} --frames 8 --size 64 --out {}", cli(),
                            (dir / "out" / "a.mp4").string(), (dir / "f.safetensors").string()),
                &info),
            0)
      << info;
  const auto st = read_safetensors(dir / "f.safetensors");
  EXPECT_EQ(st.metadata.at("decoded_frames"), "6");
  EXPECT_EQ(st.tensors.at("mask").sum().item<int64_t>(), 6);
  fs::remove_all(dir);
}

#else
TEST(FramesCli, ModelOnlyBuildSaysFramesAndPreprocessNeedVideo) {
  const auto dir = test::temp_dir("frames_cli_novideo");
  const std::string video = test::fixture_path("video/faststart_7375_5s.mp4").string();
  std::string log;
  EXPECT_EQ(test::run_command(fmt::format("{} frames {} --out {}", cli(), video,
                                          (dir / "f.safetensors").string()),
                              &log),
            1)
      << log;
  EXPECT_NE(log.find("error: frames: this build has no video support"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(dir / "f.safetensors"));
  EXPECT_EQ(test::run_command(fmt::format("{} preprocess --videos {} --out {}", cli(), dir.string(),
                                          (dir / "out").string()),
                              &log),
            1)
      << log;
  EXPECT_NE(log.find("error: preprocess: this build has no video support"), std::string::npos)
      << log;
  EXPECT_EQ(test::run_command(cli() + " version", &log), 0) << log;
  EXPECT_NE(log.find("video: no (MVA_WITH_VIDEO=OFF)"), std::string::npos) << log;
  fs::remove_all(dir);
}
#endif  // MVA_WITH_VIDEO

}  // namespace
}  // namespace mva
