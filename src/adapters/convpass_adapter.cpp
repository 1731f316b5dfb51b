#include "mvadapter/adapters/convpass_adapter.h"

#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"

namespace mva {

namespace {

// The authors' `nn.Dropout(0.1)` after the second activation (active while training).
constexpr double kDropout = 0.1;

}  // namespace

ConvpassAdapterImpl::ConvpassAdapterImpl(int64_t width, const BranchAdapterConfig& cfg)
    : scale_(cfg.scale) {
  const int64_t r = cfg.mid_dim;
  adapter_down = register_module("adapter_down", torch::nn::Linear(width, r));
  adapter_conv = register_module(
      "adapter_conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(r, r, 3).stride(1).padding(1)));
  adapter_up = register_module("adapter_up", torch::nn::Linear(r, width));
  dropout = register_module("dropout", torch::nn::Dropout(kDropout));
  // Authors' init (xavier_init=False): the conv starts as the identity on its centre tap, so the
  // adapter begins as up(QuickGELU(QuickGELU(down x))), and W_up = 0 makes that zero. Their
  // `eye(8)` only works for r = 8; eye(r) is the same init for every width.
  torch::NoGradGuard no_grad;
  torch::nn::init::xavier_uniform_(adapter_down->weight);
  adapter_down->bias.zero_();
  adapter_conv->weight.zero_();
  adapter_conv->weight.select(3, 1).select(2, 1).add_(torch::eye(r));
  adapter_conv->bias.zero_();
  adapter_up->weight.zero_();
  adapter_up->bias.zero_();
}

torch::Tensor ConvpassAdapterImpl::adapt(const torch::Tensor& x) {
  const int64_t L = x.size(0), N = x.size(1), P = L - 1;
  const auto grid = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(P))));
  if (P <= 0 || grid * grid != P) {
    throw Error(fmt::format("convpass: {} tokens are not [CLS] + a square grid of patches", L));
  }
  auto d = quick_gelu(adapter_down(x));  // [L, N, r]
  const int64_t r = d.size(2);
  // Patch p = row * grid + column, as the authors' reshape to [B, 14, 14, r].
  auto patches = d.narrow(0, 1, P).permute({1, 2, 0}).reshape({N, r, grid, grid});
  patches = adapter_conv(patches).reshape({N, r, P}).permute({2, 0, 1});
  auto cls = adapter_conv(d.select(0, 0).reshape({N, r, 1, 1})).reshape({1, N, r});
  auto z = dropout(quick_gelu(torch::cat({cls, patches}, 0)));
  return adapter_up(z);
}

torch::Tensor ConvpassAdapterImpl::forward(const torch::Tensor& x, const AdapterContext&) {
  return scale_ * adapt(x);
}

}  // namespace mva
