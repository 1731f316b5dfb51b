#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mvadapter/data/manifest.h"
#include "mvadapter/data/video_loader.h"
#include "mvadapter/dist/process_group.h"
#include "mvadapter/eval/metrics.h"
#include "mvadapter/eval/query_ranks.h"
#include "mvadapter/model/precision.h"
#include "mvadapter/model/retrieval_model.h"

namespace mva {

/// How the Evaluator reads and encodes a test split.
struct EvaluatorOptions {
  LoaderOptions loader;           ///< videos: mode is forced to kVideos (each video once, in order)
  int64_t text_batch_size = 256;  ///< captions encoded at once
  MetricsOptions metrics;
  Precision precision = Precision::kFp32;
  torch::Device device = torch::kCPU;
  bool progress = true;  ///< a progress line on a terminal
};

/// Embeddings of a test split. Rows follow the manifest order, without the videos that could not
/// be decoded (and without their captions).
struct EncodedSplit {
  torch::Tensor video_emb;              ///< float32 [Nv, D], unit length, CPU
  torch::Tensor text_emb;               ///< float32 [Nt, D], unit length, CPU
  std::vector<int64_t> video_index;     ///< manifest video index of each video row
  std::vector<int64_t> caption_index;   ///< manifest caption index of each caption row
  std::vector<int64_t> caption_video;   ///< video row of each caption row
  std::vector<int64_t> skipped_videos;  ///< manifest indices of videos left out (decode failures)
};

/// What one evaluation gives: the metrics under the configured convention and, always, under the
/// official code's, so every report can be read against CLIP4Clip's numbers and the paper's code.
struct EvalResult {
  RetrievalMetrics metrics;   ///< under EvaluatorOptions::metrics.convention (eval.convention)
  RetrievalMetrics official;  ///< the same similarities under RankConvention::kOfficial
  int64_t skipped_videos = 0;
  double seconds = 0.0;
  std::vector<QueryRank> t2v_ranks;  ///< each caption's ground-truth rank (ranks.jsonl)

  /// {key: metrics, key + "_official": official}: how results.json ("final", "final_official")
  /// and metrics.jsonl ("metrics", "metrics_official") label the two.
  nlohmann::json labelled(const std::string& key) const;
  /// Both RetrievalMetrics::table()s, the configured convention first; one when they are the
  /// same convention.
  std::string tables() const;
};

/// Encodes every video and caption of a test split once (batched, no grad) and ranks them
/// (DESIGN.md §5). Multi-caption sets (MSVD) and paragraph sets (DiDeMo, ActivityNet) need
/// nothing special: the manifest already maps each caption or paragraph to its video.
class Evaluator {
 public:
  /// `tokenize` turns a caption into `max_words` ids (the same function training uses). With a
  /// `group`, each rank encodes a contiguous shard of the videos and of the captions and every
  /// rank gets the whole split (the group must outlive the Evaluator; every rank calls encode and
  /// evaluate together).
  Evaluator(Manifest manifest, EvaluatorOptions options, TokenizeFn tokenize,
            ProcessGroup* group = nullptr);

  /// Embeddings of every video and caption (the model is put in eval mode and left there).
  EncodedSplit encode(RetrievalModelImpl& model);
  /// encode() then the metrics of the similarity matrix.
  EvalResult evaluate(RetrievalModelImpl& model);

  const Manifest& manifest() const { return loader_->manifest(); }
  const EvaluatorOptions& options() const { return options_; }

 private:
  EncodedSplit gather(RetrievalModelImpl& model, EncodedSplit local);

  EvaluatorOptions options_;
  TokenizeFn tokenize_;
  ProcessGroup* group_ = nullptr;
  std::unique_ptr<VideoLoader> loader_;
};

/// Unit-length embeddings of `captions`, `batch_size` at a time, on the model's device; result
/// on the CPU as float32 [N, D].
torch::Tensor encode_captions(RetrievalModelImpl& model, const std::vector<std::string>& captions,
                              const TokenizeFn& tokenize, int64_t batch_size,
                              Precision precision = Precision::kFp32);

}  // namespace mva
