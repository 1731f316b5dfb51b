#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "mvadapter/eval/metrics.h"

namespace mva {

/// What results.json holds: the outcome of a training run (`train`, `pretrain`) or of one
/// evaluation (`eval --out`). The one writer and reader of that file: the Trainer, `eval`,
/// `compare` and the run report all go through it, so they agree on its keys.
struct RunResults {
  std::string name;          ///< the run's name
  std::string command;       ///< "train", "pretrain" or "eval"
  std::string dataset;       ///< data.dataset
  std::string split;         ///< the evaluated split (eval); empty for a training run
  std::string arch;          ///< the CLIP: model.clip, or model.arch for random weights
  std::string trainable;     ///< model.trainable: adapters, full, bitfit or none
  bool use_adapters = true;  ///< model.use_adapters
  int64_t frames = 0;        ///< data.frames
  int64_t words = 0;         ///< data.words
  std::string adapter;       ///< eval: the adapter weights evaluated, or "zero-shot"
  std::string precision;     ///< train.precision

  int64_t trainable_params = 0;
  int64_t adapter_params = 0;
  int64_t clip_params = 0;
  double percent_of_clip = 0.0;

  int64_t epochs = 0;         ///< train.epochs
  int64_t epochs_done = 0;    ///< epochs completed, resumed sessions included
  int64_t steps = 0;          ///< optimiser steps in all
  int64_t skipped_steps = 0;  ///< updates dropped (non-finite values, fp16 overflows)
  bool finished = true;       ///< false: stopped early (the state is saved to resume)
  int64_t best_epoch = 0;     ///< the epoch `best` was measured after (0: none or zero-shot)
  std::optional<int64_t> final_epoch;  ///< epochs done when `final` was measured

  /// The selected epoch's metrics (eval.convention) and the same under the official convention.
  std::optional<RetrievalMetrics> best, best_official;
  /// The last evaluation's metrics, both conventions.
  std::optional<RetrievalMetrics> final, final_official;
  /// update_best_by_metric's record: the best epoch of each criterion.
  nlohmann::json best_by_metric = nlohmann::json::object();

  int64_t skipped_videos = 0;       ///< training samples left out (undecodable videos)
  int64_t eval_skipped_videos = 0;  ///< test videos left out (missing or undecodable)
  double wall_time_s = 0.0;
  std::string date;  ///< UTC, when written

  /// Keys this version does not know (written by a newer one, or by scripts): kept as they are.
  nlohmann::json extra = nlohmann::json::object();

  /// The results.json object (keys in a fixed order; metrics absent are null).
  nlohmann::json to_json() const;
  /// Inverse of to_json. Keys that are missing keep their defaults (older files); a key of the
  /// wrong type throws Error naming `source` and the key.
  static RunResults from_json(const nlohmann::json& j, const std::string& source);
};

/// Reads `path`: a results.json, or a run directory holding one. Throws Error naming the file
/// when it is missing, malformed or of the wrong shape.
RunResults read_run_results(const std::filesystem::path& path);

/// Writes `dir`/results.json atomically.
void write_run_results(const std::filesystem::path& dir, const RunResults& results);

}  // namespace mva
