#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>
#include <nlohmann/json.hpp>
#if MVA_WITH_VIDEO
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>
#endif

#include "mvadapter/core/error.h"
#include "mvadapter/data/frame_sampler.h"
#include "mvadapter/data/video_decoder.h"
#include "mvadapter/data/video_loader.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace mva {
namespace {

nlohmann::json video_cases() {
  std::ifstream in(test::fixture_path("video/videos.json"));
  return nlohmann::json::parse(in);
}

VideoEntry entry(const fs::path& path) {
  VideoEntry v;
  v.id = path.stem().string();
  v.path = path;
  return v;
}

FrameSelector official(int64_t frames) {
  return [frames](int64_t n) { return sample_frames(n, frames, FrameSampling::kOfficial); };
}

void copy_prefix(const fs::path& from, const fs::path& to, double fraction) {
  std::ifstream in(from, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream out(to, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() * fraction));
}

TEST(VideoDecoder, MatchesReferenceCountsAndIndicesOnRealClips) {
  MVA_REQUIRE_VIDEO();
  const auto cases = video_cases();
  const int64_t frames = cases["frames"];
  ASSERT_EQ(cases["cases"].size(), 8u);
  for (const auto& c : cases["cases"]) {
    SCOPED_TRACE(c["file"].get<std::string>());
    const auto got = read_video(entry(test::fixture_path("video") / c["file"].get<std::string>()),
                                official(frames));
    EXPECT_EQ(got.decoded_frames, c["decoded_frames"].get<int64_t>());
    EXPECT_NEAR(got.fps, c["fps"].get<double>(), 1e-9);
    EXPECT_EQ(got.sample_index, c["one_fps_frame_index"].get<std::vector<int64_t>>());
    EXPECT_EQ(got.positions, c["picked"].get<std::vector<int64_t>>());
    ASSERT_EQ(got.frames.size(), got.positions.size());
    EXPECT_EQ(got.frames[0].sizes(), (std::vector<int64_t>{240, 320, 3}));
  }
}

TEST(VideoDecoder, TrustingTheFrameCountGivesTheSameFrames) {
  MVA_REQUIRE_VIDEO();
  const auto path = test::fixture_path("video/videos/audio_1__gt_9474.mp4");
  const auto exact = read_video(entry(path), official(12));
  DecodeOptions fast;
  fast.trust_frame_count = true;
  const auto quick = read_video(entry(path), official(12), fast);
  EXPECT_EQ(quick.positions, exact.positions);
  ASSERT_EQ(quick.frames.size(), exact.frames.size());
  for (size_t i = 0; i < exact.frames.size(); ++i) {
    EXPECT_TRUE(torch::equal(quick.frames[i], exact.frames[i])) << "frame " << i;
  }
}

TEST(VideoDecoder, TimeWindowTakesOneFrameASecondInsideIt) {
  MVA_REQUIRE_VIDEO();
  auto v = entry(test::fixture_path("video/videos/audio_1__pred_7375.mp4"));  // 25 fps, 275 frames
  v.start_s = 2.0;
  v.end_s = 5.0;
  const auto got = read_video(v);
  EXPECT_EQ(got.sample_index, (std::vector<int64_t>{50, 75, 100, 125}));
  EXPECT_EQ(got.frames.size(), 4u);
  v.start_s = 9.5;  // open end: 9.5 s, 10.5 s; 11.5 s would be frame 287 >= 275
  v.end_s = -1.0;
  EXPECT_EQ(read_video(v).sample_index, (std::vector<int64_t>{237, 262}));
}

TEST(VideoDecoder, SampledIndicesFollowIntOfTimesFps) {
  MVA_REQUIRE_VIDEO();
  // int(s * 29.97): 0, 29, 59, 89
  EXPECT_EQ(sampled_frame_indices(90, 30000.0 / 1001.0, 1.0, -1, -1),
            (std::vector<int64_t>{0, 29, 59, 89}));
  // 2 samples a second at 25 fps: int(k / 2 * 25) = 0, 12, 25, 37
  EXPECT_EQ(sampled_frame_indices(40, 25.0, 2.0, -1, -1), (std::vector<int64_t>{0, 12, 25, 37}));
  EXPECT_TRUE(sampled_frame_indices(0, 25.0, 1.0, -1, -1).empty());
}

// A container claiming 2^40 frames at 30 fps (over a thousand years): refused before a list of
// 36 billion indices is built; a window inside such a video is fine.
TEST(VideoDecoder, ImpossibleFrameCountIsRefusedBeforeAllocating) {
  MVA_REQUIRE_VIDEO();
  EXPECT_ERROR_CONTAINS(sampled_frame_indices(int64_t{1} << 40, 30.0, 1.0, -1, -1),
                        "frame sampling: 1099511627776 frames at 30 fps sampled at 1 per second");
  EXPECT_EQ(sampled_frame_indices(int64_t{1} << 40, 30.0, 1.0, 10.0, 12.0),
            (std::vector<int64_t>{300, 330, 360}));
}

TEST(VideoDecoder, StreamingGivesTheSameFramesAsReading) {
  MVA_REQUIRE_VIDEO();
  const auto v = entry(test::fixture_path("video/faststart_7375_5s.mp4"));
  const auto all = read_video(v);
  std::vector<int64_t> positions, sources;
  std::vector<torch::Tensor> frames;
  const auto info =
      for_each_sampled_frame(v, [&](int64_t k, int64_t src, const torch::Tensor& rgb) {
        positions.push_back(k);
        sources.push_back(src);
        frames.push_back(rgb.clone());
      });
  EXPECT_EQ(info.decoded_frames, 127);
  EXPECT_EQ(info.sample_index, all.sample_index);
  EXPECT_EQ(positions, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(sources, all.sample_index);
  ASSERT_EQ(frames.size(), all.frames.size());
  for (size_t i = 0; i < frames.size(); ++i)
    EXPECT_TRUE(torch::equal(frames[i], all.frames[i])) << i;
}

TEST(VideoDecoder, MissingVideoIsAnErrorNamingIt) {
  EXPECT_ERROR_CONTAINS(read_video(entry("/nonexistent/video42.mp4")),
                        "/nonexistent/video42.mp4: no such video file");
}

TEST(VideoDecoder, GarbageBytesAreAnErrorNamingTheFile) {
  MVA_REQUIRE_VIDEO();
  const auto dir = test::temp_dir("garbage");
  const auto path = dir / "video9.mp4";
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 5000; ++i) out.put(static_cast<char>((i * 37) & 0xff));
  }
  EXPECT_ERROR_CONTAINS(read_video(entry(path)), path.string() + ": cannot open as a video");
  fs::remove_all(dir);
}

#if MVA_WITH_VIDEO
// An mp4v file of `frames` grey 32 px frames at 4 fps (0: a container with no frame at all).
fs::path write_frames(const fs::path& path, int frames) {
  cv::VideoWriter w(path.string(), cv::CAP_FFMPEG, cv::VideoWriter::fourcc('m', 'p', '4', 'v'), 4.0,
                    cv::Size(32, 32));
  EXPECT_TRUE(w.isOpened());
  for (int i = 0; i < frames; ++i) w.write(cv::Mat(32, 32, CV_8UC3, cv::Scalar(90, 120, 150)));
  w.release();
  return path;
}
#endif

TEST(VideoDecoder, ZeroFrameVideoIsAnErrorAndOneFrameVideoIsOneFrame) {
  MVA_REQUIRE_VIDEO();
#if MVA_WITH_VIDEO
  const auto dir = test::temp_dir("frames01");
  const auto empty = write_frames(dir / "empty.mp4", 0);
  try {
    read_video(entry(empty));
    ADD_FAILURE() << "a video without frames was read";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(empty.string() + ": ", 0), 0u) << msg;  // named, whichever check fires
  }
  const auto one = read_video(entry(write_frames(dir / "one.mp4", 1)), official(12));
  EXPECT_EQ(one.decoded_frames, 1);
  ASSERT_EQ(one.frames.size(), 1u);
  EXPECT_EQ(one.frames[0].sizes(), (std::vector<int64_t>{32, 32, 3}));
  // As a clip: the one frame, then zero frames masked out.
  const auto clip = load_video_clip(entry(dir / "one.mp4"), ClipOptions{});
  EXPECT_TRUE(
      torch::equal(clip.mask, torch::tensor({1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, torch::kInt64)));
  EXPECT_EQ(clip.frames[1].count_nonzero().item<int64_t>(), 0);
  fs::remove_all(dir);
#endif
}

// A video in a folder the user may not enter, or a file it may not read: said as such, not as a
// missing or undecodable file. Root reads anything, so the check runs as "nobody" then.
TEST(VideoDecoder, UnreadableVideoIsAnErrorSayingWhy) {
  MVA_REQUIRE_VIDEO();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const auto dir = test::temp_dir("perm");
  fs::create_directories(dir / "locked");
  fs::copy_file(test::fixture_path("video/faststart_7375_5s.mp4"), dir / "locked/clip.mp4");
  fs::copy_file(test::fixture_path("video/faststart_7375_5s.mp4"), dir / "unreadable.mp4");
  fs::permissions(dir / "unreadable.mp4", fs::perms::none);
  fs::permissions(dir / "locked", fs::perms::none);
  fs::permissions(dir, fs::perms::all);  // "nobody" must reach the two cases
  auto as_user = [](const fs::path& path) {
    if (::geteuid() == 0 && ::setuid(65534) != 0) std::_Exit(3);
    try {
      read_video(entry(path));
    } catch (const Error& e) {
      std::fprintf(stderr, "%s\n", e.what());
      std::_Exit(0);
    }
    std::_Exit(1);
  };
  EXPECT_EXIT(as_user(dir / "locked/clip.mp4"), ::testing::ExitedWithCode(0),
              "locked/clip.mp4: cannot access \\(Permission denied\\)");
  EXPECT_EXIT(as_user(dir / "unreadable.mp4"), ::testing::ExitedWithCode(0),
              "unreadable.mp4: cannot read \\(Permission denied\\)");
  fs::permissions(dir / "locked", fs::perms::owner_all);
  fs::remove_all(dir);
}

TEST(VideoDecoder, TruncatedCopiesAreErrorsNamingTheFile) {
  MVA_REQUIRE_VIDEO();
  const auto dir = test::temp_dir("truncated");
  // Index (moov) at the end, as most clips: a cut file cannot even be opened.
  const auto cut = dir / "cut.mp4";
  copy_prefix(test::fixture_path("video/videos/audio_1__pred_7375.mp4"), cut, 0.5);
  EXPECT_ERROR_CONTAINS(read_video(entry(cut)), cut.string() + ": cannot open");
  // Index first ("faststart"): opens, then the frames run out part-way.
  const auto cut_fs = dir / "cut_faststart.mp4";
  copy_prefix(test::fixture_path("video/faststart_7375_5s.mp4"), cut_fs, 0.5);
  EXPECT_ERROR_CONTAINS(read_video(entry(cut_fs)), cut_fs.string() + ": decoding stopped after");
  // The uncut faststart clip itself decodes: 127 frames at 25 fps (the stream copy that made it
  // kept two frames past 5 s).
  const auto whole = read_video(entry(test::fixture_path("video/faststart_7375_5s.mp4")));
  EXPECT_EQ(whole.decoded_frames, 127);
  EXPECT_EQ(whole.sample_index, (std::vector<int64_t>{0, 25, 50, 75, 100, 125}));
  fs::remove_all(dir);
}

#if MVA_WITH_VIDEO  // writes its frames with OpenCV
TEST(VideoDecoder, FrameFolderReadsFilesInNumericOrder) {
  const auto dir = test::temp_dir("folder");
  // Four 2x3 frames whose red channel encodes the frame number; names unpadded on purpose.
  for (int k = 0; k < 11; ++k) {
    cv::Mat bgr(2, 3, CV_8UC3, cv::Scalar(0, 0, 10 * k));
    cv::imwrite((dir / (std::to_string(k) + ".png")).string(), bgr);
  }
  std::ofstream(dir / "notes.txt") << "not a frame";
  VideoEntry v = entry(dir);
  v.frame_folder = true;
  const auto got = read_video(v, official(4));
  EXPECT_EQ(got.decoded_frames, 11);
  EXPECT_EQ(got.num_sampled(), 11);
  EXPECT_EQ(got.positions, (std::vector<int64_t>{0, 2, 5, 8}));  // floor(11 i / 4)
  ASSERT_EQ(got.frames.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(got.frames[i][0][0][0].item<int>(), 10 * got.positions[i]) << "frame " << i;
    EXPECT_EQ(got.frames[i][0][0][2].item<int>(), 0);  // RGB order: blue is 0
  }
  fs::remove_all(dir);
}

#endif  // MVA_WITH_VIDEO

#if !MVA_WITH_VIDEO
TEST(VideoDecoder, ModelOnlyBuildSaysItHasNoVideoSupport) {
  const auto clip = test::fixture_path("video/faststart_7375_5s.mp4");
  EXPECT_ERROR_CONTAINS(read_video(entry(clip)),
                        clip.string() + ": this build has no video support");
}
#endif

TEST(VideoDecoder, FrameFolderErrorsNameThePath) {
  MVA_REQUIRE_VIDEO();
  const auto dir = test::temp_dir("empty_folder");
  VideoEntry v = entry(dir);
  v.frame_folder = true;
  EXPECT_ERROR_CONTAINS(read_video(v), dir.string() + ": the folder holds no");
  std::ofstream(dir / "000001.jpg") << "not a jpeg";
  EXPECT_ERROR_CONTAINS(read_video(v), (dir / "000001.jpg").string() + ": cannot read the image");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mva
