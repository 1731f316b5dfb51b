#include "mvadapter/clip/checkpoint.h"

#include <ATen/autocast_mode.h>
#include <torch/autograd.h>

namespace mva {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// What the backward needs to run the function again: the function and the autocast state.
struct Recompute : torch::CustomClassHolder {
  std::function<torch::Tensor(const torch::Tensor&)> fn;
  bool autocast_cpu = false, autocast_gpu = false;
  at::ScalarType cpu_dtype = at::kBFloat16, gpu_dtype = at::kHalf;
};

class AutocastState {
 public:
  explicit AutocastState(const Recompute& r)
      : cpu_(at::autocast::is_cpu_enabled()),
        gpu_(at::autocast::is_enabled()),
        cpu_dtype_(at::autocast::get_autocast_cpu_dtype()),
        gpu_dtype_(at::autocast::get_autocast_gpu_dtype()) {
    at::autocast::set_cpu_enabled(r.autocast_cpu);
    at::autocast::set_enabled(r.autocast_gpu);
    at::autocast::set_autocast_cpu_dtype(r.cpu_dtype);
    at::autocast::set_autocast_gpu_dtype(r.gpu_dtype);
  }
  ~AutocastState() {
    at::autocast::set_cpu_enabled(cpu_);
    at::autocast::set_enabled(gpu_);
    at::autocast::set_autocast_cpu_dtype(cpu_dtype_);
    at::autocast::set_autocast_gpu_dtype(gpu_dtype_);
  }

 private:
  bool cpu_, gpu_;
  at::ScalarType cpu_dtype_, gpu_dtype_;
};

class Checkpoint : public torch::autograd::Function<Checkpoint> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               c10::intrusive_ptr<Recompute> recompute) {
    ctx->save_for_backward({x});
    ctx->saved_data["recompute"] = c10::IValue::make_capsule(recompute);
    torch::NoGradGuard no_grad;
    return recompute->fn(x);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto recompute =
        c10::static_intrusive_pointer_cast<Recompute>(ctx->saved_data["recompute"].toCapsule());
    auto x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    torch::Tensor y;
    {
      torch::AutoGradMode grad(true);
      AutocastState autocast(*recompute);
      y = recompute->fn(x);
    }
    torch::autograd::backward({y}, {grads[0]});
    return {x.grad(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor checkpoint(std::function<torch::Tensor(const torch::Tensor&)> fn,
                         const torch::Tensor& x) {
  auto r = c10::make_intrusive<Recompute>();
  r->fn = std::move(fn);
  r->autocast_cpu = at::autocast::is_cpu_enabled();
  r->autocast_gpu = at::autocast::is_enabled();
  r->cpu_dtype = at::autocast::get_autocast_cpu_dtype();
  r->gpu_dtype = at::autocast::get_autocast_gpu_dtype();
  // Parameters inside fn are not inputs of the autograd function: an input that requires grad
  // makes the output require it, so the backward (which reaches them) runs.
  auto in = x.requires_grad() ? x : x.detach().requires_grad_(true);
  return Checkpoint::apply(in, r);
}

}  // namespace mva
