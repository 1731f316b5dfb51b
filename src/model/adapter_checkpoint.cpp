#include "mvadapter/model/adapter_checkpoint.h"

#include <regex>

#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "mvadapter/io/module_state.h"
#include "mvadapter/io/torch_checkpoint.h"

namespace mva {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The official model stores each tied layer's factor once as clip.prompt.K and again as an alias
// in both adapters of that layer; keep one copy, after checking every alias equals a prompt.
TensorMap fold_aliases(TensorMap tensors, const std::string& source) {
  std::vector<torch::Tensor> prompts;
  for (const auto& [name, t] : tensors) {
    if (name.rfind("clip.prompt.", 0) == 0) prompts.push_back(t);
  }
  for (auto it = tensors.begin(); it != tensors.end();) {
    if (!ends_with(it->first, ".adapter.shared_factor")) {
      ++it;
      continue;
    }
    bool matched = false;
    for (const auto& p : prompts)
      matched = matched || (p.sizes() == it->second.sizes() && torch::equal(p, it->second));
    if (!matched) {
      throw Error(
          fmt::format("{}: '{}' equals no clip.prompt.K tensor (the shared tying factor "
                      "must be stored as clip.prompt.K)",
                      source, it->first));
    }
    it = tensors.erase(it);
  }
  return tensors;
}

}  // namespace

TensorMap trainable_state(const RetrievalModelImpl& model) {
  // logit_scale is frozen but the trainer clamps it to ln 100 after each step (as the official
  // runner does), so it is part of what a run produces.
  return module_state(model, [](const std::string& name, const torch::Tensor& t) {
    return t.requires_grad() || name == "clip.logit_scale";
  });
}

void save_adapter_weights(const RetrievalModelImpl& model, const std::filesystem::path& path,
                          std::map<std::string, std::string> metadata) {
  metadata.emplace("format", "mvadapter-adapters");
  write_safetensors(path, trainable_state(model), metadata);
}

TensorMap read_adapter_weights(const std::filesystem::path& path) {
  TensorMap t = path.extension() == ".safetensors" ? read_safetensors(path).tensors
                                                   : read_torch_state_dict(path);
  for (auto& [name, v] : t) {
    if (v.is_floating_point()) v = v.to(torch::kFloat32);  // official checkpoints are fp16
  }
  return fold_aliases(std::move(t), path.string());
}

void load_adapter_weights(RetrievalModelImpl& model, const std::filesystem::path& path) {
  auto tensors = read_adapter_weights(path);
  StateLoadOptions opt;
  // Only adapter tensors (LoRA's and the seqTransf head's too) are required; CLIP tensors come
  // from the backbone file.
  opt.may_be_missing = [](const std::string& name) { return !is_adapter_tensor(name); };
  load_module_state(model, tensors, path.string(), opt);
}

int64_t convert_official_checkpoint(const std::filesystem::path& pth,
                                    const std::filesystem::path& out) {
  auto tensors = read_adapter_weights(pth);
  write_safetensors(out, tensors,
                    {{"format", "mvadapter-adapters"}, {"source", pth.filename().string()}});
  return static_cast<int64_t>(tensors.size());
}

}  // namespace mva
