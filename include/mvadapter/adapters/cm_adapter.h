#pragma once
#include <cstdint>
#include <string>

#include <torch/nn.h>

#include "mvadapter/clip/transformer.h"

namespace mva {

/// Sizes of the Cross-Modal Adapter (Jiang et al., LeapLabTHU/Cross-Modal-Adapter).
struct CmAdapterSizes {
  int64_t vision_width = 768, vision_layers = 12;
  int64_t text_width = 512, text_layers = 12;
  int64_t mid_dim = 8;     ///< r, the bottleneck (the authors' `adapter_reduction_dims`)
  int64_t share_dim = 16;  ///< d_s, the shared up-projection channels (`adapter_share_dim`)
  bool relu = false;       ///< the authors' script asserts quick_gelu; relu for experiments
};

/// The Cross-Modal Adapter's tensors of both towers, stacked per sub-layer slot (2i after block
/// i's attention, 2i+1 after its MLP) exactly as the authors' `CLIP` module stores them. They are
/// registered on `owner` under the authors' names (`visual_adapter_down_weight` [2Lv, r, Cv],
/// `visual_adapter_up_unique_*` [2Lv, Cv-d_s, ...], `text_adapter_*`, and the shared
/// `vt_adapter_up_share_weight` [2Lt, d_s, r] / `_bias`), so a CLIP owner gives the names of the
/// authors' checkpoints (`clip.visual_adapter_down_weight`, ...) and loading is a name lookup.
struct CmAdapterTensors {
  torch::Tensor visual_down_weight, visual_down_bias, visual_up_weight, visual_up_bias;
  torch::Tensor text_down_weight, text_down_bias, text_up_weight, text_up_bias;
  /// One tensor read by both towers (undefined when d_s = 0).
  torch::Tensor share_weight, share_bias;
};

/// Creates and registers the stacked tensors on `owner` with the authors' initialisation:
/// weights N(0, 0.01²) (their trunc_normal_ has absolute bounds ±2, so nothing is truncated),
/// biases 0.
CmAdapterTensors make_cm_adapter_tensors(torch::nn::Module& owner, const CmAdapterSizes& sizes);

/// The adapter of one sub-layer slot: o(h) = cat[m W_up_own + b, m W_up_share + b_s] with
/// m = QuickGELU(h W_down + b_down); the block adds h + o(h) to its residual stream. It owns no
/// parameters: it reads its slot of the stacked tensors, so the shared part is one tensor whose
/// gradient sums both towers.
class CmAdapterImpl : public MlpAdapterImpl {
 public:
  CmAdapterImpl(const CmAdapterTensors& tensors, bool video, int64_t slot, bool relu);
  /// h: [L, N, width] (any leading shape). Returns o(h), same shape.
  torch::Tensor forward(const torch::Tensor& h, const AdapterContext& ctx) override;

 private:
  torch::Tensor down_w_, down_b_, up_w_, up_b_, share_w_, share_b_;
  int64_t slot_;
  bool relu_;
};
TORCH_MODULE(CmAdapter);

/// Creates the tensors on `owner` and installs one CmAdapter after the attention (slot 2i) and
/// one after the MLP (slot 2i+1) of every block of `visual` and `text`, as the authors'
/// ResidualAttentionBlock: x = x + A(attn(ln_1 x)); x = x + A(mlp(ln_2 x)), A(h) = h + o(h).
CmAdapterTensors install_cm_adapters(torch::nn::Module& owner, TransformerImpl& visual,
                                     TransformerImpl& text, const CmAdapterSizes& sizes);

}  // namespace mva
