#pragma once
#include <filesystem>
#include <map>
#include <string>

#include "mvadapter/io/safetensors.h"
#include "mvadapter/model/retrieval_model.h"

namespace mva {

/// The tensors a run trains (requires_grad), under the official names (`clip.visual...adapter.*`,
/// `clip.prompt.K`, trained CLIP biases), and `clip.logit_scale` (frozen, but clamped in training).
TensorMap trainable_state(const RetrievalModelImpl& model);

/// Writes trainable_state as safetensors with `metadata` (config, backbone sha256, step, ...).
void save_adapter_weights(const RetrievalModelImpl& model, const std::filesystem::path& path,
                          std::map<std::string, std::string> metadata = {});

/// Reads adapter weights: our safetensors or an official `.pth` (torch.save of the trainable
/// state dict). The `...adapter.shared_factor` aliases of the tied layers are folded into
/// `clip.prompt.K` (they must agree). Returns tensors under the model's names.
TensorMap read_adapter_weights(const std::filesystem::path& path);

/// Loads adapter weights into `model`: every adapter and tying tensor of the model must be in the
/// file; CLIP tensors in the file (trained biases) are loaded too. Throws Error listing mismatches.
void load_adapter_weights(RetrievalModelImpl& model, const std::filesystem::path& path);

/// `mvadapter convert`: an official `.pth` checkpoint -> safetensors with our (= official) names.
/// Returns the number of tensors written.
int64_t convert_official_checkpoint(const std::filesystem::path& pth,
                                    const std::filesystem::path& out);

}  // namespace mva
