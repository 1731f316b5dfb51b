#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <torch/types.h>
#include <nlohmann/json.hpp>

#include "mvadapter/data/manifest.h"
#include "mvadapter/data/video_loader.h"
#include "mvadapter/eval/evaluator.h"
#include "mvadapter/model/precision.h"
#include "mvadapter/model/retrieval_model.h"

namespace mva {

/// Unit-length embeddings of one split's videos or captions with their ids: what
/// `mvadapter encode` writes and `mvadapter search` ranks.
struct EmbeddingIndex {
  std::string kind;                ///< "videos" | "captions"
  torch::Tensor emb;               ///< float32 [N, D], unit-length rows, CPU
  std::vector<std::string> ids;    ///< one per row: the video id, or "<video id>#<n>" for captions
  std::vector<std::string> texts;  ///< captions only: the caption of each row (empty for videos)
  nlohmann::json info = nlohmann::json::object();  ///< provenance (config, adapter, arch, ...)

  /// Rows (N).
  int64_t size() const;
  /// Embedding dimension (D).
  int64_t dim() const;
};

/// One result of search(): row `row` of the index is the `rank`-th best match of query `query`.
struct SearchHit {
  int64_t query = 0;   ///< row of the query matrix (0 for a single [D] query)
  int64_t rank = 0;    ///< 1-based
  int64_t row = 0;     ///< row of the index
  float score = 0.0f;  ///< cosine similarity
};

/// The index kinds: "videos" and "captions".
const std::vector<std::string>& index_kinds();

/// Checks an index is well-formed (known kind, 2-D float32 embeddings with at least one row, one id
/// per row, one text per row for captions and none for videos, rows of unit length); throws Error
/// starting with `where` (a file name or a function) otherwise.
void validate_index(const EmbeddingIndex& index, const std::string& where);

/// Writes `index` as safetensors: the tensor "embeddings" and the metadata key "mvadapter.index"
/// holding {"kind", "dim", "ids", "texts", "info"} as JSON. Validates first; written atomically.
void save_index(const std::filesystem::path& path, const EmbeddingIndex& index);

/// Reads an index written by save_index. Throws Error naming the file when it is not an index, its
/// metadata is malformed, the kind is unknown, the ids or texts do not match the rows, the
/// recorded D differs from the tensor's, or a row is not unit length.
EmbeddingIndex load_index(const std::filesystem::path& path);

/// The `k` best rows of `index` for each query (cosine similarity; queries are normalised, rows are
/// unit already), best first, ties to the lower row; `k` above N gives N. `query` is [D] or [Q, D];
/// hits come query by query. Throws Error when D differs (naming both) or k < 1.
std::vector<SearchHit> search(const EmbeddingIndex& index, const torch::Tensor& query, int64_t k);

/// Embeddings of every video of `manifest` that decodes, each once in manifest order (batched, no
/// grad, `options.loader` with its mode forced to kVideos), ids = video ids. The manifest indices
/// of the videos that could not be decoded go to `skipped` (the loader logs each one); none
/// decoding at all is an Error.
EmbeddingIndex encode_video_index(RetrievalModelImpl& model, const Manifest& manifest,
                                  const EvaluatorOptions& options, std::vector<int64_t>* skipped);

/// Embeddings of every caption of `manifest` in caption order, ids "<video id>#<n>" (n = 0-based
/// position among that video's captions), texts = the captions.
EmbeddingIndex encode_caption_index(RetrievalModelImpl& model, const Manifest& manifest,
                                    const TokenizeFn& tokenize, int64_t batch_size,
                                    Precision precision = Precision::kFp32);

/// The unit-length embedding [D] of one video, decoded and normalised exactly as the loader does
/// for a batch (padded frames zero after normalisation). Throws Error naming the path when it
/// cannot be decoded.
torch::Tensor embed_video_file(RetrievalModelImpl& model, const VideoEntry& video,
                               const ClipOptions& clip, Precision precision = Precision::kFp32);

}  // namespace mva
