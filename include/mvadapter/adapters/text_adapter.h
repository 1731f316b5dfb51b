#pragma once
#include <torch/nn.h>

#include "mvadapter/adapters/adapter_config.h"
#include "mvadapter/adapters/cross_modal_tying.h"
#include "mvadapter/adapters/projection.h"
#include "mvadapter/clip/transformer.h"

namespace mva {

/// MV-Adapter's text branch (official `TextTransfAdapter`):
/// scale · up(QuickGELU(TRM_causal(ln_pre(down(h) + pos)))), W_down/W_up possibly tied;
/// h = ln_in(x) with input_norm (official `lnin`), x otherwise.
class TextAdapterImpl : public MlpAdapterImpl {
 public:
  /// width = d of the text transformer; `shared` = this layer's `prompt.K` when tied.
  TextAdapterImpl(int64_t width, const BranchAdapterConfig& cfg, const TyingConfig& tying,
                  torch::Tensor shared);
  /// x: [L, N, width] with L == seq_len words. Returns the scaled residual, same shape.
  torch::Tensor forward(const torch::Tensor& x, const AdapterContext& ctx) override;

  torch::nn::LayerNorm ln_in{nullptr};  ///< input_norm only
  Projection down{nullptr};
  torch::nn::Linear up{nullptr};
  torch::nn::LayerNorm ln_pre{nullptr};
  ResidualAttentionBlock block{nullptr};
  torch::Tensor positional_embedding;

 private:
  BranchTying tying_;
  double scale_;
};
TORCH_MODULE(TextAdapter);

/// Initialises an adapter's transformer block as the official `init()`: stds use the OUTER width
/// d (not d'): in_proj N(0, d^-1/2), out_proj, c_fc and c_proj N(0, (2d)^-1/2).
void init_adapter_block(ResidualAttentionBlockImpl& block, int64_t outer_width);

}  // namespace mva
