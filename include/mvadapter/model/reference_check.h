#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <torch/types.h>

#include "mvadapter/model/retrieval_model.h"

namespace mva {

/// The comparison of one output or gradient with the reference.
struct TensorCheck {
  std::string name;
  double max_abs_error = 0;
  double rel_error = 0;  ///< max|got - want| / max(max|want|, 1e-6) (DESIGN.md §9)
  bool ok = false;
};

/// What `mvadapter verify-reference` prints: one line per compared tensor.
struct ReferenceReport {
  std::vector<TensorCheck> checks;
  double tolerance = 1e-4;
  std::string precision = "fp64";
  bool ok() const;
  std::string to_string() const;
};

/// "fp64" -> kFloat64, "fp32" -> kFloat32 (the precisions a reference check runs in); throws Error
/// naming `field` otherwise.
torch::ScalarType reference_dtype(const std::string& precision,
                                  const std::string& field = "precision");

/// `got` against `want` (same number of elements), relative to max|want|: one report line.
TensorCheck compare_tensors(const std::string& name, const torch::Tensor& got,
                            const torch::Tensor& want, double tolerance);

/// The official model of a golden-tensor folder (config.json with `official_adapter_cfg`, CLIP
/// weights, adapter weights), converted to `dtype`, in training mode. `train_clip_biases`: the
/// forward fixture (io.safetensors) trains adapters and shared factors only; the training-loop
/// fixtures (train_steps, dist_steps) train every CLIP bias too, as the official recipe.
RetrievalModel load_reference_model(const std::filesystem::path& dir, torch::ScalarType dtype,
                                    bool train_clip_biases);

/// Rebuilds the official model described by `dir` (laid out like tests/fixtures/mv_adapter_tiny:
/// config.json, clip_openai.pt or clip.safetensors, adapter.safetensors or adapter_official.pth,
/// io.safetensors), runs the fixture's forward and backward and compares the visual output, text
/// output, logits, loss and every gradient with the stored ones. `precision` is "fp64" (default:
/// our rounding then cannot hide a real difference, and what remains is the reference's own fp32
/// rounding) or "fp32" (the path training uses; expect ~1e-5 relative on small gradients).
ReferenceReport verify_reference(const std::filesystem::path& dir, double tolerance = 1e-4,
                                 const std::string& precision = "fp64");

}  // namespace mva
