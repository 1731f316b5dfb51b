#include "mvadapter/io/module_state.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "mvadapter/core/tensor_format.h"

namespace mva {
namespace {
std::string first_few(const std::vector<std::string>& names, size_t n = 12) {
  std::vector<std::string> head(names.begin(), names.begin() + std::min(n, names.size()));
  auto s = fmt::format("{}", fmt::join(head, ", "));
  if (names.size() > n) s += fmt::format(", ... ({} in all)", names.size());
  return s;
}
}  // namespace

int64_t load_module_state(torch::nn::Module& module, const TensorMap& tensors,
                          const std::string& source, const StateLoadOptions& options) {
  std::map<std::string, torch::Tensor> targets;
  for (const auto& p : module.named_parameters(true)) targets.emplace(p.key(), p.value());
  for (const auto& b : module.named_buffers(true)) targets.emplace(b.key(), b.value());

  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [name, t] : targets) {
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      if (!options.may_be_missing || !options.may_be_missing(name)) missing.push_back(name);
    } else if (it->second.sizes() != t.sizes()) {
      mismatched.push_back(fmt::format("{} (file {}, model {})", name,
                                       shape_str(it->second.sizes()), shape_str(t.sizes())));
    }
  }
  for (const auto& [name, t] : tensors) {
    if (!targets.count(name) && (!options.may_be_unexpected || !options.may_be_unexpected(name))) {
      unexpected.push_back(name);
    }
  }
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::string msg = source + ": weights do not match the model";
    if (!mismatched.empty()) msg += "; wrong shape: " + first_few(mismatched);
    if (!missing.empty()) msg += "; missing: " + first_few(missing);
    if (!unexpected.empty()) msg += "; unexpected: " + first_few(unexpected);
    throw Error(msg);
  }
  torch::NoGradGuard no_grad;
  int64_t copied = 0;
  for (auto& [name, t] : targets) {
    auto it = tensors.find(name);
    if (it == tensors.end()) continue;
    t.copy_(it->second);
    ++copied;
  }
  return copied;
}

TensorMap module_state(const torch::nn::Module& module,
                       const std::function<bool(const std::string&, const torch::Tensor&)>& keep) {
  TensorMap out;
  for (const auto& p : module.named_parameters(true)) {
    if (!keep || keep(p.key(), p.value())) out.emplace(p.key(), p.value().detach());
  }
  for (const auto& b : module.named_buffers(true)) {
    if (!keep || keep(b.key(), b.value())) out.emplace(b.key(), b.value().detach());
  }
  return out;
}

}  // namespace mva
