#include "mvadapter/model/retrieval_model.h"

#include <cmath>

#include <torch/torch.h>

#include "mvadapter/clip/clip_loader.h"
#include "mvadapter/core/error.h"
#include "mvadapter/model/adapter_checkpoint.h"
#include "test_support.h"

namespace mva {
namespace {

AdapterConfig tiny_adapters(TyingMode mode) {
  auto a = AdapterConfig::mv_adapter(/*frames=*/4, /*words=*/8, /*layers=*/2);
  a.video.mid_dim = a.text.mid_dim = 16;
  a.tying.mode = mode;
  a.tying.factor_dim = 8;
  return a;
}

class UntrainedModel : public ::testing::TestWithParam<TyingMode> {};

TEST_P(UntrainedModel, EqualsPlainClip) {
  torch::manual_seed(3);
  auto fx = test::load_fixture("mv_adapter_tiny");
  RetrievalModelConfig cfg;
  cfg.adapters = tiny_adapters(GetParam());
  RetrievalModel model(load_clip(fx.dir / "clip.safetensors"), cfg);
  torch::NoGradGuard no_grad;
  auto video = fx.io.at("in.video");
  auto frames = model->encode_frames(video, fx.io.at("in.v_mask"));
  EXPECT_TENSOR_NEAR(frames.reshape({-1, frames.size(-1)}),
                     fx.io.at("out.backbone_only.image_features"), 1e-6);
  EXPECT_TENSOR_NEAR(model->encode_text(fx.io.at("in.text")),
                     fx.io.at("out.backbone_only.text_features"), 1e-6);
}

INSTANTIATE_TEST_SUITE_P(AllTyingModes, UntrainedModel,
                         ::testing::Values(TyingMode::kNone, TyingMode::kScale,
                                           TyingMode::kKronecker));

TEST(ParameterReport, MsrVttRecipeOnViTB16MatchesThePaper) {
  RetrievalModelConfig cfg;
  cfg.adapters =
      AdapterConfig::mv_adapter(12, 32, 12);  // d'=64, 2 heads, CMT down_in on 10-11, d_m=32
  cfg.train_clip_biases = true;
  RetrievalModel model(ClipModel(ClipConfig::named("ViT-B/16")), cfg);
  auto r = parameter_report(*model);
  EXPECT_EQ(r.adapter_params, 3401728);  // paper-notes §1.7
  EXPECT_EQ(r.clip_params, 149620737);   // OpenAI ViT-B/16
  EXPECT_EQ(r.clip_trainable, 171008);   // every CLIP bias vector
  EXPECT_EQ(r.trainable, 3401728 + 171008);
  EXPECT_EQ(fmt::format("{:.2f}", r.percent_of_clip()), "2.39");
  EXPECT_NE(r.to_string().find("2.39 % of CLIP"), std::string::npos) << r.to_string();
  // One video adapter of the recipe holds 158,160 parameters (untied layer).
  for (const auto& m : r.modules) {
    if (m.module == "clip.visual.transformer.resblocks.0.mlp.adapter.") {
      EXPECT_EQ(m.trainable, 158160);
    }
    if (m.module == "clip.transformer.resblocks.0.mlp.adapter.") {
      EXPECT_EQ(m.trainable, 118272);
    }
  }
}

TEST(ParameterGroups, FollowTheOfficialNamingRule) {
  EXPECT_EQ(param_group_of("clip.visual.transformer.resblocks.0.mlp.adapter.down.weight"),
            ParamGroup::kAdapterDecay);
  EXPECT_EQ(param_group_of("clip.visual.transformer.resblocks.0.mlp.adapter.ln_pre.weight"),
            ParamGroup::kAdapterDecay);
  EXPECT_EQ(param_group_of("clip.transformer.resblocks.3.mlp.adapter.up.bias"),
            ParamGroup::kAdapterNoDecay);
  EXPECT_EQ(param_group_of("clip.prompt.0"), ParamGroup::kAdapterDecay);
  EXPECT_EQ(param_group_of("clip.visual.ln_post.bias"), ParamGroup::kClipNoDecay);
  EXPECT_EQ(param_group_of("clip.visual.proj"), ParamGroup::kClipDecay);
}

TEST(TrainableSets, SelectTheRightParameters) {
  auto fx = test::load_fixture("mv_adapter_tiny");
  auto count = [&](TrainableSet s, bool biases) {
    RetrievalModelConfig cfg;
    cfg.adapters = tiny_adapters(TyingMode::kScale);
    cfg.trainable = s;
    cfg.train_clip_biases = biases;
    cfg.use_adapters = s == TrainableSet::kAdapters;
    RetrievalModel m(load_clip(fx.dir / "clip.safetensors"), cfg);
    int64_t n = 0;
    for (const auto& p : m->named_parameters(true)) {
      if (!p.value().requires_grad()) continue;
      if (s == TrainableSet::kBitFit) {
        EXPECT_NE(p.key().find("bias"), std::string::npos) << p.key();
      }
      if (s == TrainableSet::kAdapters && !biases) {
        EXPECT_TRUE(p.key().find("adapter") != std::string::npos ||
                    p.key().find("prompt") != std::string::npos)
            << p.key();
      }
      n += p.value().numel();
    }
    return n;
  };
  int64_t clip_total = 0;
  for (const auto& p : load_clip(fx.dir / "clip.safetensors")->parameters())
    clip_total += p.numel();
  EXPECT_EQ(count(TrainableSet::kNone, false), 0);
  EXPECT_EQ(count(TrainableSet::kFull, false), clip_total);
  EXPECT_GT(count(TrainableSet::kBitFit, false), 0);
  EXPECT_GT(count(TrainableSet::kAdapters, true), count(TrainableSet::kAdapters, false));
}

TEST(ContrastiveLoss, MatchesHandComputedValue) {
  // logits [[2, 0], [1, 3]]: t2v rows CE = (log(1+e^-2) + log(1+e^-2)) / 2,
  // v2t (columns) CE = (log(1+e^-1) + log(1+e^-3)) / 2.
  auto logits = torch::tensor({{2.0, 0.0}, {1.0, 3.0}});
  const double t2v = std::log1p(std::exp(-2.0));
  const double v2t = (std::log1p(std::exp(-1.0)) + std::log1p(std::exp(-3.0))) / 2;
  EXPECT_NEAR(contrastive_loss(logits).item<double>(), (t2v + v2t) / 2, 1e-6);
  // With the identity as label matrix the multi-positive form is the same loss.
  EXPECT_NEAR(contrastive_loss(logits, torch::eye(2)).item<double>(), (t2v + v2t) / 2, 1e-6);
}

TEST(ContrastiveLoss, MaskedLeavesOutInvalidPairsEntirely) {
  auto logits = torch::randn({4, 4}, torch::kFloat64).requires_grad_();
  // All valid: the plain loss.
  EXPECT_TENSOR_NEAR(masked_contrastive_loss(logits, torch::ones({4})), contrastive_loss(logits),
                     1e-14);
  // Pairs 1 and 3 padded: the loss of the 2 x 2 matrix of pairs 0 and 2, and no gradient to
  // the padded rows or columns.
  auto keep = torch::tensor({0, 2}, torch::kInt64);
  auto sub = logits.index_select(0, keep).index_select(1, keep);
  auto masked = masked_contrastive_loss(logits, torch::tensor({1.0, 0.0, 1.0, 0.0}));
  EXPECT_TENSOR_NEAR(masked, contrastive_loss(sub), 1e-14);
  masked.backward();
  auto g = logits.grad();
  for (int64_t i : {1, 3}) {
    EXPECT_EQ(g[i].abs().max().item<double>(), 0.0) << "row " << i;
    EXPECT_EQ(g.select(1, i).abs().max().item<double>(), 0.0) << "column " << i;
  }
}

TEST(ContrastiveLoss, RepeatedVideoSharesItsPositives) {
  // Captions 0 and 1 describe the same video (columns 0 and 1 are the same video twice).
  auto logits = torch::tensor({{1.0, 1.0, 0.0}, {1.0, 1.0, 0.0}, {0.0, 0.0, 2.0}});
  auto labels = torch::tensor({{1.0, 1.0, 0.0}, {1.0, 1.0, 0.0}, {0.0, 0.0, 1.0}});
  // Row 0: target (1/2, 1/2, 0), log_softmax = log(e/(2e+1)) for both positives.
  const double lse01 = std::log(2 * std::exp(1.0) + 1.0);
  const double row01 = lse01 - 1.0;
  const double row2 = std::log(2.0 + std::exp(2.0)) - 2.0;
  const double want = (2 * row01 + row2) / 3;  // symmetric matrix: v2t equals t2v
  EXPECT_NEAR(contrastive_loss(logits, labels).item<double>(), want, 1e-6);
}

TEST(Pooling, PaddedFramesAreIgnored) {
  auto f = torch::tensor({{{3.0, 4.0}, {0.0, 2.0}, {9.0, 9.0}}});  // third frame is padding
  auto m = torch::tensor({{1, 1, 0}});
  // normalise: (0.6, 0.8), (0, 1) -> mean (0.3, 0.9) -> unit length.
  auto want = torch::tensor({{0.3, 0.9}}) / std::sqrt(0.9);
  EXPECT_TENSOR_NEAR(RetrievalModelImpl::pool_frames(f, m), want, 1e-6);
}

TEST(AdapterWeights, SaveThenLoadRestoresEveryTrainedTensor) {
  auto fx = test::load_fixture("mv_adapter_tiny");
  RetrievalModelConfig cfg;
  cfg.adapters = AdapterConfig::from_official(fx.config["official_adapter_cfg"], "config.json");
  cfg.train_clip_biases = false;
  RetrievalModel a(load_clip(fx.dir / "clip.safetensors"), cfg);
  load_adapter_weights(*a, fx.dir / "adapter.safetensors");
  auto dir = test::temp_dir("adapters");
  save_adapter_weights(*a, dir / "a.safetensors", {{"step", "7"}});
  RetrievalModel b(load_clip(fx.dir / "clip.safetensors"), cfg);
  load_adapter_weights(*b, dir / "a.safetensors");
  auto sa = trainable_state(*a), sb = trainable_state(*b);
  ASSERT_EQ(sa.size(), sb.size());
  for (const auto& [name, t] : sa) EXPECT_TRUE(torch::equal(t, sb.at(name))) << name;
  EXPECT_EQ(read_safetensors(dir / "a.safetensors").metadata.at("step"), "7");
}

TEST(AdapterWeights, MissingAdapterTensorIsAnError) {
  auto fx = test::load_fixture("mv_adapter_tiny");
  RetrievalModelConfig cfg;
  cfg.adapters = AdapterConfig::from_official(fx.config["official_adapter_cfg"], "config.json");
  RetrievalModel m(load_clip(fx.dir / "clip.safetensors"), cfg);
  auto t = read_safetensors(fx.dir / "adapter.safetensors").tensors;
  t.erase("clip.visual.transformer.resblocks.0.mlp.adapter.cc");
  auto dir = test::temp_dir("adapters");
  write_safetensors(dir / "partial.safetensors", t);
  EXPECT_ERROR_CONTAINS(load_adapter_weights(*m, dir / "partial.safetensors"),
                        "missing: clip.visual.transformer.resblocks.0.mlp.adapter.cc");
}

TEST(OfficialNames, ClipBlocksRenameLayerNormsAndSplitTheFusedProjection) {
  EXPECT_EQ(official_names("clip.visual.transformer.resblocks.1.ln_1.bias"),
            std::vector<std::string>{"clip.visual.transformer.resblocks.1.attn.ln.bias"});
  EXPECT_EQ(official_names("clip.transformer.resblocks.0.ln_2.weight"),
            std::vector<std::string>{"clip.transformer.resblocks.0.mlp.ln.weight"});
  EXPECT_EQ(official_names("clip.transformer.resblocks.11.attn.in_proj_bias"),
            (std::vector<std::string>{"clip.transformer.resblocks.11.attn.q_proj.bias",
                                      "clip.transformer.resblocks.11.attn.k_proj.bias",
                                      "clip.transformer.resblocks.11.attn.v_proj.bias"}));
  EXPECT_EQ(official_names("clip.visual.transformer.resblocks.0.attn.in_proj_weight").size(), 3u);
}

TEST(OfficialNames, AdapterBlocksAndOtherTensorsKeepTheirNames) {
  // The adapter's inner block is an nn.MultiheadAttention officially too: fused, ln_1 kept.
  for (const char* name :
       {"clip.visual.transformer.resblocks.0.mlp.adapter.block.attn.in_proj_bias",
        "clip.transformer.resblocks.1.mlp.adapter.block.ln_1.weight",
        "clip.transformer.resblocks.1.attn.out_proj.bias",
        "clip.transformer.resblocks.1.mlp.c_fc.bias", "clip.visual.ln_pre.bias",
        "clip.ln_final.bias", "clip.prompt.0"}) {
    EXPECT_EQ(official_names(name), std::vector<std::string>{name}) << name;
  }
}

}  // namespace
}  // namespace mva
