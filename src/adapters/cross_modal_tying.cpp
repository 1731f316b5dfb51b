#include "mvadapter/adapters/cross_modal_tying.h"

#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"

namespace mva {

torch::Tensor scale_weight(const torch::Tensor& w, const torch::Tensor& beta, bool input_side) {
  return input_side ? w * beta.unsqueeze(0) : w * beta.unsqueeze(1);
}

torch::Tensor kronecker_sum(const torch::Tensor& a, const torch::Tensor& b) {
  const int64_t k = a.size(0), p = b.size(1), q = b.size(2);
  // (A_i (x) B_i)[r·p + s, c·q + t] = A_i[r, c] · B_i[s, t]
  return torch::einsum("irc,ist->rsct", {a, b}).reshape({k * p, k * q});
}

torch::Tensor make_shared_tying_tensor(const TyingConfig& cfg) {
  if (cfg.mode == TyingMode::kKronecker) {
    const int64_t k = cfg.kron_k;
    return torch::randn({k, k, k}) * std::sqrt(1.0 / static_cast<double>(k));
  }
  return torch::zeros({cfg.factor_dim});
}

BranchTying::BranchTying(torch::nn::Module& owner, const TyingConfig& cfg, torch::Tensor shared,
                         int64_t in_dim, int64_t mid_dim, double plain_std)
    : mode_(cfg.mode), position_(cfg.position), shared_(std::move(shared)) {
  if (mode_ == TyingMode::kKronecker) {
    const int64_t k = cfg.kron_k;
    // Var(W) = k · Var(A) · Var(B) = Var(B) with Var(A) = 1/k: B takes the plain init's variance.
    kron_b_ =
        owner.register_parameter("kron_b", torch::randn({k, mid_dim / k, in_dim / k}) * plain_std);
  } else if (mode_ == TyingMode::kScale) {
    // md_proj maps d_m to d' for down_out/up_in and to d for down_in/up_out (official md_proj).
    const bool to_mid = position_ == TyingPosition::kDownOut || position_ == TyingPosition::kUpIn;
    md_proj_ = owner.register_module("md_proj",
                                     torch::nn::Linear(shared_.size(0), to_mid ? mid_dim : in_dim));
  }
}

torch::Tensor BranchTying::beta() const {
  return md_proj_.ptr()->forward(shared_);
}

torch::Tensor BranchTying::down_weight(const torch::Tensor& stored) const {
  if (!active()) return stored;
  if (mode_ == TyingMode::kKronecker) return kronecker_sum(shared_, kron_b_);
  if (position_ == TyingPosition::kDownIn) return scale_weight(stored, beta(), true);
  if (position_ == TyingPosition::kDownOut) return scale_weight(stored, beta(), false);
  return stored;
}

torch::Tensor BranchTying::up_weight(const torch::Tensor& stored) const {
  if (!active() || mode_ != TyingMode::kScale) return stored;
  if (position_ == TyingPosition::kUpIn) return scale_weight(stored, beta(), true);
  if (position_ == TyingPosition::kUpOut) return scale_weight(stored, beta(), false);
  return stored;
}

}  // namespace mva
