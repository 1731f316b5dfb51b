#pragma once

#include <string>

#include <torch/torch.h>

namespace mva {

/// Numeric precision of the forward pass. Master weights and optimiser state stay fp32 in every
/// mode; the low-precision modes run matmuls under autocast.
enum class Precision {
  kFp32,  ///< everything in fp32 (default on CPU)
  kBf16,  ///< autocast to bfloat16 (CPU: oneDNN; CUDA: Ampere and later)
  kFp16,  ///< autocast to float16 with dynamic loss scaling (CUDA only)
};

/// "fp32" | "bf16" | "fp16" -> Precision; throws Error naming `field` otherwise.
Precision parse_precision(const std::string& name, const std::string& field);
std::string to_string(Precision p);

/// Checks that `precision` can run on `device` (fp16 needs CUDA); throws Error naming `field`.
void check_precision(Precision precision, const torch::Device& device, const std::string& field);

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
