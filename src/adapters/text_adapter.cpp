#include "mvadapter/adapters/text_adapter.h"

#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"

namespace mva {

void init_adapter_block(ResidualAttentionBlockImpl& block, int64_t outer_width) {
  const double d = static_cast<double>(outer_width);
  torch::NoGradGuard no_grad;
  block.attn->in_proj_weight.normal_(0, std::pow(d, -0.5));
  block.attn->out_proj->weight.normal_(0, std::pow(2 * d, -0.5));
  block.mlp->c_fc->weight.normal_(0, std::pow(2 * d, -0.5));
  block.mlp->c_proj->weight.normal_(0, std::pow(2 * d, -0.5));
}

TextAdapterImpl::TextAdapterImpl(int64_t width, const BranchAdapterConfig& cfg,
                                 const TyingConfig& tying, torch::Tensor shared)
    : scale_(cfg.scale) {
  const int64_t mid = cfg.mid_dim;
  const double down_std = std::pow(2.0 * static_cast<double>(width), -0.5);
  const bool kron = shared.defined() && tying.mode == TyingMode::kKronecker;
  if (cfg.input_norm) {
    ln_in = register_module("ln_in", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  }
  down = register_module("down", Projection(width, mid, !kron));
  up = register_module("up", torch::nn::Linear(mid, width));
  ln_pre = register_module("ln_pre", torch::nn::LayerNorm(torch::nn::LayerNormOptions({mid})));
  block = register_module("block", ResidualAttentionBlock(mid, cfg.heads));
  positional_embedding =
      register_parameter("positional_embedding", torch::empty({cfg.seq_len, mid}));
  if (shared.defined()) tying_ = BranchTying(*this, tying, shared, width, mid, down_std);
  init_adapter_block(*block, width);
  torch::NoGradGuard no_grad;
  if (down->weight.defined()) down->weight.normal_(0, down_std);
  up->weight.zero_();
  up->bias.zero_();
  positional_embedding.normal_(0, 0.01);
}

torch::Tensor TextAdapterImpl::forward(const torch::Tensor& x, const AdapterContext&) {
  const int64_t L = x.size(0);
  if (L > positional_embedding.size(0)) {
    throw Error(
        fmt::format("text adapter: {} tokens but the adapter was built for {} words "
                    "(adapters.text.seq_len)",
                    L, positional_embedding.size(0)));
  }
  const auto h = ln_in ? layer_norm_fp32(ln_in, x) : x;
  auto z = torch::matmul(h, tying_.down_weight(down->weight).t()) + down->bias;
  z = z + positional_embedding.slice(0, 0, L).unsqueeze(1).to(z.scalar_type());
  z = layer_norm_fp32(ln_pre, z);
  z = quick_gelu(block(z, causal_mask(L, z.options()), AdapterContext{}));
  return scale_ * (torch::matmul(z, tying_.up_weight(up->weight).t()) + up->bias);
}

}  // namespace mva
