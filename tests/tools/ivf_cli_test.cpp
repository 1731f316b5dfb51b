// The IVF index (FAISS): the library against exact search, and `encode --index-type ivf` /
// `search` through the CLI on the fixture clips.
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "cli_fixture.h"
#include "mvadapter/core/error.h"
#include "mvadapter/eval/embedding_index.h"
#include "mvadapter/eval/ivf_index.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace mva {
namespace {

#define MVA_REQUIRE_FAISS() \
  if (!ivf_supported()) GTEST_SKIP() << "needs FAISS; this build has MVA_WITH_FAISS=OFF"

// Unit rows in `clusters` tight blobs, as embeddings of related videos are.
torch::Tensor clustered(int64_t n, int64_t d, int64_t clusters) {
  torch::manual_seed(3);
  auto centers = torch::randn({clusters, d});
  auto x = centers.index_select(0, torch::arange(n) % clusters) + 0.05 * torch::randn({n, d});
  return x / x.norm(2, 1, true);
}

TEST(IvfIndex, VisitingEveryCellIsExactAndFewCellsFindMost) {
  MVA_REQUIRE_FAISS();
  const auto x = clustered(2000, 32, 20);
  EmbeddingIndex flat;
  flat.kind = "videos";
  flat.emb = x;
  auto ivf = IvfIndex::build(x, 16);
  EXPECT_EQ(ivf.rows(), 2000);
  EXPECT_EQ(ivf.dim(), 32);
  EXPECT_EQ(ivf.nlist(), 16);
  const auto queries = clustered(2000, 32, 20).slice(0, 0, 40) + 0.01;  // near, not equal, rows
  ivf.set_nprobe(16);
  const auto exact = search(flat, queries, 10);
  const auto all_cells = ivf.search(queries, 10);
  ASSERT_EQ(all_cells.size(), exact.size());
  for (size_t i = 0; i < exact.size(); ++i) {
    EXPECT_EQ(all_cells[i].query, exact[i].query);
    EXPECT_EQ(all_cells[i].rank, exact[i].rank);
    EXPECT_EQ(all_cells[i].row, exact[i].row) << "hit " << i;
    EXPECT_NEAR(all_cells[i].score, exact[i].score, 1e-4);
  }
  ivf.set_nprobe(2);
  const auto few = ivf.search(queries, 10);
  int64_t found = 0;
  for (const auto& h : few) {
    for (const auto& e : exact) found += e.query == h.query && e.row == h.row;
  }
  EXPECT_GE(found, static_cast<int64_t>(0.8 * exact.size())) << "recall@10 with 2 of 16 cells";
  EXPECT_ERROR_CONTAINS(ivf.set_nprobe(17), "--nprobe: 17 must be from 1 to nlist (16)");
  EXPECT_ERROR_CONTAINS(ivf.search(torch::ones({5}), 3),
                        "the query has D=5 but the index has D=32");
}

TEST(IvfIndex, SavedAndLoadedIndexAnswersTheSameAndChecksItsShape) {
  MVA_REQUIRE_FAISS();
  const fs::path dir = test::temp_dir("ivf_index_io");
  const auto x = clustered(500, 16, 10);
  const auto ivf = IvfIndex::build(x, 8, 3);
  ivf.save(dir / "x.ivf");
  const auto back = IvfIndex::load(dir / "x.ivf", 500, 16);
  EXPECT_EQ(back.nprobe(), 3);
  const auto a = ivf.search(x.slice(0, 0, 5), 4), b = back.search(x.slice(0, 0, 5), 4);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].row, b[i].row);
  EXPECT_ERROR_CONTAINS(IvfIndex::load(dir / "x.ivf", 499, 16),
                        "holds 500 rows of D=16, but its index has 499 rows of D=16");
  std::ofstream(dir / "junk.ivf") << "not an index";
  EXPECT_ERROR_CONTAINS(IvfIndex::load(dir / "junk.ivf", 500, 16), "not a FAISS index");
  fs::remove_all(dir);
}

TEST(EncodeCli, IvfIndexBesideTheIndexIsWhatSearchUses) {
  MVA_REQUIRE_VIDEO();
  MVA_REQUIRE_FAISS();
  auto s = test::make_train_setup("encode_cli_ivf", 1);
  const fs::path videos = s.dir / "videos.safetensors";
  const std::string cli = test::cli_binary().string();
  const std::string base = " " + s.config.string() + " --zero-shot";
  std::string out;
  ASSERT_EQ(test::run_command(cli + " encode" + base + " --videos --index-type ivf --out " +
                                  videos.string() + " 2>&1",
                              &out),
            0)
      << out;
  EXPECT_NE(out.find("+ IVF (nlist 1, nprobe 1) -> " + videos.string() + ".ivf"), std::string::npos)
      << out;
  ASSERT_TRUE(fs::exists(videos.string() + ".ivf"));
  // One cell: the IVF answer is the exact one.
  std::string ivf_out, exact_out;
  const std::string search = cli + " search" + base + " --index " + videos.string() +
                             " --top-k 8 --json \"video number 3\" 2>/dev/null";
  ASSERT_EQ(test::run_command(search, &ivf_out), 0) << ivf_out;
  ASSERT_EQ(test::run_command(cli + " search" + base + " --index " + videos.string() +
                                  " --exact --top-k 8 --json \"video number 3\" 2>/dev/null",
                              &exact_out),
            0);
  const auto a = nlohmann::json::parse(ivf_out), b = nlohmann::json::parse(exact_out);
  ASSERT_EQ(a[0]["hits"].size(), 8u);
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(a[0]["hits"][i]["id"], b[0]["hits"][i]["id"]);
  // A flat index written again removes the IVF that no longer matches it.
  ASSERT_EQ(test::run_command(cli + " encode" + base + " --videos --out " + videos.string(), &out),
            0);
  EXPECT_FALSE(fs::exists(videos.string() + ".ivf"));
  fs::remove_all(s.dir);
}

}  // namespace
}  // namespace mva
