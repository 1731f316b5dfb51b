// Convpass and ST-Adapter inside a RetrievalModel on the tiny fixture CLIP: where they are
// installed, identity at initialisation, the frame mask through the whole tower, and training
// steps lowering the loss. Module maths: tests/adapters/{convpass_adapter,st_adapter}_test.cpp.
#include <torch/torch.h>

#include "mvadapter/adapters/convpass_adapter.h"
#include "mvadapter/adapters/st_adapter.h"
#include "mvadapter/clip/clip_loader.h"
#include "mvadapter/core/error.h"
#include "mvadapter/model/retrieval_model.h"
#include "test_support.h"

namespace mva {
namespace {

/// The paper's baseline recipe on the tiny CLIP: `type` in the video branch (every block, both
/// sub-layers), a sequential ReLU bottleneck (AdaptMLP) in the text branch, no tying.
RetrievalModelConfig baseline(const std::string& type) {
  RetrievalModelConfig cfg;
  cfg.adapters = AdapterConfig::mv_adapter(/*frames=*/4, /*words=*/8, /*layers=*/2);
  auto& v = cfg.adapters.video;
  v.type = parse_enum<AdapterType>(type, "type");
  v.mid_dim = 8;
  v.insertion = type == "convpass" ? AdapterInsertion::kLnPar : AdapterInsertion::kPre;
  auto& t = cfg.adapters.text;
  t.type = AdapterType::kBottleneck;
  t.activation = Activation::kRelu;
  t.mid_dim = 8;
  cfg.adapters.tying.mode = TyingMode::kNone;
  cfg.adapters.tying.layers.clear();
  return cfg;
}

TEST(BaselineModel, InstallsOneModuleOnEachSubLayerOfEveryVisionBlock) {
  auto fx = test::load_fixture("mv_adapter_tiny");
  for (const std::string type : {"convpass", "st_adapter"}) {
    RetrievalModel m(load_clip(fx.dir / "clip.safetensors"), baseline(type));
    for (int64_t i = 0; i < 2; ++i) {
      auto block = m->clip->visual->transformer->block(i);
      const bool convpass = type == "convpass";
      EXPECT_EQ(convpass, !!std::dynamic_pointer_cast<ConvpassAdapterImpl>(block->attn_adapter()));
      EXPECT_EQ(convpass, !!std::dynamic_pointer_cast<ConvpassAdapterImpl>(block->mlp->adapter()));
      EXPECT_EQ(!convpass, !!std::dynamic_pointer_cast<StAdapterImpl>(block->attn_adapter()));
      EXPECT_EQ(!convpass, !!std::dynamic_pointer_cast<StAdapterImpl>(block->mlp->adapter()));
      EXPECT_FALSE(m->clip->transformer->block(i)->attn_adapter());
    }
    // Adapter tensors are trainable adapters wherever they sit.
    for (const auto& p : m->named_parameters()) {
      if (p.key().find("attn_adapter.") != std::string::npos) {
        EXPECT_TRUE(p.value().requires_grad()) << p.key();
        EXPECT_NE(param_group_of(p.key()), ParamGroup::kClipDecay) << p.key();
      }
    }
  }
}

TEST(BaselineModel, UntrainedEqualsPlainClip) {
  auto fx = test::load_fixture("mv_adapter_tiny");
  for (const std::string type : {"convpass", "st_adapter"}) {
    torch::manual_seed(3);
    RetrievalModel m(load_clip(fx.dir / "clip.safetensors"), baseline(type));
    m->train();  // Convpass's dropout is on, and still nothing changes (W_up = 0)
    torch::NoGradGuard no_grad;
    auto frames = m->encode_frames(fx.io.at("in.video"), fx.io.at("in.v_mask"));
    EXPECT_TENSOR_NEAR(frames.reshape({-1, frames.size(-1)}),
                       fx.io.at("out.backbone_only.image_features"), 1e-6)
        << type;
    EXPECT_TENSOR_NEAR(m->encode_text(fx.io.at("in.text")),
                       fx.io.at("out.backbone_only.text_features"), 1e-6);
  }
}

TEST(BaselineModel, StAdapterPaddedFramesChangeNothingInRealFrames) {
  auto fx = test::load_fixture("mv_adapter_tiny");
  torch::manual_seed(3);
  RetrievalModel m(load_clip(fx.dir / "clip.safetensors"), baseline("st_adapter"));
  {
    torch::NoGradGuard no_grad;
    for (const auto& p : m->named_parameters()) {
      if (p.key().find("adapter") != std::string::npos) p.value().normal_(0, 0.2);
    }
  }
  const auto& mask = fx.io.at("in.v_mask");  // videos with 4, 2 and 3 real frames
  ASSERT_LT(mask.sum().item<int64_t>(), mask.numel());
  auto video = fx.io.at("in.video");
  auto other = video.clone();
  other.masked_fill_((mask == 0).reshape({3, 4, 1, 1, 1}), 5.0);
  torch::NoGradGuard no_grad;
  const auto real = mask.reshape({-1}).nonzero().flatten();
  auto a = m->encode_frames(video, mask).reshape({12, -1}).index_select(0, real);
  auto b = m->encode_frames(other, mask).reshape({12, -1}).index_select(0, real);
  EXPECT_TENSOR_NEAR(b, a, 1e-6);
  EXPECT_GT(
      test::relative_error(a, fx.io.at("out.backbone_only.image_features").index_select(0, real)),
      1e-3)
      << "the randomised adapters should change the features";
}

TEST(BaselineModel, TrainingStepsLowerTheLoss) {
  auto fx = test::load_fixture("mv_adapter_tiny");
  for (const std::string type : {"convpass", "st_adapter"}) {
    torch::manual_seed(3);
    RetrievalModel m(load_clip(fx.dir / "clip.safetensors"), baseline(type));
    m->train();
    std::vector<torch::Tensor> params;
    for (const auto& p : m->parameters()) {
      if (p.requires_grad()) params.push_back(p);
    }
    torch::optim::Adam opt(params, torch::optim::AdamOptions(1e-2));
    auto loss_now = [&] {
      auto v = m->embed_videos(fx.io.at("in.video"), fx.io.at("in.v_mask"));
      auto t = m->embed_texts(fx.io.at("in.text"));
      return contrastive_loss(m->logits(t, v));
    };
    double first = 0, last = 0;
    for (int step = 0; step < 6; ++step) {
      opt.zero_grad();
      auto loss = loss_now();
      if (step == 0) first = loss.item<double>();
      loss.backward();
      opt.step();
    }
    {
      torch::NoGradGuard no_grad;
      m->eval();
      last = loss_now().item<double>();
    }
    EXPECT_LT(last, first - 0.05) << type << ": loss " << first << " -> " << last;
  }
}

TEST(BaselineModel, RejectsAPlacementThatIsNotTheAuthors) {
  auto fx = test::load_fixture("mv_adapter_tiny");
  auto cfg = baseline("convpass");
  cfg.adapters.video.insertion = AdapterInsertion::kSeq;
  EXPECT_ERROR_CONTAINS(RetrievalModel(load_clip(fx.dir / "clip.safetensors"), cfg),
                        "expected ln_par");
  cfg = baseline("st_adapter");
  cfg.adapters.text.type = AdapterType::kStAdapter;
  cfg.adapters.text.insertion = AdapterInsertion::kPre;
  EXPECT_ERROR_CONTAINS(RetrievalModel(load_clip(fx.dir / "clip.safetensors"), cfg),
                        "adapts the video branch only");
}

TEST(BaselineModel, ParameterReportHasOneLinePerSubLayerModule) {
  // ViT-B/16 geometry, Convpass r = 8 (the authors' VTAB width): 2Cr + 9r² + 2r + C per module.
  auto cfg = baseline("convpass");
  cfg.adapters.video.seq_len = 12;
  cfg.adapters.text.seq_len = 32;
  cfg.train_clip_biases = false;
  RetrievalModel m(ClipModel(ClipConfig::named("ViT-B/16")), cfg);
  auto r = parameter_report(*m);
  const int64_t per_module = 2 * 768 * 8 + 9 * 64 + 2 * 8 + 768;
  EXPECT_EQ(per_module, 13648);  // meta.json's trainable_params_per_module
  int64_t attn = 0, mlp = 0;
  for (const auto& line : r.modules) {
    if (line.module.rfind("clip.visual.", 0) != 0) continue;
    EXPECT_EQ(line.trainable, per_module) << line.module;
    attn += line.module.find(".attn_adapter.") != std::string::npos;
    mlp += line.module.find(".mlp.adapter.") != std::string::npos;
  }
  EXPECT_EQ(attn, 12);
  EXPECT_EQ(mlp, 12);
  EXPECT_EQ(r.modules.front().module, "clip.visual.transformer.resblocks.0.mlp.adapter.");
  EXPECT_EQ(r.modules[1].module, "clip.visual.transformer.resblocks.0.attn_adapter.");
}

}  // namespace
}  // namespace mva
