#include "mvadapter/model/gradient_scale.h"

namespace mva {
namespace {

struct ScaleGradient : public torch::autograd::Function<ScaleGradient> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               double factor) {
    ctx->saved_data["factor"] = factor;
    // A view, not x itself: returning an input unchanged would not get a new grad_fn.
    return x.view_as(x);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const double factor = ctx->saved_data["factor"].toDouble();
    return {grads[0] * factor, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor scale_gradient(const torch::Tensor& x, double factor) {
  return ScaleGradient::apply(x, factor);
}

}  // namespace mva
