#pragma once
#include <filesystem>
#include <optional>
#include <string>

#include "mvadapter/clip/clip_model.h"
#include "mvadapter/io/safetensors.h"

namespace mva {

/// How a CLIP weight file names its tensors.
enum class ClipWeightFormat {
  kOpenAiTorchScript,  ///< OpenAI's released `ViT-B-16.pt` (a TorchScript archive)
  kOpenAiSafetensors,  ///< safetensors with OpenAI names
  kOpenAiStateDict,    ///< a torch.save'd state dict with OpenAI names
  kHuggingFace,        ///< safetensors with Hugging Face `CLIPModel` names
};

/// CLIP weights read from a file: fp32 tensors under OpenAI names.
struct ClipWeights {
  TensorMap tensors;
  ClipWeightFormat format = ClipWeightFormat::kOpenAiSafetensors;
  /// sha256 of the file when its name is a known OpenAI release (checked; a mismatch is warned).
  std::optional<std::string> sha256;
};

/// Reads CLIP weights: an OpenAI TorchScript archive (fp16 archives become fp32; the extra
/// `input_resolution`/`context_length`/`vocab_size` entries are dropped), or safetensors with
/// OpenAI or Hugging Face names (detected by the names). Throws Error naming the file on failure.
ClipWeights read_clip_weights(const std::filesystem::path& path);

/// Hugging Face `CLIPModel` names -> OpenAI names (q/k/v rows fused into in_proj, projections
/// transposed, position_ids dropped). See docs/DESIGN.md §2 for the table.
TensorMap hf_to_openai(const TensorMap& hf, const std::string& source);
/// OpenAI names -> Hugging Face `CLIPModel` names (the inverse of hf_to_openai).
TensorMap openai_to_hf(const TensorMap& openai);

/// Builds a ClipModel whose geometry is read off `weights` and loads them strictly.
ClipModel build_clip(const TensorMap& weights, const std::string& source);
/// read_clip_weights + build_clip.
ClipModel load_clip(const std::filesystem::path& path);

/// Writes the backbone's own tensors (not adapters, tying factors or LoRA installed in it) as
/// safetensors with OpenAI names, so load_clip and every command read it like a released CLIP.
void save_clip(const ClipModelImpl& clip, const std::filesystem::path& path,
               const std::map<std::string, std::string>& metadata = {});

/// The published sha256 of an OpenAI release by file name ("ViT-B-16.pt"), if known.
std::optional<std::string> known_clip_sha256(const std::string& file_name);

/// Whether `sha256` (hex) is that of one of OpenAI's released CLIP archives.
bool is_known_clip_sha256(const std::string& sha256);

}  // namespace mva
