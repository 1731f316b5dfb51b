#pragma once
#include <cmath>

#include <torch/nn.h>
#include <torch/nn/init.h>

namespace mva {

/// A Linear layer whose weight may be generated elsewhere (Kronecker tying): `weight` is only
/// registered when stored, `bias` always. Names match torch::nn::Linear, so checkpoints are the
/// same as the official `nn.Linear` where the weight exists.
class ProjectionImpl : public torch::nn::Module {
 public:
  ProjectionImpl(int64_t in, int64_t out, bool stored_weight) {
    if (stored_weight) {
      weight = register_parameter("weight", torch::empty({out, in}));
      // PyTorch's nn.Linear default: kaiming_uniform(a = sqrt(5)).
      torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
    }
    bias = register_parameter("bias", torch::zeros({out}));
  }
  torch::Tensor weight, bias;
};
TORCH_MODULE(Projection);

}  // namespace mva
