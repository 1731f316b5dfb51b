#include "mvadapter/model/precision.h"

#include <torch/torch.h>

#include "mvadapter/clip/clip_loader.h"
#include "mvadapter/core/error.h"
#include "mvadapter/model/retrieval_model.h"
#include "test_support.h"

namespace mva {
namespace {

RetrievalModel tiny_tied_model() {
  auto fx = test::load_fixture("mv_adapter_tiny");
  RetrievalModelConfig cfg;
  cfg.adapters = AdapterConfig::mv_adapter(/*frames=*/4, /*words=*/8, /*layers=*/2);
  cfg.adapters.video.mid_dim = cfg.adapters.text.mid_dim = 16;
  cfg.adapters.tying.mode = TyingMode::kScale;
  cfg.adapters.tying.factor_dim = 8;
  return RetrievalModel(load_clip(fx.dir / "clip.safetensors"), cfg);
}

// What the official convert_weights casts (modules/module_clip.py): Linear/Conv weight and bias,
// MultiheadAttention's in-projection, and any `proj` / `text_projection` attribute.
TEST(OfficialFp16Parameters, AreTheLinearConvAttentionAndProjectionTensors) {
  auto model = tiny_tied_model();
  const auto names = official_fp16_parameters(*model);
  const std::string v0 = "clip.visual.transformer.resblocks.0.";
  const std::string t1 = "clip.transformer.resblocks.1.";
  for (const std::string& n :
       {std::string("clip.visual.conv1.weight"), std::string("clip.visual.proj"),
        std::string("clip.text_projection"), v0 + "attn.in_proj_weight", v0 + "attn.in_proj_bias",
        v0 + "attn.out_proj.weight", v0 + "mlp.c_fc.bias", v0 + "mlp.c_proj.weight",
        v0 + "mlp.adapter.down.weight", v0 + "mlp.adapter.down.bias", v0 + "mlp.adapter.up.bias",
        v0 + "mlp.adapter.block.attn.in_proj_weight", v0 + "mlp.adapter.conv_rf_c.g.weight",
        v0 + "mlp.adapter.md_proj.weight", t1 + "mlp.adapter.up.weight",
        t1 + "mlp.adapter.md_proj.bias"}) {
    EXPECT_TRUE(names.count(n)) << n;
  }
  for (const std::string& n :
       {std::string("clip.logit_scale"), std::string("clip.prompt.0"),
        std::string("clip.token_embedding.weight"), std::string("clip.positional_embedding"),
        std::string("clip.visual.class_embedding"), std::string("clip.visual.ln_pre.weight"),
        v0 + "ln_1.weight", v0 + "mlp.adapter.ln_pre.bias", v0 + "mlp.adapter.cc",
        v0 + "mlp.adapter.positional_embedding", t1 + "mlp.adapter.positional_embedding"}) {
    EXPECT_FALSE(names.count(n)) << n;
  }
  // Every listed name is a real parameter.
  const auto params = model->named_parameters();
  for (const auto& n : names) EXPECT_TRUE(params.contains(n)) << n;
}

TEST(OfficialFp16Parameters, RoundingTouchesOnlyThemAndOnlyToTheNearestFp16) {
  auto model = tiny_tied_model();
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.add_(torch::rand_like(p) * 1e-3);  // off the fp16 grid
  }
  std::map<std::string, torch::Tensor> before;
  for (const auto& p : model->named_parameters()) before[p.key()] = p.value().detach().clone();
  const auto names = official_fp16_parameters(*model);
  round_to_official_fp16(*model);
  for (const auto& p : model->named_parameters()) {
    const auto& was = before.at(p.key());
    if (names.count(p.key())) {
      EXPECT_TRUE(torch::equal(p.value(), was.to(torch::kHalf).to(was.scalar_type()))) << p.key();
      EXPECT_EQ(p.value().scalar_type(), was.scalar_type()) << p.key();
    } else {
      EXPECT_TRUE(torch::equal(p.value(), was)) << p.key();
    }
  }
}

TEST(MasterWeights, ParseNamesTheField) {
  EXPECT_EQ(parse_master_weights("fp16", "train.master_weights"), MasterWeights::kFp16);
  EXPECT_EQ(to_string(parse_master_weights("fp32", "x")), "fp32");
  EXPECT_ERROR_CONTAINS(parse_master_weights("bf16", "train.master_weights"),
                        "train.master_weights");
}

}  // namespace
}  // namespace mva
