#include "mvadapter/adapters/st_adapter.h"

#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"

namespace mva {

StAdapterImpl::StAdapterImpl(int64_t width, const BranchAdapterConfig& cfg) {
  const int64_t ca = cfg.mid_dim;
  if (cfg.kernel.size() != 3) {
    throw Error(fmt::format("st_adapter: kernel has {} sizes, expected 3", cfg.kernel.size()));
  }
  const std::vector<int64_t> k = cfg.kernel;
  fc1 = register_module("fc1", torch::nn::Linear(width, ca));
  conv = register_module(
      "conv",
      torch::nn::Conv3d(torch::nn::Conv3dOptions(ca, ca, {k[0], k[1], k[2]})
                            .stride(1)
                            .padding(torch::ExpandingArray<3>({k[0] / 2, k[1] / 2, k[2] / 2}))
                            .groups(ca)));
  fc2 = register_module("fc2", torch::nn::Linear(ca, width));
  // Authors' init: the zero conv makes the block the identity; fc1 and fc2 keep nn.Linear's
  // default weights (fc2 is NOT zeroed), every bias starts at zero.
  torch::NoGradGuard no_grad;
  conv->weight.zero_();
  conv->bias.zero_();
  fc1->bias.zero_();
  fc2->bias.zero_();
}

torch::Tensor StAdapterImpl::delta(const torch::Tensor& x, int64_t frames,
                                   const torch::Tensor& frame_mask) {
  const int64_t L = x.size(0), BT = x.size(1), P = L - 1;
  const auto grid = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(P))));
  if (P <= 0 || grid * grid != P) {
    throw Error(fmt::format("st_adapter: {} tokens are not [CLS] + a square grid of patches", L));
  }
  if (frames <= 0 || BT % frames != 0) {
    throw Error(fmt::format("st_adapter: {} rows are not whole clips of {} frames", BT, frames));
  }
  const int64_t B = BT / frames;
  auto z = fc1(x.narrow(0, 1, P));  // [P, B·F, Ca]
  const int64_t ca = z.size(2);
  if (frame_mask.defined()) {
    z = z * frame_mask.reshape({1, BT, 1}).to(z.scalar_type());
  }
  // [P, B, F, Ca] -> [B, Ca, F, H, W]; patch p = row * grid + column.
  auto v = z.reshape({P, B, frames, ca}).permute({1, 3, 2, 0}).reshape({B, ca, frames, grid, grid});
  v = conv(v).reshape({B, ca, frames, P}).permute({3, 0, 2, 1}).reshape({P, BT, ca});
  auto patches = fc2(v);
  return torch::cat({torch::zeros({1, BT, patches.size(2)}, patches.options()), patches}, 0);
}

torch::Tensor StAdapterImpl::forward(const torch::Tensor& x, const AdapterContext& ctx) {
  if (!ctx.frame_mask.defined()) return delta(x, 1);
  return delta(x, ctx.frame_mask.size(1), ctx.frame_mask);
}

}  // namespace mva
