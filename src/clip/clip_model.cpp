#include "mvadapter/clip/clip_model.h"

#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "mvadapter/core/tensor_format.h"

namespace mva {
namespace {
torch::nn::LayerNorm make_ln(int64_t width) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).eps(1e-5));
}
}  // namespace

VisionTransformerImpl::VisionTransformerImpl(const ClipConfig& cfg)
    : resolution_(cfg.image_resolution) {
  const int64_t w = cfg.vision_width;
  const double scale = std::pow(static_cast<double>(w), -0.5);
  conv1 = register_module("conv1",
                          torch::nn::Conv2d(torch::nn::Conv2dOptions(3, w, cfg.vision_patch_size)
                                                .stride(cfg.vision_patch_size)
                                                .bias(false)));
  class_embedding = register_parameter("class_embedding", torch::randn({w}) * scale);
  positional_embedding = register_parameter("positional_embedding",
                                            torch::randn({cfg.grid() * cfg.grid() + 1, w}) * scale);
  ln_pre = register_module("ln_pre", make_ln(w));
  transformer =
      register_module("transformer", Transformer(w, cfg.vision_layers, cfg.vision_heads()));
  ln_post = register_module("ln_post", make_ln(w));
  proj = register_parameter("proj", torch::randn({w, cfg.embed_dim}) * scale);
}

torch::Tensor VisionTransformerImpl::forward(const torch::Tensor& images,
                                             const AdapterContext& ctx) {
  check_shape(images, {-1, 3, resolution_, resolution_}, "images");
  auto x = conv1(images.to(conv1->weight.scalar_type()));  // [N, width, grid, grid]
  x = x.reshape({x.size(0), x.size(1), -1}).permute({0, 2, 1});
  auto cls = class_embedding.to(x.scalar_type()).expand({x.size(0), 1, x.size(-1)});
  x = torch::cat({cls, x}, 1) + positional_embedding.to(x.scalar_type());
  x = layer_norm_fp32(ln_pre, x).permute({1, 0, 2});  // NLD -> LND
  x = transformer(x, torch::Tensor(), ctx);
  // Only the CLS row is used; ln_post and proj are per token, so taking it first is exact.
  auto cls_out = layer_norm_fp32(ln_post, x[0]);
  return torch::matmul(cls_out, proj.to(cls_out.scalar_type()));
}

ClipModelImpl::ClipModelImpl(const ClipConfig& cfg) : cfg_(cfg) {
  visual = register_module("visual", VisionTransformer(cfg));
  transformer = register_module(
      "transformer",
      Transformer(cfg.transformer_width, cfg.transformer_layers, cfg.transformer_heads));
  token_embedding = register_module("token_embedding",
                                    torch::nn::Embedding(cfg.vocab_size, cfg.transformer_width));
  positional_embedding = register_parameter(
      "positional_embedding", torch::empty({cfg.context_length, cfg.transformer_width}));
  ln_final = register_module("ln_final", make_ln(cfg.transformer_width));
  text_projection =
      register_parameter("text_projection", torch::empty({cfg.transformer_width, cfg.embed_dim}));
  logit_scale =
      register_parameter("logit_scale", torch::tensor(std::log(1.0 / 0.07)).to(torch::kFloat));
  prompt = register_module("prompt", torch::nn::ParameterList());
  torch::NoGradGuard no_grad;
  positional_embedding.normal_(0, 0.01);
  text_projection.normal_(0, std::pow(static_cast<double>(cfg.transformer_width), -0.5));
}

torch::Tensor ClipModelImpl::encode_image(const torch::Tensor& images, const AdapterContext& ctx) {
  return visual(images, ctx);
}

torch::Tensor ClipModelImpl::encode_text(const torch::Tensor& ids, const AdapterContext& ctx) {
  check_shape(ids, {-1, -1}, "text ids");
  const int64_t L = ids.size(1);
  if (L > cfg_.context_length) {
    throw Error(fmt::format("text ids: {} tokens exceed the model's context length {}", L,
                            cfg_.context_length));
  }
  auto x = token_embedding(ids);
  x = x + positional_embedding.slice(0, 0, L).to(x.scalar_type());
  x = x.permute({1, 0, 2});
  x = transformer(x, causal_mask(L, x.options()), ctx).permute({1, 0, 2});
  auto eot = ids.argmax(-1);
  auto pooled = x.index({torch::arange(x.size(0), eot.options()), eot});
  pooled = layer_norm_fp32(ln_final, pooled);
  return torch::matmul(pooled, text_projection.to(pooled.scalar_type()));
}

ClipModel make_random_clip(const ClipConfig& cfg) {
  ClipModel m(cfg);
  torch::NoGradGuard no_grad;
  m->token_embedding->weight.normal_(0, 0.02);
  const double w = static_cast<double>(cfg.transformer_width);
  const double proj_std = std::pow(w, -0.5) * std::pow(2.0 * cfg.transformer_layers, -0.5);
  for (int64_t i = 0; i < m->transformer->layers(); ++i) {
    auto b = m->transformer->block(i);
    b->attn->in_proj_weight.normal_(0, std::pow(w, -0.5));
    b->attn->out_proj->weight.normal_(0, proj_std);
    b->mlp->c_fc->weight.normal_(0, std::pow(2.0 * w, -0.5));
    b->mlp->c_proj->weight.normal_(0, proj_std);
  }
  return m;
}

// "lora" is ours (the official code has no LoRA): LoRA trains and decays as an adapter. So does
// the seqTransf head (CLIP4Clip trains it at the full lr, CLIP at a fraction).
bool is_adapter_tensor(const std::string& name) {
  auto has = [&](const char* part) { return name.find(part) != std::string::npos; };
  return has("adapter") || has("prompt") || has("factor") || has("lora") ||
         name.rfind("head.", 0) == 0;
}

}  // namespace mva
