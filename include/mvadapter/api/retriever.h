#pragma once
// The library's front door for retrieval: a model ready to embed videos and captions and to rank
// them (docs/api.md). Everything here is stable API; the layers below are reachable for whoever
// needs more, with fewer promises.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "mvadapter/config/run_config.h"
#include "mvadapter/eval/embedding_index.h"
#include "mvadapter/eval/evaluator.h"
#include "mvadapter/model/retrieval_model.h"

namespace mva {

/// A trained (or zero-shot) model of one run config, on the config's device (train.device),
/// ready to embed videos and captions into one space and rank them by cosine similarity.
///
///   RunConfig cfg = load_run_config("configs/msrvtt/mv_adapter_vit_b16.yaml");
///   Retriever r(cfg, "runs/msrvtt/checkpoints/best.safetensors");
///   EmbeddingIndex videos = r.index_videos({"a.mp4", "b.mp4"});
///   auto hits = r.rank(r.embed_captions({"a dog runs"}), videos, 5);
///
/// Embeddings are float32 on the CPU, unit length. The methods that run the model are not meant
/// to be called from several threads at once on one Retriever (one model, one autocast state);
/// give each thread its own, or serialise the calls.
class Retriever {
 public:
  /// The model of `config` (its CLIP: model.clip, or random weights of model.arch when empty)
  /// with the adapter weights of `checkpoint` (checkpoints/best.safetensors of a run, or an
  /// official .pth). Without a checkpoint the adapters keep their initial weights; set
  /// config.model.use_adapters = false for plain CLIP (zero-shot). Throws Error when the
  /// checkpoint does not exist, was trained on another backbone than the config's (when it
  /// records one: check_checkpoint_backbone) or does not fit the model.
  explicit Retriever(RunConfig config, const std::filesystem::path& checkpoint = {});

  /// The model a checkpoint of mvadapter 0.2 or later records (config_from_checkpoint: its run
  /// config, CLIP weights file or random draw), from the checkpoint alone. `overrides` as for
  /// load_run_config ("train.device=cuda", "model.clip=/new/place/ViT-B-16.pt"). Throws Error for
  /// a checkpoint that records no config (an official .pth, a converted one): give its config to
  /// the constructor instead.
  static Retriever from_checkpoint(const std::filesystem::path& checkpoint,
                                   const std::vector<std::string>& overrides = {});

  /// Unit-length embedding [D] of one video file, decoded and sampled as evaluation does
  /// (data.frames, data.size, data.sampling). Throws Error naming the file when it cannot be
  /// decoded (and in a build without video support).
  torch::Tensor embed_video(const std::filesystem::path& path);
  /// Unit-length embeddings [B, D] of frames you decoded yourself: uint8 RGB crops
  /// [F, 3, S, S] or [B, F, 3, S, S] at the model's input size, as the data loader yields them
  /// (video_loader.h); `mask` (int64 [F] or [B, F], 1 = real frame) marks padding, all real when
  /// undefined.
  torch::Tensor embed_frames(const torch::Tensor& frames, const torch::Tensor& mask = {});
  /// Unit-length embeddings [N, D] of captions, in order (CLIP's tokenizer, data.words tokens).
  torch::Tensor embed_captions(const std::vector<std::string>& captions);

  /// A "videos" index of the given files, ids = their file names without extension (what
  /// `mvadapter encode --videos` writes, for files instead of a dataset). Throws Error naming the
  /// first file that cannot be decoded.
  EmbeddingIndex index_videos(const std::vector<std::filesystem::path>& paths);
  /// A "captions" index of `captions`, ids "caption#<n>".
  EmbeddingIndex index_captions(const std::vector<std::string>& captions);

  /// The `k` best rows of `index` for each query row (`query`: [D] or [Q, D], e.g. from
  /// embed_captions), best first: search() of embedding_index.h. Throws Error when D differs.
  std::vector<SearchHit> rank(const torch::Tensor& query, const EmbeddingIndex& index,
                              int64_t k) const;

  /// The resolved config the model was built from.
  const RunConfig& config() const { return config_; }
  /// The model itself (eval mode, on device()): shared, so changes are seen by this Retriever.
  RetrievalModel model() const { return model_; }
  /// Embedding dimension D.
  int64_t dim() const;
  torch::Device device() const { return eval_.device; }

 private:
  RunConfig config_;
  EvaluatorOptions eval_;
  RetrievalModel model_{nullptr};
  TokenizeFn tokenize_;
};

}  // namespace mva
