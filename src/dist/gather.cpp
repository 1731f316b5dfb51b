#include "mvadapter/dist/gather.h"

#include <torch/autograd.h>

#include "mvadapter/dist/process_group.h"

namespace mva {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

class GatherRows : public torch::autograd::Function<GatherRows> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, int64_t group,
                               double grad_scale) {
    ctx->saved_data["group"] = group;
    ctx->saved_data["scale"] = grad_scale;
    ctx->saved_data["rows"] = x.size(0);
    auto* pg = reinterpret_cast<ProcessGroup*>(group);
    if (pg == nullptr) return x.view_as(x);
    return pg->all_gather_cat(x.detach(), "gather embeddings");
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto* pg = reinterpret_cast<ProcessGroup*>(ctx->saved_data["group"].toInt());
    const double scale = ctx->saved_data["scale"].toDouble();
    torch::Tensor g = grads[0];
    if (pg != nullptr) {
      // Every rank's loss may use every row, so this rank's rows get the sum of all ranks'
      // gradients (equal when the ranks compute the same loss: the average over ranks later
      // divides by W again).
      g = g.contiguous().clone();
      pg->all_reduce_sum(g, "gather embeddings (backward)");
      const int64_t rows = ctx->saved_data["rows"].toInt();
      g = g.narrow(0, pg->rank() * rows, rows);
    }
    if (scale != 1.0) g = g * scale;
    return {g, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor gather_rows(const torch::Tensor& x, ProcessGroup* group, double grad_scale) {
  if (group == nullptr && grad_scale == 1.0) return x;
  return GatherRows::apply(x, reinterpret_cast<int64_t>(group), grad_scale);
}

}  // namespace mva
