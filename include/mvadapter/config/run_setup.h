#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mvadapter/config/run_config.h"
#include "mvadapter/eval/evaluator.h"
#include "mvadapter/model/retrieval_model.h"
#include "mvadapter/text/clip_tokenizer.h"
#include "mvadapter/train/trainer.h"

namespace mva {

/// The CLIP of a run: model.clip loaded (any supported format), or random weights of model.arch
/// when model.clip is empty, drawn from train.seed (the same seed, the same weights).
ClipModel load_backbone(const RunConfig& cfg);

/// The RetrievalModel of a run on the CPU: the backbone, then the adapters initialised from
/// train.seed (so two runs of one config start from the same weights).
RetrievalModel build_model(const RunConfig& cfg);

/// build_model(cfg) with the adapter weights of `checkpoint` when it is not empty: the backbone
/// checked against what the checkpoint records (check_checkpoint_backbone), then the weights
/// loaded (load_adapter_weights). What eval, encode, search, serve and the API load.
RetrievalModel build_model(const RunConfig& cfg, const std::filesystem::path& checkpoint);

/// The part of results.json a run's config decides (name, dataset, arch, trainable,
/// use_adapters, frames, words, precision): shared by training runs and `eval --out`.
RunResults run_results_of(const RunConfig& cfg);

/// The CLIP tokenizer as the data layer's TokenizeFn for `max_words` tokens. Throws Error when the
/// text tower's vocabulary cannot hold the tokenizer's ids (a CLIP trained with another vocab).
TokenizeFn make_tokenize_fn(std::shared_ptr<const ClipTokenizer> tokenizer, int64_t max_words,
                            int64_t vocab_size);

/// Checks up front that the manifest's video files exist: none at all is an Error (wrong
/// data.videos); some missing is an Error with on_error fail, a warning naming the first ones
/// with skip (the loader then skips and counts them).
void check_missing_videos(const Manifest& manifest, OnError on_error);

/// Where a run writes: train.output_dir, or runs/<name>.
std::filesystem::path run_directory(const RunConfig& cfg);

/// Trainer settings of a run (optimizer, schedule, precision, device, logging, run_dir).
TrainerOptions trainer_options(const RunConfig& cfg, const std::filesystem::path& run_dir);

/// Evaluator settings of a run (eval.* and the data section's decoding settings).
EvaluatorOptions evaluator_options(const RunConfig& cfg);

/// The process group of a multi-process run when the environment describes one (torchrun, srun,
/// `--nproc`: dist_env_from_environment), joined with the `dist.*` settings; null for one process.
/// `train.device: cuda` becomes this rank's GPU, cuda:LOCAL_RANK.
std::unique_ptr<ProcessGroup> join_process_group(RunConfig& cfg);

/// Names of the keys whose values differ between two resolved configurations (to_yaml order).
std::vector<std::string> config_differences(const RunConfig& a, const RunConfig& b);

/// What every adapter checkpoint of a run records about it (safetensors metadata, DESIGN.md §6):
/// `mvadapter.version`, `mvadapter.config` (the resolved config as YAML), `mvadapter.clip` (the
/// weights file, or the random backbone's arch and seed), `mvadapter.clip_sha256` (of that file)
/// and `mvadapter.clip_geometry` (ClipConfig as JSON), so a checkpoint alone rebuilds its model.
std::map<std::string, std::string> checkpoint_provenance(const RunConfig& cfg,
                                                         const ClipModelImpl& clip);

/// The run config an adapter checkpoint records (`mvadapter.config`) with `overrides` applied as
/// load_run_config applies them; nullopt for a checkpoint that records none (an official `.pth`,
/// a converted one, one written before 0.2). Throws Error for an unreadable file.
std::optional<RunConfig> config_from_checkpoint(const std::filesystem::path& checkpoint,
                                                const std::vector<std::string>& overrides = {});

/// Throws Error naming each difference when `checkpoint` records a backbone other than `clip`,
/// the CLIP of `cfg`: its geometry, the sha256 of the weights file, or the random draw. A
/// checkpoint that records nothing (official, converted) passes.
void check_checkpoint_backbone(const std::filesystem::path& checkpoint, const RunConfig& cfg,
                               const ClipModelImpl& clip);

}  // namespace mva
