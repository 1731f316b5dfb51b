#pragma once
#include <functional>
#include <string>

#include <torch/nn.h>

#include "mvadapter/io/safetensors.h"

namespace mva {

/// Which differences between a module and a tensor file are tolerated by load_module_state.
struct StateLoadOptions {
  /// Module tensors that may be absent from the file (e.g. adapters when loading a backbone).
  std::function<bool(const std::string&)> may_be_missing;
  /// File tensors the module does not have that are ignored (e.g. "input_resolution").
  std::function<bool(const std::string&)> may_be_unexpected;
};

/// Copies `tensors` into the parameters and buffers of `module` by name (converting dtype, never
/// shape). Missing, unexpected or mis-shaped tensors make one Error naming `source` and listing
/// every offending name with both shapes. Returns the number of tensors copied.
int64_t load_module_state(torch::nn::Module& module, const TensorMap& tensors,
                          const std::string& source, const StateLoadOptions& options = {});

/// The named parameters and buffers of `module` (detached), optionally only those for which
/// `keep(name, tensor)` is true.
TensorMap module_state(
    const torch::nn::Module& module,
    const std::function<bool(const std::string&, const torch::Tensor&)>& keep = {});

}  // namespace mva
