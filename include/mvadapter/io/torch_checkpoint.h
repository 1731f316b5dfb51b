#pragma once
#include <filesystem>

#include "mvadapter/io/safetensors.h"

namespace mva {

/// Reads a `torch.save`d dictionary of tensors (a state dict, possibly nested under "state_dict"
/// or "model"), as the official runner writes `.pth` checkpoints. Non-tensor entries are skipped;
/// a file that is not such a pickle throws Error naming the path.
TensorMap read_torch_state_dict(const std::filesystem::path& path);

/// Hex sha256 of a file's bytes (streamed; for checking downloaded weights).
std::string file_sha256(const std::filesystem::path& path);

}  // namespace mva
