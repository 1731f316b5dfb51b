#include "mvadapter/clip/clip_model.h"

#include <torch/torch.h>

#include "mvadapter/clip/clip_loader.h"
#include "mvadapter/core/error.h"
#include "mvadapter/io/safetensors.h"
#include "test_support.h"

namespace mva {
namespace {

class TinyClip : public ::testing::Test {
 protected:
  void SetUp() override { fx_ = test::load_fixture("mv_adapter_tiny"); }
  torch::Tensor frames() const {
    auto v = fx_.io.at("in.video");
    return v.reshape({-1, v.size(2), v.size(3), v.size(4)});
  }
  test::Fixture fx_;
};

TEST_F(TinyClip, TorchScriptArchiveReproducesOfficialBackbone) {
  torch::NoGradGuard no_grad;
  auto w = read_clip_weights(fx_.dir / "clip_openai.pt");
  EXPECT_EQ(w.format, ClipWeightFormat::kOpenAiTorchScript);
  auto clip = build_clip(w.tensors, "clip_openai.pt");
  EXPECT_TENSOR_NEAR(clip->encode_image(frames()), fx_.io.at("out.backbone_only.image_features"),
                     1e-5);
  EXPECT_TENSOR_NEAR(clip->encode_text(fx_.io.at("in.text")),
                     fx_.io.at("out.backbone_only.text_features"), 1e-5);
}

TEST_F(TinyClip, SafetensorsWithOpenAiNamesReproducesOfficialBackbone) {
  torch::NoGradGuard no_grad;
  auto clip = load_clip(fx_.dir / "clip.safetensors");
  EXPECT_TENSOR_NEAR(clip->encode_image(frames()), fx_.io.at("out.backbone_only.image_features"),
                     1e-5);
  EXPECT_TENSOR_NEAR(clip->encode_text(fx_.io.at("in.text")),
                     fx_.io.at("out.backbone_only.text_features"), 1e-5);
}

TEST_F(TinyClip, GeometryIsReadOffTheWeights) {
  auto clip = load_clip(fx_.dir / "clip.safetensors");
  const auto& c = clip->config();
  const auto& want = fx_.config["clip"];
  EXPECT_EQ(c.embed_dim, want["embed_dim"].get<int64_t>());
  EXPECT_EQ(c.image_resolution, want["image_resolution"].get<int64_t>());
  EXPECT_EQ(c.vision_layers, want["vision_layers"].get<int64_t>());
  EXPECT_EQ(c.vision_width, want["vision_width"].get<int64_t>());
  EXPECT_EQ(c.vision_patch_size, want["vision_patch_size"].get<int64_t>());
  EXPECT_EQ(c.context_length, want["context_length"].get<int64_t>());
  EXPECT_EQ(c.vocab_size, want["vocab_size"].get<int64_t>());
  EXPECT_EQ(c.transformer_width, want["transformer_width"].get<int64_t>());
  EXPECT_EQ(c.transformer_heads, want["transformer_heads"].get<int64_t>());
  EXPECT_EQ(c.transformer_layers, want["transformer_layers"].get<int64_t>());
}

TEST_F(TinyClip, HuggingFaceNamesLoadToTheSameModel) {
  torch::NoGradGuard no_grad;
  auto openai = read_safetensors(fx_.dir / "clip.safetensors").tensors;
  auto hf = openai_to_hf(openai);
  EXPECT_TRUE(hf.count("vision_model.encoder.layers.1.self_attn.k_proj.weight"));
  EXPECT_TRUE(hf.count("text_model.final_layer_norm.bias"));
  EXPECT_EQ(hf.at("visual_projection.weight").sizes(), openai.at("visual.proj").t().sizes());
  hf["text_model.embeddings.position_ids"] = torch::arange(8).unsqueeze(0);
  auto dir = test::temp_dir("hf");
  write_safetensors(dir / "hf.safetensors", hf);
  auto w = read_clip_weights(dir / "hf.safetensors");
  EXPECT_EQ(w.format, ClipWeightFormat::kHuggingFace);
  ASSERT_EQ(w.tensors.size(), openai.size());
  for (const auto& [name, t] : openai) {
    ASSERT_TRUE(w.tensors.count(name)) << name;
    EXPECT_TRUE(torch::equal(w.tensors.at(name), t)) << name;
  }
  auto clip = build_clip(w.tensors, "hf");
  EXPECT_TENSOR_NEAR(clip->encode_text(fx_.io.at("in.text")),
                     fx_.io.at("out.backbone_only.text_features"), 1e-5);
}

TEST_F(TinyClip, MissingAndMisShapedTensorsAreListed) {
  auto w = read_safetensors(fx_.dir / "clip.safetensors").tensors;
  w.erase("visual.ln_post.bias");
  w["transformer.resblocks.0.ln_1.weight"] = torch::ones({7});
  w["extra.thing"] = torch::ones({1});
  try {
    build_clip(w, "broken.safetensors");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("broken.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing: visual.ln_post.bias"), std::string::npos) << msg;
    EXPECT_NE(msg.find("transformer.resblocks.0.ln_1.weight (file [7], model [128])"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("unexpected: extra.thing"), std::string::npos) << msg;
  }
}

TEST(ClipLoader, MissingFileSaysWhereWeightsComeFrom) {
  EXPECT_ERROR_CONTAINS(load_clip("/nowhere/ViT-B-16.pt"),
                        "/nowhere/ViT-B-16.pt: CLIP weights file not found");
}

TEST(ClipLoader, KnownReleasesHaveTheirPublishedSha256) {
  EXPECT_EQ(known_clip_sha256("ViT-B-16.pt").value(),
            "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f");
  EXPECT_FALSE(known_clip_sha256("mine.pt").has_value());
}

TEST(ClipConfig, ReleasedArchitecturesHaveOpenAiGeometry) {
  auto b16 = ClipConfig::named("ViT-B/16");
  EXPECT_EQ(b16.grid(), 14);
  EXPECT_EQ(b16.vision_heads(), 12);
  auto l14 = ClipConfig::named("ViT-L/14");
  EXPECT_EQ(l14.vision_width, 1024);
  EXPECT_EQ(l14.vision_layers, 24);
  EXPECT_EQ(l14.grid(), 16);
  EXPECT_ERROR_CONTAINS(ClipConfig::named("RN50"), "unknown CLIP architecture");
}

TEST(ClipModel, RandomViTB32HasOpenAiParameterCount) {
  // OpenAI ViT-B/32: 151,277,313 parameters (published model card figure, counted from the file).
  auto clip = make_random_clip(ClipConfig::named("ViT-B/32"));
  int64_t n = 0;
  for (const auto& p : clip->parameters()) n += p.numel();
  EXPECT_EQ(n, 151277313);
}

}  // namespace
}  // namespace mva

namespace mva {
namespace {

// One rule, whether a name is seen inside the CLIP (save_clip) or from the retrieval model.
TEST(IsAdapterTensor, AdaptersFactorsLoraAndTheHeadButNoClipWeight) {
  for (const char* name :
       {"visual.transformer.resblocks.0.mlp.adapter.down.weight",
        "clip.transformer.resblocks.3.attn.adapter.conv.weight", "prompt.0", "clip.prompt.1",
        "clip.visual.transformer.resblocks.11.mlp.adapter.shared_factor",
        "visual.transformer.resblocks.2.attn.lora_q.a",
        "head.transformer.resblocks.0.ln_1.weight"}) {
    EXPECT_TRUE(is_adapter_tensor(name)) << name;
  }
  for (const char* name : {"visual.conv1.weight", "clip.visual.proj", "positional_embedding",
                           "clip.transformer.resblocks.0.attn.in_proj_weight", "logit_scale",
                           "clip.text_projection", "visual.ln_post.bias"}) {
    EXPECT_FALSE(is_adapter_tensor(name)) << name;
  }
}

}  // namespace
}  // namespace mva
