#pragma once
// Training and evaluation from a run config, in code: what `mvadapter train` and `mvadapter eval`
// do, without the command line (docs/api.md).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "mvadapter/config/run_config.h"
#include "mvadapter/data/video_loader.h"
#include "mvadapter/dist/process_group.h"
#include "mvadapter/eval/evaluator.h"
#include "mvadapter/model/retrieval_model.h"
#include "mvadapter/train/trainer.h"

namespace mva {

/// How a TrainingRun is assembled besides its config.
struct TrainingRunOptions {
  /// Evaluate on the config's test split (after each epoch when eval.every_epoch, and at the
  /// end); false: no test set is read (pre-training).
  bool evaluate = true;
  /// The ranks of a multi-process run (join_process_group of run_setup.h), or null for one
  /// process. It must outlive the TrainingRun.
  ProcessGroup* group = nullptr;
  /// Written into results.json as "command".
  std::string command = "train";
};

/// One training run assembled from a config: the model (build_model), the training data and its
/// loader, the evaluator of the test split and the Trainer's options, exactly as
/// `mvadapter train` sets them up. Adjust trainer_options() (progress, stop_after_epochs, ...)
/// before run(). Not copyable: the loader and the evaluator belong to it.
class TrainingRun {
 public:
  /// Reads the datasets (checking their videos exist) and builds the model on the CPU; run()
  /// moves it to train.device. Creates `run_dir`. Throws Error for an invalid setting or
  /// missing data before anything trains.
  TrainingRun(RunConfig config, std::filesystem::path run_dir, TrainingRunOptions options = {});
  ~TrainingRun();
  TrainingRun(const TrainingRun&) = delete;
  TrainingRun& operator=(const TrainingRun&) = delete;

  /// Trains from scratch, or from run_dir/state/ when `resume` (Trainer::run).
  TrainSummary run(bool resume = false);

  const RunConfig& config() const { return config_; }
  const std::filesystem::path& run_dir() const { return run_dir_; }
  /// The model being trained (shared: it holds the trained weights after run()).
  RetrievalModel model() const { return model_; }
  /// The Trainer's settings, changeable until run().
  TrainerOptions& trainer_options() { return options_; }
  VideoLoader& loader() { return *loader_; }
  /// Null when built with evaluate = false.
  Evaluator* evaluator() { return evaluator_.get(); }

 private:
  RunConfig config_;
  std::filesystem::path run_dir_;
  TrainerOptions options_;
  RetrievalModel model_{nullptr};
  std::unique_ptr<VideoLoader> loader_;
  std::unique_ptr<Evaluator> evaluator_;
};

/// Trains `config` in `run_dir` (empty: run_directory(config), i.e. train.output_dir or
/// runs/<name>) in this process, as `mvadapter train` does with --quiet, and returns what the
/// Trainer reports. The run directory gets the usual files (config.yaml, metrics.jsonl,
/// checkpoints/ with self-describing adapter checkpoints, results.json, report.html).
/// `callbacks` follow the run (the report.html hook stays unless on_results is given); `stop`
/// ends it at the next step with its state saved (summary.interrupted; resume it with a
/// TrainingRun). Throws Error when a run already exists there.
TrainSummary train(const RunConfig& config, const std::filesystem::path& run_dir = {},
                   const TrainCallbacks& callbacks = {}, const StopToken& stop = {});

/// Evaluates `config`'s model on its test split: with the adapter weights of `checkpoint`, or
/// zero-shot (plain CLIP, no adapters) when it is empty, as `mvadapter eval` does: videos missing
/// on disk are left out with their captions (an Error with data.on_error fail).
EvalResult evaluate(RunConfig config, const std::filesystem::path& checkpoint = {});

}  // namespace mva
