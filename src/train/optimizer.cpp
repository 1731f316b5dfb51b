#include "mvadapter/train/optimizer.h"

#include <cmath>
#include <set>

#include <fmt/format.h>
#include <torch/nn/utils/clip_grad.h>

#include "mvadapter/core/error.h"
#include "mvadapter/core/tensor_format.h"

namespace mva {
namespace {

constexpr ParamGroup kAllGroups[] = {ParamGroup::kAdapterDecay, ParamGroup::kAdapterNoDecay,
                                     ParamGroup::kClipDecay, ParamGroup::kClipNoDecay};

void check_options(const OptimizerOptions& o, int64_t total_steps) {
  auto require = [](bool ok, const char* field, double value, const char* expected) {
    if (!ok)
      throw Error(fmt::format("{}: {} is out of range, expected {}", field, value, expected));
  };
  require(o.lr >= 0, "train.lr", o.lr, ">= 0");
  require(o.clip_lr >= 0, "train.clip_lr", o.clip_lr, ">= 0");
  require(o.weight_decay >= 0, "train.weight_decay", o.weight_decay, ">= 0");
  require(o.betas[0] >= 0 && o.betas[0] < 1, "train.betas[0]", o.betas[0], "a value in [0, 1)");
  require(o.betas[1] >= 0 && o.betas[1] < 1, "train.betas[1]", o.betas[1], "a value in [0, 1)");
  require(o.eps >= 0, "train.eps", o.eps, ">= 0");
  require(o.warmup >= 0 && o.warmup < 1, "train.warmup", o.warmup, "a fraction in [0, 1)");
  if (o.master_weights == MasterWeights::kFp16 && o.kind != OptimizerKind::kBertAdam) {
    throw Error(
        "train.master_weights: fp16 reproduces the official code's fp16 training, whose "
        "optimiser is BertAdam; set train.optimizer: bert_adam (or master_weights: fp32)");
  }
  if (total_steps <= 0) {
    throw Error(fmt::format("optimizer: total_steps is {}, expected > 0 (epochs × steps per epoch)",
                            total_steps));
  }
}

// Moments in fp32 even for half/bf16 parameters (fp32 master state), fp64 for fp64 parameters.
torch::ScalarType moment_dtype(const torch::Tensor& p) {
  return p.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
}

bool is_int64_scalar(const torch::Tensor& t) {
  return t.defined() && t.dim() == 0 && t.scalar_type() == torch::kLong;
}

}  // namespace

OptimizerKind parse_optimizer_kind(const std::string& name, const std::string& field) {
  if (auto v = enum_from_name<OptimizerKind>(name)) return *v;
  throw Error(fmt::format("{}: unknown optimizer '{}', expected {}", field, name,
                          enum_choices<OptimizerKind>(" or ")));
}

std::string to_string(OptimizerKind kind) {
  return enum_name(kind);
}

double OptimizerOptions::lr_of(ParamGroup group) const {
  return group == ParamGroup::kAdapterDecay || group == ParamGroup::kAdapterNoDecay ? lr : clip_lr;
}

double OptimizerOptions::weight_decay_of(ParamGroup group) const {
  switch (group) {
    case ParamGroup::kAdapterDecay:
    case ParamGroup::kClipDecay:
      return weight_decay;
    case ParamGroup::kAdapterNoDecay:
      return 0.0;
    case ParamGroup::kClipNoDecay:
      return decay_clip_biases ? weight_decay : 0.0;
  }
  return 0.0;
}

static Optimizer::NamedParams trainable_parameters(const torch::nn::Module& model) {
  Optimizer::NamedParams out;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    if (item.value().requires_grad()) out.emplace_back(item.key(), item.value());
  }
  if (out.empty()) {
    throw Error(
        "optimizer: the model has no trainable parameter (model.trainable: none?), nothing to "
        "optimise");
  }
  return out;
}

Optimizer::Optimizer(const torch::nn::Module& model, const OptimizerOptions& options,
                     int64_t total_steps)
    : Optimizer(trainable_parameters(model), options, total_steps,
                options.master_weights == MasterWeights::kFp16 ? official_fp16_parameters(model)
                                                               : std::set<std::string>{}) {}

Optimizer::Optimizer(NamedParams params, const OptimizerOptions& options, int64_t total_steps,
                     const std::set<std::string>& fp16_params)
    : options_(options), total_steps_(total_steps) {
  check_options(options_, total_steps_);
  if (params.empty()) throw Error("optimizer: no parameter to optimise");
  std::set<std::string> seen;
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : params) {
    if (!p.defined()) throw Error(fmt::format("optimizer: parameter '{}' is undefined", name));
    if (!seen.insert(name).second) {
      throw Error(fmt::format("optimizer: parameter '{}' is listed twice", name));
    }
    if (!p.is_floating_point()) {
      throw Error(fmt::format("optimizer: parameter '{}' has dtype {}, expected a floating type",
                              name, c10::toString(p.scalar_type())));
    }
    Slot s;
    s.name = name;
    s.param = p;
    s.group = param_group_of(name);
    s.official_parts = static_cast<int64_t>(official_names(name).size());
    s.fp16 = options_.master_weights == MasterWeights::kFp16 && fp16_params.count(name) > 0;
    if (s.fp16) p.copy_(p.to(torch::kHalf));  // convert_weights: the weight IS fp16 from now on
    auto like =
        torch::TensorOptions().dtype(s.fp16 ? torch::kHalf : moment_dtype(p)).device(p.device());
    s.exp_avg = torch::zeros(p.sizes(), like);
    s.exp_avg_sq = torch::zeros(p.sizes(), like);
    slots_.push_back(std::move(s));
  }
}

void Optimizer::zero_grad(bool set_to_none) {
  for (auto& s : slots_) {
    auto& g = s.param.mutable_grad();
    if (!g.defined()) continue;
    if (set_to_none) {
      g = torch::Tensor();
    } else {
      g = g.detach();
      g.zero_();
    }
  }
}

double Optimizer::schedule_factor() const {
  return lr_factor(step_, total_steps_, options_.warmup, options_.schedule);
}

double Optimizer::lr_of(ParamGroup group) const {
  return options_.lr_of(group) * schedule_factor();
}

void Optimizer::step() {
  torch::NoGradGuard no_grad;
  const double factor = schedule_factor();
  for (auto& s : slots_) {
    if (!s.param.grad().defined()) continue;
    const double wd = options_.weight_decay_of(s.group);
    if (options_.kind == OptimizerKind::kAdamW) {
      step_adamw(s, options_.lr_of(s.group) * factor, wd);
    } else if (s.fp16) {
      step_bert_adam_fp16(s, options_.lr_of(s.group), wd);
    } else {
      step_bert_adam(s, options_.lr_of(s.group), wd);
    }
  }
  ++step_;
}

// torch.optim.AdamW (single-tensor path of PyTorch 1.13), operation for operation, so that the
// result matches PyTorch to the last bits in fp64.
void Optimizer::step_adamw(Slot& s, double lr, double weight_decay) {
  const auto mt = s.exp_avg.scalar_type();
  auto p = s.param.detach();
  auto master = p.scalar_type() == mt ? p : p.to(mt);
  auto grad = s.param.grad().detach().to(mt);
  const double beta1 = options_.betas[0], beta2 = options_.betas[1];

  ++s.step;
  master.mul_(1.0 - lr * weight_decay);
  s.exp_avg.mul_(beta1).add_(grad, 1.0 - beta1);
  s.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1.0 - beta2);
  const double bias_correction1 = 1.0 - std::pow(beta1, static_cast<double>(s.step));
  const double bias_correction2 = 1.0 - std::pow(beta2, static_cast<double>(s.step));
  const double step_size = lr / bias_correction1;
  auto denom = (s.exp_avg_sq.sqrt() / std::sqrt(bias_correction2)).add_(options_.eps);
  master.addcdiv_(s.exp_avg, denom, -step_size);
  if (!master.is_same(p)) p.copy_(master);
}

// The official BertAdam (optimizer/bert_adam.py). Its schedule is read per tensor from the
// tensor's own update count, before the update, so the very first update has lr 0 under warm-up.
void Optimizer::step_bert_adam(Slot& s, double base_lr, double weight_decay) {
  const auto mt = s.exp_avg.scalar_type();
  auto p = s.param.detach();
  auto master = p.scalar_type() == mt ? p : p.to(mt);
  auto& raw_grad = s.param.mutable_grad();
  const bool same_dtype = raw_grad.scalar_type() == mt;
  auto grad = same_dtype ? raw_grad : raw_grad.to(mt);
  const double beta1 = options_.betas[0], beta2 = options_.betas[1];

  // clip_grad_norm_(p, max_grad_norm) on each official tensor alone; in place on p.grad, as the
  // original. Our fused q/k/v projection is three tensors there, each clipped by its own norm.
  if (options_.max_grad_norm > 0) {
    for (auto part : grad.chunk(s.official_parts, 0)) {
      auto coef = torch::reciprocal(part.norm() + 1e-6) * options_.max_grad_norm;
      part.mul_(torch::clamp(coef, c10::nullopt, 1.0));
    }
    if (!same_dtype) raw_grad.copy_(grad);
  }
  s.exp_avg.mul_(beta1).add_(grad, 1.0 - beta1);
  s.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1.0 - beta2);
  auto update = s.exp_avg / (s.exp_avg_sq.sqrt() + options_.eps);
  if (weight_decay > 0.0) update += master * weight_decay;
  const double lr = base_lr * lr_factor(s.step, total_steps_, options_.warmup, options_.schedule);
  master.add_(-(update * lr));
  ++s.step;
  if (!master.is_same(p)) p.copy_(master);
}

// step_bert_adam with the official code's fp16 tensors: weight, gradient and moments are fp16 and
// every PyTorch operation of the original stores its result in fp16, computed in fp32 (as its
// CUDA kernels do: fp32 arithmetic, fp16 result, scalars in fp32). So an update below half an
// ulp of its weight leaves it unchanged, and a second moment below fp16's smallest subnormal
// (6e-8) becomes 0. The weight is kept as an fp32 tensor holding an fp16 value, which lets the
// forward run in fp32 on CPU: the matmuls see exactly the official weights.
void Optimizer::step_bert_adam_fp16(Slot& s, double base_lr, double weight_decay) {
  const auto h = [](const torch::Tensor& t) { return t.to(torch::kHalf).to(torch::kFloat); };
  auto p = s.param.detach();
  auto w = p.to(torch::kFloat);
  auto& raw_grad = s.param.mutable_grad();
  auto grad = h(raw_grad.detach().to(torch::kFloat));
  const double beta1 = options_.betas[0], beta2 = options_.betas[1];

  if (options_.max_grad_norm > 0) {  // clip_grad_norm_ on an fp16 gradient, each official tensor
    std::vector<torch::Tensor> parts;
    for (const auto& part : grad.chunk(s.official_parts, 0)) {
      auto coef = h(options_.max_grad_norm / h(h(part.norm()) + 1e-6));
      parts.push_back(h(part * torch::clamp(coef, c10::nullopt, 1.0)));
    }
    grad = torch::cat(parts, 0);
    raw_grad.copy_(grad);
  }
  auto m = h(h(s.exp_avg.to(torch::kFloat) * beta1) + grad * (1.0 - beta1));
  auto v = h(h(s.exp_avg_sq.to(torch::kFloat) * beta2) + grad * grad * (1.0 - beta2));
  auto update = h(m / h(h(v.sqrt()) + options_.eps));
  if (weight_decay > 0.0) update = h(update + h(w * weight_decay));
  const double lr = base_lr * lr_factor(s.step, total_steps_, options_.warmup, options_.schedule);
  w = h(w - h(update * lr));
  ++s.step;
  s.exp_avg.copy_(m);
  s.exp_avg_sq.copy_(v);
  p.copy_(w);
}

std::vector<torch::Tensor> Optimizer::parameters() const {
  std::vector<torch::Tensor> out;
  out.reserve(slots_.size());
  for (const auto& s : slots_) out.push_back(s.param);
  return out;
}

std::vector<std::string> Optimizer::names_in(ParamGroup group) const {
  std::vector<std::string> out;
  for (const auto& s : slots_) {
    if (s.group == group) out.push_back(s.name);
  }
  return out;
}

TensorMap Optimizer::state() const {
  TensorMap out;
  for (const auto& s : slots_) {
    out[s.name + ".exp_avg"] = s.exp_avg.detach().clone();
    out[s.name + ".exp_avg_sq"] = s.exp_avg_sq.detach().clone();
    out[s.name + ".step"] = torch::tensor(s.step, torch::kLong);
  }
  out["step"] = torch::tensor(step_, torch::kLong);
  return out;
}

void Optimizer::load_state(const TensorMap& state) {
  // Check everything first, so that a bad file leaves the optimiser as it was.
  auto need = [&](const std::string& key) -> const torch::Tensor& {
    auto it = state.find(key);
    if (it == state.end() || !it->second.defined()) {
      throw Error(fmt::format("optimizer state: missing tensor '{}'", key));
    }
    return it->second;
  };
  auto need_step = [&](const std::string& key) {
    const auto& t = need(key);
    if (!is_int64_scalar(t)) {
      throw Error(
          fmt::format("optimizer state: '{}' has dtype {} and shape {}, expected an int64 "
                      "scalar",
                      key, c10::toString(t.scalar_type()), shape_str(t.sizes())));
    }
    const int64_t v = t.item<int64_t>();
    if (v < 0) throw Error(fmt::format("optimizer state: '{}' is {}, expected >= 0", key, v));
    return v;
  };
  std::set<std::string> expected{"step"};
  for (const auto& s : slots_) {
    for (const char* suffix : {".exp_avg", ".exp_avg_sq"}) {
      const std::string key = s.name + suffix;
      const auto& t = need(key);
      if (t.sizes() != s.param.sizes() || !t.is_floating_point()) {
        throw Error(fmt::format(
            "optimizer state: '{}' has dtype {} and shape {}, expected a "
            "floating tensor of shape {}",
            key, c10::toString(t.scalar_type()), shape_str(t.sizes()), shape_str(s.param.sizes())));
      }
      expected.insert(key);
    }
    need_step(s.name + ".step");
    expected.insert(s.name + ".step");
  }
  const int64_t global_step = need_step("step");
  for (const auto& [key, t] : state) {
    if (!expected.count(key)) {
      throw Error(
          fmt::format("optimizer state: unexpected tensor '{}' (not a trainable parameter "
                      "of this model)",
                      key));
    }
  }

  torch::NoGradGuard no_grad;
  for (auto& s : slots_) {
    s.exp_avg.copy_(state.at(s.name + ".exp_avg"));
    s.exp_avg_sq.copy_(state.at(s.name + ".exp_avg_sq"));
    s.step = state.at(s.name + ".step").item<int64_t>();
  }
  step_ = global_step;
}

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  if (max_norm > 0) return torch::nn::utils::clip_grad_norm_(params, max_norm);
  std::vector<torch::Tensor> norms;
  for (const auto& p : params) {
    if (p.grad().defined()) norms.push_back(p.grad().detach().norm());
  }
  if (norms.empty()) return 0.0;
  return torch::stack(norms).norm().item<double>();
}

void clamp_logit_scale(torch::Tensor& logit_scale, double max_scale) {
  torch::NoGradGuard no_grad;
  logit_scale.clamp_max_(std::log(max_scale));
}

void clamp_logit_scale(RetrievalModelImpl& model, double max_scale) {
  clamp_logit_scale(model.clip->logit_scale, max_scale);
}

}  // namespace mva
