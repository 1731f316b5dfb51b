#pragma once
#include <filesystem>
#include <string>
#include <vector>

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

/// Rebuilds the official model described by `dir` (laid out like tests/fixtures/mv_adapter_tiny:
/// config.json, clip_openai.pt or clip.safetensors, adapter.safetensors or adapter_official.pth,
/// io.safetensors), runs the fixture's forward and backward and compares the visual output, text
/// output, logits, loss and every gradient with the stored ones. `precision` is "fp64" (default:
/// our rounding then cannot hide a real difference, and what remains is the reference's own fp32
/// rounding) or "fp32" (the path training uses; expect ~1e-5 relative on small gradients).
ReferenceReport verify_reference(const std::filesystem::path& dir, double tolerance = 1e-4,
                                 const std::string& precision = "fp64");

}  // namespace mva
