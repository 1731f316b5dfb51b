#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

namespace faiss {
struct IndexIVF;
}

namespace mva {

struct SearchHit;

/// How `encode` indexes embeddings: flat (search is a matmul over every row, exact) or ivf (a
/// FAISS inverted-file index stored beside the safetensors file, approximate and much faster on
/// millions of rows).
enum class IndexType { kFlat, kIvf };

/// "flat" / "ivf".
std::string to_string(IndexType type);
/// Inverse of to_string; throws Error naming `field` and the choices for any other word.
IndexType parse_index_type(const std::string& name, const std::string& field = "--index-type");
/// Whether this build has FAISS (MVA_WITH_FAISS): without it, kIvf is an Error.
bool ivf_supported();
/// Where the IVF index of an index file lives: "<file>.ivf".
std::filesystem::path ivf_path(const std::filesystem::path& index_file);

/// A FAISS IndexIVFFlat on inner products (cosine on unit rows): `nlist` k-means cells, of which
/// a query visits `nprobe`. Rows keep their order, so a hit's row is the EmbeddingIndex's row.
/// Search is const and may run from several threads at once.
class IvfIndex {
 public:
  /// Trains the cells on (a sample of at most 64 x nlist of) the rows of `emb` [N, D] and adds
  /// every row. nlist 0: about 4 sqrt(N), at most N / 39 (FAISS's minimum of rows per cell).
  static IvfIndex build(const torch::Tensor& emb, int64_t nlist = 0, int64_t nprobe = 0);
  /// Reads an index written by save(); throws Error naming the file when it is not an IVF index or
  /// does not hold `rows` rows of dimension `dim`.
  static IvfIndex load(const std::filesystem::path& path, int64_t rows, int64_t dim);
  void save(const std::filesystem::path& path) const;

  /// The `k` best rows for each query of `query` ([D] or [Q, D], normalised here), best first;
  /// the same SearchHit contract as mva::search (approximate: a row outside the visited cells is
  /// never returned).
  std::vector<SearchHit> search(const torch::Tensor& query, int64_t k) const;

  int64_t rows() const;
  int64_t dim() const;
  int64_t nlist() const;
  int64_t nprobe() const;
  /// Cells visited per query (1..nlist): more is slower and closer to exact.
  void set_nprobe(int64_t nprobe);

 private:
  std::shared_ptr<faiss::IndexIVF> index_;
};

}  // namespace mva
