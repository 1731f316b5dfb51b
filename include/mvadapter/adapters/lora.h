#pragma once
#include <array>

#include <torch/nn.h>

#include "mvadapter/adapters/adapter_config.h"
#include "mvadapter/clip/transformer.h"

namespace mva {

/// LoRA of one attention block (Hu et al. 2021, as `peft` applies it): each targeted projection
/// W gets (alpha / rank) · B A, A [rank, width], B [width, rank]; parameters `{q,k,v,o}_a`,
/// `{q,k,v,o}_b` for the targets only.
class LoraImpl : public AttentionLoraImpl {
 public:
  /// width: the attention's width; cfg.rank > 0 and cfg.targets name the projections.
  LoraImpl(int64_t width, const LoraConfig& cfg);

  bool adapts(AttentionProjection p) const override;
  /// x [..., width] -> (alpha / rank) · dropout(x) Aᵀ Bᵀ [..., width]; throws Error for a
  /// projection without an update.
  torch::Tensor delta(AttentionProjection p, const torch::Tensor& x) override;

  /// A [rank, width] of projection `p` (undefined when `p` is not a target).
  const torch::Tensor& a(AttentionProjection p) const { return a_[index(p)]; }
  /// B [width, rank] of projection `p` (undefined when `p` is not a target).
  const torch::Tensor& b(AttentionProjection p) const { return b_[index(p)]; }
  /// alpha / rank.
  double scaling() const { return scaling_; }

 private:
  static size_t index(AttentionProjection p) { return static_cast<size_t>(p); }

  std::array<torch::Tensor, 4> a_, b_;
  double scaling_;
  double dropout_;
};
TORCH_MODULE(Lora);

/// Installs LoRA (cfg) into the attention of every block of `transformer`; returns the number of
/// blocks changed. Nothing happens when cfg.rank is 0.
int64_t install_lora(TransformerImpl& transformer, const LoraConfig& cfg);

}  // namespace mva
