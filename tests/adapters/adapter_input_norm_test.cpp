// adapters.*.input_norm: the official `lnin` LayerNorm at the input of both MV-Adapter branches.
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mvadapter/adapters/text_adapter.h"
#include "mvadapter/adapters/video_adapter.h"
#include "mvadapter/core/error.h"
#include "test_support.h"

namespace mva {
namespace {

constexpr int64_t kWidth = 24;

BranchAdapterConfig branch(bool input_norm) {
  BranchAdapterConfig b;
  b.mid_dim = 8;
  b.heads = 2;
  b.seq_len = 3;  // frames (video) or words (text)
  b.calibration_dim = 4;
  b.input_norm = input_norm;
  return b;
}

TyingConfig no_tying() {
  TyingConfig t;
  t.mode = TyingMode::kNone;
  return t;
}

// LayerNorm over the last dimension written out: (x - mean) / sqrt(biased var + 1e-5) * w + b.
torch::Tensor layer_norm_by_hand(const torch::Tensor& x, const torch::Tensor& w,
                                 const torch::Tensor& b) {
  const double n = static_cast<double>(x.size(-1));
  auto mean = x.sum(-1, true) / n;
  auto var = (x - mean).pow(2).sum(-1, true) / n;
  return (x - mean) / (var + 1e-5).sqrt() * w + b;
}

// Gives every parameter a random value (W_up starts at zero, which would hide the input).
void randomise(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  for (auto& p : m.parameters()) p.normal_(0, 0.3);
}

// Copies every parameter of `from` that `to` also has (all but ln_in).
void copy_shared(const torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  auto dst = to.named_parameters();
  for (const auto& p : from.named_parameters()) {
    if (dst.contains(p.key())) dst[p.key()].copy_(p.value());
  }
}

TEST(AdapterInputNorm, StartsAsTheOfficialLayerNormAndIsAnAdapterParameter) {
  torch::manual_seed(0);
  TextAdapter text(kWidth, branch(true), no_tying(), torch::Tensor());
  VideoAdapter video(kWidth, branch(true), no_tying(), torch::Tensor());
  for (torch::nn::Module* m : {static_cast<torch::nn::Module*>(text.get()),
                               static_cast<torch::nn::Module*>(video.get())}) {
    auto params = m->named_parameters();
    ASSERT_TRUE(params.contains("ln_in.weight"));
    ASSERT_TRUE(params.contains("ln_in.bias"));
    EXPECT_TRUE(torch::equal(params["ln_in.weight"], torch::ones({kWidth})));
    EXPECT_TRUE(torch::equal(params["ln_in.bias"], torch::zeros({kWidth})));
  }
  TextAdapter plain(kWidth, branch(false), no_tying(), torch::Tensor());
  EXPECT_FALSE(plain->named_parameters().contains("ln_in.weight"));
}

TEST(AdapterInputNorm, TextAdapterNormalisesItsInputOnly) {
  torch::manual_seed(1);
  TextAdapter with(kWidth, branch(true), no_tying(), torch::Tensor());
  TextAdapter without(kWidth, branch(false), no_tying(), torch::Tensor());
  randomise(*with);  // ln_in included
  copy_shared(*with, *without);
  auto x = torch::randn({3, 2, kWidth}) * 4 + 1;  // [L, N, width], far from normalised
  auto expected =
      without(layer_norm_by_hand(x, with->ln_in->weight, with->ln_in->bias), AdapterContext{});
  auto got = with(x, AdapterContext{});
  EXPECT_TENSOR_NEAR(got, expected, 1e-5);
  // ... and the norm matters: without it the output differs.
  EXPECT_GT((without(x, AdapterContext{}) - got).abs().max().item<double>(), 1e-3);
}

TEST(AdapterInputNorm, VideoAdapterNormalisesEveryToken) {
  torch::manual_seed(2);
  VideoAdapter with(kWidth, branch(true), no_tying(), torch::Tensor());
  VideoAdapter without(kWidth, branch(false), no_tying(), torch::Tensor());
  randomise(*with);
  copy_shared(*with, *without);
  const int64_t B = 2, F = 3, P = 4;
  auto x = torch::randn({1 + P, B * F, kWidth}) * 3 - 2;
  AdapterContext ctx;
  ctx.frame_mask = torch::tensor({{1, 1, 1}, {1, 1, 0}}, torch::kLong);
  auto expected = without(layer_norm_by_hand(x, with->ln_in->weight, with->ln_in->bias), ctx);
  EXPECT_TENSOR_NEAR(with(x, ctx), expected, 1e-5);
}

TEST(AdapterInputNorm, OnlyTheMvAdapterHasOne) {
  AdapterConfig a = AdapterConfig::mv_adapter(3, 3, 2);
  a.video.type = AdapterType::kBottleneck;
  a.video.input_norm = true;
  try {
    a.validate(kWidth, kWidth, 2, 2);
    FAIL() << "bottleneck + input_norm accepted";
  } catch (const ConfigError& e) {
    // The key travels as data (the run config looks up where it was set); no source is known here.
    EXPECT_EQ(e.key(), "adapters.video.input_norm") << e.what();
    EXPECT_EQ(e.source(), "") << e.what();
    EXPECT_NE(std::string(e.what()).find("adapters.video.input_norm: "), std::string::npos)
        << e.what();
  }
}

TEST(AdapterInputNorm, ReadFromTheOfficialLnin) {
  auto cfg = nlohmann::json::parse(R"({
    "visual": {"mlp": {"type": "VideoAdapter", "adapter_idx": [0, 1], "temporal": ["c"],
                       "lnin": true}},
    "text": {"mlp": {"type": "TextTransfAdapter", "adapter_idx": [0, 1], "lnin": true}}})");
  auto a = AdapterConfig::from_official(cfg, "anet.py");
  EXPECT_TRUE(a.video.input_norm);
  EXPECT_TRUE(a.text.input_norm);
  cfg["text"]["mlp"].erase("lnin");
  EXPECT_FALSE(AdapterConfig::from_official(cfg, "msrvtt.py").text.input_norm);
}

}  // namespace
}  // namespace mva
