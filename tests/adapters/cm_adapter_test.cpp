// The Cross-Modal Adapter on two small CLIP towers: the authors' layout and init, the shared
// up-projection, the insertion after both sub-layers. Golden tensors: tests/model/
// cm_adapter_reference_test.cpp.
#include "mvadapter/adapters/cm_adapter.h"

#include <torch/torch.h>

#include "mvadapter/adapters/adapter_config.h"
#include "mvadapter/core/error.h"
#include "test_support.h"

namespace mva {
namespace {

/// Two towers (vision 3 blocks of width 64, text 4 blocks of width 32) with the adapters
/// installed; `root` owns the stacked tensors, as the CLIP does in a RetrievalModel.
struct Towers {
  std::shared_ptr<torch::nn::Module> root = std::make_shared<torch::nn::Module>();
  Transformer visual{nullptr}, text{nullptr};
  CmAdapterTensors tensors;

  explicit Towers(int64_t share_dim = 8) {
    torch::manual_seed(0);
    visual = root->register_module("visual", Transformer(64, 3, 2));
    text = root->register_module("text", Transformer(32, 4, 1));
    CmAdapterSizes s{64, 3, 32, 4, /*mid_dim=*/6, share_dim, /*relu=*/false};
    tensors = install_cm_adapters(*root, *visual, *text, s);
  }
  torch::Tensor video_out(const torch::Tensor& x) { return visual->forward(x, {}, {}); }
  torch::Tensor text_out(const torch::Tensor& x) {
    return text->forward(x, causal_mask(x.size(0)), {});
  }
};

TEST(CmAdapter, StoresTheAuthorsStackedTensorsWithTheirInit) {
  Towers t;
  std::map<std::string, std::vector<int64_t>> want = {
      {"visual_adapter_down_weight", {6, 6, 64}},      {"visual_adapter_down_bias", {6, 6}},
      {"visual_adapter_up_unique_weight", {6, 56, 6}}, {"visual_adapter_up_unique_bias", {6, 56}},
      {"text_adapter_down_weight", {8, 6, 32}},        {"text_adapter_down_bias", {8, 6}},
      {"text_adapter_up_unique_weight", {8, 24, 6}},   {"text_adapter_up_unique_bias", {8, 24}},
      {"vt_adapter_up_share_weight", {8, 8, 6}},       {"vt_adapter_up_share_bias", {8, 8}}};
  auto own = t.root->named_parameters(/*recurse=*/false);
  EXPECT_EQ(own.size(), want.size());
  for (const auto& [name, shape] : want) {
    const auto* p = own.find(name);
    ASSERT_NE(p, nullptr) << name;
    EXPECT_EQ(p->sizes().vec(), shape) << name;
    if (name.find("bias") != std::string::npos) {
      EXPECT_EQ(p->abs().max().item<double>(), 0.0) << name << ": biases start at zero";
    } else {
      EXPECT_NEAR(p->std().item<double>(), 0.01, 0.002) << name << ": N(0, 0.01²)";
    }
  }
  // The blocks' adapters own nothing: every adapter tensor is one of the stacked ones.
  for (const auto& p : t.root->named_parameters()) {
    EXPECT_EQ(p.key().find(".attn_adapter."), std::string::npos) << p.key();
    EXPECT_EQ(p.key().find(".mlp.adapter."), std::string::npos) << p.key();
  }
}

TEST(CmAdapter, SharedUpProjectionIsOneTensorWithGradientFromBothTowers) {
  Towers t;
  auto xv = torch::randn({5, 2, 64});
  auto xt = torch::randn({7, 3, 32});
  const auto& share = t.tensors.share_weight;

  t.video_out(xv).pow(2).sum().backward();
  auto from_video = share.grad().clone();
  EXPECT_GT(from_video.abs().sum().item<double>(), 0.0);
  // Slots 2i, 2i+1 of the 3 vision blocks; the text tower's last block has the other two.
  EXPECT_EQ(from_video.slice(0, 6).abs().sum().item<double>(), 0.0);

  t.root->zero_grad();
  t.text_out(xt).pow(2).sum().backward();
  auto from_text = share.grad().clone();
  EXPECT_GT(from_text.slice(0, 0, 6).abs().sum().item<double>(), 0.0);

  t.root->zero_grad();
  (t.video_out(xv).pow(2).sum() + t.text_out(xt).pow(2).sum()).backward();
  EXPECT_TENSOR_NEAR(share.grad(), from_video + from_text, 1e-6);
}

TEST(CmAdapter, BlockAddsTheAdapterAfterAttentionAndAfterTheMlp) {
  Towers t;
  auto block = t.visual->block(1);
  auto x = torch::randn({5, 2, 64});
  auto got = block->forward(x, {}, {});
  // The authors' ResidualAttentionBlock: x = x + A(attn(ln_1 x)); x = x + A(mlp(ln_2 x)).
  auto a = block->attn(block->ln_1(x));
  auto y = x + a + block->attn_adapter()->forward(a, {});
  auto h = block->mlp(block->ln_2(y));
  auto want = y + h + block->mlp->adapter()->forward(h, {});
  EXPECT_TENSOR_NEAR(got, want, 1e-6);
  // The shared part writes the LAST d_s channels: zero the shared bias and weight of slot 2 and
  // only those channels of the attention adapter's output become zero.
  {
    torch::NoGradGuard no_grad;
    t.tensors.share_weight[2].zero_();
    t.tensors.share_bias[2].zero_();
  }
  auto o = block->attn_adapter()->forward(a, {});
  EXPECT_EQ(o.slice(-1, 56).abs().max().item<double>(), 0.0);
  EXPECT_GT(o.slice(-1, 0, 56).abs().max().item<double>(), 0.0);
}

TEST(CmAdapter, NoSharedChannelsLeavesTheTowersIndependent) {
  Towers t(/*share_dim=*/0);
  EXPECT_FALSE(t.tensors.share_weight.defined());
  EXPECT_FALSE(t.root->named_parameters(false).contains("vt_adapter_up_share_weight"));
  auto out = t.video_out(torch::randn({5, 2, 64}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{5, 2, 64}));
}

TEST(CmAdapter, SizesThatDoNotMatchTheTowersAreAnError) {
  auto root = std::make_shared<torch::nn::Module>();
  Transformer v(64, 2, 1), x(32, 2, 1);
  CmAdapterSizes s{64, 3, 32, 2, 4, 8, false};
  EXPECT_ERROR_CONTAINS(install_cm_adapters(*root, *v, *x, s), "vision tower has 2 blocks");
}

TEST(CmAdapterConfig, NeedsCmAdapterInBothBranchesAndNoTying) {
  auto a = AdapterConfig::mv_adapter(4, 8, 2);
  a.video.type = AdapterType::kCmAdapter;
  a.tying.mode = TyingMode::kNone;
  EXPECT_ERROR_CONTAINS(a.validate(64, 32, 2, 2), "adapters.text.type");
  a.text.type = AdapterType::kCmAdapter;
  a.validate(64, 32, 2, 2);
  a.cm_share_dim = 33;
  EXPECT_ERROR_CONTAINS(a.validate(64, 32, 2, 2), "adapters.cm_share_dim");
  a.cm_share_dim = 8;
  a.text.mid_dim = 32;
  EXPECT_ERROR_CONTAINS(a.validate(64, 32, 2, 2), "adapters.text.mid_dim");
  a.text.mid_dim = a.video.mid_dim;
  a.tying.mode = TyingMode::kScale;
  a.tying.layers = {1};
  EXPECT_ERROR_CONTAINS(a.validate(64, 32, 2, 2), "adapters.tying.mode");
  a.tying.mode = TyingMode::kNone;
  a.video.layers = {1};
  EXPECT_ERROR_CONTAINS(a.validate(64, 32, 2, 2), "adapters.video.layers");
}

}  // namespace
}  // namespace mva
