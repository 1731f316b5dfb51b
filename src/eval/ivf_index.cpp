#include "mvadapter/eval/ivf_index.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>
#if MVA_WITH_FAISS
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/index_io.h>
#endif

#include "mvadapter/core/error.h"
#include "mvadapter/eval/embedding_index.h"

namespace mva {

std::string to_string(IndexType type) {
  return type == IndexType::kIvf ? "ivf" : "flat";
}

IndexType parse_index_type(const std::string& name, const std::string& field) {
  if (name == "flat") return IndexType::kFlat;
  if (name == "ivf") return IndexType::kIvf;
  throw Error(fmt::format("{}: '{}' is not an index type (expected flat or ivf)", field, name));
}

bool ivf_supported() {
  return MVA_WITH_FAISS != 0;
}

std::filesystem::path ivf_path(const std::filesystem::path& index_file) {
  return std::filesystem::path(index_file.string() + ".ivf");
}

#if MVA_WITH_FAISS
namespace {

torch::Tensor float_rows(const torch::Tensor& x, const char* what) {
  if (!x.defined() || x.dim() != 2 || x.size(0) == 0 || x.size(1) == 0) {
    throw Error(fmt::format("ivf: {} must be a non-empty [N, D] matrix", what));
  }
  return x.to(torch::kCPU, torch::kFloat32).contiguous();
}

}  // namespace

IvfIndex IvfIndex::build(const torch::Tensor& emb, int64_t nlist, int64_t nprobe) {
  auto x = float_rows(emb, "the embeddings");
  const int64_t n = x.size(0), d = x.size(1);
  if (nlist <= 0) {
    nlist = std::max<int64_t>(
        1, std::min<int64_t>(n / 39, static_cast<int64_t>(4 * std::sqrt(double(n)))));
  }
  if (nlist > n) {
    throw Error(fmt::format("--nlist: {} cells for {} rows (at most one cell per row)", nlist, n));
  }
  auto quantizer = new faiss::IndexFlatIP(d);
  auto ivf = std::make_shared<faiss::IndexIVFFlat>(quantizer, d, static_cast<size_t>(nlist),
                                                   faiss::METRIC_INNER_PRODUCT);
  ivf->own_fields = true;
  ivf->cp.seed = 1234;  // k-means sample and start: the same file for the same rows
  // 64 rows per cell (FAISS warns below 39) and 10 k-means rounds, not its 256 and 25: training on
  // millions of rows then takes under a minute on 2 cores (bench/RESULTS.md, "IVF index").
  ivf->cp.niter = 10;
  const int64_t sample = std::min<int64_t>(n, 64 * nlist);
  // A strided sample rather than FAISS's random subsample: the rows' order is the caller's.
  auto train =
      sample == n ? x : x.index_select(0, torch::linspace(0, n - 1, sample).to(torch::kLong));
  train = train.contiguous();
  ivf->train(sample, train.data_ptr<float>());
  ivf->add(n, x.data_ptr<float>());
  IvfIndex out;
  out.index_ = ivf;
  out.set_nprobe(nprobe > 0 ? nprobe : std::max<int64_t>(1, nlist / 16));
  return out;
}

IvfIndex IvfIndex::load(const std::filesystem::path& path, int64_t rows, int64_t dim) {
  std::unique_ptr<faiss::Index> raw;
  try {
    raw.reset(faiss::read_index(path.string().c_str()));
  } catch (const std::exception& e) {
    throw Error(fmt::format("{}: not a FAISS index ({})", path.string(),
                            std::string(e.what()).substr(0, 200)));
  }
  auto* ivf = dynamic_cast<faiss::IndexIVF*>(raw.get());
  if (ivf == nullptr || ivf->metric_type != faiss::METRIC_INNER_PRODUCT) {
    throw Error(
        fmt::format("{}: not an inner-product IVF index (write it with encode "
                    "--index-type ivf)",
                    path.string()));
  }
  if (ivf->ntotal != rows || ivf->d != dim) {
    throw Error(
        fmt::format("{}: holds {} rows of D={}, but its index has {} rows of D={} (encode "
                    "both again)",
                    path.string(), ivf->ntotal, ivf->d, rows, dim));
  }
  raw.release();
  IvfIndex out;
  out.index_.reset(ivf);
  return out;
}

void IvfIndex::save(const std::filesystem::path& path) const {
  // Written beside, then renamed: a reader never sees half an index.
  const std::string tmp = path.string() + ".tmp";
  faiss::write_index(index_.get(), tmp.c_str());
  std::filesystem::rename(tmp, path);
}

std::vector<SearchHit> IvfIndex::search(const torch::Tensor& query, int64_t k) const {
  if (k < 1) throw Error(fmt::format("search: top-k must be at least 1, got {}", k));
  if (!query.defined() || (query.dim() != 1 && query.dim() != 2)) {
    throw Error("search: a query must be [D] or [Q, D]");
  }
  auto q = float_rows(query.dim() == 1 ? query.unsqueeze(0) : query, "the query");
  if (q.size(1) != dim()) {
    throw Error(fmt::format("search: the query has D={} but the index has D={}", q.size(1), dim()));
  }
  auto norms = q.norm(2, 1, /*keepdim=*/true);
  if (!(norms > 0).all().item<bool>() || !torch::isfinite(norms).all().item<bool>()) {
    throw Error("search: a query embedding is zero or not finite");
  }
  q = (q / norms).contiguous();
  const int64_t take = std::min(k, rows());
  std::vector<float> dist(static_cast<size_t>(q.size(0) * take));
  std::vector<faiss::Index::idx_t> label(dist.size());
  index_->search(q.size(0), q.data_ptr<float>(), take, dist.data(), label.data());
  std::vector<SearchHit> hits;
  for (int64_t qi = 0; qi < q.size(0); ++qi) {
    int64_t rank = 0;
    for (int64_t r = 0; r < take; ++r) {
      const auto at = static_cast<size_t>(qi * take + r);
      if (label[at] < 0) continue;  // fewer than k rows in the visited cells
      hits.push_back({qi, ++rank, static_cast<int64_t>(label[at]), dist[at]});
    }
  }
  return hits;
}

int64_t IvfIndex::rows() const {
  return index_->ntotal;
}
int64_t IvfIndex::dim() const {
  return index_->d;
}
int64_t IvfIndex::nlist() const {
  return static_cast<int64_t>(index_->nlist);
}
int64_t IvfIndex::nprobe() const {
  return static_cast<int64_t>(index_->nprobe);
}
void IvfIndex::set_nprobe(int64_t nprobe) {
  if (nprobe < 1 || nprobe > nlist()) {
    throw Error(fmt::format("--nprobe: {} must be from 1 to nlist ({})", nprobe, nlist()));
  }
  index_->nprobe = static_cast<size_t>(nprobe);
}

#else
[[noreturn]] static void no_faiss() {
  throw Error("ivf: this build has no FAISS (install libfaiss-dev and reconfigure)");
}
IvfIndex IvfIndex::build(const torch::Tensor&, int64_t, int64_t) {
  no_faiss();
}
IvfIndex IvfIndex::load(const std::filesystem::path&, int64_t, int64_t) {
  no_faiss();
}
void IvfIndex::save(const std::filesystem::path&) const {
  no_faiss();
}
std::vector<SearchHit> IvfIndex::search(const torch::Tensor&, int64_t) const {
  no_faiss();
}
int64_t IvfIndex::rows() const {
  return 0;
}
int64_t IvfIndex::dim() const {
  return 0;
}
int64_t IvfIndex::nlist() const {
  return 0;
}
int64_t IvfIndex::nprobe() const {
  return 0;
}
void IvfIndex::set_nprobe(int64_t) {
  no_faiss();
}
#endif

}  // namespace mva
