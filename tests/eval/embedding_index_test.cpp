#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "mvadapter/eval/embedding_index.h"
#include "mvadapter/io/safetensors.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace mva {
namespace {

const float kHalfSqrt2 = static_cast<float>(std::sqrt(0.5));

// Rows e0, e1, (e0 + e1) / sqrt 2, -e0 in D = 4: cosines to e0 are 1, 0, 0.7071, -1.
EmbeddingIndex four_videos() {
  EmbeddingIndex index;
  index.kind = "videos";
  index.emb = torch::tensor({1.f, 0.f, 0.f, 0.f,                //
                             0.f, 1.f, 0.f, 0.f,                //
                             kHalfSqrt2, kHalfSqrt2, 0.f, 0.f,  //
                             -1.f, 0.f, 0.f, 0.f})
                  .view({4, 4});
  index.ids = {"v0", "v1", "v2", "v3"};
  index.info = {{"config", "tiny"}, {"adapter", "zero-shot"}};
  return index;
}

std::vector<int64_t> rows_of(const std::vector<SearchHit>& hits) {
  std::vector<int64_t> rows;
  for (const auto& h : hits) rows.push_back(h.row);
  return rows;
}

// Writes an "index" with the given metadata JSON (or none) and embeddings, bypassing save_index.
fs::path write_raw(const std::string& name, const torch::Tensor& emb, const std::string& meta,
                   bool with_meta = true) {
  const auto path = test::temp_dir("embedding_index_raw") / name;
  std::map<std::string, std::string> md;
  if (with_meta) md["mvadapter.index"] = meta;
  write_safetensors(path, {{"embeddings", emb}}, md);
  return path;
}

TEST(EmbeddingIndex, SavesAndLoadsVideosAndCaptions) {
  const auto dir = test::temp_dir("embedding_index_roundtrip");
  auto videos = four_videos();
  save_index(dir / "videos.safetensors", videos);
  auto got = load_index(dir / "videos.safetensors");
  EXPECT_EQ(got.kind, "videos");
  EXPECT_TRUE(torch::equal(got.emb, videos.emb));
  EXPECT_EQ(got.ids, videos.ids);
  EXPECT_TRUE(got.texts.empty());
  EXPECT_EQ(got.info, videos.info);
  EXPECT_EQ(got.size(), 4);
  EXPECT_EQ(got.dim(), 4);
  // The layout other tools read: one tensor, the metadata as one JSON object.
  auto raw = read_safetensors(dir / "videos.safetensors");
  ASSERT_EQ(raw.tensors.size(), 1u);
  EXPECT_EQ(raw.tensors.count("embeddings"), 1u);
  auto meta = nlohmann::json::parse(raw.metadata.at("mvadapter.index"));
  EXPECT_EQ(meta["kind"], "videos");
  EXPECT_EQ(meta["dim"], 4);
  EXPECT_EQ(meta["ids"], nlohmann::json({"v0", "v1", "v2", "v3"}));

  EmbeddingIndex captions;
  captions.kind = "captions";
  captions.emb = torch::tensor({0.6f, 0.8f, 0.f, -1.f}).view({2, 2});
  captions.ids = {"v0#0", "v0#1"};
  captions.texts = {"a man \"sings\"", "une vidéo — ☃"};
  save_index(dir / "captions.safetensors", captions);
  auto back = load_index(dir / "captions.safetensors");
  EXPECT_EQ(back.kind, "captions");
  EXPECT_TRUE(torch::equal(back.emb, captions.emb));
  EXPECT_EQ(back.ids, captions.ids);
  EXPECT_EQ(back.texts, captions.texts);
}

TEST(EmbeddingIndex, SearchRanksByCosineBestFirst) {
  auto index = four_videos();
  // Not unit length: search normalises the query, so the scores are cosines.
  auto hits = search(index, torch::tensor({2.f, 0.f, 0.f, 0.f}), 4);
  ASSERT_EQ(hits.size(), 4u);
  EXPECT_EQ(rows_of(hits), (std::vector<int64_t>{0, 2, 1, 3}));
  const float want[] = {1.f, kHalfSqrt2, 0.f, -1.f};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(hits[i].rank, static_cast<int64_t>(i) + 1);
    EXPECT_EQ(hits[i].query, 0);
    EXPECT_NEAR(hits[i].score, want[i], 1e-6);
  }
  // Two queries [Q, D]: hits come query by query, k each.
  auto two = search(index, torch::tensor({1.f, 0.f, 0.f, 0.f, 1.f, 3.f, 0.f, 0.f}).view({2, 4}), 2);
  // Query 0 = e0, query 1 = e0 + 3 e1 (cosine to v1 0.949, to v2 0.894).
  ASSERT_EQ(two.size(), 4u);
  EXPECT_EQ(rows_of(two), (std::vector<int64_t>{0, 2, 1, 2}));
  EXPECT_EQ(two[2].query, 1);
  EXPECT_NEAR(two[2].score, 3.0 / std::sqrt(10.0), 1e-6);
  EXPECT_NEAR(two[3].score, 4.0 / std::sqrt(20.0), 1e-6);
}

TEST(EmbeddingIndex, TiesGoToTheLowerRow) {
  EmbeddingIndex index;
  index.kind = "videos";
  // Rows 1 and 3 equal (best), rows 0, 2, 4 equal (worse).
  index.emb = torch::tensor({0.f, 1.f, 1.f, 0.f, 0.f, 1.f, 1.f, 0.f, 0.f, 1.f}).view({5, 2});
  index.ids = {"a", "b", "c", "d", "e"};
  auto hits = search(index, torch::tensor({1.f, 0.f}), 5);
  EXPECT_EQ(rows_of(hits), (std::vector<int64_t>{1, 3, 0, 2, 4}));
  EXPECT_EQ(rows_of(search(index, torch::tensor({1.f, 0.f}), 3)), (std::vector<int64_t>{1, 3, 0}));
  // e1 scores rows 0, 2, 4 equal: again in row order.
  EXPECT_EQ(rows_of(search(index, torch::tensor({0.f, 1.f}), 2)), (std::vector<int64_t>{0, 2}));
}

TEST(EmbeddingIndex, TopKAboveTheIndexSizeGivesEveryRow) {
  auto index = four_videos();
  auto hits = search(index, torch::tensor({0.f, 1.f, 0.f, 0.f}), 10);
  ASSERT_EQ(hits.size(), 4u);
  EXPECT_EQ(hits.back().rank, 4);
  EXPECT_ERROR_CONTAINS(search(index, torch::tensor({0.f, 1.f, 0.f, 0.f}), 0), "at least 1");
}

TEST(EmbeddingIndex, QueryOfAnotherDimensionIsAnError) {
  auto index = four_videos();
  try {
    search(index, torch::ones({3}), 2);
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("D=3"), std::string::npos) << msg;
    EXPECT_NE(msg.find("D=4"), std::string::npos) << msg;
  }
  EXPECT_ERROR_CONTAINS(search(index, torch::zeros({4}), 2), "zero");
  EXPECT_ERROR_CONTAINS(search(index, torch::ones({2, 2, 4}), 2), "[D] or [Q, D]");
}

TEST(EmbeddingIndex, MalformedFilesAreErrorsNamingTheFile) {
  const auto unit = torch::eye(3);
  auto with_nan = torch::eye(3);
  with_nan[1][1] = NAN;
  struct Case {
    std::string name, meta;
    torch::Tensor emb;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"bad_json.safetensors", "{\"kind\": ", unit, "not valid JSON"},
      {"not_object.safetensors", "[1, 2]", unit, "JSON object"},
      {"kind.safetensors", R"({"kind": "images", "dim": 3, "ids": ["a", "b", "c"]})", unit,
       "kind 'images' is unknown"},
      {"no_kind.safetensors", R"({"dim": 3, "ids": ["a", "b", "c"]})", unit, "'kind'"},
      {"ids.safetensors", R"({"kind": "videos", "dim": 3, "ids": ["a", "b"]})", unit,
       "2 ids for 3 embedding rows"},
      {"id_type.safetensors", R"({"kind": "videos", "dim": 3, "ids": ["a", 7, "c"]})", unit,
       "'ids[1]' must be a string"},
      {"dim.safetensors", R"({"kind": "videos", "dim": 5, "ids": ["a", "b", "c"]})", unit,
       "metadata says D=5 but the embeddings are [3, 3]"},
      {"texts.safetensors", R"({"kind": "captions", "dim": 3, "ids": ["a", "b", "c"]})", unit,
       "0 texts for 3 caption rows"},
      {"norm.safetensors", R"({"kind": "videos", "dim": 3, "ids": ["a", "b", "c"]})", unit * 2,
       "row 0 (id 'a') has norm 2"},
      {"nan.safetensors", R"({"kind": "videos", "dim": 3, "ids": ["a", "b", "c"]})", with_nan,
       "row 1 (id 'b')"},
      {"rank.safetensors", R"({"kind": "videos", "dim": 3, "ids": ["a", "b", "c"]})",
       torch::ones({3}) / std::sqrt(3.f), "[N, D] matrix"},
  };
  for (const auto& c : cases) {
    const auto path = write_raw(c.name, c.emb, c.meta);
    try {
      load_index(path);
      ADD_FAILURE() << c.name << ": expected an Error containing '" << c.expect << "'";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path.string()), std::string::npos) << c.name << ": " << msg;
      EXPECT_NE(msg.find(c.expect), std::string::npos) << c.name << ": " << msg;
    }
  }
  const auto plain = write_raw("plain.safetensors", unit, "", /*with_meta=*/false);
  EXPECT_ERROR_CONTAINS(load_index(plain), plain.string() + ": not an embedding index");
  const auto missing = test::temp_dir("embedding_index_missing") / "none.safetensors";
  EXPECT_ERROR_CONTAINS(load_index(missing), missing.string() + ": index file does not exist");
}

TEST(EmbeddingIndex, SaveRefusesWhatLoadWouldReject) {
  const auto path = test::temp_dir("embedding_index_save") / "x.safetensors";
  auto index = four_videos();
  index.emb = index.emb * 0.5;
  EXPECT_ERROR_CONTAINS(save_index(path, index), "has norm 0.5");
  index = four_videos();
  index.ids.pop_back();
  EXPECT_ERROR_CONTAINS(save_index(path, index), "3 ids for 4 embedding rows");
  index = four_videos();
  index.texts = {"a", "b", "c", "d"};
  EXPECT_ERROR_CONTAINS(save_index(path, index), "a videos index holds no texts");
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace mva
