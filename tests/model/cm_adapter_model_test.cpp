// The Cross-Modal Adapter inside a RetrievalModel: the authors' names, what trains, checkpoints
// and training. The adapter maths is tested in tests/adapters/cm_adapter_test.cpp.
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include "mvadapter/clip/clip_loader.h"
#include "mvadapter/model/adapter_checkpoint.h"
#include "mvadapter/model/retrieval_model.h"
#include "test_support.h"

namespace mva {
namespace {

RetrievalModelConfig cm_adapter_config(int64_t r = 8, int64_t share_dim = 16) {
  RetrievalModelConfig cfg;
  cfg.adapters = AdapterConfig::mv_adapter(/*frames=*/4, /*words=*/8, /*layers=*/2);
  cfg.adapters.video.type = cfg.adapters.text.type = AdapterType::kCmAdapter;
  cfg.adapters.video.mid_dim = cfg.adapters.text.mid_dim = r;
  cfg.adapters.cm_share_dim = share_dim;
  cfg.adapters.tying.mode = TyingMode::kNone;
  cfg.adapters.tying.layers.clear();
  cfg.train_clip_biases = false;
  return cfg;
}

TEST(CmAdapterModel, TensorsCarryTheAuthorsCheckpointNamesAndAloneTrain) {
  torch::manual_seed(0);
  auto fx = test::load_fixture("mv_adapter_tiny");  // width 128 in both towers, 2 blocks each
  RetrievalModel model(load_clip(fx.dir / "clip.safetensors"), cm_adapter_config());
  std::set<std::string> trained;
  for (const auto& p : model->named_parameters()) {
    if (p.value().requires_grad()) trained.insert(p.key());
  }
  EXPECT_EQ(trained,
            (std::set<std::string>{
                "clip.text_adapter_down_bias", "clip.text_adapter_down_weight",
                "clip.text_adapter_up_unique_bias", "clip.text_adapter_up_unique_weight",
                "clip.visual_adapter_down_bias", "clip.visual_adapter_down_weight",
                "clip.visual_adapter_up_unique_bias", "clip.visual_adapter_up_unique_weight",
                "clip.vt_adapter_up_share_bias", "clip.vt_adapter_up_share_weight"}));
  // meta.json's formula: 2L[r(Cv+1) + (Cv-ds)(r+1) + r(Ct+1) + (Ct-ds)(r+1) + ds(r+1)].
  const int64_t L = 2, r = 8, ds = 16, C = 128;
  const auto report = parameter_report(*model);
  EXPECT_EQ(report.trainable, 2 * L * (2 * r * (C + 1) + 2 * (C - ds) * (r + 1) + ds * (r + 1)));
  EXPECT_EQ(report.adapter_params, report.trainable);
  EXPECT_EQ(param_group_of("clip.vt_adapter_up_share_weight"), ParamGroup::kAdapterDecay);
  EXPECT_EQ(param_group_of("clip.vt_adapter_up_share_bias"), ParamGroup::kAdapterNoDecay);
}

TEST(CmAdapterModel, CheckpointRoundTripGivesTheSameEmbeddings) {
  torch::manual_seed(0);
  auto fx = test::load_fixture("mv_adapter_tiny");
  RetrievalModel a(load_clip(fx.dir / "clip.safetensors"), cm_adapter_config());
  auto path = test::temp_dir("cm_ckpt") / "a.safetensors";
  save_adapter_weights(*a, path);
  torch::manual_seed(1);
  RetrievalModel b(load_clip(fx.dir / "clip.safetensors"), cm_adapter_config());
  load_adapter_weights(*b, path);
  torch::NoGradGuard no_grad;
  EXPECT_TENSOR_NEAR(b->embed_texts(fx.io.at("in.text")), a->embed_texts(fx.io.at("in.text")),
                     1e-6);
  EXPECT_TENSOR_NEAR(b->embed_videos(fx.io.at("in.video"), fx.io.at("in.v_mask")),
                     a->embed_videos(fx.io.at("in.video"), fx.io.at("in.v_mask")), 1e-6);
}

TEST(CmAdapterModel, AFewStepsOnTheTinyFixtureModelLowerTheLoss) {
  torch::manual_seed(0);
  auto fx = test::load_fixture("mv_adapter_tiny");
  RetrievalModel model(load_clip(fx.dir / "clip.safetensors"), cm_adapter_config());
  std::vector<torch::Tensor> params;
  for (const auto& p : model->parameters()) {
    if (p.requires_grad()) params.push_back(p);
  }
  torch::optim::Adam opt(params, torch::optim::AdamOptions(1e-3));
  const auto& video = fx.io.at("in.video");
  const auto& mask = fx.io.at("in.v_mask");
  const auto& text = fx.io.at("in.text");
  std::vector<double> losses;
  for (int step = 0; step < 8; ++step) {
    opt.zero_grad();
    auto loss =
        contrastive_loss(model->logits(model->embed_texts(text), model->embed_videos(video, mask)));
    loss.backward();
    opt.step();
    losses.push_back(loss.item<double>());
  }
  EXPECT_LT(losses.back(), losses.front() - 1e-3) << fmt::format("{}", fmt::join(losses, ", "));
}

}  // namespace
}  // namespace mva
