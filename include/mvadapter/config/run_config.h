#pragma once
#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "mvadapter/adapters/adapter_config.h"
#include "mvadapter/data/dataset_readers.h"
#include "mvadapter/data/frame_sampler.h"
#include "mvadapter/data/manifest.h"
#include "mvadapter/data/video_loader.h"
#include "mvadapter/eval/metrics.h"
#include "mvadapter/model/precision.h"
#include "mvadapter/model/retrieval_model.h"
#include "mvadapter/train/lr_schedule.h"
#include "mvadapter/train/optimizer.h"
#include "mvadapter/train/trainer.h"

namespace mva {

/// `model.*`: which CLIP and what of it trains.
struct ModelSection {
  /// CLIP weights (OpenAI .pt, safetensors with OpenAI or Hugging Face names). Empty: random
  /// weights of `arch` (benchmarks, tests). Relative paths are relative to the current directory.
  std::filesystem::path clip;
  /// A released architecture (ClipConfig::named): the geometry of random weights, and the one the
  /// adapter settings are checked against at load time when `clip` is empty.
  std::string arch = "ViT-B/16";
  TrainableSet trainable = TrainableSet::kAdapters;
  /// CLIP's bias vectors train too (official recipe; lr train.clip_lr).
  bool train_clip_biases = true;
  /// Install the adapters of the `adapters` section (false: zero-shot, full fine-tuning, BitFit).
  bool use_adapters = true;
  /// How frame features become a video embedding: mean pooling or CLIP4Clip's seqTransf.
  VideoHead head = VideoHead::kMean;
  /// Blocks of the seqTransf head (CLIP4Clip's cross_num_hidden_layers).
  int64_t head_layers = 4;
};

/// `data.*`: the dataset and how clips and captions are read.
struct DataSection {
  /// One of dataset_formats(): msrvtt, msvd, lsmdc, didemo, activitynet, unified (the official
  /// MV-Adapter JSON), jsonl, csv.
  std::string dataset = "msrvtt";
  /// The folder of the annotation files (for unified/jsonl/csv: the folder holding the files the
  /// splits name). Relative paths are relative to the current directory, not to the YAML file.
  std::filesystem::path root;
  /// The video root (relative to the current directory).
  std::filesystem::path videos;
  /// train | val | test (MSR-VTT also 9k, 7k = train with that list; jsfusion = test); for
  /// unified/jsonl/csv the annotation file inside `root`.
  std::string train_split = "train";
  std::string test_split = "test";
  int64_t frames = 12;  ///< F frames per video (also the video adapter's seq_len)
  int64_t words = 32;   ///< L tokens per caption (also the text adapter's seq_len)
  FrameSampling sampling = FrameSampling::kOfficial;
  int64_t size = 224;  ///< crop side in pixels
  double fps = 1.0;    ///< frames kept per second of video before choosing F
  CaptionSampling caption_sampling = CaptionSampling::kEveryCaption;
  int64_t workers = 2;   ///< decoder threads
  int64_t prefetch = 4;  ///< batches decoded ahead of the model, at most
  OnError on_error = OnError::kSkip;
  /// Seed of the training data order (the shuffle, and the caption drawn per video with
  /// one_per_video). Unset: train.seed, which then drives initialisation and order together. Set
  /// it to keep one order across seeds, as the official sampler always shuffles with seed 0.
  std::optional<int64_t> shuffle_seed;
};

/// `train.*`: optimisation.
struct TrainSection {
  int64_t epochs = 5;  ///< 0: evaluate only
  /// Samples per optimiser step, all micro-batches (grad_accum) together; grad_accum divides it.
  int64_t batch_size = 128;
  double lr = 5e-6;       ///< adapters and tying factors
  double clip_lr = 1e-7;  ///< CLIP parameters that train (biases, or everything when full)
  double weight_decay = 0.2;
  std::array<double, 2> betas = {0.9, 0.98};
  double eps = 1e-6;
  double warmup = 0.1;              ///< fraction of all steps with a linear warm-up
  ScheduleKind schedule = ScheduleKind::kCosine;
  double grad_clip = 1.0;           ///< global grad-norm clip; 0 = off
  /// bert_adam only: its own clip of each tensor's gradient (official max_grad_norm); 0 = off.
  double max_grad_norm = 1.0;
  OptimizerKind optimizer = OptimizerKind::kAdamW;  ///< bert_adam: the official optimiser, exactly
  int64_t grad_accum = 1;           ///< micro-batches per optimiser step
  Precision precision = Precision::kFp32;  ///< fp16 only on CUDA
  /// fp16 stores and updates the trainable weights and moments in fp16 as the official code does
  /// (bert_adam only; small updates round away).
  MasterWeights master_weights = MasterWeights::kFp32;
  int64_t seed = 42;
  int64_t threads = 0;               ///< intra-op threads; 0 = all cores
  std::string device = "cpu";        ///< cpu | cuda | cuda:N (read by device_from_name)
  std::filesystem::path output_dir;  ///< "runs/<name>" unless set
  int64_t log_every = 10;            ///< steps between log lines / metrics.jsonl windows
  bool save_every_epoch = true;
  /// Training-state saves inside an epoch: every N optimiser steps; 0 = at epoch ends only;
  /// kAutoSaveInterval (`auto`) = four per epoch for epochs of 100 steps or more
  /// (auto_save_interval).
  int64_t save_every_steps = kAutoSaveInterval;
  /// A NaN/Inf loss or gradient: stop the run (the last saved state is kept) or skip the step.
  NonfiniteAction on_nonfinite = NonfiniteAction::kStop;
  /// Scale the gradient as the official code does on this many GPUs (its update is the global-batch
  /// gradient divided by W); 0 = the exact global-batch gradient (DESIGN.md §8).
  int64_t emulate_world_size = 0;
  /// Gradient caching: the contrastive loss over the whole batch with grad_accum micro-batches
  /// (encode all without a graph, then re-encode each with one), so accumulation keeps every
  /// negative. false: each micro-batch has its own loss.
  bool grad_cache = false;
  /// torch's deterministic algorithms (CUDA: some kernels slower or unavailable; CPU runs are
  /// deterministic for a given thread count anyway).
  bool deterministic = false;
  /// Keep only each CLIP block's input and recompute the block in the backward: activation
  /// memory of one block instead of all, for one more forward.
  bool activation_checkpointing = false;
};

/// `dist.*`: how the ranks of a multi-process run talk (the ranks come from the environment).
struct DistSection {
  DistBackend backend = DistBackend::kAuto;
  double timeout_s = 1800.0;     ///< rendezvous and every collective, before the run stops
  bool log_all_ranks = false;    ///< ranks > 0 also write train.rank<N>.log
};

/// `eval.*`: retrieval evaluation.
struct EvalSection {
  int64_t batch_size = 64;
  RankConvention convention = RankConvention::kStandard;
  bool dsl = false;      ///< dual softmax at inference (reports must say so)
  int64_t chunk = 1024;  ///< similarity rows ranked at once
  bool every_epoch = true;
};

/// One typed, validated run: what `mvadapter train|eval` reads from YAML (DESIGN.md §6).
struct RunConfig {
  /// Names the run (and its default output folder); letters, digits, '.', '_', '-'. Defaults to
  /// the stem of the config file.
  std::string name;
  ModelSection model;
  /// The paper's recipe for ViT-B by default. seq_len is not a key: it always equals
  /// data.frames (video) and data.words (text).
  AdapterConfig adapters = AdapterConfig::mv_adapter(12, 32);
  DataSection data;
  TrainSection train;
  EvalSection eval;
  DistSection dist;
};

/// Loads a run configuration: `path` with its `base:` files (ConfigTree), then each override
/// "key.path=value" in order (the value is YAML: `train.lr=1e-5`, `adapters.tying.layers=[9,10]`),
/// then `${ENV}` expansion of string values and validation. Every key must be known, of the right
/// type and in range; an error names the file and line (or "--set"), the dotted key and what was
/// expected: the closest valid key for an unknown one, the choices for an enumeration. Errors in a
/// key's value are ConfigError, carrying the key and its origin as data.
RunConfig load_run_config(const std::filesystem::path& path,
                          const std::vector<std::string>& overrides = {});

/// As load_run_config for YAML text; `source` names it in messages and in the default name.
RunConfig parse_run_config(const std::string& text, const std::string& source,
                           const std::vector<std::string>& overrides = {});

/// The resolved configuration as YAML, every key written (the copy a run directory keeps).
/// Loading it gives the same configuration, and writing that again gives the same text.
std::string to_yaml(const RunConfig& cfg);

/// Every valid dotted key, in the order to_yaml writes them.
const std::vector<std::string>& run_config_keys();

/// The model structure of the run (adapters' seq_len from data.frames / data.words).
RetrievalModelConfig to_retrieval_model_config(const RunConfig& cfg);

/// The training split's DatasetSpec (MSR-VTT 9k/7k select the train list; unified/jsonl/csv take
/// root/<train_split>; caption sampling from data.caption_sampling).
DatasetSpec train_dataset_spec(const RunConfig& cfg);
/// The evaluation split's DatasetSpec (MSR-VTT jsfusion = test).
DatasetSpec test_dataset_spec(const RunConfig& cfg);

/// Loader settings for training: caption pairs (or one caption per video, by
/// data.caption_sampling), shuffled with data.shuffle_seed (unset: train.seed); this rank's
/// micro-batches of train.batch_size / (world_size x grad_accum) samples. Throws Error when that
/// does not divide.
LoaderOptions train_loader_options(const RunConfig& cfg, int rank = 0, int world_size = 1);
/// Loader settings for evaluation: every video once in order, eval.batch_size per batch.
LoaderOptions eval_loader_options(const RunConfig& cfg);

/// Ranking settings from `eval.*`.
MetricsOptions metrics_options(const RunConfig& cfg);

}  // namespace mva
