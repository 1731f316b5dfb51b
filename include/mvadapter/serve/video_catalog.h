#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <torch/types.h>
#include <nlohmann/json.hpp>

#include "mvadapter/data/manifest.h"
#include "mvadapter/eval/embedding_index.h"
#include "mvadapter/eval/ivf_index.h"

namespace mva {

/// What `serve` knows about the indexed videos: the videos index it ranks, the captions index
/// (optional) that names them, and the dataset split they came from (optional: file paths and the
/// dataset's captions). Only ids of the videos index are ever looked up, so no request names a
/// path on disk.
class VideoCatalog {
 public:
  /// `videos` must be a videos index, `captions` (when given) a captions index of the same D;
  /// `dataset` may be empty (no files, no sheets; captions then come from the captions index).
  /// Throws Error naming the mismatch otherwise.
  VideoCatalog(EmbeddingIndex videos, std::optional<EmbeddingIndex> captions, Manifest dataset);

  const EmbeddingIndex& videos() const { return videos_; }
  /// Ranks the videos through `ivf` (an IVF index of the videos index's rows) instead of exactly.
  void use_ivf(std::shared_ptr<const IvfIndex> ivf) { ivf_ = std::move(ivf); }
  const EmbeddingIndex* captions() const { return captions_ ? &*captions_ : nullptr; }

  /// Row of `id` in the videos index, or -1 when it is not indexed.
  int64_t row_of(const std::string& id) const;
  /// The dataset's entry (path, window) of row `row`, or null when the dataset is not known.
  const VideoEntry* entry(int64_t row) const;
  /// The dataset's captions of row `row` (from the captions index when the dataset is not known).
  const std::vector<std::string>& captions_of(int64_t row) const;
  /// Rows whose captions include `text` exactly (surrounding spaces ignored): the ground truth of
  /// a query that is a dataset caption.
  std::vector<int64_t> ground_truth(const std::string& text) const;

  /// The `k` best hits of a [D] query among the videos: [{"rank", "id", "score", "captions",
  /// "ground_truth"}], `truth` being the rows to mark.
  nlohmann::json rank_videos(const torch::Tensor& query, int64_t k,
                             const std::vector<int64_t>& truth) const;
  /// The `k` captions of the captions index closest to row `row`'s video: [{"rank", "id", "text",
  /// "score", "own"}] ("own": a caption of this video); empty without a captions index.
  nlohmann::json top_captions(int64_t row, int64_t k) const;

 private:
  EmbeddingIndex videos_;
  std::optional<EmbeddingIndex> captions_;
  std::shared_ptr<const IvfIndex> ivf_;
  Manifest dataset_;
  std::unordered_map<std::string, int64_t> row_of_id_;
  std::vector<int64_t> entry_of_row_;  ///< manifest video of each row, or -1
  std::vector<std::vector<std::string>> captions_of_row_;
  std::unordered_map<std::string, std::vector<int64_t>> rows_of_caption_;
};

}  // namespace mva
