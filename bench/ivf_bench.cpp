// ivf_bench: latency and recall@10 of the IVF index (encode --index-type ivf) against exact
// search, on N synthetic unit vectors of the model's width; prints one JSON line per nprobe.
// The vectors are a mixture of `clusters` Gaussian blobs on the sphere (embeddings of real
// videos cluster by topic; uniform random vectors have no neighbours for an IVF to exploit), and
// the queries are held-out draws of the same mixture.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include <fmt/format.h>
#include <torch/torch.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "mvadapter/core/runtime.h"
#include "mvadapter/eval/embedding_index.h"
#include "mvadapter/eval/ivf_index.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

torch::Tensor mixture(int64_t n, const torch::Tensor& centers, double spread) {
  auto which = torch::randint(centers.size(0), {n}, torch::kLong);
  auto x = centers.index_select(0, which) + spread * torch::randn({n, centers.size(1)});
  return x / x.norm(2, 1, true);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"IVF index latency and recall@10 against exact search"};
  int64_t n = 1000000, dim = 512, queries = 200, nlist = 1024, clusters = 10000, k = 10;
  int64_t exact_timed = 20;
  int threads = 2;
  double spread = 0.02;
  std::vector<int64_t> nprobes = {8, 16, 32, 64};
  app.add_option("--n", n, "indexed vectors");
  app.add_option("--dim", dim, "their width (ViT-B: 512)");
  app.add_option("--queries", queries, "queries timed one by one");
  app.add_option("--nlist", nlist, "IVF cells");
  app.add_option("--exact-timed", exact_timed, "queries timed one by one with exact search");
  app.add_option("--nprobe", nprobes, "cells visited per query (several: one line each)");
  app.add_option("--clusters", clusters, "blobs of the synthetic mixture");
  app.add_option("--spread", spread, "standard deviation of a blob, per coordinate");
  app.add_option("--threads", threads, "threads");
  CLI11_PARSE(app, argc, argv);
  mva::set_threads(threads);
  torch::manual_seed(0);
  auto centers = torch::randn({clusters, dim});
  centers = centers / centers.norm(2, 1, true);
  auto t0 = Clock::now();
  const auto x = mixture(n, centers, spread).contiguous();
  const auto q = mixture(queries, centers, spread).contiguous();
  std::printf("data: %lld x %lld in %.1f s\n", static_cast<long long>(n),
              static_cast<long long>(dim), seconds_since(t0));

  // Exact: the index's own search (a matmul over every row); the ground truth in one batch, the
  // latency on the first `exact_timed` queries one by one.
  mva::EmbeddingIndex flat;
  flat.kind = "videos";
  flat.emb = x;
  std::vector<std::vector<int64_t>> truth(static_cast<size_t>(queries));
  for (const auto& h : mva::search(flat, q, k))
    truth[static_cast<size_t>(h.query)].push_back(h.row);
  std::vector<double> exact_ms;
  for (int64_t i = 0; i < std::min(queries, exact_timed); ++i) {
    const auto t = Clock::now();
    static_cast<void>(mva::search(flat, q[i], k));
    exact_ms.push_back(1000.0 * seconds_since(t));
  }
  std::printf("%s\n", nlohmann::json({{"search", "exact"},
                                      {"n", n},
                                      {"dim", dim},
                                      {"queries", exact_ms.size()},
                                      {"p50_ms", percentile(exact_ms, 0.5)},
                                      {"p99_ms", percentile(exact_ms, 0.99)}})
                          .dump()
                          .c_str());

  t0 = Clock::now();
  auto ivf = mva::IvfIndex::build(x, nlist);
  const double build_s = seconds_since(t0);
  for (const int64_t nprobe : nprobes) {
    ivf.set_nprobe(nprobe);
    std::vector<double> ms;
    double found = 0;
    for (int64_t i = 0; i < queries; ++i) {
      const auto t = Clock::now();
      const auto hits = ivf.search(q[i], k);
      ms.push_back(1000.0 * seconds_since(t));
      const auto& want = truth[static_cast<size_t>(i)];
      for (const auto& h : hits) found += std::count(want.begin(), want.end(), h.row);
    }
    std::printf("%s\n", nlohmann::json({{"search", "ivf"},
                                        {"n", n},
                                        {"queries", queries},
                                        {"dim", dim},
                                        {"nlist", nlist},
                                        {"nprobe", nprobe},
                                        {"build_s", build_s},
                                        {"p50_ms", percentile(ms, 0.5)},
                                        {"p99_ms", percentile(ms, 0.99)},
                                        {"recall_at_10", found / static_cast<double>(queries * k)}})
                            .dump()
                            .c_str());
  }
  return 0;
}
