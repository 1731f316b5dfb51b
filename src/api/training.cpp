#include "mvadapter/api/training.h"

#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "mvadapter/config/run_setup.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/runtime.h"
#include "mvadapter/data/dataset_readers.h"
#include "mvadapter/model/adapter_checkpoint.h"

namespace mva {

TrainingRun::TrainingRun(RunConfig config, std::filesystem::path run_dir,
                         TrainingRunOptions options)
    : config_(std::move(config)), run_dir_(std::move(run_dir)) {
  const auto& cfg = config_;
  ProcessGroup* group = options.group;
  options_ = mva::trainer_options(cfg, run_dir_);  // validates device and precision first
  options_.group = group;
  options_.run_info.command = options.command;
  std::filesystem::create_directories(run_dir_);
  model_ = build_model(cfg);
  // Every checkpoint records the config and the backbone, so it alone rebuilds the model.
  options_.checkpoint_metadata = checkpoint_provenance(cfg, *model_->clip);
  auto tokenize = make_tokenize_fn(std::make_shared<const ClipTokenizer>(), cfg.data.words,
                                   model_->clip->config().vocab_size);

  Manifest train_set = read_dataset(train_dataset_spec(cfg));
  check_missing_videos(train_set, cfg.data.on_error);
  auto loader_opts = group ? train_loader_options(cfg, group->rank(), group->world_size())
                           : train_loader_options(cfg);
  loader_opts.pin_memory = options_.device.is_cuda();
  loader_opts.drop_last = true;  // as CLIP4Clip: a tiny last batch gives a weak contrastive loss
  if (static_cast<int64_t>(train_set.captions.size()) <
      loader_opts.batch_size * loader_opts.world_size) {
    loader_opts.drop_last = false;
  }
  loader_ = std::make_unique<VideoLoader>(std::move(train_set), loader_opts, tokenize);
  if (options.evaluate) {
    Manifest test_set = read_dataset(test_dataset_spec(cfg));
    check_missing_videos(test_set, cfg.data.on_error);
    evaluator_ =
        std::make_unique<Evaluator>(std::move(test_set), evaluator_options(cfg), tokenize, group);
  }
}

TrainingRun::~TrainingRun() = default;

TrainSummary TrainingRun::run(bool resume) {
  Trainer trainer(model_, *loader_, evaluator_.get(), options_);
  return trainer.run(resume);
}

TrainSummary train(const RunConfig& config, const std::filesystem::path& run_dir,
                   const TrainCallbacks& callbacks, const StopToken& stop) {
  const auto dir = run_dir.empty() ? run_directory(config) : run_dir;
  if (std::filesystem::exists(Trainer::state_path(dir))) {
    throw Error(fmt::format("train: a run already exists in {} (resume it with TrainingRun)",
                            dir.string()));
  }
  TrainingRun run(config, dir);
  auto& options = run.trainer_options();
  options.progress = false;
  options.stop = stop;
  options.callbacks.on_step = callbacks.on_step;
  options.callbacks.on_epoch_end = callbacks.on_epoch_end;
  options.callbacks.on_eval = callbacks.on_eval;
  if (callbacks.on_results) options.callbacks.on_results = callbacks.on_results;
  return run.run();
}

EvalResult evaluate(RunConfig config, const std::filesystem::path& checkpoint) {
  if (checkpoint.empty()) {
    config.model.use_adapters = false;
    config.model.trainable = TrainableSet::kNone;
  } else if (!std::filesystem::exists(checkpoint)) {
    throw Error(fmt::format("evaluate: checkpoint '{}' does not exist", checkpoint.string()));
  }
  auto eval_opts = evaluator_options(config);  // validates device and precision first
  eval_opts.progress = false;
  auto model = build_model(config, checkpoint);
  model->to(eval_opts.device);
  auto tokenize = make_tokenize_fn(std::make_shared<const ClipTokenizer>(), config.data.words,
                                   model->clip->config().vocab_size);
  Manifest test_set = read_dataset(test_dataset_spec(config));
  check_missing_videos(test_set, config.data.on_error);
  drop_missing_videos(test_set);  // their captions would be queries without a right answer
  Evaluator evaluator(std::move(test_set), eval_opts, tokenize);
  return evaluator.evaluate(*model);
}

}  // namespace mva
