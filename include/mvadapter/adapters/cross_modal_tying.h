#pragma once
#include <torch/nn.h>

#include "mvadapter/adapters/adapter_config.h"

namespace mva {

/// W scaled by beta along its input columns (`input_side`, W·diag(beta)) or output rows
/// (diag(beta)·W). W is stored out × in, as torch::nn::Linear stores it.
torch::Tensor scale_weight(const torch::Tensor& w, const torch::Tensor& beta, bool input_side);

/// sum_i A_i (x) B_i for A [k, k, k] and B [k, p, q]: a [k·p, k·q] matrix.
torch::Tensor kronecker_sum(const torch::Tensor& a, const torch::Tensor& b);

/// The tensor a tied layer shares between its video and text adapter (`prompt.K`): the zero
/// factor f [d_m] (scale mode, as the official code) or A [k, k, k] ~ N(0, 1/k) (Kronecker mode).
torch::Tensor make_shared_tying_tensor(const TyingConfig& cfg);

/// One branch's half of Cross-Modality Tying in one layer. Its parameters are registered on the
/// owning adapter under the official names (`md_proj`, or `kron_b` for the Kronecker form), so
/// checkpoints stay a name lookup.
class BranchTying {
 public:
  BranchTying() = default;
  /// in_dim = d (block width), mid_dim = d'; plain_std = std of the untied W_down's init (the
  /// Kronecker factors are scaled so Var(W_down) matches it).
  BranchTying(torch::nn::Module& owner, const TyingConfig& cfg, torch::Tensor shared,
              int64_t in_dim, int64_t mid_dim, double plain_std);

  bool active() const { return shared_.defined(); }
  bool replaces_down() const { return active() && mode_ == TyingMode::kKronecker; }
  /// The effective W_down [d', d] given the stored one (ignored in Kronecker mode).
  torch::Tensor down_weight(const torch::Tensor& stored) const;
  /// The effective W_up [d, d'] given the stored one.
  torch::Tensor up_weight(const torch::Tensor& stored) const;
  const torch::Tensor& shared() const { return shared_; }

 private:
  torch::Tensor beta() const;

  TyingMode mode_ = TyingMode::kNone;
  TyingPosition position_ = TyingPosition::kDownIn;
  torch::Tensor shared_;
  torch::nn::Linear md_proj_{nullptr};
  torch::Tensor kron_b_;
};

}  // namespace mva
