#include "mvadapter/adapters/video_adapter.h"

#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/adapters/text_adapter.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/tensor_format.h"

namespace mva {

VideoAdapterImpl::VideoAdapterImpl(int64_t width, const BranchAdapterConfig& cfg,
                                   const TyingConfig& tying, torch::Tensor shared)
    : scale_(cfg.scale), width_(width), mid_(cfg.mid_dim), heads_(cfg.heads), frames_(cfg.seq_len) {
  const bool kron = shared.defined() && tying.mode == TyingMode::kKronecker;
  if (cfg.input_norm) {
    ln_in = register_module("ln_in", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  }
  down = register_module("down", Projection(width, mid_, !kron));  // kaiming_uniform, bias 0
  up = register_module("up", torch::nn::Linear(mid_, width));
  ln_pre = register_module("ln_pre", torch::nn::LayerNorm(torch::nn::LayerNormOptions({mid_})));
  block = register_module("block", ResidualAttentionBlock(mid_, heads_));
  positional_embedding =
      register_parameter("positional_embedding", torch::empty({2 * frames_ + 1, mid_}));
  cc = register_parameter("cc", torch::randn({mid_}) * std::pow(static_cast<double>(mid_), -0.5));
  if (calibrates_cls(cfg.temporal)) {
    conv_rf_c = register_module("conv_rf_c", Calibration(mid_, cfg.calibration_dim));
  }
  if (calibrates_patches(cfg.temporal)) {
    conv_rf_p = register_module("conv_rf_p", Calibration(mid_, cfg.calibration_dim));
  }
  // Kaiming-uniform(a=√5) on a [d', d] weight has std 1/sqrt(3d).
  const double down_std = 1.0 / std::sqrt(3.0 * static_cast<double>(width));
  if (shared.defined()) tying_ = BranchTying(*this, tying, shared, width, mid_, down_std);
  init_adapter_block(*block, width);
  torch::NoGradGuard no_grad;
  up->weight.zero_();
  up->bias.zero_();
  positional_embedding.normal_(0, 0.01);
}

torch::Tensor VideoAdapterImpl::forward(const torch::Tensor& x, const AdapterContext& ctx) {
  if (!ctx.frame_mask.defined()) {
    throw Error("video adapter: no frame mask given (encode frames through RetrievalModel)");
  }
  const int64_t B = ctx.frame_mask.size(0), F = ctx.frame_mask.size(1);
  const int64_t L = x.size(0), P = L - 1;
  if (B * F != x.size(1)) {
    throw Error(fmt::format("video adapter: frame mask {} does not match {} frames in the batch",
                            shape_str(ctx.frame_mask.sizes()), x.size(1)));
  }
  if (2 * F + 1 > positional_embedding.size(0)) {
    throw Error(
        fmt::format("video adapter: {} frames but the adapter was built for {} "
                    "(adapters.video.seq_len)",
                    F, frames_));
  }
  const auto mask = ctx.frame_mask.to(x.scalar_type());

  const auto h = ln_in ? layer_norm_fp32(ln_in, x) : x;
  auto d = quick_gelu(torch::matmul(h, tying_.down_weight(down->weight).t()) + down->bias);
  auto cls_down = d[0].reshape({B, F, mid_});
  auto patch_down = d.slice(0, 1).reshape({P, B, F, mid_});
  auto patch_mean = patch_down.mean(0);

  auto seq = torch::cat({cc.to(d.scalar_type()).expand({B, 1, mid_}), cls_down, patch_mean}, 1);
  seq = seq + positional_embedding.slice(0, 0, 2 * F + 1).to(seq.scalar_type());
  seq = layer_norm_fp32(ln_pre, seq).permute({1, 0, 2});
  // Keys of padded frames (their CLS and patch-mean slots) get -1e6; the cc slot never does.
  auto keep = torch::cat({torch::ones({B, 1}, mask.options()), mask, mask}, 1);
  auto key_mask = ((1.0 - keep) * -1000000.0).view({B, 1, 1, 2 * F + 1});
  seq = quick_gelu(block(seq, key_mask, AdapterContext{}).permute({1, 0, 2}));
  auto cc_t = seq.select(1, 0);
  auto cls_t = seq.slice(1, 1, F + 1);
  auto patch_t = seq.slice(1, F + 1);

  // Patches use the stored W_up even when tying scales W_up (official VideoAdapter).
  torch::Tensor patch_up;
  if (conv_rf_p) {
    auto alpha_p = conv_rf_p(cc_t, cls_t + patch_t, mask);  // [B, F, d']
    patch_up = torch::matmul(patch_down * alpha_p.unsqueeze(0), up->weight.t());
  } else {
    patch_up = torch::matmul(patch_down, up->weight.t());
  }
  patch_up = patch_up.reshape({P, B * F, width_}) + up->bias;

  auto up_w = tying_.up_weight(up->weight);
  auto cls_in = conv_rf_c ? conv_rf_c(cc_t, cls_t + patch_t, mask) * cls_t : cls_t;
  auto cls_up = (torch::matmul(cls_in, up_w.t()) + up->bias).reshape({1, B * F, width_});
  return scale_ * torch::cat({cls_up, patch_up}, 0);
}

}  // namespace mva
