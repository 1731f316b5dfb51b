#pragma once
#include <string>
#include <vector>

#include <torch/nn.h>

#include "mvadapter/adapters/adapter_config.h"
#include "mvadapter/clip/clip_model.h"
#include "mvadapter/core/enum_names.h"
#include "mvadapter/model/seq_transf_head.h"

namespace mva {

/// Which parameters a run trains (the rest of CLIP stays frozen).
enum class TrainableSet {
  kAdapters,  ///< adapters + tying factors (+ CLIP biases when `train_clip_biases`): MV-Adapter
  kFull,      ///< every CLIP parameter: full fine-tuning (CLIP4Clip meanP)
  kBitFit,    ///< CLIP biases only
  kNone,      ///< nothing: zero-shot evaluation
};
/// adapters, full, bitfit, none (`model.trainable`).
constexpr std::array<EnumName<TrainableSet>, 4> enum_names(TrainableSet) {
  return {{{TrainableSet::kAdapters, "adapters"},
           {TrainableSet::kFull, "full"},
           {TrainableSet::kBitFit, "bitfit"},
           {TrainableSet::kNone, "none"}}};
}

/// "adapters" | "full" | "bitfit" | "none" -> TrainableSet; throws Error naming `field` otherwise.
TrainableSet parse_trainable_set(const std::string& name, const std::string& field);

/// How a video's frame features become one embedding.
enum class VideoHead {
  kMean,       ///< normalise frames, masked mean, normalise (MV-Adapter, CLIP4Clip meanP)
  kSeqTransf,  ///< CLIP4Clip's seqTransf: a transformer over the frames first (SeqTransfHead)
};
/// mean, seqtransf (`model.head`).
constexpr std::array<EnumName<VideoHead>, 2> enum_names(VideoHead) {
  return {{{VideoHead::kMean, "mean"}, {VideoHead::kSeqTransf, "seqtransf"}}};
}

/// "mean" | "seqtransf" -> VideoHead; throws Error naming `field` otherwise.
VideoHead parse_video_head(const std::string& name, const std::string& field);
std::string to_string(VideoHead h);

/// The structure of a RetrievalModel besides the CLIP weights.
struct RetrievalModelConfig {
  AdapterConfig adapters;
  bool use_adapters = true;
  TrainableSet trainable = TrainableSet::kAdapters;
  /// Official recipe: CLIP bias vectors train too (group clip_no_decay, lr 1e-7).
  bool train_clip_biases = true;
  VideoHead head = VideoHead::kMean;
  /// Blocks of the seqTransf head (CLIP4Clip's cross_num_hidden_layers, 4).
  int64_t head_layers = 4;
};

/// Frozen CLIP + MV-Adapter: encodes videos and captions independently into one embedding space.
class RetrievalModelImpl : public torch::nn::Module {
 public:
  /// Installs the adapters of `cfg` into `clip` (registered as "clip", so parameter names are the
  /// official checkpoint's) and sets requires_grad by `cfg.trainable`.
  RetrievalModelImpl(ClipModel clip, const RetrievalModelConfig& cfg);

  /// frames [B, F, 3, H, W], frame_mask [B, F] (1 = real frame) -> per-frame features [B, F, D]
  /// (CLS after ln_post and proj, not normalised).
  torch::Tensor encode_frames(const torch::Tensor& frames, const torch::Tensor& frame_mask);
  /// ids [B, L] -> caption features [B, D] (EOT token, not normalised).
  torch::Tensor encode_text(const torch::Tensor& ids);
  /// Official pooling: normalise frames, masked mean, normalise -> [B, D].
  static torch::Tensor pool_frames(const torch::Tensor& frame_features,
                                   const torch::Tensor& frame_mask);
  /// The configured head (seqTransf, if any) and then pool_frames: [B, F, D] -> [B, D].
  torch::Tensor pool_video(const torch::Tensor& frame_features, const torch::Tensor& frame_mask);
  /// Unit-length video embeddings [B, D].
  torch::Tensor embed_videos(const torch::Tensor& frames, const torch::Tensor& frame_mask);
  /// Unit-length caption embeddings [B, D].
  torch::Tensor embed_texts(const torch::Tensor& ids);
  /// exp(logit_scale) · t · vᵀ for unit-length embeddings (the trainer keeps logit_scale <= ln
  /// 100).
  torch::Tensor logits(const torch::Tensor& text_emb, const torch::Tensor& video_emb) const;

  const RetrievalModelConfig& config() const { return cfg_; }
  /// Where the weights live, so callers move their inputs there (CPU for a model without any).
  torch::Device device() const;
  ClipModel clip{nullptr};
  /// CLIP4Clip's seqTransf head (registered as "head"); null with the mean head.
  SeqTransfHead head{nullptr};

 private:
  RetrievalModelConfig cfg_;
};
TORCH_MODULE(RetrievalModel);

/// Symmetric InfoNCE: (CE(t2v rows, diagonal) + CE(v2t rows, diagonal)) / 2 for a [B, B] t2v
/// logit matrix whose diagonal holds the pairs.
torch::Tensor contrastive_loss(const torch::Tensor& logits_t2v);
/// The same over the pairs with valid[i] != 0 only (the rest are neither queries nor candidates),
/// computed without reading anything back to the host: for padded multi-rank batches.
torch::Tensor masked_contrastive_loss(const torch::Tensor& logits_t2v, const torch::Tensor& valid);
/// Multi-positive form for batches where a video repeats: labels [T, V] is 1 where caption t
/// describes video v; each row's target distribution is its positives, uniformly.
torch::Tensor contrastive_loss(const torch::Tensor& logits_t2v, const torch::Tensor& labels);

/// The optimiser group of a parameter by the official rule (optimizer/build.py): names with
/// "adapter", "prompt" or "factor" (and our "lora" and the seqTransf "head.") are adapters,
/// other CLIP names are clip; "bias" -> no decay.
enum class ParamGroup { kAdapterDecay, kAdapterNoDecay, kClipDecay, kClipNoDecay };
ParamGroup param_group_of(const std::string& name);
std::string to_string(ParamGroup g);

/// The official implementation's name(s) of a model parameter. Its CLIP blocks call ln_1 / ln_2
/// `attn.ln` / `mlp.ln` and keep q, k and v apart: our fused `attn.in_proj_{weight,bias}` is
/// `attn.q_proj.*`, `attn.k_proj.*`, `attn.v_proj.*` there, three equal parts along dim 0 in
/// that order. Every other name (adapters, whose own attention is fused there too) is unchanged.
std::vector<std::string> official_names(const std::string& name);

/// One line of the trainable-parameter report.
struct ParamCount {
  std::string module;
  int64_t trainable = 0;
};

/// What `mvadapter params` prints: trainable counts per module, totals and the ratio to CLIP.
struct ParamReport {
  std::vector<ParamCount> modules;
  int64_t adapter_params = 0;  ///< adapters + tying (whether or not trainable)
  int64_t trainable = 0;       ///< requires_grad parameters
  int64_t clip_params = 0;     ///< the backbone alone
  int64_t clip_trainable = 0;  ///< backbone parameters that train (biases in the recipe)
  /// Bytes of the tensors in one task's adapter checkpoint (trainable_state: what
  /// save_adapter_weights writes, without the safetensors header), at their dtypes.
  int64_t checkpoint_bytes = 0;
  /// Bytes of the backbone's parameters at their dtypes: what a fully fine-tuned task stores.
  int64_t clip_bytes = 0;
  /// trainable / clip_params · 100: the paper's "Tunable Params (%)".
  double percent_of_clip() const;
  /// Storage of `tasks` tasks as % of one CLIP: one shared backbone plus a checkpoint per task
  /// (`adapters`), or one fine-tuned CLIP per task (tasks · 100). The paper: 112 % vs 500 % for 5.
  double storage_percent(int64_t tasks, bool adapters) const;
  std::string to_string() const;
};
ParamReport parameter_report(const RetrievalModelImpl& model);

}  // namespace mva
