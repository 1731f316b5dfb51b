#pragma once
#include <string>

#include "mvadapter/io/safetensors.h"

namespace mva {

/// Geometry of an OpenAI CLIP ViT, read off the weights the way OpenAI's `build_model` does.
struct ClipConfig {
  int64_t embed_dim = 512;
  int64_t image_resolution = 224;
  int64_t vision_layers = 12;
  int64_t vision_width = 768;
  int64_t vision_patch_size = 16;
  int64_t context_length = 77;
  int64_t vocab_size = 49408;
  int64_t transformer_width = 512;
  int64_t transformer_heads = 8;
  int64_t transformer_layers = 12;

  /// Heads of the vision transformer (OpenAI: width / 64).
  int64_t vision_heads() const { return vision_width / 64; }
  /// Patches per side of the image grid.
  int64_t grid() const { return image_resolution / vision_patch_size; }

  /// The geometry of OpenAI-named weights; throws Error naming `source` and the missing tensor.
  static ClipConfig from_weights(const TensorMap& weights, const std::string& source);
  /// A released architecture by name: "ViT-B/32", "ViT-B/16", "ViT-L/14" (also "ViT-B-16", "v16"),
  /// or "Tiny-32", the 32 px CLIP the embedded demo pre-trains.
  static ClipConfig named(const std::string& arch);
  /// "width 768, 12 layers, patch 16, 224 px | text width 512, 12 layers, ctx 77 | embed 512".
  std::string summary() const;
};

}  // namespace mva
