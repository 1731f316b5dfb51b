// LoRA inside a RetrievalModel: installation in both towers, what trains, the parameter report and
// adapter checkpoints. The LoRA maths itself is tested in tests/adapters/lora_test.cpp.
#include <torch/torch.h>

#include "mvadapter/adapters/lora.h"
#include "mvadapter/clip/clip_loader.h"
#include "mvadapter/core/error.h"
#include "mvadapter/model/adapter_checkpoint.h"
#include "mvadapter/model/retrieval_model.h"
#include "test_support.h"

namespace mva {
namespace {

/// LoRA alone: no bottleneck adapters, no tying, CLIP (biases too) frozen.
RetrievalModelConfig lora_only(int64_t rank, std::vector<std::string> targets = {"q", "v"},
                               const std::string& towers = "both") {
  RetrievalModelConfig cfg;
  cfg.adapters = AdapterConfig::mv_adapter(/*frames=*/4, /*words=*/8, /*layers=*/2);
  cfg.adapters.video.enabled = cfg.adapters.text.enabled = false;
  cfg.adapters.tying.mode = TyingMode::kNone;
  cfg.adapters.tying.layers.clear();
  cfg.adapters.lora.rank = rank;
  cfg.adapters.lora.alpha = 16.0;
  cfg.adapters.lora.targets.clear();
  for (const auto& t : targets) {
    cfg.adapters.lora.targets.push_back(parse_enum<AttentionProjection>(t, "targets"));
  }
  cfg.adapters.lora.towers = parse_enum<LoraTowers>(towers, "towers");
  cfg.train_clip_biases = false;
  return cfg;
}

std::shared_ptr<LoraImpl> lora_of(const MultiheadAttention& attn) {
  return std::dynamic_pointer_cast<LoraImpl>(attn->lora());
}

TEST(LoraModel, UntrainedEqualsPlainClip) {
  torch::manual_seed(3);
  auto fx = test::load_fixture("mv_adapter_tiny");
  RetrievalModel model(load_clip(fx.dir / "clip.safetensors"), lora_only(4));
  ASSERT_TRUE(lora_of(model->clip->visual->transformer->block(1)->attn));
  ASSERT_TRUE(lora_of(model->clip->transformer->block(0)->attn));
  torch::NoGradGuard no_grad;
  auto frames = model->encode_frames(fx.io.at("in.video"), fx.io.at("in.v_mask"));
  EXPECT_TENSOR_NEAR(frames.reshape({-1, frames.size(-1)}),
                     fx.io.at("out.backbone_only.image_features"), 1e-6);
  EXPECT_TENSOR_NEAR(model->encode_text(fx.io.at("in.text")),
                     fx.io.at("out.backbone_only.text_features"), 1e-6);
}

TEST(LoraModel, TrainedUpdateChangesOnlyItsTower) {
  torch::manual_seed(3);
  auto fx = test::load_fixture("mv_adapter_tiny");
  RetrievalModel model(load_clip(fx.dir / "clip.safetensors"), lora_only(4, {"q", "v"}, "text"));
  EXPECT_FALSE(model->clip->visual->transformer->block(0)->attn->lora());
  {
    torch::NoGradGuard no_grad;
    for (const auto& p : model->named_parameters()) {
      if (p.key().find(".lora.") != std::string::npos) p.value().normal_();
    }
  }
  torch::NoGradGuard no_grad;
  auto frames = model->encode_frames(fx.io.at("in.video"), fx.io.at("in.v_mask"));
  EXPECT_TENSOR_NEAR(frames.reshape({-1, frames.size(-1)}),
                     fx.io.at("out.backbone_only.image_features"), 1e-6);
  EXPECT_GT(test::relative_error(model->encode_text(fx.io.at("in.text")),
                                 fx.io.at("out.backbone_only.text_features")),
            1e-3);
}

TEST(LoraModel, OnlyLoraTrainsAndGradientsReachIt) {
  torch::manual_seed(3);
  auto fx = test::load_fixture("mv_adapter_tiny");
  RetrievalModel model(load_clip(fx.dir / "clip.safetensors"), lora_only(2));
  int64_t lora_tensors = 0;
  for (const auto& p : model->named_parameters()) {
    const bool lora = p.key().find(".attn.lora.") != std::string::npos;
    EXPECT_EQ(p.value().requires_grad(), lora) << p.key();
    if (lora) ++lora_tensors;
  }
  EXPECT_EQ(lora_tensors, 2 * 2 * 2 * 2);  // towers x blocks x {q, v} x {A, B}

  // B starts at zero, so A gets no gradient at step 0; give B a value first.
  {
    torch::NoGradGuard no_grad;
    for (auto* attn : {&model->clip->visual->transformer->block(0)->attn,
                       &model->clip->transformer->block(1)->attn}) {
      lora_of(*attn)->b(AttentionProjection::kQuery).normal_();
      lora_of(*attn)->b(AttentionProjection::kValue).normal_();
    }
  }
  auto v = model->embed_videos(fx.io.at("in.video"), fx.io.at("in.v_mask"));
  auto t = model->embed_texts(fx.io.at("in.text"));
  contrastive_loss(model->logits(t, v)).backward();
  for (auto* attn : {&model->clip->visual->transformer->block(0)->attn,
                     &model->clip->transformer->block(1)->attn}) {
    auto l = lora_of(*attn);
    for (auto p : {AttentionProjection::kQuery, AttentionProjection::kValue}) {
      ASSERT_TRUE(l->a(p).grad().defined());
      ASSERT_TRUE(l->b(p).grad().defined());
      EXPECT_GT(l->a(p).grad().abs().sum().item<double>(), 0.0);
      EXPECT_GT(l->b(p).grad().abs().sum().item<double>(), 0.0);
    }
  }
  EXPECT_FALSE(model->clip->visual->transformer->block(0)->attn->in_proj_weight.grad().defined());
}

TEST(LoraModel, ParametersAreAdapterGroupsWithDecay) {
  EXPECT_EQ(param_group_of("clip.visual.transformer.resblocks.0.attn.lora.q_a"),
            ParamGroup::kAdapterDecay);
  EXPECT_EQ(param_group_of("clip.transformer.resblocks.11.attn.lora.v_b"),
            ParamGroup::kAdapterDecay);
  // The attention's own weights stay CLIP's.
  EXPECT_EQ(param_group_of("clip.transformer.resblocks.11.attn.in_proj_weight"),
            ParamGroup::kClipDecay);
}

TEST(LoraModel, ParameterCountOnViTB16) {
  // q and v of every block: 2 projections x (A: r x width + B: width x r) = 4 r width per block;
  // vision: 12 blocks of width 768, text: 12 blocks of width 512.
  const int64_t r = 8;
  const int64_t vision = 12 * 2 * (2 * r * 768);  // 294,912
  const int64_t text = 12 * 2 * (2 * r * 512);    // 196,608
  auto report =
      parameter_report(*RetrievalModel(ClipModel(ClipConfig::named("ViT-B/16")), lora_only(r)));
  EXPECT_EQ(report.adapter_params, vision + text);
  EXPECT_EQ(report.adapter_params, 491520);
  EXPECT_EQ(report.trainable, 491520);
  EXPECT_EQ(report.clip_params, 149620737);  // OpenAI ViT-B/16, unchanged by LoRA
  EXPECT_EQ(report.clip_trainable, 0);
  EXPECT_EQ(fmt::format("{:.3f}", report.percent_of_clip()), "0.329");
  ASSERT_EQ(report.modules.size(), 24u);  // one line per block's LoRA
  for (const auto& m : report.modules) {
    const bool visual = m.module.rfind("clip.visual.", 0) == 0;
    EXPECT_EQ(m.trainable, visual ? 2 * 2 * r * 768 : 2 * 2 * r * 512) << m.module;
  }
  EXPECT_EQ(report.modules.front().module, "clip.visual.transformer.resblocks.0.attn.lora.");

  // All four projections of the text tower only, rank 2: 12 x 4 x 2 x 2 x 512.
  RetrievalModel text_only(ClipModel(ClipConfig::named("ViT-B/16")),
                           lora_only(2, {"q", "k", "v", "o"}, "text"));
  EXPECT_EQ(parameter_report(*text_only).trainable, 98304);
}

TEST(LoraModel, AdapterWeightsRoundTrip) {
  auto fx = test::load_fixture("mv_adapter_tiny");
  torch::manual_seed(1);
  RetrievalModel a(load_clip(fx.dir / "clip.safetensors"), lora_only(4));
  {
    torch::NoGradGuard no_grad;
    for (const auto& p : a->named_parameters()) {
      if (p.key().find(".lora.") != std::string::npos) p.value().normal_();
    }
  }
  auto state = trainable_state(*a);
  for (const auto* name : {"clip.visual.transformer.resblocks.0.attn.lora.q_a",
                           "clip.visual.transformer.resblocks.1.attn.lora.v_b",
                           "clip.transformer.resblocks.1.attn.lora.q_b",
                           "clip.transformer.resblocks.0.attn.lora.v_a"}) {
    EXPECT_EQ(state.count(name), 1u) << name;
  }
  auto dir = test::temp_dir("lora_weights");
  save_adapter_weights(*a, dir / "lora.safetensors");

  torch::manual_seed(2);  // a different A, and B = 0
  RetrievalModel b(load_clip(fx.dir / "clip.safetensors"), lora_only(4));
  load_adapter_weights(*b, dir / "lora.safetensors");
  auto loaded = trainable_state(*b);
  ASSERT_EQ(loaded.size(), state.size());
  for (const auto& [name, t] : state) EXPECT_TRUE(torch::equal(t, loaded.at(name))) << name;
  torch::NoGradGuard no_grad;
  EXPECT_TENSOR_NEAR(b->encode_text(fx.io.at("in.text")), a->encode_text(fx.io.at("in.text")),
                     1e-6);
}

TEST(LoraModel, WrongRankInAFileIsAnError) {
  auto fx = test::load_fixture("mv_adapter_tiny");
  RetrievalModel a(load_clip(fx.dir / "clip.safetensors"), lora_only(4));
  auto dir = test::temp_dir("lora_weights");
  save_adapter_weights(*a, dir / "r4.safetensors");
  RetrievalModel b(load_clip(fx.dir / "clip.safetensors"), lora_only(2));
  EXPECT_ERROR_CONTAINS(load_adapter_weights(*b, dir / "r4.safetensors"),
                        "wrong shape: clip.transformer.resblocks.0.attn.lora.q_a");
}

TEST(LoraModel, FileWithoutTheLoraTensorsIsAnError) {
  // Without this check an MV-Adapter or BitFit file would load into a LoRA model and leave B = 0:
  // silently the untrained backbone.
  auto fx = test::load_fixture("mv_adapter_tiny");
  RetrievalModel a(load_clip(fx.dir / "clip.safetensors"), lora_only(4));
  auto t = trainable_state(*a);
  t.erase("clip.visual.transformer.resblocks.1.attn.lora.v_b");
  auto dir = test::temp_dir("lora_weights");
  write_safetensors(dir / "partial.safetensors", t);
  RetrievalModel b(load_clip(fx.dir / "clip.safetensors"), lora_only(4));
  EXPECT_ERROR_CONTAINS(load_adapter_weights(*b, dir / "partial.safetensors"),
                        "missing: clip.visual.transformer.resblocks.1.attn.lora.v_b");
}

}  // namespace
}  // namespace mva
