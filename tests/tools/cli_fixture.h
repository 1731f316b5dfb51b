#pragma once
// Inputs shared by the tests that run the CLI end to end on the real fixture clips.
#include <filesystem>
#include <string>
#include <vector>

namespace mva::test {

/// Writes the tiny fixture CLIP (tests/fixtures/mv_adapter_tiny: width 128, 2 layers, 32 px,
/// D = 32) with its token table grown to the full BPE vocabulary, so real captions can be
/// encoded; the extra rows are random (seed 0).
void write_full_vocab_tiny_clip(const std::filesystem::path& out);

/// The `model:` and `adapters:` sections of a run config on that CLIP (`clip`): MV-Adapter with
/// small adapters (d' 16, 2 heads, calibration 4, tying on block 1 with d_m 8), as YAML text.
std::string tiny_model_yaml(const std::filesystem::path& clip);

/// File names of the 8 real MSR-VTT fixture clips (tests/fixtures/video/videos), sorted.
std::vector<std::string> fixture_clip_files();

/// An evaluation split over the fixture clips: its folder, config file and video ids.
struct IndexSetup {
  std::filesystem::path dir, config;
  std::vector<std::string> videos;  ///< file names = ids, sorted
};

/// A fresh folder (temp_dir(tag)) with the full-vocabulary tiny CLIP, a JSONL test split over
/// the 8 fixture clips with two captions each ("a person in clip number i", "the i th scene with
/// a red car") and `tiny.yaml` (4 frames, 8 words, 32 px, one thread, eval batch 3).
IndexSetup make_index_setup(const std::string& tag);

/// A training run on the fixture clips: its folder and config file.
struct TrainSetup {
  std::filesystem::path dir, config;
};

/// A fresh folder (temp_dir(tag)) with the full-vocabulary tiny CLIP, a JSONL dataset over the 8
/// fixture clips (three training captions per video, one test caption) and `tiny.yaml`: `epochs`
/// epochs of 6 optimiser steps (24 pairs, batch 4) on one thread, a metrics line per step, output
/// in dir/run_a. `train_extra` is YAML appended to its train: section ("  key: value\n" lines).
TrainSetup make_train_setup(const std::string& tag, int epochs = 2,
                            const std::string& train_extra = "");

}  // namespace mva::test
