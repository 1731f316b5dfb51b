#include "mvadapter/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mvadapter/core/error.h"
#include "mvadapter/data/dataset_readers.h"
#include "test_support.h"

namespace {

using mva::MetricsOptions;
using mva::RankConvention;

constexpr double kTol = 1e-9;

struct Case {
  std::string kind;
  torch::Tensor sim;
  std::vector<int64_t> caption_video;
  nlohmann::json raw;
};

// The fixture's similarities were float32 in the reference run; keeping float32 keeps its ties.
std::vector<Case> load_cases() {
  std::ifstream in(mva::test::fixture_path("metrics.json"));
  const auto doc = nlohmann::json::parse(in);
  std::vector<Case> cases;
  for (const auto& c : doc.at("cases")) {
    Case out;
    out.kind = c.at("kind").get<std::string>();
    const auto rows = c.at("sim_t2v").get<std::vector<std::vector<double>>>();
    const int64_t nc = static_cast<int64_t>(rows.size()), nv = static_cast<int64_t>(rows[0].size());
    out.sim = torch::empty({nc, nv}, torch::kFloat);
    auto acc = out.sim.accessor<float, 2>();
    for (int64_t i = 0; i < nc; ++i)
      for (int64_t j = 0; j < nv; ++j) acc[i][j] = static_cast<float>(rows[i][j]);
    if (c.contains("captions_per_video")) {
      out.caption_video =
          mva::caption_video_from_counts(c.at("captions_per_video").get<std::vector<int64_t>>());
    } else {
      for (int64_t i = 0; i < nc; ++i) out.caption_video.push_back(i);
    }
    out.raw = c;
    cases.push_back(std::move(out));
  }
  return cases;
}

torch::Tensor matrix(const std::vector<std::vector<float>>& rows) {
  auto t = torch::empty({static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())});
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < rows[i].size(); ++j) t[i][j] = rows[i][j];
  return t;
}

std::vector<int64_t> as_vector(const torch::Tensor& t) {
  auto c = t.to(torch::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

void expect_recalls(const mva::DirectionMetrics& got, double r1, double r5, double r10,
                    const std::string& where) {
  EXPECT_NEAR(got.r1, r1, kTol) << where;
  EXPECT_NEAR(got.r5, r5, kTol) << where;
  EXPECT_NEAR(got.r10, r10, kTol) << where;
}

MetricsOptions with(RankConvention convention, int64_t chunk = 1024, bool dsl = false,
                    double temperature = 0.01) {
  MetricsOptions o;
  o.convention = convention;
  o.chunk_size = chunk;
  o.dsl = dsl;
  o.dsl_temperature = temperature;
  return o;
}

TEST(RetrievalMetricsFixture, StandardConventionMatchesStandardBlockAndOfficialRecalls) {
  const auto cases = load_cases();
  ASSERT_EQ(cases.size(), 9u);
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const std::string where = fmt::format("case {} ({})", i, c.kind);
    const auto m =
        mva::compute_retrieval_metrics(c.sim, c.caption_video, with(RankConvention::kStandard));
    const auto& off = c.raw;
    for (const std::string dir : {"t2v", "v2t"}) {
      const auto& got = dir == "t2v" ? m.t2v : m.v2t;
      const auto& want = c.raw.at("standard").at(dir);
      // Both directions rank what the official runner ranks (V2T: videos by their best caption,
      // also with several captions per video), so its recalls hold for every case.
      expect_recalls(got, off.at(dir).at(dir + "_r1"), off.at(dir).at(dir + "_r5"),
                     off.at(dir).at(dir + "_r10"), where + " " + dir + " (official block)");
      expect_recalls(got, want.at("R1"), want.at("R5"), want.at("R10"), where + " " + dir);
      EXPECT_NEAR(got.mdr, want.at("MdR").get<double>(), kTol) << where << " " << dir;
      EXPECT_NEAR(got.mnr, want.at("MnR").get<double>(), kTol) << where << " " << dir;
    }
    EXPECT_EQ(m.t2v.num_queries, c.sim.size(0));
    EXPECT_EQ(m.v2t.num_queries, c.sim.size(1));
    EXPECT_EQ(m.convention, RankConvention::kStandard);
  }
}

// Standard and official rank the same way: R@K equal, MnR exactly one apart (1-based vs 0-based),
// for every case; computed together they are ranked once and equal the separate computations.
TEST(RetrievalMetricsFixture, StandardAndOfficialShareRecallsAndMeanRanksDifferByOne) {
  for (const auto& c : load_cases()) {
    const auto both = mva::compute_retrieval_metrics_each(
        c.sim, c.caption_video, {RankConvention::kStandard, RankConvention::kOfficial});
    ASSERT_EQ(both.size(), 2u);
    const auto& s = both[0];
    const auto& o = both[1];
    EXPECT_EQ(s.convention, RankConvention::kStandard);
    EXPECT_EQ(o.convention, RankConvention::kOfficial);
    for (bool t2v : {true, false}) {
      const auto& a = t2v ? s.t2v : s.v2t;
      const auto& b = t2v ? o.t2v : o.v2t;
      const std::string where = c.kind + (t2v ? " t2v" : " v2t");
      expect_recalls(b, a.r1, a.r5, a.r10, where);
      EXPECT_NEAR(a.mnr - b.mnr, 1.0, kTol) << where;
    }
    const auto alone =
        mva::compute_retrieval_metrics(c.sim, c.caption_video, with(RankConvention::kOfficial));
    EXPECT_EQ(alone.to_json(), o.to_json()) << c.kind;
  }
}

// Candidates scoring exactly the ground truth's score, summed over the queries of one direction
// (V2T against the best own caption). Counted here, independently of the code under test.
int64_t exact_ties(const torch::Tensor& sim, const std::vector<int64_t>& gt, bool t2v) {
  auto a = sim.accessor<float, 2>();
  const int64_t nc = sim.size(0), nv = sim.size(1);
  int64_t ties = 0;
  if (t2v) {
    for (int64_t i = 0; i < nc; ++i)
      for (int64_t j = 0; j < nv; ++j) ties += j != gt[i] && a[i][j] == a[i][gt[i]];
    return ties;
  }
  for (int64_t v = 0; v < nv; ++v) {
    float best = -INFINITY;
    for (int64_t i = 0; i < nc; ++i)
      if (gt[i] == v) best = std::max(best, a[i][v]);
    for (int64_t i = 0; i < nc; ++i) ties += gt[i] != v && a[i][v] == best;
  }
  return ties;
}

// R@K and RSum match get_rank exactly. Its mean and median match too except where a ground
// truth ties another candidate: get_rank's unstable sort orders ties arbitrarily (in this
// fixture the n = 33 and n = 100 cases put the tied column first), whereas ties here always go to
// the ground truth, so the official mean can only be higher, by at most ties / n.
TEST(RetrievalMetricsFixture, OfficialConventionReproducesGetRank) {
  int checked_exactly = 0;
  for (const auto& c : load_cases()) {
    const auto m =
        mva::compute_retrieval_metrics(c.sim, c.caption_video, with(RankConvention::kOfficial));
    EXPECT_EQ(m.convention, RankConvention::kOfficial);
    for (bool t2v : {true, false}) {
      const std::string name = t2v ? "t2v" : "v2t";
      const auto& got = t2v ? m.t2v : m.v2t;
      const auto& want = c.raw.at(name);
      const std::string where = c.kind + " " + name + " n=" + std::to_string(got.num_queries);
      expect_recalls(got, want.at(name + "_r1"), want.at(name + "_r5"), want.at(name + "_r10"),
                     where);
      EXPECT_NEAR(got.rsum, want.at(name + "_sum").get<double>(), kTol) << where;
      const double want_mean = want.at(name + "_mean").get<double>();
      const int64_t ties = exact_ties(c.sim, c.caption_video, t2v);
      if (ties == 0 || std::abs(got.mnr - want_mean) < kTol) {
        EXPECT_NEAR(got.mnr, want_mean, kTol) << where;
        EXPECT_NEAR(got.mdr, want.at(name + "_median").get<double>(), kTol) << where;
        ++checked_exactly;
      } else {
        EXPECT_GT(want_mean, got.mnr) << where;
        EXPECT_LE(want_mean, got.mnr + static_cast<double>(ties) / got.num_queries + kTol) << where;
      }
    }
  }
  EXPECT_GE(checked_exactly, 16);  // of 18 directions, only two have a tie ordered against us
}

TEST(RetrievalMetricsFixture, ChunkedRanksEqualUnchunked) {
  for (const auto& c : load_cases()) {
    for (auto conv :
         {RankConvention::kStandard, RankConvention::kOfficial, RankConvention::kCaptionRanking}) {
      for (bool dsl : {false, true}) {
        const auto whole =
            mva::compute_retrieval_ranks(c.sim, c.caption_video, with(conv, 1 << 20, dsl, 0.1));
        for (int64_t chunk : {1, 2, 3, 7}) {
          const auto part =
              mva::compute_retrieval_ranks(c.sim, c.caption_video, with(conv, chunk, dsl, 0.1));
          EXPECT_EQ(as_vector(part.t2v), as_vector(whole.t2v)) << c.kind << " chunk " << chunk;
          EXPECT_EQ(as_vector(part.v2t), as_vector(whole.v2t)) << c.kind << " chunk " << chunk;
        }
      }
    }
  }
}

// Worked by hand. T2V: caption 0 beats all (rank 0); caption 1's 0.6 loses to 0.7 (rank 1);
// caption 2's 0.4 loses to 0.8 (rank 1). V2T by columns: video 0 {0.9 own, 0.7, 0.3} -> 0;
// video 1 {0.1, 0.6 own, 0.8} -> 1; video 2 {0.35, 0.2, 0.4 own} -> 0.
TEST(RetrievalMetrics, HandWorkedThreeByThree) {
  const auto sim = matrix({{0.9f, 0.1f, 0.35f}, {0.7f, 0.6f, 0.2f}, {0.3f, 0.8f, 0.4f}});
  const auto ranks = mva::compute_retrieval_ranks(sim, {0, 1, 2});
  EXPECT_EQ(as_vector(ranks.t2v), (std::vector<int64_t>{0, 1, 1}));
  EXPECT_EQ(as_vector(ranks.v2t), (std::vector<int64_t>{0, 1, 0}));

  const auto m = mva::compute_retrieval_metrics(sim);
  expect_recalls(m.t2v, 100.0 / 3, 100.0, 100.0, "t2v");
  EXPECT_NEAR(m.t2v.rsum, 100.0 / 3 + 200.0, kTol);
  EXPECT_NEAR(m.t2v.mdr, 2.0, kTol);  // median of 1-based {1, 2, 2}
  EXPECT_NEAR(m.t2v.mnr, 5.0 / 3, kTol);
  expect_recalls(m.v2t, 200.0 / 3, 100.0, 100.0, "v2t");
  EXPECT_NEAR(m.v2t.mdr, 1.0, kTol);  // median of {1, 2, 1}
  EXPECT_NEAR(m.v2t.mnr, 4.0 / 3, kTol);

  // get_rank: mean of 0-based ranks; "median" averages sorted[1] and sorted[2] for n = 3.
  const auto o = mva::compute_retrieval_metrics(sim, with(RankConvention::kOfficial));
  EXPECT_NEAR(o.t2v.mnr, 2.0 / 3, kTol);
  EXPECT_NEAR(o.t2v.mdr, 1.0, kTol);  // sorted {0, 1, 1}
  EXPECT_NEAR(o.v2t.mnr, 1.0 / 3, kTol);
  EXPECT_NEAR(o.v2t.mdr, 0.5, kTol);  // sorted {0, 0, 1}
}

// Every tie goes to the ground truth: a candidate counts only when strictly higher.
TEST(RetrievalMetrics, TiesAreResolvedInFavourOfTheGroundTruth) {
  const auto sim = matrix({{0.5f, 0.5f, 0.1f}, {0.5f, 0.5f, 0.5f}, {0.2f, 0.9f, 0.9f}});
  const auto ranks = mva::compute_retrieval_ranks(sim, {0, 1, 2});
  EXPECT_EQ(as_vector(ranks.t2v), (std::vector<int64_t>{0, 0, 0}));
  // Video 1's column {0.5, 0.5 own, 0.9}: only caption 2 is strictly higher.
  EXPECT_EQ(as_vector(ranks.v2t), (std::vector<int64_t>{0, 1, 0}));
  const auto m = mva::compute_retrieval_metrics(sim);
  EXPECT_NEAR(m.t2v.r1, 100.0, kTol);
  EXPECT_NEAR(m.t2v.mdr, 1.0, kTol);
}

// Captions 0,1 -> video 0; 2,3 -> video 1; 4 -> video 2. Video 0's best own caption scores 0.5;
// captions 2 and 3 (both of video 1) score 0.7 and 0.6: 2 captions, 1 video above it.
// Video 1's best own is 0.8, beaten by caption 4 (video 2). Video 2 (0.2) beats every other.
TEST(RetrievalMetrics, MultiCaptionRanksVideosOrCaptionsPerConvention) {
  const auto sim = matrix({{0.5f, 0.2f, 0.1f},
                           {0.3f, 0.4f, 0.1f},
                           {0.7f, 0.3f, 0.1f},
                           {0.6f, 0.8f, 0.1f},
                           {0.1f, 0.9f, 0.2f}});
  const std::vector<int64_t> gt = {0, 0, 1, 1, 2};
  EXPECT_EQ(gt, mva::caption_video_from_counts({2, 2, 1}));

  const auto standard = mva::compute_retrieval_ranks(sim, gt);
  EXPECT_EQ(as_vector(standard.t2v), (std::vector<int64_t>{0, 1, 1, 0, 1}));
  EXPECT_EQ(as_vector(standard.v2t), (std::vector<int64_t>{1, 1, 0}));
  const auto official = mva::compute_retrieval_ranks(sim, gt, with(RankConvention::kOfficial));
  EXPECT_EQ(as_vector(official.t2v), (std::vector<int64_t>{0, 1, 1, 0, 1}));
  EXPECT_EQ(as_vector(official.v2t), (std::vector<int64_t>{1, 1, 0}));
  const auto captions =
      mva::compute_retrieval_ranks(sim, gt, with(RankConvention::kCaptionRanking));
  EXPECT_EQ(as_vector(captions.t2v), (std::vector<int64_t>{0, 1, 1, 0, 1}));
  EXPECT_EQ(as_vector(captions.v2t), (std::vector<int64_t>{2, 1, 0}));

  const auto m = mva::compute_retrieval_metrics(sim, gt);
  EXPECT_EQ(m.num_captions, 5);
  EXPECT_EQ(m.num_videos, 3);
  expect_recalls(m.t2v, 40.0, 100.0, 100.0, "t2v");
  EXPECT_NEAR(m.t2v.mdr, 2.0, kTol);  // {1, 2, 2, 1, 2}
  EXPECT_NEAR(m.t2v.mnr, 1.6, kTol);
  expect_recalls(m.v2t, 100.0 / 3, 100.0, 100.0, "v2t");
  EXPECT_NEAR(m.v2t.mdr, 2.0, kTol);  // {2, 2, 1}
  EXPECT_NEAR(m.v2t.mnr, 5.0 / 3, kTol);
  const auto cr = mva::compute_retrieval_metrics(sim, gt, with(RankConvention::kCaptionRanking));
  expect_recalls(cr.v2t, 100.0 / 3, 100.0, 100.0, "v2t caption_ranking");
  EXPECT_NEAR(cr.v2t.mdr, 2.0, kTol);  // {3, 2, 1}
  EXPECT_NEAR(cr.v2t.mnr, 2.0, kTol);
  const auto o = mva::compute_retrieval_metrics(sim, gt, with(RankConvention::kOfficial));
  EXPECT_NEAR(o.t2v.mdr, 1.0, kTol);  // sorted {0, 0, 1, 1, 1}: mean of [2], [3]
  EXPECT_NEAR(o.t2v.mnr, 0.6, kTol);
  EXPECT_NEAR(o.v2t.mdr, 1.0, kTol);  // sorted {0, 1, 1}
  EXPECT_NEAR(o.v2t.mnr, 2.0 / 3, kTol);
}

// Video 0 is a hub: caption 1 prefers it (0.8 > 0.7). With the CAMoE dual softmax over the
// queries at T = 0.1, column 0 gives caption 1 weight e^8/(e^9+e^8) = 0.269 and column 1 gives it
// e^7/(e^5+e^7) = 0.881, so its scores become 0.8*0.269*2 = 0.43 < 0.7*0.881*2 = 1.23.
TEST(RetrievalMetrics, DualSoftmaxOverQueriesDemotesAHubVideo) {
  const auto sim = matrix({{0.9f, 0.5f}, {0.8f, 0.7f}});
  const auto plain = mva::compute_retrieval_metrics(sim);
  EXPECT_NEAR(plain.t2v.r1, 50.0, kTol);
  EXPECT_FALSE(plain.dsl);

  const auto dsl =
      mva::compute_retrieval_metrics(sim, with(RankConvention::kStandard, 1, true, 0.1));
  EXPECT_NEAR(dsl.t2v.r1, 100.0, kTol);
  EXPECT_NEAR(dsl.v2t.r1, 100.0, kTol);
  EXPECT_TRUE(dsl.dsl);
  EXPECT_DOUBLE_EQ(dsl.dsl_temperature, 0.1);

  // T divides: at T = 1000 the softmax is nearly flat and the hub keeps winning.
  const auto flat =
      mva::compute_retrieval_metrics(sim, with(RankConvention::kStandard, 1024, true, 1000.0));
  EXPECT_NEAR(flat.t2v.r1, 50.0, kTol);
}

TEST(RetrievalMetrics, JsonAndSummaryStateTheConventions) {
  const auto sim = matrix({{0.9f, 0.1f, 0.35f}, {0.7f, 0.6f, 0.2f}, {0.3f, 0.8f, 0.4f}});
  const auto j = mva::compute_retrieval_metrics(sim).to_json();
  EXPECT_EQ(j.at("convention"), "standard");
  EXPECT_EQ(j.at("dsl"), false);
  EXPECT_FALSE(j.contains("dsl_temperature"));
  EXPECT_EQ(j.at("num_captions"), 3);
  EXPECT_NEAR(j.at("t2v").at("R1").get<double>(), 100.0 / 3, kTol);
  EXPECT_NEAR(j.at("v2t").at("MnR").get<double>(), 4.0 / 3, kTol);
  EXPECT_EQ(j.at("v2t").at("num_queries"), 3);

  const auto o = mva::compute_retrieval_metrics(sim, with(RankConvention::kOfficial, 1024, true));
  EXPECT_EQ(o.to_json().at("convention"), "official");
  EXPECT_EQ(o.to_json().at("dsl"), true);
  EXPECT_DOUBLE_EQ(o.to_json().at("dsl_temperature").get<double>(), 0.01);

  const auto line = mva::compute_retrieval_metrics(sim).summary();
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_NE(line.find("T2V R@1 33.3"), std::string::npos) << line;
  EXPECT_NE(line.find("1-based"), std::string::npos) << line;
  EXPECT_NE(line.find("DSL off"), std::string::npos) << line;
  EXPECT_NE(o.summary().find("DSL on"), std::string::npos) << o.summary();
}

TEST(RetrievalMetrics, ConventionNamesRoundTrip) {
  EXPECT_EQ(mva::parse_rank_convention("official"), RankConvention::kOfficial);
  EXPECT_EQ(mva::parse_rank_convention("caption_ranking"), RankConvention::kCaptionRanking);
  for (auto c :
       {RankConvention::kStandard, RankConvention::kOfficial, RankConvention::kCaptionRanking}) {
    EXPECT_EQ(mva::parse_rank_convention(mva::to_string(c)), c);
    EXPECT_EQ(mva::describe(c).rfind(mva::to_string(c), 0), 0u) << mva::describe(c);
  }
  EXPECT_ERROR_CONTAINS(mva::parse_rank_convention("clip4clip", "eval.convention"),
                        "eval.convention: 'clip4clip' is not a rank convention, expected "
                        "standard, official or caption_ranking");
}

// The MSVD sample's test split (tests/fixtures/annotations/msvd): video 0 has captions 0-4,
// video 1 captions 5-10. Similarities chosen by hand, no ties:
//   V2T, video 0 (column 0): best own caption 0.50; all six captions of video 1 score higher
//     (0.90 .. 0.55). One other video above it: rank 1; six other captions: caption rank 6.
//   V2T, video 1 (column 1): best own caption 0.70; captions 0 and 1 of video 0 score 0.80 and
//     0.75. One other video above it: rank 1; two other captions: caption rank 2.
//   T2V: captions 0, 1 and 5-10 score the other video higher (rank 1), captions 2-4 their own
//     (rank 0): three 0s and eight 1s.
TEST(RetrievalMetrics, MsvdSampleConventionsByHand) {
  const auto dir = mva::test::temp_dir("metrics_msvd");
  std::filesystem::copy(mva::test::fixture_path("annotations/msvd"), dir,
                        std::filesystem::copy_options::recursive);
  std::filesystem::copy_file(dir / "raw-captions.proto4.pkl", dir / "raw-captions.pkl");
  mva::DatasetSpec spec;
  spec.format = "msvd";
  spec.split = "test";
  spec.annotations = dir;
  const auto manifest = mva::read_dataset(spec);
  std::vector<int64_t> gt;
  for (const auto& c : manifest.captions) gt.push_back(c.video);
  ASSERT_EQ(gt, (std::vector<int64_t>{0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1}));
  const auto sim = matrix({{0.50f, 0.80f},
                           {0.40f, 0.75f},
                           {0.30f, 0.20f},
                           {0.20f, 0.10f},
                           {0.10f, 0.05f},
                           {0.90f, 0.70f},
                           {0.85f, 0.55f},
                           {0.80f, 0.45f},
                           {0.75f, 0.35f},
                           {0.60f, 0.25f},
                           {0.55f, 0.15f}});

  const auto all = mva::compute_retrieval_metrics_each(
      sim, gt,
      {RankConvention::kStandard, RankConvention::kOfficial, RankConvention::kCaptionRanking});
  const auto& s = all[0];
  const auto& o = all[1];
  const auto& c = all[2];
  // V2T ranks {1, 1}: R@1 0, R@5 and R@10 100 under both conventions.
  expect_recalls(s.v2t, 0.0, 100.0, 100.0, "standard v2t");
  expect_recalls(o.v2t, 0.0, 100.0, 100.0, "official v2t");
  EXPECT_NEAR(s.v2t.mdr, 2.0, kTol);  // 1-based {2, 2}
  EXPECT_NEAR(s.v2t.mnr, 2.0, kTol);
  EXPECT_NEAR(o.v2t.mdr, 1.0, kTol);  // get_rank: sorted {1, 1}[1:2]
  EXPECT_NEAR(o.v2t.mnr, 1.0, kTol);
  // T2V ranks: three 0s, eight 1s; 0-based median (position 5 of 11) is 1.
  expect_recalls(s.t2v, 300.0 / 11, 100.0, 100.0, "standard t2v");
  expect_recalls(o.t2v, 300.0 / 11, 100.0, 100.0, "official t2v");
  EXPECT_NEAR(s.t2v.mdr, 2.0, kTol);
  EXPECT_NEAR(s.t2v.mnr, 19.0 / 11, kTol);
  EXPECT_NEAR(o.t2v.mdr, 1.0, kTol);  // get_rank: mean of sorted[5], sorted[6]
  EXPECT_NEAR(o.t2v.mnr, 8.0 / 11, kTol);
  // Ranking every caption instead: V2T ranks {6, 2}, 1-based {7, 3}.
  expect_recalls(c.v2t, 0.0, 50.0, 100.0, "caption_ranking v2t");
  EXPECT_NEAR(c.v2t.mdr, 5.0, kTol);
  EXPECT_NEAR(c.v2t.mnr, 5.0, kTol);
  EXPECT_EQ(c.to_json().at("t2v"), s.to_json().at("t2v"));
}

TEST(RetrievalMetrics, BadInputNamesTheProblem) {
  const auto sim = matrix({{0.9f, 0.1f}, {0.7f, 0.6f}, {0.3f, 0.8f}});
  EXPECT_ERROR_CONTAINS(mva::compute_retrieval_ranks(sim, {0, 1}), "caption_video: 2");
  EXPECT_ERROR_CONTAINS(mva::compute_retrieval_ranks(sim, {0, 1, 2}),
                        "caption_video[2]: video index 2 out of range");
  EXPECT_ERROR_CONTAINS(mva::compute_retrieval_ranks(sim, {0, -1, 1}), "caption_video[1]");
  EXPECT_ERROR_CONTAINS(mva::compute_retrieval_ranks(sim, {0, 0, 0}), "video 1 has no caption");
  EXPECT_ERROR_CONTAINS(mva::compute_retrieval_metrics(sim), "not square");
  EXPECT_ERROR_CONTAINS(mva::compute_retrieval_ranks(torch::rand({4}), {0}), "sim: shape [4]");
  EXPECT_ERROR_CONTAINS(mva::compute_retrieval_ranks(torch::ones({2, 2}, torch::kLong), {0, 1}),
                        "floating-point");
  EXPECT_ERROR_CONTAINS(
      mva::compute_retrieval_ranks(sim, {0, 1, 1}, with(RankConvention::kStandard, 0)),
      "chunk_size");
  EXPECT_ERROR_CONTAINS(
      mva::compute_retrieval_ranks(sim, {0, 1, 1}, with(RankConvention::kStandard, 4, true, 0.0)),
      "dsl_temperature");
  auto with_nan = sim.clone();
  with_nan[2][1] = std::nanf("");
  EXPECT_ERROR_CONTAINS(
      mva::compute_retrieval_ranks(with_nan, {0, 1, 1}, with(RankConvention::kStandard, 2)),
      "sim: NaN at row 2, column 1");
  EXPECT_ERROR_CONTAINS(mva::caption_video_from_counts({2, 0}), "captions_per_video[1]");
  EXPECT_ERROR_CONTAINS(
      mva::summarize_ranks(torch::empty({0}, torch::kLong), RankConvention::kStandard), "ranks");
}

TEST(SimilarityMatrix, ChunksEqualOneProduct) {
  torch::manual_seed(3);
  const auto text = torch::nn::functional::normalize(
      torch::randn({11, 8}), torch::nn::functional::NormalizeFuncOptions().dim(1));
  const auto video = torch::nn::functional::normalize(
      torch::randn({5, 8}), torch::nn::functional::NormalizeFuncOptions().dim(1));
  const auto want = torch::mm(text, video.t());
  for (int64_t chunk : {1, 4, 11, 100}) {
    const auto got = mva::similarity_matrix(text, video, chunk);
    EXPECT_EQ(got.scalar_type(), torch::kFloat);
    EXPECT_TRUE(got.device().is_cpu());
    EXPECT_TENSOR_NEAR(got, want, 1e-6);
  }
  EXPECT_ERROR_CONTAINS(mva::similarity_matrix(text, torch::randn({5, 7})), "same D");
  EXPECT_ERROR_CONTAINS(mva::similarity_matrix(text, video, 0), "chunk_size");
}

}  // namespace
