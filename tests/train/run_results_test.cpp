#include "mvadapter/train/run_results.h"

#include <fstream>

#include <gtest/gtest.h>

#include "mvadapter/core/error.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace mva {
namespace {

RetrievalMetrics metrics(double t2v_r1, RankConvention convention) {
  RetrievalMetrics m;
  m.t2v = {t2v_r1, 60.0, 70.0, t2v_r1 + 130.0, 2.0, 9.5, 1000};
  m.v2t = {45.0, 65.0, 75.0, 185.0, 3.0, 8.25, 1000};
  m.num_captions = 1000;
  m.num_videos = 1000;
  m.convention = convention;
  m.dsl = true;
  m.dsl_temperature = 100.0;
  return m;
}

void expect_same(const RetrievalMetrics& a, const RetrievalMetrics& b) {
  EXPECT_EQ(a.to_json(), b.to_json());
}

TEST(RunResults, RoundTripsEveryFieldThroughResultsJson) {
  RunResults r;
  r.name = "mv_adapter_vit_b16";
  r.command = "train";
  r.dataset = "msrvtt";
  r.arch = "/clip/ViT-B-16.pt";
  r.trainable = "adapters";
  r.frames = 12;
  r.words = 32;
  r.precision = "bf16";
  r.trainable_params = 3572736;
  r.clip_params = 149620737;
  r.percent_of_clip = 2.39;
  r.epochs = 5;
  r.epochs_done = 3;
  r.steps = 2109;
  r.finished = false;
  r.best_epoch = 2;
  r.final_epoch = 3;
  r.best = metrics(46.2, RankConvention::kStandard);
  r.best_official = metrics(46.2, RankConvention::kOfficial);
  r.final = metrics(45.0, RankConvention::kStandard);
  r.best_by_metric = {{"t2v_r1", {{"epoch", 2}, {"value", 46.2}}}};
  r.eval_skipped_videos = 3;
  r.wall_time_s = 1234.5;
  r.date = "2026-12-01T17:00:00Z";
  r.extra = {{"method", "MV-Adapter"}};

  const fs::path dir = test::temp_dir("run_results_round_trip");
  write_run_results(dir, r);
  const RunResults back = read_run_results(dir);  // a run directory reads its results.json
  EXPECT_EQ(back.to_json(), r.to_json());
  EXPECT_EQ(back.name, "mv_adapter_vit_b16");
  EXPECT_FALSE(back.finished);
  EXPECT_EQ(back.final_epoch, 3);
  ASSERT_TRUE(back.best_official);
  expect_same(*back.best_official, *r.best_official);
  EXPECT_FALSE(back.final_official) << "absent metrics stay absent (null in the file)";
  EXPECT_EQ(back.extra.at("method"), "MV-Adapter") << "unknown keys are kept";
  EXPECT_EQ(read_run_results(dir / "results.json").to_json(), r.to_json());
}

TEST(RunResults, OlderFilesWithoutNewerKeysReadWithDefaults) {
  const auto r = RunResults::from_json(
      nlohmann::json::parse(R"({"name": "old", "epochs": 5, "best": null})"), "old.json");
  EXPECT_EQ(r.name, "old");
  EXPECT_EQ(r.epochs, 5);
  EXPECT_TRUE(r.finished);
  EXPECT_FALSE(r.best);
  EXPECT_FALSE(r.final_epoch);
}

TEST(RunResults, AWrongTypeIsAnErrorNamingTheFileAndKey) {
  auto error_of = [](const std::string& text) {
    try {
      RunResults::from_json(nlohmann::json::parse(text), "runs/a/results.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of(R"({"steps": "many"})"),
            "runs/a/results.json: 'steps' is string, expected an integer");
  EXPECT_EQ(error_of(R"({"finished": 1})"),
            "runs/a/results.json: 'finished' is number, expected true or false");
  EXPECT_EQ(error_of(R"([1, 2])"),
            "runs/a/results.json: expected a JSON object of run results, found array");
  EXPECT_EQ(error_of(R"({"final": {"t2v": {"R1": 1}}})"),
            "runs/a/results.json: 'final': 'v2t' is missing");
  const std::string r5 =
      error_of(R"({"final": {"t2v": {"R1": 1}, "v2t": {}, "num_captions": 1, "num_videos": 1}})");
  EXPECT_EQ(r5, "runs/a/results.json: 'final'.t2v: 'R5' is missing, expected a number");
}

TEST(RunResults, AMissingOrMalformedFileIsOneErrorNamingIt) {
  const fs::path dir = test::temp_dir("run_results_missing");
  try {
    read_run_results(dir);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "results.json").string()), std::string::npos);
  }
  std::ofstream(dir / "results.json") << "{\"name\": ";
  EXPECT_THROW(read_run_results(dir), Error);
}

}  // namespace
}  // namespace mva
