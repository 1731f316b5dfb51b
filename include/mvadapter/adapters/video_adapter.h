#pragma once
#include <torch/nn.h>

#include "mvadapter/adapters/adapter_config.h"
#include "mvadapter/adapters/calibration.h"
#include "mvadapter/adapters/cross_modal_tying.h"
#include "mvadapter/adapters/projection.h"
#include "mvadapter/clip/transformer.h"

namespace mva {

/// MV-Adapter's video branch with Temporal Adaptation (official `VideoAdapter`): all tokens go
/// down + QuickGELU; the sequence [cc, frame CLS, frame patch-mean] runs through one transformer
/// block with the frame key mask; calibrated CLS and plain patches go up; output × scale.
/// With input_norm, every token passes a LayerNorm (`ln_in`) before going down.
class VideoAdapterImpl : public MlpAdapterImpl {
 public:
  VideoAdapterImpl(int64_t width, const BranchAdapterConfig& cfg, const TyingConfig& tying,
                   torch::Tensor shared);
  /// x: [1 + P, B·F, width] (LND, frames of a video adjacent); ctx.frame_mask [B, F].
  torch::Tensor forward(const torch::Tensor& x, const AdapterContext& ctx) override;

  torch::nn::LayerNorm ln_in{nullptr};  ///< input_norm only (official `lnin`)
  Projection down{nullptr};
  torch::nn::Linear up{nullptr};
  torch::nn::LayerNorm ln_pre{nullptr};
  ResidualAttentionBlock block{nullptr};
  torch::Tensor positional_embedding, cc;
  Calibration conv_rf_c{nullptr}, conv_rf_p{nullptr};

 private:
  BranchTying tying_;
  double scale_;
  int64_t width_, mid_, heads_, frames_;
};
TORCH_MODULE(VideoAdapter);

}  // namespace mva
