// The README's main command, shrunken: scripts/demo.sh on a small Shapes dataset (2 shapes,
// 3 colours, 2 training videos per class) with one epoch per run, through the real binary.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mvadapter/clip/clip_loader.h"
#include "mvadapter/clip/clip_model.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace mva {
namespace {

const std::vector<std::string> kMethods = {"zero_shot", "full_finetune", "bottleneck",
                                           "convpass",  "st_adapter",    "mv_adapter_no_ta",
                                           "mv_adapter"};

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  EXPECT_TRUE(in.good()) << p;
  return nlohmann::json::parse(in);
}

TEST(Demo, ShrunkenDemoRunsEveryMethodAndWritesTheTable) {
  MVA_REQUIRE_VIDEO();
  const auto dir = test::temp_dir("demo");
  const auto script = fs::path(MVA_SOURCE_DIR) / "scripts" / "demo.sh";
  std::ostringstream cmd;
  cmd << "MVA_BIN='" << test::cli_binary().string() << "' DEMO_DIR='" << dir.string()
      << "' DEMO_SYNTH_ARGS='--train-per-class 2 --shapes 2 --colors 3 --threads 1'"
      << " DEMO_EPOCHS=1 DEMO_SET='train.batch_size=8 eval.batch_size=12 data.workers=1'"
      << " bash '" << script.string() << "' 2>&1";
  std::string out;
  ASSERT_EQ(test::run_command(cmd.str(), &out), 0) << out;

  // The pre-trained CLIP is a released-style checkpoint: OpenAI names, Tiny-32 geometry.
  auto clip = load_clip(dir / "runs" / "pretrain" / "clip.safetensors");
  EXPECT_EQ(clip->config().image_resolution, 32);
  EXPECT_EQ(clip->config().vision_width, 128);
  EXPECT_EQ(clip->config().vocab_size, 49408);

  std::ifstream summary_in(dir / "summary.md");
  ASSERT_TRUE(summary_in.good());
  std::stringstream summary;
  summary << summary_in.rdbuf();
  int64_t full_params = 0;
  for (const auto& m : kMethods) {
    SCOPED_TRACE(m);
    const auto run = dir / "runs" / m;
    EXPECT_TRUE(fs::exists(run / "report.html"));
    const auto r = read_json(run / "results.json");
    EXPECT_EQ(r["name"], "synthetic_" + m);
    EXPECT_TRUE(r["finished"].get<bool>());
    // 2 shapes x 6 ordered colour pairs: one test video and caption each.
    EXPECT_EQ(r["final"]["num_videos"], 12);
    EXPECT_EQ(r["final"]["num_captions"], 12);
    const double r1 = r["final"]["t2v"]["R1"];
    EXPECT_GE(r1, 0.0);
    EXPECT_LE(r1, 100.0);
    EXPECT_NE(summary.str().find("| synthetic_" + m + " |"), std::string::npos) << summary.str();
    if (m == "full_finetune") full_params = r["trainable_params"];
    if (m == "zero_shot") {
      EXPECT_EQ(r["trainable_params"], 0);
    }
  }
  // Full fine-tuning trains the whole CLIP; MV-Adapter stays under 5 % of it.
  EXPECT_EQ(full_params, read_json(dir / "runs" / "full_finetune" / "results.json")["clip_params"]);
  const int64_t mv_params =
      read_json(dir / "runs" / "mv_adapter" / "results.json")["trainable_params"];
  EXPECT_GT(mv_params, 0);
  EXPECT_LT(mv_params * 20, full_params);
  EXPECT_NE(out.find("total wall time"), std::string::npos) << out;

  // Running again reuses the data and the CLIP; a method that fails is named with its log, the
  // others still run, and the exit status says so.
  const std::string env = "MVA_BIN='" + test::cli_binary().string() + "' DEMO_DIR='" +
                          dir.string() + "' DEMO_EPOCHS=1 ";
  std::string again;
  EXPECT_EQ(
      test::run_command(env + "METHODS='zero_shot bottleneck' " +
                            "DEMO_SET='train.batch_size=8 eval.batch_size=12 data.workers=1' " +
                            "bash '" + script.string() + "' 2>&1",
                        &again),
      0)
      << again;
  EXPECT_EQ(again.find("== pretrain"), std::string::npos) << again;
  std::string failed;
  EXPECT_NE(
      test::run_command(env + "METHODS='zero_shot bottleneck' " +
                            "DEMO_SET='train.batch_size=0' bash '" + script.string() + "' 2>&1",
                        &failed),
      0);
  EXPECT_NE(failed.find("error: zero_shot bottleneck failed"), std::string::npos) << failed;
  EXPECT_NE(failed.find("train.batch_size: 0 is out of range"), std::string::npos) << failed;
  EXPECT_TRUE(fs::exists(dir / "runs" / "pretrain" / "clip.safetensors"));
  std::string unknown;
  EXPECT_EQ(
      test::run_command(env + "METHODS='mv_adaptor' bash '" + script.string() + "' 2>&1", &unknown),
      2)
      << unknown;
  EXPECT_NE(unknown.find("unknown method 'mv_adaptor'"), std::string::npos) << unknown;
}

}  // namespace
}  // namespace mva
