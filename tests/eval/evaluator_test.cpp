#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mvadapter/clip/clip_model.h"
#include "mvadapter/core/error.h"
#include "mvadapter/eval/evaluator.h"
#include "mvadapter/text/clip_tokenizer.h"
#include "test_support.h"
#include "tiny_model.h"

namespace fs = std::filesystem;

namespace mva {
namespace {

// The 8 real MSR-VTT clips, two captions each.
Manifest clips_manifest() {
  Manifest m;
  m.dataset = "msrvtt";
  m.split = "test";
  int v = 0;
  for (const auto& e : fs::directory_iterator(test::fixture_path("video/videos"))) {
    VideoEntry entry;
    entry.id = e.path().stem().string();
    entry.path = e.path();
    m.videos.push_back(entry);
    m.captions.push_back({v, "a video called " + entry.id});
    m.captions.push_back({v, fmt::format("the clip number {}", v)});
    ++v;
  }
  std::sort(m.videos.begin(), m.videos.end(),
            [](const VideoEntry& a, const VideoEntry& b) { return a.id < b.id; });
  return m;
}

EvaluatorOptions options(int64_t batch) {
  EvaluatorOptions o;
  o.loader.batch_size = batch;
  o.loader.clip.frames = 4;
  o.loader.clip.transform.size = 32;
  o.loader.threads = 2;
  o.text_batch_size = 5;
  o.progress = false;
  return o;
}

TokenizeFn tokenizer() {
  auto tok = std::make_shared<const ClipTokenizer>();
  return [tok](const std::string& s) { return tok->encode_padded(s, 8).ids; };
}

TEST(Evaluator, EmbeddingsEqualTheModelAppliedOneVideoAtATime) {
  auto model = test::tiny_mv_adapter_model();
  auto m = clips_manifest();
  Evaluator ev(m, options(3), tokenizer());
  auto enc = ev.encode(*model);
  ASSERT_EQ(enc.video_emb.size(0), 8);
  ASSERT_EQ(enc.text_emb.size(0), 16);
  EXPECT_TRUE(enc.skipped_videos.empty());

  // By hand: decode with load_video_clip, normalise with CLIP's mean/std, embed one video at a
  // time.
  torch::NoGradGuard ng;
  const auto mean = torch::tensor({0.48145466, 0.4578275, 0.40821073}).view({1, 3, 1, 1});
  const auto stdv = torch::tensor({0.26862954, 0.26130258, 0.27577711}).view({1, 3, 1, 1});
  ClipOptions copt;
  copt.frames = 4;
  copt.transform.size = 32;
  for (int64_t v = 0; v < 8; ++v) {
    auto c = load_video_clip(m.videos[static_cast<size_t>(v)], copt);
    auto x = (c.frames.to(torch::kFloat) / 255.0 - mean) / stdv;
    x = x * c.mask.to(torch::kFloat).view({4, 1, 1, 1});  // padded frames are zero
    auto want = model->embed_videos(x.unsqueeze(0), c.mask.unsqueeze(0));
    EXPECT_EQ(enc.video_index[static_cast<size_t>(v)], v);
    EXPECT_TENSOR_NEAR(enc.video_emb[v].unsqueeze(0), want, 1e-4);
  }
  auto tok = std::make_shared<const ClipTokenizer>();
  for (int64_t c = 0; c < 16; ++c) {
    auto ids = torch::tensor(tok->encode_padded(m.captions[static_cast<size_t>(c)].text, 8).ids);
    EXPECT_TENSOR_NEAR(enc.text_emb[c].unsqueeze(0), model->embed_texts(ids.unsqueeze(0)), 1e-5);
    EXPECT_EQ(enc.caption_video[static_cast<size_t>(c)], c / 2);
  }

  // The metrics are those of the similarity of these embeddings.
  auto result = ev.evaluate(*model);
  auto sim = torch::matmul(enc.text_emb, enc.video_emb.t());
  auto want = compute_retrieval_metrics(sim, enc.caption_video);
  EXPECT_DOUBLE_EQ(result.metrics.t2v.r1, want.t2v.r1);
  EXPECT_DOUBLE_EQ(result.metrics.v2t.r5, want.v2t.r5);
  EXPECT_DOUBLE_EQ(result.metrics.t2v.mnr, want.t2v.mnr);
  EXPECT_EQ(result.metrics.num_captions, 16);
  EXPECT_EQ(result.metrics.num_videos, 8);

  // Every evaluation also gives the official convention's numbers, labelled as such.
  MetricsOptions official;
  official.convention = RankConvention::kOfficial;
  EXPECT_EQ(result.official.to_json(),
            compute_retrieval_metrics(sim, enc.caption_video, official).to_json());
  const auto j = result.labelled("final");
  EXPECT_EQ(j.at("final").at("convention"), "standard");
  EXPECT_EQ(j.at("final_official").at("convention"), "official");
  const auto tables = result.tables();
  EXPECT_NE(tables.find("standard (CLIP4Clip"), std::string::npos) << tables;
  EXPECT_NE(tables.find("official (MV-Adapter get_rank"), std::string::npos) << tables;
}

TEST(Evaluator, BatchSizeDoesNotChangeTheResult) {
  auto model = test::tiny_mv_adapter_model();
  auto a = Evaluator(clips_manifest(), options(1), tokenizer()).encode(*model);
  auto b = Evaluator(clips_manifest(), options(8), tokenizer()).encode(*model);
  EXPECT_TENSOR_NEAR(a.video_emb, b.video_emb, 1e-5);
  EXPECT_TENSOR_NEAR(a.text_emb, b.text_emb, 1e-5);
}

TEST(Evaluator, AnUndecodableVideoIsLeftOutWithItsCaptions) {
  auto model = test::tiny_mv_adapter_model();
  auto m = clips_manifest();
  auto bad = test::temp_dir("evaluator_bad") / "broken.mp4";
  std::ofstream(bad) << "not a video";
  m.videos[2].path = bad;
  Evaluator ev(m, options(3), tokenizer());
  auto enc = ev.encode(*model);
  ASSERT_EQ(enc.skipped_videos, std::vector<int64_t>{2});
  EXPECT_EQ(enc.video_emb.size(0), 7);
  EXPECT_EQ(enc.text_emb.size(0), 14);
  for (size_t c = 0; c < enc.caption_index.size(); ++c) {
    const auto video_row = enc.caption_video[c];
    EXPECT_EQ(m.captions[static_cast<size_t>(enc.caption_index[c])].video,
              enc.video_index[static_cast<size_t>(video_row)]);
  }
  auto r = ev.evaluate(*model);
  EXPECT_EQ(r.skipped_videos, 1);
  EXPECT_EQ(r.metrics.num_videos, 7);
}

TEST(Evaluator, EmptySplitIsAnError) {
  Manifest m;
  m.dataset = "msrvtt";
  m.split = "test";
  EXPECT_ERROR_CONTAINS(Evaluator(m, options(2), tokenizer()), "has no videos");
}

}  // namespace
}  // namespace mva
