#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mvadapter/model/reference_check.h"
#include "mvadapter/model/retrieval_model.h"
#include "mvadapter/train/optimizer.h"

namespace mva {

/// The inputs of one replayed step: the fixture's whole (global) batch, video in the replay's
/// dtype.
struct ReplayBatch {
  torch::Tensor video;   ///< [B, F, 3, H, W]
  torch::Tensor v_mask;  ///< [B, F] int64, 1 = real frame
  torch::Tensor text;    ///< [B, L] int64
};

/// Forward and backward of one training step: encode -> loss -> backward. It must leave in every
/// trainable parameter's grad() the gradient the optimiser takes (already averaged over ranks,
/// if it runs several), and return that step's loss (the global batch's, before the update).
/// The replay clears the gradients before calling it, then measures and clips the global norm,
/// steps the optimiser and clamps logit_scale. Swap it to replay the same fixture another way,
/// e.g. with W real ranks in W processes (each encodes its rows, gathers, backward, all-reduce):
/// everything else of the loop stays the replay's.
using ReplayStepFn = std::function<double(RetrievalModelImpl& model, const ReplayBatch& batch)>;

/// The step of W ranks emulated in one process: the global batch's loss, backward, with the
/// gradient flowing into the video and text embeddings scaled by 1/ranks (gather_rows without a group), which
/// is the update the official W-rank run takes. ranks = 1 is the single-process step.
ReplayStepFn emulated_ranks_step(int64_t ranks);

/// How to replay; the bool switches (all true = the official loop) break one piece on purpose,
/// as negative controls.
struct ReplayOptions {
  std::string precision = "fp64";  ///< fp64 | fp32 (reference_dtype)
  double tolerance = 1e-5;         ///< largest relative error accepted
  bool global_clip = true;         ///< clip_grad_norm_(all trainable, 1.0) before the step
  bool per_tensor_clip = true;     ///< BertAdam's own clip of each tensor's gradient to 1.0
  bool warmup = true;              ///< false: warm-up proportion 0, the first step gets full lr
  bool clamp_logit_scale = true;   ///< logit_scale <= ln 100 after each step
  /// Ranks emulated by the default step; 0 = the fixture's `world_size` (1 when it has none).
  /// 1 on dist_steps is "forgot the division by W".
  int64_t ranks = 0;
  /// Replaces the default emulated_ranks_step(ranks) when set.
  ReplayStepFn step;
};

/// The result of one replay: each line relative to the reference's largest value.
struct ReplayReport {
  std::string fixture;  ///< "train_steps" | "dist_steps"
  std::string precision;
  double tolerance = 1e-5;
  int64_t steps = 0;
  int64_t ranks = 1;
  TensorCheck loss;       ///< step.loss [K], the loss before each update
  TensorCheck grad_norm;  ///< step.grad_norm [K], global norm before the clip
  /// step.lr_adapter [K] when the fixture has it (the adapter group's lr of each update).
  std::vector<TensorCheck> lr;
  std::vector<TensorCheck> weights;  ///< final.<official name>, one per trainable tensor
  /// The weight check with the largest relative error.
  const TensorCheck& worst_weight() const;
  bool ok() const;
  /// The loss, grad-norm and lr lines, the worst final weight, every failing weight, a verdict.
  std::string to_string() const;
};

/// Optimiser options from a fixture json's `official_optimizer_cfg` (trainable_type,
/// warmup_proportion, the group lrs and weight decays) for optimizer bert_adam with the official
/// defaults (b1 0.9, b2 0.98, eps 1e-6, max_grad_norm 1.0, warmup_cosine). Throws Error naming
/// `source` and the field when a group does not fit our four groups (adapter lr and decay equal
/// in both adapter groups, adapter_no_decay without decay, one clip lr, ...).
OptimizerOptions official_optimizer_options(const nlohmann::json& cfg, const std::string& source);

/// Replays a training-loop fixture of `dir` (laid out like tests/fixtures/mv_adapter_tiny; its
/// README defines the files): `fixture` is the stem of `<fixture>.json` + `<fixture>.safetensors`
/// ("train_steps": K steps on io.safetensors' batch; "dist_steps": K steps of W ranks on its own
/// `in.*` global batch, from `init.logit_scale`). It rebuilds the model with every CLIP bias
/// trainable, the optimiser from `official_optimizer_cfg` with total_steps = K, and runs per step:
/// zero_grad; options.step (loss, backward); global clip to 1.0; BertAdam; logit_scale clamp.
/// Then it compares the per-step losses, grad norms and lrs and every final trainable tensor
/// (q/k/v biases split, official_names) with the fixture's.
ReplayReport replay_training_steps(const std::filesystem::path& dir, const std::string& fixture,
                                   const ReplayOptions& options = {});

/// The training-loop fixtures `dir` holds, in the order verify-reference replays them.
std::vector<std::string> training_fixtures_in(const std::filesystem::path& dir);

}  // namespace mva
