#pragma once
#include <torch/nn.h>

#include "mvadapter/adapters/adapter_config.h"
#include "mvadapter/clip/transformer.h"

namespace mva {

/// Convpass (Jie & Deng 2022; the authors' `Convpass` of JieShibo/PETL-ViT): QuickGELU(x W_down +
/// b) -> a full 3x3 Conv2d on the patch grid ([CLS] through the same conv as a 1x1 image) ->
/// QuickGELU -> dropout -> W_up, times the scale s. Installed beside a sub-layer (`ln_par`).
class ConvpassAdapterImpl : public MlpAdapterImpl {
 public:
  /// `cfg.mid_dim` is the bottleneck width r, `cfg.scale` the authors' per-dataset s.
  ConvpassAdapterImpl(int64_t width, const BranchAdapterConfig& cfg);
  /// x: [1 + P, N, width] (LND; [CLS] first, then a square grid of P patches). Returns s ·
  /// adapt(x).
  torch::Tensor forward(const torch::Tensor& x, const AdapterContext& ctx) override;
  /// The authors' module output, without s (their s multiplies it in the block's forward).
  torch::Tensor adapt(const torch::Tensor& x);

  torch::nn::Linear adapter_down{nullptr}, adapter_up{nullptr};
  torch::nn::Conv2d adapter_conv{nullptr};
  torch::nn::Dropout dropout{nullptr};

 private:
  double scale_;
};
TORCH_MODULE(ConvpassAdapter);

}  // namespace mva
