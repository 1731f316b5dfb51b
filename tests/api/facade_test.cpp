// The facade (api/): Retriever on the tiny fixture CLIP, and train() + evaluate() end to end on
// the fixture clips.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "cli_fixture.h"
#include "mvadapter/data/video_loader.h"
#include "mvadapter/mvadapter.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace mva {
namespace {

RunConfig tiny_config(const std::string& tag, int epochs = 1) {
  auto s = test::make_train_setup(tag, epochs);
  return load_run_config(s.config);
}

torch::Tensor random_clip_frames(int64_t seed, int64_t frames = 4) {
  torch::manual_seed(seed);
  return torch::randint(0, 256, {frames, 3, 32, 32}, torch::kUInt8);
}

TEST(Retriever, PaddedFramesDoNotChangeTheEmbedding) {
  Retriever r(tiny_config("api_padding"));
  auto frames = random_clip_frames(1);
  auto mask = torch::tensor({1, 1, 0, 0}, torch::kInt64);
  auto other = frames.clone();
  other.narrow(0, 2, 2).copy_(random_clip_frames(2).narrow(0, 0, 2));  // different padding
  auto a = r.embed_frames(frames, mask);
  auto b = r.embed_frames(other, mask);
  ASSERT_EQ(a.sizes(), (std::vector<int64_t>{1, r.dim()}));
  EXPECT_TENSOR_NEAR(a, b, 1e-6);
  // The real frames do count: all four real gives another embedding.
  auto all = r.embed_frames(frames);
  EXPECT_GT((all - a).abs().max().item<float>(), 1e-4);
  EXPECT_NEAR(a.norm().item<double>(), 1.0, 1e-5);
}

TEST(Retriever, RanksEachVideoFirstForItsOwnEmbedding) {
  Retriever r(tiny_config("api_rank"));
  std::vector<torch::Tensor> clips;
  for (int64_t i = 0; i < 5; ++i) clips.push_back(random_clip_frames(10 + i));
  EmbeddingIndex index;
  index.kind = "videos";
  index.emb = r.embed_frames(torch::stack(clips));
  for (int i = 0; i < 5; ++i) index.ids.push_back("v" + std::to_string(i));
  const auto hits = r.rank(index.emb, index, 2);
  ASSERT_EQ(hits.size(), 10u);
  for (const auto& h : hits) {
    if (h.rank == 1) {
      EXPECT_EQ(h.row, h.query);
      EXPECT_NEAR(h.score, 1.0, 1e-5);
    } else {
      EXPECT_NE(h.row, h.query);
    }
  }
}

TEST(Retriever, CaptionEmbeddingsAreUnitRowsInOrder) {
  Retriever r(tiny_config("api_captions"));
  auto e = r.embed_captions({"a red cross", "a blue circle", "a red cross"});
  ASSERT_EQ(e.sizes(), (std::vector<int64_t>{3, r.dim()}));
  EXPECT_TENSOR_NEAR(e.norm(2, 1), torch::ones({3}), 1e-5);
  EXPECT_TENSOR_NEAR(e[0], e[2], 1e-6);
  EXPECT_GT((e[0] - e[1]).abs().max().item<float>(), 1e-4);
  auto index = r.index_captions({"a red cross", "a blue circle"});
  EXPECT_EQ(index.ids, (std::vector<std::string>{"caption#0", "caption#1"}));
  EXPECT_EQ(r.rank(e[1], index, 1).at(0).row, 1);
}

TEST(Retriever, LoadsTheCheckpointItIsGiven) {
  auto cfg = tiny_config("api_checkpoint");
  const auto dir = test::temp_dir("api_checkpoint_weights");
  // Adapters moved away from their initial weights, saved as a run would save them.
  auto model = build_model(cfg);
  {
    torch::NoGradGuard no_grad;
    torch::manual_seed(3);
    for (auto& p : model->parameters()) {
      if (p.requires_grad()) p.add_(torch::randn_like(p) * 0.5);
    }
  }
  save_adapter_weights(*model, dir / "adapter.safetensors");
  model->eval();
  Retriever fresh(cfg);
  Retriever trained(cfg, dir / "adapter.safetensors");
  auto frames = random_clip_frames(4);
  VideoBatch batch;
  batch.frames = frames.unsqueeze(0);
  batch.frame_mask = torch::ones({1, 4}, torch::kInt64);
  torch::Tensor want;
  {
    torch::NoGradGuard no_grad;
    want = model->embed_videos(model_frames(batch, torch::kCPU), batch.frame_mask);
  }
  EXPECT_TENSOR_NEAR(trained.embed_frames(frames), want, 1e-5);
  EXPECT_GT((fresh.embed_frames(frames) - want).abs().max().item<float>(), 1e-3);
  EXPECT_ERROR_CONTAINS(Retriever(cfg, dir / "missing.safetensors"), "does not exist");
}

TEST(Retriever, EmbedVideoDecodesAsEvaluationDoes) {
  MVA_REQUIRE_VIDEO();
  auto cfg = tiny_config("api_video");
  Retriever r(cfg);
  const auto file = test::fixture_path("video/videos") / test::fixture_clip_files().at(0);
  VideoEntry entry;
  entry.id = "x";
  entry.path = file;
  auto decoded = load_video_clip(entry, eval_loader_options(cfg).clip);
  auto got = r.embed_video(file);
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{r.dim()}));
  EXPECT_TENSOR_NEAR(got, r.embed_frames(decoded.frames, decoded.mask)[0], 1e-5);
  auto index = r.index_videos({file});
  EXPECT_EQ(index.ids.at(0), file.stem().string());
}

TEST(Facade, TrainThenEvaluateTheLastCheckpointReproducesTheFinalMetrics) {
  MVA_REQUIRE_VIDEO();
  auto cfg = tiny_config("api_train", 2);
  const auto run_dir = fs::path(cfg.train.output_dir);
  TrainCallbacks callbacks;
  int64_t steps = 0;
  std::vector<int64_t> epochs_ended;
  callbacks.on_step = [&](const TrainStepEvent& e) { steps = e.step; };
  callbacks.on_epoch_end = [&](int64_t epoch, double) { epochs_ended.push_back(epoch); };
  const TrainSummary summary = train(cfg, {}, callbacks);
  ASSERT_EQ(summary.epochs_done, 2);
  EXPECT_EQ(steps, summary.steps);
  EXPECT_EQ(epochs_ended, (std::vector<int64_t>{1, 2}));
  ASSERT_EQ(summary.epoch_loss.size(), 2u);
  EXPECT_LT(summary.epoch_loss[1], summary.epoch_loss[0]);
  ASSERT_TRUE(summary.final_eval.has_value());
  const auto last = run_dir / "checkpoints/last.safetensors";
  ASSERT_TRUE(fs::exists(last));
  // The same weights evaluated again, through evaluate(): the same ranks.
  const EvalResult again = evaluate(cfg, last);
  EXPECT_EQ(again.metrics.to_json(), summary.final_eval->metrics.to_json());
  // The checkpoint alone rebuilds the model: the same embeddings as with the config.
  Retriever with_config(cfg, last);
  Retriever alone = Retriever::from_checkpoint(last);
  EXPECT_EQ(alone.config().name, cfg.name);
  const std::vector<std::string> captions = {"video number 3", "a clip"};
  EXPECT_TENSOR_NEAR(alone.embed_captions(captions), with_config.embed_captions(captions), 1e-6);
  // A second train() into the same folder would overwrite a run: refused.
  EXPECT_ERROR_CONTAINS(train(cfg), "a run already exists");
}

TEST(Facade, StopTokenEndsTrainResumably) {
  MVA_REQUIRE_VIDEO();
  auto cfg = tiny_config("api_stop", 2);
  StopToken stop;
  TrainCallbacks callbacks;
  callbacks.on_step = [&](const TrainStepEvent& e) {
    if (e.step == 2) stop.request();
  };
  const TrainSummary summary = train(cfg, {}, callbacks, stop);
  EXPECT_TRUE(summary.interrupted);
  EXPECT_EQ(summary.epochs_done, 0);
  EXPECT_TRUE(fs::exists(summary.state_path));
}

TEST(Retriever, FromCheckpointNeedsARecordedConfig) {
  auto cfg = tiny_config("api_no_config");
  const auto dir = test::temp_dir("api_no_config_weights");
  save_adapter_weights(*build_model(cfg), dir / "bare.safetensors");  // no metadata
  EXPECT_ERROR_CONTAINS(Retriever::from_checkpoint(dir / "bare.safetensors"),
                        "records no run config");
}

}  // namespace
}  // namespace mva
