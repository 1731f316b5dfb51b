#pragma once
// A small random RetrievalModel for tests above the model layer that need a real model but no
// weights file (header-only: test_support itself links only the io layer).
#include <torch/torch.h>

#include "mvadapter/clip/clip_model.h"
#include "mvadapter/model/retrieval_model.h"

namespace mva::test {

/// The fixture CLIP's geometry (tests/fixtures/mv_adapter_tiny: width 128, 2 layers, 32 px,
/// D = 32, context 8) with the full BPE vocabulary, so real captions can be encoded.
inline ClipConfig tiny_clip_config() {
  ClipConfig c;
  c.embed_dim = 32;
  c.image_resolution = 32;
  c.vision_layers = 2;
  c.vision_width = 128;
  c.vision_patch_size = 16;
  c.context_length = 8;
  c.transformer_width = 128;
  c.transformer_heads = 2;
  c.transformer_layers = 2;
  return c;
}

/// MV-Adapter (4 frames, 8 words, tying on 2 layers; d' 16, d_m 8, calibration 4) on a random
/// CLIP of tiny_clip_config(), drawn from seed 3: the same model every call.
inline RetrievalModel tiny_mv_adapter_model() {
  torch::manual_seed(3);
  RetrievalModelConfig cfg;
  cfg.adapters = AdapterConfig::mv_adapter(4, 8, 2);
  cfg.adapters.video.mid_dim = 16;
  cfg.adapters.text.mid_dim = 16;
  cfg.adapters.tying.factor_dim = 8;
  cfg.adapters.video.calibration_dim = 4;
  return RetrievalModel(make_random_clip(tiny_clip_config()), cfg);
}

}  // namespace mva::test
