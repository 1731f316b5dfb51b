#pragma once
#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>

#include "mvadapter/core/enum_names.h"
#include "mvadapter/io/safetensors.h"
#include "mvadapter/model/precision.h"
#include "mvadapter/model/retrieval_model.h"
#include "mvadapter/train/lr_schedule.h"

namespace mva {

/// Which update rule `Optimizer::step` applies.
enum class OptimizerKind {
  kAdamW,     ///< torch.optim.AdamW: bias-corrected moments, decay p *= 1 - lr·wd before the step
  kBertAdam,  ///< the official BertAdam: no bias correction, per-tensor grad clip, wd·p in update
};
/// adamw, bert_adam (`train.optimizer`).
constexpr std::array<EnumName<OptimizerKind>, 2> enum_names(OptimizerKind) {
  return {{{OptimizerKind::kAdamW, "adamw"}, {OptimizerKind::kBertAdam, "bert_adam"}}};
}

/// "adamw" | "bert_adam" -> OptimizerKind; throws Error naming `field` otherwise.
OptimizerKind parse_optimizer_kind(const std::string& name, const std::string& field);
std::string to_string(OptimizerKind kind);

/// Optimiser hyper-parameters (the `train.*` keys); the defaults are the official MSR-VTT recipe
/// (configs/retrieval_base_cfg.py + configs/msrvtt/_adapter_base.py, optimizer/build.py).
struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::kAdamW;
  double lr = 5e-6;           ///< adapter_decay and adapter_no_decay
  double clip_lr = 1e-7;      ///< clip_decay and clip_no_decay
  double weight_decay = 0.2;  ///< adapter_decay and clip_decay; adapter_no_decay gets 0
  /// The official base config gives clip_no_decay (CLIP biases) weight decay 0.2 as well, despite
  /// the group's name; false gives it 0.
  bool decay_clip_biases = true;
  std::array<double, 2> betas = {0.9, 0.98};
  double eps = 1e-6;
  double warmup = 0.1;  ///< fraction of total_steps with a linear warm-up
  ScheduleKind schedule = ScheduleKind::kCosine;
  /// bert_adam only: clip_grad_norm_(p, max_grad_norm) of each tensor inside step, each official
  /// tensor alone (a fused q/k/v projection is three: official_names); <= 0 = off. The official
  /// runner also clips globally to 1.0 before the step (TrainerOptions::grad_clip), so at equal
  /// thresholds this one never fires there; it does when the global clip is off or larger.
  double max_grad_norm = 1.0;
  /// kFp16 (bert_adam only): the official fp16 training. The parameters the official code casts
  /// (official_fp16_parameters) hold fp16 values, keep fp16 moments and are updated in fp16
  /// arithmetic; the others (LayerNorms, embeddings, tying factors) stay fp32 as there.
  MasterWeights master_weights = MasterWeights::kFp32;

  /// The base learning rate of a group (before the schedule).
  double lr_of(ParamGroup group) const;
  /// The weight decay of a group.
  double weight_decay_of(ParamGroup group) const;
};

/// AdamW or BertAdam over the trainable parameters of a model, in the official four groups
/// (param_group_of), each with its own lr and weight decay, the lr scaled by lr_factor each step.
/// Moments are kept in fp32 (fp64 for fp64 parameters) whatever the parameter dtype, except for
/// the fp16 parameters of MasterWeights::kFp16.
///
///   Optimizer opt(*model, options, total_steps);
///   opt.zero_grad(); loss.backward(); clip_grad_norm(opt.parameters(), 1.0); opt.step();
///   clamp_logit_scale(*model);
class Optimizer {
 public:
  using NamedParams = std::vector<std::pair<std::string, torch::Tensor>>;

  /// Takes every parameter of `model` with requires_grad, grouped by its name. Throws Error when
  /// there is none or an option is out of range. With MasterWeights::kFp16 the trainable ones
  /// among official_fp16_parameters(model) are rounded to fp16 values here and kept so.
  Optimizer(const torch::nn::Module& model, const OptimizerOptions& options, int64_t total_steps);
  /// The same for an explicit list of (name, parameter); names must be unique. `fp16_params`
  /// names the parameters MasterWeights::kFp16 stores in fp16 (ignored with kFp32).
  Optimizer(NamedParams params, const OptimizerOptions& options, int64_t total_steps,
            const std::set<std::string>& fp16_params = {});

  /// Clears the gradients; by default sets them undefined, so a parameter that gets no gradient
  /// before the next step() is left alone by it (moments and weight decay included), as PyTorch.
  void zero_grad(bool set_to_none = true);
  /// One update of every parameter that has a gradient. bert_adam clips each gradient in place.
  void step();

  /// Updates taken so far (step() calls).
  int64_t step_count() const { return step_; }
  int64_t total_steps() const { return total_steps_; }
  /// The schedule factor the next step() uses: lr_factor(step_count(), total_steps, ...).
  double schedule_factor() const;
  /// The learning rate of `group` for the next step(): base lr × schedule_factor().
  double lr_of(ParamGroup group) const;
  const OptimizerOptions& options() const { return options_; }

  /// The parameters it updates, in model order (what the global clip takes).
  std::vector<torch::Tensor> parameters() const;
  /// The names of the parameters in `group`, in model order.
  std::vector<std::string> names_in(ParamGroup group) const;

  /// Everything an exact resume needs: "<name>.exp_avg", "<name>.exp_avg_sq" (moment dtype),
  /// "<name>.step" (int64 scalar, updates this tensor received) per parameter, and "step"
  /// (int64 scalar, step_count()). Tensors are copies.
  TensorMap state() const;
  /// Restores state(): every key must be present with the parameter's shape and no other key may
  /// appear; otherwise throws Error naming the key and leaves the optimiser unchanged.
  void load_state(const TensorMap& state);

 private:
  struct Slot {
    std::string name;
    torch::Tensor param;
    ParamGroup group;
    int64_t official_parts = 1;  // bert_adam clips each part alone (official_names)
    bool fp16 = false;           // MasterWeights::kFp16 and an official fp16 tensor
    torch::Tensor exp_avg, exp_avg_sq;
    int64_t step = 0;
  };
  void step_adamw(Slot& slot, double lr, double weight_decay);
  void step_bert_adam(Slot& slot, double base_lr, double weight_decay);
  void step_bert_adam_fp16(Slot& slot, double base_lr, double weight_decay);

  OptimizerOptions options_;
  int64_t total_steps_;
  int64_t step_ = 0;
  std::vector<Slot> slots_;
};

/// Global gradient-norm clip over `params` (torch.nn.utils.clip_grad_norm_: scale every gradient
/// by max_norm / (norm + 1e-6) when that is < 1). Returns the total L2 norm before clipping;
/// max_norm <= 0 only measures it. Parameters without a gradient are skipped.
double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

/// logit_scale <= ln(max_scale) in place, outside autograd (the official runner does this after
/// every step; it sets no lower bound).
void clamp_logit_scale(torch::Tensor& logit_scale, double max_scale = 100.0);
/// The same for the model's clip.logit_scale.
void clamp_logit_scale(RetrievalModelImpl& model, double max_scale = 100.0);

}  // namespace mva
