#pragma once

#include <optional>
#include <set>
#include <string>

#include <torch/torch.h>

#include "mvadapter/core/enum_names.h"

namespace mva {

/// Numeric precision of the forward pass; the low-precision modes run matmuls under autocast.
/// Where the weights live between steps is MasterWeights.
enum class Precision {
  kFp32,  ///< everything in fp32 (default on CPU)
  kBf16,  ///< autocast to bfloat16 (CPU: oneDNN; CUDA: Ampere and later)
  kFp16,  ///< autocast to float16 with dynamic loss scaling (CUDA only)
};
/// fp32, bf16, fp16 (`train.precision`).
constexpr std::array<EnumName<Precision>, 3> enum_names(Precision) {
  return {{{Precision::kFp32, "fp32"}, {Precision::kBf16, "bf16"}, {Precision::kFp16, "fp16"}}};
}

/// "fp32" | "bf16" | "fp16" -> Precision; throws Error naming `field` otherwise.
Precision parse_precision(const std::string& name, const std::string& field);
std::string to_string(Precision p);

/// `train.master_weights`: the precision in which trainable weights and optimiser moments are
/// stored and updated.
enum class MasterWeights {
  kFp32,  ///< fp32 master weights and moments (default): every update counts
  /// The official code: convert_weights casts Linear/Conv/attention weights, adapters included, to
  /// fp16 and BertAdam keeps fp16 moments, so small updates round away (paper-notes §2).
  kFp16,
};
/// fp32, fp16 (`train.master_weights`).
constexpr std::array<EnumName<MasterWeights>, 2> enum_names(MasterWeights) {
  return {{{MasterWeights::kFp32, "fp32"}, {MasterWeights::kFp16, "fp16"}}};
}

/// "fp32" | "fp16" -> MasterWeights; throws Error naming `field` otherwise.
MasterWeights parse_master_weights(const std::string& name, const std::string& field);
std::string to_string(MasterWeights m);

/// Names (as named_parameters gives them) of the parameters the official `convert_weights` casts
/// to fp16: weight and bias of every Linear and Conv (adapters' included), the attention's fused
/// in-projection, CLIP's `proj` and `text_projection`. LayerNorms, embeddings, class token,
/// logit_scale, tying factors and LoRA stay fp32 there, and here.
std::set<std::string> official_fp16_parameters(const torch::nn::Module& model);

/// Rounds each parameter named by official_fp16_parameters to the nearest fp16 value, in place
/// (dtypes unchanged): the weights the official code holds after convert_weights.
void round_to_official_fp16(torch::nn::Module& model);

/// Checks that `precision` can run on `device` (fp16 needs CUDA); throws Error naming `field`.
void check_precision(Precision precision, const torch::Device& device, const std::string& field);

/// "cpu" | "cuda" | "cuda:N" -> the device that names (cuda is cuda:0), without asking whether
/// this build or machine has it; nullopt for any other text. The one reader of device names:
/// config validation and parse_device use it.
std::optional<torch::Device> device_from_name(const std::string& name);

/// "cpu" | "cuda" | "cuda:N" -> a device this build can use. A CUDA device on a build or machine
/// without CUDA is an Error naming `field`, not a crash at the first tensor.
torch::Device parse_device(const std::string& name, const std::string& field);

/// Enables autocast for `precision` on `device` for the guard's lifetime (no-op for fp32), and
/// restores the previous state on exit.
class AutocastGuard {
 public:
  AutocastGuard(Precision precision, const torch::Device& device);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  bool cuda_ = false;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kFloat;
};

}  // namespace mva
