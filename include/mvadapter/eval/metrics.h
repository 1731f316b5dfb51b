#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>
#include <nlohmann/json.hpp>

#include "mvadapter/core/enum_names.h"

namespace mva {

/// How ranks are turned into numbers (DESIGN.md §5). All count a candidate only when it scores
/// strictly higher than the ground truth (ties go to the ground truth), so R@K never depends on
/// sort order, and all give the same T2V ranks.
///
/// - kStandard (the project's default; CLIP4Clip's `compute_metrics`): MdR/MnR are 1-based: median
///   and mean of rank + 1, the median averaging the two middle ranks for an even count. V2T
///   candidates are videos, each scored by its best caption for the query video (CLIP4Clip's
///   `tensor_video_to_text_sim`): a video's rank is the number of other videos having some caption
///   that scores strictly higher than its best own caption.
/// - kOfficial (MV-Adapter's `get_rank`): the same ranks, so the same R@K; MnR = mean of the
///   0-based ranks; MdR = mean of the sorted 0-based ranks at positions n/2 .. (n+1)/2 inclusive
///   (its slice, which averages two ranks for an odd n and takes one for an even n). MdR/MnR are
///   therefore about one lower than kStandard's (exactly one for MnR).
/// - kCaptionRanking: 1-based MdR/MnR as kStandard, but V2T candidates are captions: a video's
///   rank is the number of captions of other videos that score strictly higher than its best own
///   caption. Neither published code ranks this way; it is kept, under its own name, for numbers
///   reported before. With one caption per video it equals kStandard.
enum class RankConvention { kStandard, kOfficial, kCaptionRanking };
/// standard, official, caption_ranking (`eval.convention`).
constexpr std::array<EnumName<RankConvention>, 3> enum_names(RankConvention) {
  return {{{RankConvention::kStandard, "standard"},
           {RankConvention::kOfficial, "official"},
           {RankConvention::kCaptionRanking, "caption_ranking"}}};
}

/// "standard" / "official" / "caption_ranking".
std::string to_string(RankConvention convention);
/// Inverse of to_string; throws mva::Error naming `field` for any other word.
RankConvention parse_rank_convention(const std::string& name,
                                     const std::string& field = "convention");
/// One phrase for reports: whose convention it is, the rank base and the V2T candidates.
std::string describe(RankConvention convention);

/// Options of compute_retrieval_metrics / compute_retrieval_ranks.
struct MetricsOptions {
  RankConvention convention = RankConvention::kStandard;
  /// Rows (captions) of the similarity matrix processed at once: ranking needs
  /// O(chunk_size x num_videos) extra memory on top of the matrix itself.
  int64_t chunk_size = 1024;
  /// Dual softmax at inference (CAMoE form, anchors.md §A.3): for each direction, with the query
  /// axis as rows, s' = s * softmax(s / T, over the queries) * num_queries. Off by default
  /// because it needs every test query at once (see anchors.md §A.4 item 6).
  bool dsl = false;
  /// T of the dual softmax. 0.01 on cosine similarities equals T = 1 on logit_scale(100) logits.
  double dsl_temperature = 0.01;
};

/// 0-based ranks of every query, int64 tensors: t2v [num_captions], v2t [num_videos].
struct RetrievalRanks {
  torch::Tensor t2v;
  torch::Tensor v2t;
};

/// Metrics of one retrieval direction. R@K in percent (0..100).
struct DirectionMetrics {
  double r1 = 0.0, r5 = 0.0, r10 = 0.0;
  double rsum = 0.0;  ///< r1 + r5 + r10
  double mdr = 0.0;   ///< median rank, per the convention
  double mnr = 0.0;   ///< mean rank, per the convention
  int64_t num_queries = 0;
};

/// T2V and V2T metrics plus how they were computed, so every report can state its conventions.
struct RetrievalMetrics {
  DirectionMetrics t2v;
  DirectionMetrics v2t;
  int64_t num_captions = 0;
  int64_t num_videos = 0;
  RankConvention convention = RankConvention::kStandard;
  bool dsl = false;
  double dsl_temperature = 0.0;  ///< meaningful only when dsl

  /// {"t2v": {"R1","R5","R10","RSum","MdR","MnR","num_queries"}, "v2t": {...}, "num_captions",
  /// "num_videos", "convention", "dsl", and "dsl_temperature" when dsl is on}.
  nlohmann::json to_json() const;
  /// Inverse of to_json; throws Error naming `where` (a file and key) and the field that is
  /// missing or of the wrong type.
  static RetrievalMetrics from_json(const nlohmann::json& j, const std::string& where);
  /// One line for logs: both directions, the sizes and the conventions used.
  std::string summary() const;
  /// A few lines for a terminal: a title naming the convention, the sizes and DSL, then a table
  /// of R@1/5/10, RSum, MdR, MnR with one row per direction.
  std::string table() const;
};

/// For each caption, the index of its video, from the number of captions of each video in video
/// order (captions grouped by video, as in MSVD test files).
std::vector<int64_t> caption_video_from_counts(const std::vector<int64_t>& captions_per_video);

/// sim [num_captions, num_videos] = text_emb [Nt, D] . video_emb [Nv, D]^T, computed
/// chunk_size text rows at a time on the embeddings' device and gathered into a CPU float32
/// tensor. Pass L2-normalised embeddings to get cosine similarities.
torch::Tensor similarity_matrix(const torch::Tensor& text_emb, const torch::Tensor& video_emb,
                                int64_t chunk_size = 1024);

/// 0-based T2V and V2T ranks. sim: CPU float [num_captions, num_videos] (captions are rows);
/// caption_video[i]: the ground-truth video of caption i; every video needs at least one caption.
/// Throws mva::Error on a bad shape, an out-of-range index, a video without captions or a NaN.
RetrievalRanks compute_retrieval_ranks(const torch::Tensor& sim,
                                       const std::vector<int64_t>& caption_video,
                                       const MetricsOptions& options = {});

/// R@1/5/10, MdR, MnR of 0-based ranks under `convention`.
DirectionMetrics summarize_ranks(const torch::Tensor& ranks, RankConvention convention);

/// Full evaluation of a similarity matrix: ranks, then metrics of both directions.
RetrievalMetrics compute_retrieval_metrics(const torch::Tensor& sim,
                                           const std::vector<int64_t>& caption_video,
                                           const MetricsOptions& options = {});

/// The metrics of one similarity matrix under each of `conventions` (options.convention is not
/// used), in that order. Standard and official share their ranks, so they are ranked once.
std::vector<RetrievalMetrics> compute_retrieval_metrics_each(
    const torch::Tensor& sim, const std::vector<int64_t>& caption_video,
    const std::vector<RankConvention>& conventions, const MetricsOptions& options = {});

/// One caption per video, caption i <-> video i; sim must be square.
RetrievalMetrics compute_retrieval_metrics(const torch::Tensor& sim,
                                           const MetricsOptions& options = {});

}  // namespace mva
