#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/types.h>

#include "mvadapter/data/manifest.h"

namespace mva {

/// Where one text-to-video query put its ground-truth video: one line of a run's `ranks.jsonl`
/// (written by `eval --out` and by training's final evaluation, read by `serve` to compare runs).
struct QueryRank {
  int64_t query = 0;    ///< the caption's index in the split's caption order (manifest order)
  std::string caption;  ///< the query text
  std::string video;    ///< the ground-truth video id
  int64_t rank = 0;     ///< 1-based: 1 + the videos scoring strictly higher than the ground truth
};

/// The ranks of an evaluation: `t2v` holds the 0-based T2V rank of each caption row,
/// `caption_index[i]` that row's index into `manifest.captions`.
std::vector<QueryRank> query_ranks(const Manifest& manifest,
                                   const std::vector<int64_t>& caption_index,
                                   const torch::Tensor& t2v);

/// Writes `ranks` as JSON lines {"query", "caption", "video", "rank"}, atomically.
void write_query_ranks(const std::filesystem::path& path, const std::vector<QueryRank>& ranks);

/// Reads a file written by write_query_ranks. Throws Error naming the file, the line and the field
/// when a line is not such an object (rank < 1 included).
std::vector<QueryRank> read_query_ranks(const std::filesystem::path& path);

}  // namespace mva
