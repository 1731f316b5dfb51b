#include <chrono>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "mvadapter/data/video_loader.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace mva {
namespace {

const fs::path kShort = "video/faststart_7375_5s.mp4";           // 127 frames: 6 one-fps frames
const fs::path kEleven = "video/videos/audio_1__pred_7375.mp4";  // 275 frames: 11 one-fps frames

VideoEntry video(const std::string& id, const fs::path& path) {
  VideoEntry v;
  v.id = id;
  v.path = path;
  return v;
}

// `n` videos alternating between two real clips, two captions each ("caption <index>").
Manifest small_manifest(int n) {
  Manifest m;
  m.dataset = "test";
  m.split = "train";
  for (int v = 0; v < n; ++v) {
    m.videos.push_back(
        video(fmt::format("video{}", v), test::fixture_path(v % 3 == 2 ? kEleven : kShort)));
    for (int k = 0; k < 2; ++k) m.captions.push_back({v, fmt::format("caption {}", 2 * v + k)});
  }
  return m;
}

// A stand-in for the CLIP tokenizer: [49406, 1000 + caption number, 49407].
std::vector<int64_t> fake_tokenize(const std::string& text) {
  return {49406, 1000 + std::stoll(text.substr(text.find(' ') + 1)), 49407};
}

LoaderOptions small_options() {
  LoaderOptions o;
  o.batch_size = 3;
  o.clip.frames = 4;
  o.clip.transform.size = 32;
  o.max_words = 8;
  o.threads = 2;
  o.seed = 7;
  return o;
}

// (caption, video) of every sample of one epoch, as the batches deliver them.
std::vector<std::pair<int64_t, int64_t>> run_epoch(VideoLoader& loader, int64_t epoch) {
  std::vector<std::pair<int64_t, int64_t>> seen;
  loader.start_epoch(epoch);
  while (auto b = loader.next()) {
    for (int64_t i = 0; i < b->video_index.size(0); ++i) {
      seen.emplace_back(b->caption_index[i].item<int64_t>(), b->video_index[i].item<int64_t>());
    }
  }
  return seen;
}

TEST(VideoLoader, ClipWithElevenOneFpsFramesIsPaddedWithOneZeroFrame) {
  MVA_REQUIRE_VIDEO();
  ClipOptions opts;  // 12 frames, 224 px, official sampling
  const auto clip = load_video_clip(video("video7375", test::fixture_path(kEleven)), opts);
  EXPECT_EQ(clip.num_sampled, 11);
  EXPECT_EQ(clip.frames.sizes(), (std::vector<int64_t>{12, 3, 224, 224}));
  EXPECT_TRUE(
      torch::equal(clip.mask, torch::tensor({1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0}, torch::kInt64)));
  EXPECT_EQ(clip.positions, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(clip.source_index,
            (std::vector<int64_t>{0, 25, 50, 75, 100, 125, 150, 175, 200, 225, 250}));
  EXPECT_EQ(clip.frames[11].count_nonzero().item<int64_t>(), 0);
  for (int64_t f = 0; f < 11; ++f)
    EXPECT_GT(clip.frames[f].count_nonzero().item<int64_t>(), 0) << f;
}

TEST(VideoLoader, SameSeedGivesTheSameOrderWhateverTheThreadCount) {
  MVA_REQUIRE_VIDEO();
  auto o = small_options();
  VideoLoader one(small_manifest(6), o, fake_tokenize);
  o.threads = 3;
  VideoLoader three(small_manifest(6), o, fake_tokenize);
  const auto a = run_epoch(one, 0);
  const auto b = run_epoch(three, 0);
  EXPECT_EQ(a, b);
  ASSERT_EQ(a.size(), 12u);  // every caption once
  std::vector<int64_t> captions;
  for (const auto& [c, v] : a) {
    EXPECT_EQ(v, c / 2) << "caption " << c << " paired with video " << v;
    captions.push_back(c);
  }
  std::sort(captions.begin(), captions.end());
  for (int64_t c = 0; c < 12; ++c) EXPECT_EQ(captions[static_cast<size_t>(c)], c);
  EXPECT_EQ(one.stats().samples_done, 12);
  EXPECT_EQ(one.stats().batches_done, 4);
  EXPECT_EQ(one.stats().samples_skipped, 0);
}

TEST(VideoLoader, OrderChangesWithTheEpochAndTheSeed) {
  auto o = small_options();
  VideoLoader loader(small_manifest(20), o, fake_tokenize);
  const auto e0 = loader.epoch_order(0);
  const auto e1 = loader.epoch_order(1);
  EXPECT_NE(e0, e1);
  EXPECT_EQ(e0, loader.epoch_order(0));
  o.seed = 8;
  VideoLoader other(small_manifest(20), o, fake_tokenize);
  EXPECT_NE(other.epoch_order(0), e0);
  o.shuffle = false;
  VideoLoader plain(small_manifest(20), o, fake_tokenize);
  for (size_t i = 0; i < 40; ++i) EXPECT_EQ(plain.epoch_order(3)[i].first, static_cast<int64_t>(i));
}

TEST(VideoLoader, BatchesPairFramesTokensAndIndices) {
  MVA_REQUIRE_VIDEO();
  auto o = small_options();
  o.shuffle = false;
  auto m = small_manifest(3);
  VideoLoader loader(m, o, fake_tokenize);
  loader.start_epoch(0);
  auto b = loader.next();
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->frames.sizes(), (std::vector<int64_t>{3, 4, 3, 32, 32}));
  EXPECT_EQ(b->frames.scalar_type(), torch::kUInt8);
  EXPECT_EQ(b->token_ids.sizes(), (std::vector<int64_t>{3, 8}));
  EXPECT_TRUE(torch::equal(b->caption_index, torch::tensor({0, 1, 2}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(b->video_index, torch::tensor({0, 0, 1}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(b->token_ids[2],
                           torch::tensor({49406, 1002, 49407, 0, 0, 0, 0, 0}, torch::kInt64)));
  const auto clip = load_video_clip(m.videos[1], o.clip);
  EXPECT_TRUE(torch::equal(b->frames[2], clip.frames));
  EXPECT_TENSOR_NEAR(model_frames(*b, torch::kCPU)[2], normalize_clip(clip.frames), 0.0);
  EXPECT_TRUE(torch::equal(b->frame_mask[2], clip.mask));
}

TEST(VideoLoader, PaddedFramesAreZeroAfterNormalisation) {
  MVA_REQUIRE_VIDEO();
  auto o = small_options();
  o.mode = LoaderMode::kVideos;
  o.clip.frames = 12;
  Manifest m;
  m.videos.push_back(video("video7375", test::fixture_path(kEleven)));
  VideoLoader loader(m, o);
  loader.start_epoch(0);
  auto b = loader.next();
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->frame_mask[0][11].item<int64_t>(), 0);
  const auto x = model_frames(*b, torch::kCPU);
  EXPECT_EQ(x[0][11].abs().max().item<float>(), 0.0f);
  EXPECT_GT(x[0][10].abs().max().item<float>(), 0.0f);
  EXPECT_EQ(b->token_ids.sizes(), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(b->caption_index[0].item<int64_t>(), -1);
}

TEST(VideoLoader, PrefetchNeverExceedsItsBound) {
  MVA_REQUIRE_VIDEO();
  auto o = small_options();
  o.batch_size = 2;
  o.prefetch = 3;
  o.threads = 2;
  VideoLoader loader(small_manifest(6), o, fake_tokenize);
  loader.start_epoch(0);
  int batches = 0;
  while (auto b = loader.next()) {
    ++batches;
    // A slow consumer: the decoders run ahead until the window is full, and no further.
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  EXPECT_EQ(batches, 6);
  EXPECT_LE(loader.stats().max_in_flight, 3);
  EXPECT_GE(loader.stats().max_in_flight, 1);
}

struct BadFiles {
  fs::path dir, garbage, truncated;
};

BadFiles make_bad_files() {
  BadFiles b;
  b.dir = test::temp_dir("loader_bad");
  b.garbage = b.dir / "video_garbage.mp4";
  {
    std::ofstream out(b.garbage, std::ios::binary);
    for (int i = 0; i < 4096; ++i) out.put(static_cast<char>((i * 131 + 7) & 0xff));
  }
  b.truncated = b.dir / "video_truncated.mp4";
  std::ifstream in(test::fixture_path(kShort), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(b.truncated, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  return b;
}

Manifest manifest_with_bad(const BadFiles& bad) {
  Manifest m;
  m.videos = {video("good0", test::fixture_path(kShort)), video("garbage", bad.garbage),
              video("good2", test::fixture_path(kShort)), video("truncated", bad.truncated),
              video("good4", test::fixture_path(kShort))};
  return m;
}

TEST(VideoLoader, SkipsUndecodableVideosAndCountsThem) {
  MVA_REQUIRE_VIDEO();
  const auto bad = make_bad_files();
  auto o = small_options();
  o.mode = LoaderMode::kVideos;
  o.batch_size = 2;
  VideoLoader loader(manifest_with_bad(bad), o);
  loader.start_epoch(0);
  std::vector<std::vector<int64_t>> batches;
  while (auto b = loader.next()) {
    auto idx = b->video_index;
    batches.emplace_back(idx.data_ptr<int64_t>(), idx.data_ptr<int64_t>() + idx.numel());
  }
  // The batch is refilled from the following samples, so it keeps its size.
  EXPECT_EQ(batches, (std::vector<std::vector<int64_t>>{{0, 2}, {4}}));
  const auto st = loader.stats();
  EXPECT_EQ(st.samples_done, 3);
  EXPECT_EQ(st.samples_skipped, 2);
  EXPECT_EQ(st.failed_videos, (std::vector<int64_t>{1, 3}));
  fs::remove_all(bad.dir);
}

TEST(VideoLoader, FailModeStopsWithAnErrorNamingTheFile) {
  MVA_REQUIRE_VIDEO();
  const auto bad = make_bad_files();
  auto o = small_options();
  o.mode = LoaderMode::kVideos;
  o.batch_size = 2;
  o.on_error = OnError::kFail;
  VideoLoader loader(manifest_with_bad(bad), o);
  loader.start_epoch(0);
  EXPECT_ERROR_CONTAINS(loader.next(), "video garbage (" + bad.garbage.string() + ") failed");
  fs::remove_all(bad.dir);
}

TEST(VideoLoader, MissingVideoIsSkippedOrNamed) {
  MVA_REQUIRE_VIDEO();
  Manifest m;
  m.videos = {video("here", test::fixture_path(kShort)), video("gone", "/nonexistent/gone.mp4")};
  m.captions = {{0, "caption 0"}, {1, "caption 1"}, {1, "caption 2"}};
  auto o = small_options();
  o.shuffle = false;
  VideoLoader skip(m, o, fake_tokenize);
  EXPECT_EQ(run_epoch(skip, 0), (std::vector<std::pair<int64_t, int64_t>>{{0, 0}}));
  EXPECT_EQ(skip.stats().samples_skipped, 2);  // both captions of the missing video
  EXPECT_EQ(skip.stats().failed_videos, (std::vector<int64_t>{1}));
  o.on_error = OnError::kFail;
  VideoLoader fail(m, o, fake_tokenize);
  fail.start_epoch(0);
  EXPECT_ERROR_CONTAINS(fail.next(), "/nonexistent/gone.mp4: no such video file");
}

TEST(VideoLoader, ShardsCoverTheEpochWithEqualLengths) {
  auto o = small_options();
  o.batch_size = 2;
  o.world_size = 3;
  std::vector<std::pair<int64_t, int64_t>> all;
  for (int r = 0; r < 3; ++r) {
    o.rank = r;
    VideoLoader loader(small_manifest(5), o, fake_tokenize);  // 10 captions -> 2 x (3 x 2) slots
    const auto shard = loader.epoch_order(2);
    EXPECT_EQ(shard.size(), 4u) << "rank " << r;
    all.insert(all.end(), shard.begin(), shard.end());
  }
  std::set<int64_t> captions;
  for (const auto& s : all) captions.insert(s.first);
  EXPECT_EQ(captions.size(), 10u);  // 12 slots, every caption present, 2 repeats

  o.mode = LoaderMode::kVideos;
  std::vector<int64_t> videos;
  for (int r = 0; r < 3; ++r) {
    o.rank = r;
    VideoLoader loader(small_manifest(5), o);
    for (const auto& s : loader.epoch_order(0)) videos.push_back(s.second);
  }
  std::sort(videos.begin(), videos.end());
  EXPECT_EQ(videos, (std::vector<int64_t>{0, 1, 2, 3, 4}));  // each video exactly once
  o.rank = 3;
  EXPECT_ERROR_CONTAINS(VideoLoader(small_manifest(5), o), "rank 3 is not in [0, world_size = 3)");
}

TEST(VideoLoader, DistributedStepsTakeTheSameSamplesOnAnyNumberOfRanks) {
  // A global batch of 4: one process with batch 4, or 2 ranks with 2 each, or 4 ranks with 1.
  auto o = small_options();
  o.drop_last = true;
  o.batch_size = 4;
  VideoLoader single(small_manifest(7), o, fake_tokenize);  // 14 captions -> 3 steps of 4
  const auto global = single.epoch_order(1);  // the 2 left over are dropped when batching
  ASSERT_EQ(global.size(), 14u);
  for (int world : {2, 4}) {
    o.world_size = world;
    o.batch_size = 4 / world;
    for (int r = 0; r < world; ++r) {
      o.rank = r;
      VideoLoader loader(small_manifest(7), o, fake_tokenize);
      const auto shard = loader.epoch_order(1);
      ASSERT_EQ(shard.size(), 12u / static_cast<size_t>(world));
      for (size_t i = 0; i < shard.size(); ++i) {
        const size_t step = i / static_cast<size_t>(o.batch_size);
        const size_t row = i % static_cast<size_t>(o.batch_size);
        EXPECT_EQ(shard[i], global[step * 4 + static_cast<size_t>(r * o.batch_size) + row])
            << "world " << world << " rank " << r << " sample " << i;
      }
    }
  }
}

TEST(VideoLoader, VideoCaptionModeDrawsOneOwnCaptionPerVideo) {
  auto o = small_options();
  o.mode = LoaderMode::kVideoCaption;
  VideoLoader loader(small_manifest(8), o, fake_tokenize);
  std::set<int64_t> drawn;
  for (int64_t epoch = 0; epoch < 6; ++epoch) {
    const auto order = loader.epoch_order(epoch);
    ASSERT_EQ(order.size(), 8u);
    std::set<int64_t> videos;
    for (const auto& [c, v] : order) {
      EXPECT_EQ(c / 2, v);
      videos.insert(v);
      drawn.insert(c);
    }
    EXPECT_EQ(videos.size(), 8u);
  }
  EXPECT_GT(drawn.size(), 8u);  // over several epochs both captions of some video come up
}

TEST(VideoLoader, ResumesFromAPosition) {
  MVA_REQUIRE_VIDEO();
  auto o = small_options();
  VideoLoader loader(small_manifest(4), o, fake_tokenize);
  const auto full = run_epoch(loader, 1);
  loader.start_epoch(1, 5);
  EXPECT_EQ(loader.position(), 5);
  std::vector<std::pair<int64_t, int64_t>> rest;
  while (auto b = loader.next()) {
    for (int64_t i = 0; i < b->video_index.size(0); ++i) {
      rest.emplace_back(b->caption_index[i].item<int64_t>(), b->video_index[i].item<int64_t>());
    }
  }
  EXPECT_EQ(rest, (std::vector<std::pair<int64_t, int64_t>>(full.begin() + 5, full.end())));
}

TEST(VideoLoader, OverlongTokenizerOutputStopsEvenWhenSkipping) {
  MVA_REQUIRE_VIDEO();
  auto o = small_options();
  o.max_words = 2;
  VideoLoader loader(small_manifest(2), o, fake_tokenize);
  loader.start_epoch(0);
  EXPECT_ERROR_CONTAINS(loader.next(), "more than max_words = 2");
}

}  // namespace
}  // namespace mva
