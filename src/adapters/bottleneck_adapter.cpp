#include "mvadapter/adapters/bottleneck_adapter.h"

#include <cmath>

#include <torch/torch.h>

namespace mva {

BottleneckAdapterImpl::BottleneckAdapterImpl(int64_t width, const BranchAdapterConfig& cfg,
                                             const TyingConfig& tying, torch::Tensor shared,
                                             bool video_init)
    : scale_(cfg.scale), relu_(cfg.activation == Activation::kRelu) {
  const double w = static_cast<double>(width);
  const double down_std = video_init ? 1.0 / std::sqrt(3.0 * w) : std::pow(2.0 * w, -0.5);
  const bool kron = shared.defined() && tying.mode == TyingMode::kKronecker;
  down = register_module("down", Projection(width, cfg.mid_dim, !kron));
  up = register_module("up", torch::nn::Linear(cfg.mid_dim, width));
  if (shared.defined()) tying_ = BranchTying(*this, tying, shared, width, cfg.mid_dim, down_std);
  torch::NoGradGuard no_grad;
  if (!video_init && down->weight.defined()) down->weight.normal_(0, down_std);
  up->weight.zero_();
  up->bias.zero_();
}

torch::Tensor BottleneckAdapterImpl::forward(const torch::Tensor& x, const AdapterContext&) {
  auto z = torch::matmul(x, tying_.down_weight(down->weight).t()) + down->bias;
  z = relu_ ? torch::relu(z) : quick_gelu(z);
  return scale_ * (torch::matmul(z, tying_.up_weight(up->weight).t()) + up->bias);
}

}  // namespace mva
