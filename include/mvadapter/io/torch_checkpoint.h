#pragma once
#include <filesystem>

#include "mvadapter/io/safetensors.h"

namespace mva {

/// Reads a `torch.save`d dictionary of tensors (a state dict, possibly nested under "state_dict"
/// or "model"), as the official runner writes `.pth` checkpoints. The zip container goes through
/// LibTorch's archive reader, data.pkl through our own pickle reader, which accepts only the
/// globals a dictionary of tensors needs (parse_torch_pickle): such a file is safe to load from
/// strangers. Non-tensor entries are skipped; anything else throws Error naming the path.
TensorMap read_torch_state_dict(const std::filesystem::path& path);

/// True for a TorchScript archive (torch.jit.save: it has constants.pkl), which only LibTorch's
/// deserializer reads — code that is not hardened against hostile files.
bool is_torchscript_archive(const std::filesystem::path& path);

/// Hex sha256 of a file's bytes (streamed; for checking downloaded weights).
std::string file_sha256(const std::filesystem::path& path);

}  // namespace mva
