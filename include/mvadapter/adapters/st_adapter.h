#pragma once
#include <torch/nn.h>

#include "mvadapter/adapters/adapter_config.h"
#include "mvadapter/clip/transformer.h"

namespace mva {

/// ST-Adapter (Pan et al. 2022; the authors' `Adapter` of linziyi96/st-adapter): patch tokens ->
/// fc1 -> depth-wise Conv3d over (frames, grid) -> fc2, no activation, [CLS] unchanged. Installed
/// in series before a sub-layer (`pre`): x <- x + delta(x).
class StAdapterImpl : public MlpAdapterImpl {
 public:
  /// `cfg.mid_dim` is the adapter width Ca, `cfg.kernel` the Conv3d kernel (odd sizes).
  StAdapterImpl(int64_t width, const BranchAdapterConfig& cfg);
  /// x: [1 + P, B·F, width] (LND, the frames of a video adjacent); ctx.frame_mask [B, F] (an
  /// undefined mask: every row is a one-frame clip). Returns the residual delta(x).
  torch::Tensor forward(const torch::Tensor& x, const AdapterContext& ctx) override;
  /// The residual for clips of `frames` frames: zero on [CLS], fc2(conv(fc1(patches))) on the
  /// patches. frame_mask [B, F] (optional): padded frames enter the convolution as zeros, exactly
  /// like the zero padding beyond a clip's ends, so they change nothing in the real frames (the
  /// authors' module has no mask and lets them leak into their neighbours).
  torch::Tensor delta(const torch::Tensor& x, int64_t frames, const torch::Tensor& frame_mask = {});

  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::Conv3d conv{nullptr};
};
TORCH_MODULE(StAdapter);

}  // namespace mva
