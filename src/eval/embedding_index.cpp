#include "mvadapter/eval/embedding_index.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "mvadapter/core/error.h"
#include "mvadapter/io/safetensors.h"

namespace mva {
namespace {

constexpr const char* kTensorName = "embeddings";
constexpr const char* kMetadataKey = "mvadapter.index";
// Rows are normalised in float32 before they are written; anything further off was not.
constexpr double kUnitTolerance = 1e-3;

std::vector<std::string> string_list(const nlohmann::json& meta, const char* field,
                                     const std::string& file) {
  if (!meta.contains(field)) return {};
  const auto& arr = meta.at(field);
  if (!arr.is_array()) {
    throw Error(
        fmt::format("{}: index metadata field '{}' must be a list of strings", file, field));
  }
  std::vector<std::string> out;
  out.reserve(arr.size());
  for (size_t i = 0; i < arr.size(); ++i) {
    if (!arr[i].is_string()) {
      throw Error(fmt::format("{}: index metadata field '{}[{}]' must be a string, got {}", file,
                              field, i, arr[i].type_name()));
    }
    out.push_back(arr[i].get<std::string>());
  }
  return out;
}

}  // namespace

int64_t EmbeddingIndex::size() const {
  return emb.defined() && emb.dim() == 2 ? emb.size(0) : 0;
}

int64_t EmbeddingIndex::dim() const {
  return emb.defined() && emb.dim() == 2 ? emb.size(1) : 0;
}

const std::vector<std::string>& index_kinds() {
  static const std::vector<std::string> kinds = {"videos", "captions"};
  return kinds;
}

void validate_index(const EmbeddingIndex& index, const std::string& where) {
  const auto& kinds = index_kinds();
  if (std::find(kinds.begin(), kinds.end(), index.kind) == kinds.end()) {
    throw Error(fmt::format("{}: index kind '{}' is unknown (expected videos or captions)", where,
                            index.kind));
  }
  if (!index.emb.defined() || index.emb.dim() != 2) {
    throw Error(fmt::format("{}: embeddings must be a [N, D] matrix, got {} dimensions", where,
                            index.emb.defined() ? index.emb.dim() : 0));
  }
  if (index.emb.scalar_type() != torch::kFloat32) {
    throw Error(fmt::format("{}: embeddings must be float32, got {}", where,
                            c10::toString(index.emb.scalar_type())));
  }
  const int64_t n = index.emb.size(0);
  if (n == 0 || index.emb.size(1) == 0) {
    throw Error(
        fmt::format("{}: the index holds no embeddings ([{}, {}])", where, n, index.emb.size(1)));
  }
  if (static_cast<int64_t>(index.ids.size()) != n) {
    throw Error(fmt::format("{}: {} ids for {} embedding rows (one id per row expected)", where,
                            index.ids.size(), n));
  }
  if (index.kind == "captions" && static_cast<int64_t>(index.texts.size()) != n) {
    throw Error(fmt::format("{}: {} texts for {} caption rows (one caption per row expected)",
                            where, index.texts.size(), n));
  }
  if (index.kind == "videos" && !index.texts.empty()) {
    throw Error(
        fmt::format("{}: a videos index holds no texts, got {}", where, index.texts.size()));
  }
  auto norms = index.emb.to(torch::kCPU).norm(2, 1);
  auto off = (norms - 1.0).abs();
  // NaN compares false, so test "not within tolerance" to catch it as well.
  auto bad = torch::logical_not(off <= kUnitTolerance).nonzero();
  if (bad.size(0) > 0) {
    const int64_t row = bad[0][0].item<int64_t>();
    throw Error(fmt::format("{}: embedding row {} (id '{}') has norm {}, expected unit length",
                            where, row, index.ids[static_cast<size_t>(row)],
                            norms[row].item<float>()));
  }
}

void save_index(const std::filesystem::path& path, const EmbeddingIndex& index) {
  validate_index(index, path.string());
  nlohmann::json meta = {{"kind", index.kind},
                         {"dim", index.dim()},
                         {"ids", index.ids},
                         {"info", index.info.is_null() ? nlohmann::json::object() : index.info}};
  if (index.kind == "captions") meta["texts"] = index.texts;
  write_safetensors(path, {{kTensorName, index.emb.to(torch::kCPU).contiguous()}},
                    {{kMetadataKey, meta.dump()}});
}

EmbeddingIndex load_index(const std::filesystem::path& path) {
  const std::string file = path.string();
  if (!std::filesystem::exists(path)) {
    throw Error(
        fmt::format("{}: index file does not exist (write one with mvadapter encode)", file));
  }
  auto st = read_safetensors(path);
  auto it = st.metadata.find(kMetadataKey);
  if (it == st.metadata.end()) {
    throw Error(fmt::format(
        "{}: not an embedding index (no '{}' metadata; write one with mvadapter encode)", file,
        kMetadataKey));
  }
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    throw Error(
        fmt::format("{}: metadata '{}' is not valid JSON ({})", file, kMetadataKey, e.what()));
  }
  if (!meta.is_object()) {
    throw Error(fmt::format("{}: metadata '{}' must be a JSON object", file, kMetadataKey));
  }
  auto t = st.tensors.find(kTensorName);
  if (t == st.tensors.end()) {
    throw Error(fmt::format("{}: no '{}' tensor", file, kTensorName));
  }
  if (!meta.contains("kind") || !meta["kind"].is_string()) {
    throw Error(
        fmt::format("{}: index metadata lacks the string field 'kind' (videos or captions)", file));
  }
  if (!meta.contains("dim") || !meta["dim"].is_number_integer()) {
    throw Error(fmt::format("{}: index metadata lacks the integer field 'dim'", file));
  }
  EmbeddingIndex index;
  index.kind = meta["kind"].get<std::string>();
  // Clone: the mapping is copy-on-write, but an index outlives nothing if it owns its memory.
  index.emb = t->second.clone();
  index.ids = string_list(meta, "ids", file);
  index.texts = string_list(meta, "texts", file);
  if (meta.contains("info")) index.info = meta["info"];
  const int64_t dim = meta["dim"].get<int64_t>();
  if (index.emb.dim() == 2 && index.emb.size(1) != dim) {
    throw Error(fmt::format("{}: metadata says D={} but the embeddings are [{}, {}]", file, dim,
                            index.emb.size(0), index.emb.size(1)));
  }
  validate_index(index, file);
  return index;
}

std::vector<SearchHit> search(const EmbeddingIndex& index, const torch::Tensor& query, int64_t k) {
  if (k < 1) throw Error(fmt::format("search: top-k must be at least 1, got {}", k));
  if (!index.emb.defined() || index.emb.dim() != 2 || index.emb.size(0) == 0) {
    throw Error("search: the index holds no embeddings");
  }
  if (!query.defined() || (query.dim() != 1 && query.dim() != 2)) {
    throw Error(fmt::format("search: a query must be [D] or [Q, D], got {} dimensions",
                            query.defined() ? query.dim() : 0));
  }
  auto q = (query.dim() == 1 ? query.unsqueeze(0) : query).to(torch::kCPU, torch::kFloat32);
  if (q.size(1) != index.dim()) {
    throw Error(
        fmt::format("search: the query has D={} but the index has D={}", q.size(1), index.dim()));
  }
  auto norms = q.norm(2, 1, /*keepdim=*/true);
  if (!(norms > 0).all().item<bool>() || !torch::isfinite(norms).all().item<bool>()) {
    throw Error("search: a query embedding is zero or not finite");
  }
  auto scores = torch::matmul(q / norms, index.emb.to(torch::kFloat32).t()).contiguous();
  const int64_t n = scores.size(1);
  const int64_t take = std::min(k, n);
  std::vector<SearchHit> hits;
  hits.reserve(static_cast<size_t>(q.size(0) * take));
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t qi = 0; qi < q.size(0); ++qi) {
    const float* s = scores[qi].data_ptr<float>();
    std::iota(order.begin(), order.end(), 0);
    // A total order (score, then row) makes the result independent of the sort's stability.
    std::partial_sort(order.begin(), order.begin() + take, order.end(),
                      [s](int64_t a, int64_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); });
    for (int64_t r = 0; r < take; ++r) {
      const int64_t row = order[static_cast<size_t>(r)];
      hits.push_back({qi, r + 1, row, s[row]});
    }
  }
  return hits;
}

}  // namespace mva
