#pragma once
#include <torch/nn.h>

namespace mva {

/// Temporal calibration (official `TaModuleV1`): per-frame channel scales
/// alpha_f = b(ReLU(a(m_f · [x_f ; g(cc)]))) + 1, with `b` zero-initialised so alpha starts at 1.
class CalibrationImpl : public torch::nn::Module {
 public:
  /// mid = d' (channels calibrated), hidden = width of the bottleneck (16 in the paper).
  CalibrationImpl(int64_t mid, int64_t hidden);
  /// cc: [B, d'] global context; x: [B, F, d'] per-frame input; frame_mask: [B, F].
  /// Returns alpha [B, F, d'].
  torch::Tensor forward(const torch::Tensor& cc, const torch::Tensor& x,
                        const torch::Tensor& frame_mask);

  torch::nn::Linear g{nullptr}, a{nullptr}, b{nullptr};
};
TORCH_MODULE(Calibration);

}  // namespace mva
