#pragma once
#include <torch/nn.h>

#include "mvadapter/clip/clip_config.h"
#include "mvadapter/clip/transformer.h"

namespace mva {

/// CLIP's image encoder: patch conv, class token, positions, ln_pre, transformer, ln_post, proj.
class VisionTransformerImpl : public torch::nn::Module {
 public:
  explicit VisionTransformerImpl(const ClipConfig& cfg);
  /// images: [N, 3, H, W] normalised pixels. Returns the projected CLS feature [N, embed_dim].
  torch::Tensor forward(const torch::Tensor& images, const AdapterContext& ctx = {});

  torch::nn::Conv2d conv1{nullptr};
  torch::Tensor class_embedding, positional_embedding, proj;
  torch::nn::LayerNorm ln_pre{nullptr}, ln_post{nullptr};
  Transformer transformer{nullptr};

 private:
  int64_t resolution_;
};
TORCH_MODULE(VisionTransformer);

/// OpenAI CLIP (ViT) with OpenAI's parameter names, so released checkpoints load by name.
class ClipModelImpl : public torch::nn::Module {
 public:
  explicit ClipModelImpl(const ClipConfig& cfg);

  /// images [N, 3, H, W] -> features [N, embed_dim] (not normalised). ctx.frame_mask [B, F] with
  /// B*F == N is handed to video adapters.
  torch::Tensor encode_image(const torch::Tensor& images, const AdapterContext& ctx = {});
  /// ids [B, L] (L <= context_length; EOT = the largest id of a row) -> features [B, embed_dim].
  torch::Tensor encode_text(const torch::Tensor& ids, const AdapterContext& ctx = {});

  const ClipConfig& config() const { return cfg_; }

  VisionTransformer visual{nullptr};
  Transformer transformer{nullptr};
  torch::nn::Embedding token_embedding{nullptr};
  torch::Tensor positional_embedding, text_projection, logit_scale;
  torch::nn::LayerNorm ln_final{nullptr};
  /// Cross-Modality Tying factors shared by the video and text adapter of a tied layer
  /// (`prompt.K`, K counting tied layers); empty without CMT.
  torch::nn::ParameterList prompt{nullptr};

 private:
  ClipConfig cfg_;
};
TORCH_MODULE(ClipModel);

/// A ClipModel with OpenAI's random initialisation (`initialize_parameters`), for tests,
/// parameter reports and training from scratch.
ClipModel make_random_clip(const ClipConfig& cfg);

/// True for the tensors a method adds to CLIP — adapters (".adapter"), tying factors ("prompt",
/// "factor"), LoRA ("lora"), the seqTransf head ("head.") — whether named inside the CLIP or with
/// the retrieval model's "clip." prefix: the one rule for what an adapter checkpoint holds, what
/// save_clip leaves out, and the adapter parameter groups.
bool is_adapter_tensor(const std::string& name);

}  // namespace mva
