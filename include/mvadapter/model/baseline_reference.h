#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mvadapter/io/safetensors.h"
#include "mvadapter/model/reference_check.h"

namespace mva {

/// A baseline golden-tensor folder (tests/fixtures/baselines/<method>): what the authors' own
/// module computed. io.safetensors holds `in.*`, `out.*`, `grad.in.*` and `param.<authors'
/// name>` / `grad.<authors' name>`; meta.json the method, its sizes and the loss
/// `sum(out * loss_weight)`.
struct BaselineFixture {
  std::filesystem::path dir;
  std::string method;  ///< meta.json "method": convpass, st_adapter, cm_adapter, seqtransf
  nlohmann::json meta;
  TensorMap io;
  /// The `param.*` tensors under the authors' names (prefix removed).
  TensorMap params() const;
  /// meta.json sizes.<key> as an integer; throws Error naming the file and key when absent.
  int64_t size(const std::string& key) const;
  /// meta.json sizes.<key> as a list of integers (e.g. a kernel); throws Error like size().
  std::vector<int64_t> size_list(const std::string& key) const;
  /// io tensor `name`; throws Error naming the file when absent.
  const torch::Tensor& tensor(const std::string& name) const;
};

/// The comparison every baseline check ends with: each of `outputs` against the fixture's
/// `out.<name>`, then every `grad.*` of the fixture: `grad.in.X` against inputs[X].grad() and
/// `grad.P` against params[P].grad() (an absent tensor, or one without a gradient where the
/// reference has a non-zero one, is a FAIL line).
ReferenceReport compare_with_baseline(const BaselineFixture& fx,
                                      const std::map<std::string, torch::Tensor>& outputs,
                                      const std::map<std::string, torch::Tensor>& inputs,
                                      const std::map<std::string, torch::Tensor>& params,
                                      double tolerance, const std::string& precision);

/// True when `dir` has a meta.json (a baseline fixture rather than an MV-Adapter one).
bool is_baseline_fixture(const std::filesystem::path& dir);

/// Reads meta.json and io.safetensors of `dir`; throws Error naming a missing file or field.
BaselineFixture load_baseline_fixture(const std::filesystem::path& dir);

/// Rebuilds the module meta.json names with the fixture's sizes, loads `param.*` by the authors'
/// names, runs the fixture's forward and backward (loss = sum(out * loss_weight)) and compares
/// every output, input gradient and parameter gradient. precision: "fp64" or "fp32".
ReferenceReport check_baseline_reference(const std::filesystem::path& dir, double tolerance = 1e-5,
                                         const std::string& precision = "fp64");

/// Cross-Modal Adapter (LeapLabTHU): module-level cases (one adapter slot of each tower) and
/// whole CLIP blocks with the adapters after attention and MLP, both towers.
ReferenceReport check_cm_adapter_reference(const BaselineFixture& fx, double tolerance,
                                           const std::string& precision);

/// Convpass (JieShibo/PETL-ViT): one module, batch-first input x, output y.
ReferenceReport check_convpass_reference(const BaselineFixture& fx, double tolerance,
                                         const std::string& precision);

/// ST-Adapter (linziyi96/st-adapter): one module on [B·T, L, C] frame-major tokens.
ReferenceReport check_st_adapter_reference(const BaselineFixture& fx, double tolerance,
                                           const std::string& precision);

/// CLIP4Clip's seqTransf head: frames -> head -> pooled video, logits against the text features.
ReferenceReport check_seqtransf_reference(const BaselineFixture& fx, double tolerance,
                                          const std::string& precision);

}  // namespace mva
