#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mvadapter/core/enum_names.h"
#include "mvadapter/data/video_loader.h"
#include "mvadapter/dist/process_group.h"
#include "mvadapter/eval/evaluator.h"
#include "mvadapter/model/precision.h"
#include "mvadapter/model/retrieval_model.h"
#include "mvadapter/train/optimizer.h"
#include "mvadapter/train/run_results.h"

namespace mva {

/// What the training loop does with a step whose loss or gradient is NaN or infinite
/// (`train.on_nonfinite`). The update is never applied.
enum class NonfiniteAction {
  kStop,  ///< stop the run with one error naming the step; the last saved state is the good one
  kSkip,  ///< drop the step's update, count it (metrics.jsonl, results.json) and go on
};
/// stop, skip (`train.on_nonfinite`).
constexpr std::array<EnumName<NonfiniteAction>, 2> enum_names(NonfiniteAction) {
  return {{{NonfiniteAction::kStop, "stop"}, {NonfiniteAction::kSkip, "skip"}}};
}

/// enum_name(action), kept for callers that print options with to_string.
std::string to_string(NonfiniteAction action);

/// `train.save_every_steps: auto`.
constexpr int64_t kAutoSaveInterval = -1;

/// The interval `auto` stands for: four training-state saves per epoch (every
/// ceil(steps_per_epoch / 4) steps) when an epoch has at least 100 optimiser steps, otherwise 0
/// (at epoch ends only, which already bounds the loss to under 100 steps).
int64_t auto_save_interval(int64_t steps_per_epoch);

/// A request to stop a training run at its next optimiser step, with its training state saved
/// (resumable). Copies share one flag: keep one where the request comes from (a signal handler, a
/// UI thread, a callback) and give a copy to the run's TrainerOptions. request() is
/// async-signal-safe and thread-safe.
class StopToken {
 public:
  StopToken() : flag_(std::make_shared<std::atomic<bool>>(false)) {}
  /// Asks the run to stop.
  void request() const noexcept { flag_->store(true); }
  /// Whether a stop was requested since construction or the last reset().
  bool requested() const noexcept { return flag_->load(); }
  /// Withdraws a request (to train again with the same token).
  void reset() const noexcept { flag_->store(false); }

 private:
  std::shared_ptr<std::atomic<bool>> flag_;
};

/// One optimiser step as TrainCallbacks::on_step sees it.
struct TrainStepEvent {
  int64_t epoch = 0;       ///< 1-based epoch the step belongs to
  int64_t step = 0;        ///< optimiser steps taken in the run, this one included
  double loss = 0.0;       ///< the step's training loss; NaN when its update was dropped
  double grad_norm = 0.0;  ///< global gradient norm before clipping (0 when dropped)
  double lr = 0.0;         ///< the adapters' learning rate after the step
  bool applied = true;     ///< false: the update was dropped (non-finite values, fp16 overflow)
};

/// Hooks the training loop calls as it goes, on the main rank (rank 0) only; each may be empty.
/// They run on the training thread between steps, so a slow hook slows training; to end a run
/// early, request its TrainerOptions::stop from one (the state is saved, the run resumable).
struct TrainCallbacks {
  /// After every optimiser step.
  std::function<void(const TrainStepEvent&)> on_step;
  /// After each epoch's last step, with the epoch (1-based) and its mean training loss.
  std::function<void(int64_t epoch, double mean_loss)> on_epoch_end;
  /// After each evaluation, with the epochs done (0: before training) and the result.
  std::function<void(int64_t epoch, const EvalResult& result)> on_eval;
  /// After results.json is written (each epoch and at the end), for the run directory's other
  /// outputs: run_setup's trainer_options() writes report.html here. Empty: nothing more.
  std::function<void(const std::filesystem::path& run_dir)> on_results;
};

/// Everything the training loop needs besides the model and the data (the `train.*` keys).
struct TrainerOptions {
  OptimizerOptions optimizer;
  int64_t epochs = 5;
  int64_t grad_accum = 1;  ///< micro-batches per optimiser step (the loader yields micro-batches)
  double grad_clip = 1.0;  ///< global grad-norm clip; <= 0 = off
  Precision precision = Precision::kFp32;
  torch::Device device = torch::kCPU;
  uint64_t seed = 42;
  int64_t log_every = 10;  ///< optimiser steps per metrics.jsonl "train" line
  bool save_every_epoch = true;
  /// Also save the training state after every N-th optimiser step (counted over the run) inside
  /// an epoch, so a killed run loses at most N steps; 0 = at epoch ends only; kAutoSaveInterval =
  /// auto_save_interval(steps_per_epoch()). Rank 0 alone writes it.
  int64_t save_every_steps = kAutoSaveInterval;
  NonfiniteAction on_nonfinite = NonfiniteAction::kStop;
  bool eval_every_epoch = true;
  /// Stop (saving the training state) after this many epochs have completed in total, even if
  /// `epochs` is larger; 0 = run to the end. For time-sliced jobs and for resume tests.
  int64_t stop_after_epochs = 0;
  bool progress = true;  ///< progress line on a terminal
  /// The ranks of a multi-process run (null: one process). The loader must yield this rank's
  /// slice of each global batch (LoaderOptions rank/world_size), the evaluator must share the
  /// group, and the group must outlive the Trainer. Rank 0 alone writes files.
  ProcessGroup* group = nullptr;
  /// Scale the gradient as the official code does on this many GPUs (DESIGN.md §8); 0 = exact.
  int64_t emulate_world_size = 0;
  /// One contrastive loss over all grad_accum micro-batches (and ranks), by gradient caching.
  bool grad_cache = false;
  /// torch's deterministic algorithms (CUDA: slower kernels, same result run to run).
  bool deterministic = false;
  /// Recompute each CLIP block in the backward instead of keeping its activations.
  bool activation_checkpointing = false;

  std::filesystem::path run_dir;
  std::string name;         ///< run name (results.json, report)
  std::string config_yaml;  ///< the resolved config, written as run_dir/config.yaml
  /// What results.json says about the run besides its outcome (dataset, arch, command, ...);
  /// the Trainer fills in the rest.
  RunResults run_info;
  /// Extra metadata stored in every adapter checkpoint (backbone sha256, ...).
  std::map<std::string, std::string> checkpoint_metadata;
  /// Ends the run at the next optimiser step when requested (state saved): SIGINT in the CLI.
  StopToken stop;
  TrainCallbacks callbacks;
};

/// What a finished (or interrupted) run produced.
struct TrainSummary {
  bool interrupted = false;        ///< stopped early (SIGINT or stop_after_epochs); state is saved
  int64_t epochs_done = 0;         ///< epochs completed in total, including resumed ones
  int64_t steps = 0;               ///< optimiser steps in total
  std::vector<double> epoch_loss;  ///< mean training loss of each epoch run by this process
  /// Steps whose update was dropped (non-finite values under on_nonfinite skip, or fp16 loss-scale
  /// overflows), in total, including resumed sessions.
  int64_t skipped_steps = 0;
  std::optional<EvalResult> final_eval;
  int64_t final_epoch = 0;                        ///< epochs done when final_eval was computed
  std::optional<RetrievalMetrics> best;           ///< the selected checkpoint's (eval.convention)
  std::optional<RetrievalMetrics> best_official;  ///< the same under the official convention
  int64_t best_epoch = 0;
  std::filesystem::path state_path;  ///< the training state to --resume from
};

/// The official runner's `log_best`: the best epoch for each criterion separately. `best` maps a
/// criterion (t2v_r1, v2t_r1, t2v_sum, v2t_sum, sum = t2v_sum + v2t_sum) to {"epoch", "value"};
/// each criterion that `m`, evaluated after `epoch` epochs, beats strictly is replaced (the first
/// epoch keeps a tie). Give it the official convention's metrics, whose recalls the runner logs.
void update_best_by_metric(nlohmann::json& best, int64_t epoch, const RetrievalMetrics& m);

/// The training loop of DESIGN.md §5: symmetric contrastive loss over each batch, the official
/// optimiser groups, warm-up + cosine schedule, global grad clip, logit_scale clamp, gradient
/// accumulation, autocast precision; per epoch: evaluation, adapter checkpoints (epoch_N, best,
/// last), the full training state, metrics.jsonl, results.json and report.html in `run_dir`.
///
/// Resuming (`resume = true`) restores the trainable weights, optimiser moments, step, schedule,
/// RNG and loader position from run_dir/state/ and continues to the same result as a run that was
/// never stopped. A stop request (options.stop; SIGINT in the CLI) ends the run at the next
/// optimiser step after saving the training state. Inside an epoch the state is also saved every
/// save_interval() steps; every file is written atomically (io/atomic_file.h), so a kill -9 at any
/// moment leaves the last state and checkpoints loadable. A non-finite loss or gradient stops the
/// run or skips the step (options.on_nonfinite).
class Trainer {
 public:
  /// `evaluator` may be null (no evaluation). The loader must be in a training mode.
  Trainer(RetrievalModel model, VideoLoader& train_loader, Evaluator* evaluator,
          TrainerOptions options);

  /// Trains from scratch, or from run_dir/state/train_state.safetensors when `resume`.
  TrainSummary run(bool resume = false);

  /// run_dir/state/train_state.safetensors.
  static std::filesystem::path state_path(const std::filesystem::path& run_dir);
  /// Optimiser steps per epoch for this loader and accumulation.
  int64_t steps_per_epoch() const;
  /// Steps between mid-epoch training-state saves (save_every_steps with auto resolved); 0 = none.
  int64_t save_interval() const;

 private:
  struct Position {
    int64_t epoch = 0;   // 0-based epoch in progress (== epochs_done at an epoch boundary)
    int64_t sample = 0;  // next sample of that epoch
    int64_t step = 0;    // optimiser steps taken
    int64_t best_epoch = 0;
    double best_score = -1.0;
    double elapsed_s = 0.0;
    int64_t skipped_steps = 0;   // updates dropped (non-finite values)
    int64_t metrics_bytes = -1;  // length of metrics.jsonl when the state was saved; -1 unknown
  };
  /// Writes the training state (rank 0); `pos.metrics_bytes` is the synced length of the log.
  void save_state(const Position& pos);
  Position load_state();
  void write_results(const TrainSummary& summary, const Position& pos, double wall_s);

  // One run() in parts: its state, one optimiser step, one epoch, the epoch's end (evaluation,
  // checkpoints, state) and the run directory's side effects.
  struct RunState;
  struct EpochState;
  /// Makes the run directory (rank 0): folders, stale temporary files removed, config.yaml.
  void prepare_run_dir(bool resume);
  /// One optimiser step over the collected micro-batches; returns whether the run stops after it.
  bool take_step(RunState& st, EpochState& ep);
  /// One epoch from the saved position; returns whether the run stopped (state saved).
  bool run_epoch(RunState& st, int64_t epoch);
  /// Evaluation, adapter checkpoints, training state and results after `epoch`; returns whether
  /// the run stops there.
  bool end_epoch(RunState& st, int64_t epoch);
  /// Saves the training state at st.pos (rank 0 writes; every rank syncs the log).
  void finish_state(RunState& st);
  /// The metrics.jsonl line and the on_eval callback of st.summary.final_eval.
  void log_eval(RunState& st, int64_t epoch_done);
  /// results.json and the on_results callback (rank 0).
  void publish(RunState& st);
  /// Embeddings of one micro-batch, padded to the loader's batch size on a multi-process run
  /// (a missing or short batch: zero rows, marked invalid in `valid`).
  std::pair<torch::Tensor, torch::Tensor> embed(const std::optional<VideoBatch>& batch,
                                                torch::Tensor* valid);
  /// The contrastive loss over the global batch of local embeddings t, v (gathered across ranks,
  /// invalid rows dropped).
  torch::Tensor global_loss(const torch::Tensor& t, const torch::Tensor& v,
                            const torch::Tensor& valid);
  /// Forward and backward of one optimiser step's micro-batches; returns the summed loss.
  torch::Tensor accumulate(const std::vector<std::optional<VideoBatch>>& micro);
  torch::Tensor accumulate_cached(const std::vector<std::optional<VideoBatch>>& micro);
  /// Sums the gradients over ranks and divides by their number (one flattened all-reduce, which
  /// also carries the stop requests); returns whether any rank asked to stop.
  bool reduce_gradients(bool stop);
  bool is_main() const;
  int world() const;

  RetrievalModel model_;
  VideoLoader& loader_;
  Evaluator* evaluator_;
  TrainerOptions options_;
  std::unique_ptr<Optimizer> optimizer_;
  double grad_scale_ = 1.0;   // 1 / emulate_world_size
  torch::Tensor amp_scale_;   // fp16 loss scale (device scalar)
  torch::Tensor amp_growth_;  // good steps since the scale last changed (device int32)
  nlohmann::json best_json_;  // {"best", "best_official"} of the best epoch so far (kept across
                              // resumes); null before the first evaluation
  nlohmann::json best_by_metric_ = nlohmann::json::object();  // update_best_by_metric's record
  int64_t saved_step_ = -1;  // the step of the training state on disk; -1 none yet
};

}  // namespace mva
