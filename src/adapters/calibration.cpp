#include "mvadapter/adapters/calibration.h"

#include <torch/torch.h>

namespace mva {

CalibrationImpl::CalibrationImpl(int64_t mid, int64_t hidden) {
  g = register_module("g", torch::nn::Linear(mid, mid));
  a = register_module("a", torch::nn::Linear(2 * mid, hidden));
  b = register_module("b", torch::nn::Linear(torch::nn::LinearOptions(hidden, mid).bias(false)));
  torch::NoGradGuard no_grad;
  b->weight.zero_();  // alpha = 1 at initialisation: the untrained adapter is the plain one
}

torch::Tensor CalibrationImpl::forward(const torch::Tensor& cc, const torch::Tensor& x,
                                       const torch::Tensor& frame_mask) {
  auto ctx = g(cc).unsqueeze(1).expand({-1, x.size(1), -1});
  auto in = torch::cat({x, ctx}, -1) * frame_mask.to(x.scalar_type()).unsqueeze(-1);
  return b(torch::relu(a(in))) + 1;
}

}  // namespace mva
