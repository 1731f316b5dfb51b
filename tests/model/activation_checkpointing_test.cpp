// Activation checkpointing per block must not change a single gradient (model layer: the blocks
// hold the adapters, so the test runs the whole retrieval model on the golden fixture batch).
#include <torch/torch.h>

#include "mvadapter/clip/checkpoint.h"
#include "mvadapter/clip/clip_loader.h"
#include "mvadapter/model/adapter_checkpoint.h"
#include "mvadapter/model/retrieval_model.h"
#include "test_support.h"

namespace mva {
namespace {

// Loss and every trainable gradient of the fixture model on the fixture batch, in fp64.
std::pair<torch::Tensor, std::map<std::string, torch::Tensor>> loss_and_grads(bool checkpointed) {
  auto fx = test::load_fixture("mv_adapter_tiny");
  RetrievalModelConfig cfg;
  cfg.adapters = AdapterConfig::from_official(fx.config["official_adapter_cfg"], "config.json");
  RetrievalModel model(load_clip(fx.dir / "clip.safetensors"), cfg);  // CLIP biases train too
  load_adapter_weights(*model, fx.dir / "adapter.safetensors");
  model->to(torch::kFloat64);
  model->clip->visual->transformer->checkpoint_blocks = checkpointed;
  model->clip->transformer->checkpoint_blocks = checkpointed;
  auto t = model->embed_texts(fx.io.at("in.text"));
  auto v = model->embed_videos(fx.io.at("in.video").to(torch::kFloat64), fx.io.at("in.v_mask"));
  auto loss = contrastive_loss(model->logits(t, v));
  loss.backward();
  std::map<std::string, torch::Tensor> grads;
  for (const auto& p : model->named_parameters()) {
    if (p.value().requires_grad()) grads[p.key()] = p.value().grad();
  }
  return {loss.detach(), grads};
}

TEST(ActivationCheckpointing, GivesEveryGradientOfThePlainBackward) {
  const auto [plain_loss, plain] = loss_and_grads(false);
  const auto [ckpt_loss, ckpt] = loss_and_grads(true);
  EXPECT_TENSOR_NEAR(ckpt_loss, plain_loss, 1e-12);
  ASSERT_EQ(plain.size(), ckpt.size());
  ASSERT_GT(plain.size(), 20u);
  int biases = 0;
  for (const auto& [name, g] : plain) {
    ASSERT_TRUE(g.defined()) << name;
    ASSERT_TRUE(ckpt.at(name).defined()) << name << ": no gradient with checkpointing";
    EXPECT_TENSOR_NEAR(ckpt.at(name), g, 1e-10) << name;
    biases += name.find("bias") != std::string::npos;
  }
  EXPECT_GT(biases, 0);  // frozen-weight blocks' biases still get theirs
}

TEST(ActivationCheckpointing, RecomputesInTheBackwardOnly) {
  int calls = 0;
  auto w = torch::randn({3, 3}, torch::kFloat64).requires_grad_();
  auto x = torch::randn({2, 3}, torch::kFloat64);  // an input that needs no gradient
  auto y = checkpoint(
      [&calls, w](const torch::Tensor& in) {
        ++calls;
        return torch::tanh(in.matmul(w));
      },
      x);
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(y.grad_fn() == nullptr);
  y.sum().backward();
  EXPECT_EQ(calls, 2);
  // d/dw sum(tanh(x w)) = xᵀ (1 - tanh²(x w))
  auto want = x.t().matmul(1 - torch::tanh(x.matmul(w.detach())).pow(2));
  EXPECT_TENSOR_NEAR(w.grad(), want, 1e-12);
}

}  // namespace
}  // namespace mva
