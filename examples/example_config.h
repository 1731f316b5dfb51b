#pragma once
// The run config both examples use, built in code instead of read from YAML: a tiny CLIP with
// random weights (no download), MV-Adapter sized for it, a few frames of 32 px.
#include <mvadapter/mvadapter.h>

/// MV-Adapter on a random Tiny-32 CLIP. model.clip is empty, so the CLIP's weights are drawn from
/// train.seed: every program using this config gets the same backbone, and adapter weights
/// trained by one fit the other. A real run names released weights instead:
/// cfg.model.clip = "ViT-B-16.pt"; cfg.model.arch = "ViT-B/16".
inline mva::RunConfig example_config() {
  mva::RunConfig cfg;
  cfg.name = "example";
  cfg.model.arch = "Tiny-32";  // width 128, 4 layers, 32 px input
  cfg.data.frames = 4;
  cfg.data.words = 16;
  cfg.data.size = 32;
  cfg.data.workers = 2;
  // The paper's adapters (TA, CMT on the last two blocks), sized for a width of 128.
  cfg.adapters = mva::AdapterConfig::mv_adapter(cfg.data.frames, cfg.data.words, /*layers=*/4);
  cfg.adapters.video.mid_dim = 32;
  cfg.adapters.video.calibration_dim = 8;
  cfg.adapters.text.mid_dim = 32;
  cfg.adapters.tying.factor_dim = 16;
  cfg.train.batch_size = 8;
  cfg.train.epochs = 15;
  cfg.train.lr = 4e-3;
  cfg.train.seed = 42;
  cfg.eval.batch_size = 8;
  return cfg;
}
