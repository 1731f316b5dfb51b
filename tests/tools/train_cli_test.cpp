// End to end through the CLI: train 2 epochs on a tiny CLIP and real video files, evaluate the
// checkpoint, resume a stopped run, and the bad-input paths of `train` and `eval`.
#include <algorithm>
#include <csignal>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include "cli_fixture.h"
#include "mvadapter/core/runtime.h"
#include "mvadapter/core/version.h"
#include "mvadapter/io/csv.h"
#include "mvadapter/io/safetensors.h"
#include "mvadapter/io/torch_checkpoint.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace mva {
namespace {

std::string cli() {
  return test::cli_binary().string();
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

std::vector<nlohmann::json> read_lines(const fs::path& p) {
  std::vector<nlohmann::json> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

TEST(TrainCli, TrainsEvaluatesAndResumesToTheSameWeights) {
  MVA_REQUIRE_VIDEO();
  auto s = test::make_train_setup("train_e2e");
  std::string out;
  const std::string train = cli() + " train " + s.config.string() + " --quiet";

  // The straight run.
  ASSERT_EQ(test::run_command(train, &out), 0) << out;
  const fs::path a = s.dir / "run_a";
  for (const char* f : {"config.yaml", "train.log", "metrics.jsonl", "results.json",
                        "checkpoints/epoch_1.safetensors", "checkpoints/epoch_2.safetensors",
                        "checkpoints/best.safetensors", "checkpoints/last.safetensors",
                        "state/train_state.safetensors"}) {
    EXPECT_TRUE(fs::exists(a / f)) << f;
  }
  // The loss goes down: mean of epoch 2's steps below epoch 1's.
  double sum[3] = {0, 0, 0};
  int count[3] = {0, 0, 0};
  int evals = 0;
  for (const auto& line : read_lines(a / "metrics.jsonl")) {
    if (line["kind"] == "train") {
      const int e = line["epoch"].get<int>();
      sum[e] += line["loss"].get<double>();
      ++count[e];
    } else if (line["kind"] == "eval") {
      ++evals;
    }
  }
  ASSERT_EQ(count[1], 6);  // 24 caption pairs / batch 4
  ASSERT_EQ(count[2], 6);
  EXPECT_LT(sum[2] / count[2], sum[1] / count[1]);
  EXPECT_EQ(evals, 2);
  auto results = read_json(a / "results.json");
  EXPECT_EQ(results["epochs_done"], 2);
  EXPECT_EQ(results["finished"], true);
  EXPECT_EQ(results["final"]["num_videos"], 8);
  // Both conventions, labelled: the same R@K, MnR one apart; the per-criterion best epochs.
  EXPECT_EQ(results["final"]["convention"], "standard");
  EXPECT_EQ(results["final_official"]["convention"], "official");
  EXPECT_EQ(results["best_official"]["convention"], "official");
  EXPECT_EQ(results["final_epoch"], 2);
  for (const char* dir : {"t2v", "v2t"}) {
    EXPECT_EQ(results["final_official"][dir]["R1"], results["final"][dir]["R1"]) << dir;
    EXPECT_NEAR(results["final"][dir]["MnR"].get<double>() -
                    results["final_official"][dir]["MnR"].get<double>(),
                1.0, 1e-9)
        << dir;
  }
  for (const char* k : {"t2v_r1", "v2t_r1", "t2v_sum", "v2t_sum", "sum"}) {
    const auto& b = results["best_by_metric"][k];
    EXPECT_GE(b["epoch"].get<int>(), 1) << k;
    EXPECT_LE(b["epoch"].get<int>(), 2) << k;
  }
  EXPECT_EQ(results["best_by_metric"]["t2v_r1"]["value"], results["best"]["t2v"]["R1"]);

  // `eval` of the last checkpoint reproduces the final metrics of the run.
  ASSERT_EQ(test::run_command(cli() + " eval " + s.config.string() + " --quiet --json --adapter " +
                                  (a / "checkpoints/last.safetensors").string() + " --out " +
                                  (s.dir / "eval").string(),
                              &out),
            0)
      << out;
  const auto eval_results = read_json(s.dir / "eval/results.json");
  for (const std::string key : {"final", "final_official"}) {
    const auto& evaluated = eval_results[key];
    for (const char* dir : {"t2v", "v2t"}) {
      for (const char* k : {"R1", "R5", "R10", "MdR", "MnR"}) {
        EXPECT_DOUBLE_EQ(evaluated[dir][k].get<double>(), results[key][dir][k].get<double>())
            << key << " " << dir << " " << k;
      }
    }
  }
  // --json prints the same two labelled blocks.
  EXPECT_NE(out.find("\"final_official\""), std::string::npos) << out;
  // Each caption's ground-truth rank (ranks.jsonl, what serve compares runs by): training's final
  // evaluation and eval of its last checkpoint write the same lines.
  auto text_of = [](const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const auto ranks = text_of(a / "ranks.jsonl");
  EXPECT_EQ(std::count(ranks.begin(), ranks.end(), '\n'), 8) << ranks;  // 8 test captions
  EXPECT_EQ(ranks, text_of(s.dir / "eval/ranks.jsonl"));

  // Stop after epoch 1, resume: the same final weights as the straight run.
  const fs::path b = s.dir / "run_b";
  ASSERT_EQ(test::run_command(
                train + " --set train.output_dir=" + b.string() + " --stop-after-epochs 1", &out),
            0)
      << out;
  EXPECT_EQ(read_json(b / "results.json")["epochs_done"], 1);
  EXPECT_FALSE(fs::exists(b / "checkpoints/epoch_2.safetensors"));
  ASSERT_EQ(test::run_command(cli() + " train --quiet --resume " + b.string(), &out), 0) << out;
  auto want = read_safetensors(a / "checkpoints/last.safetensors").tensors;
  auto got = read_safetensors(b / "checkpoints/last.safetensors").tensors;
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, t] : want) {
    ASSERT_TRUE(got.count(name)) << name;
    EXPECT_TRUE(torch::equal(got[name], t)) << name;
  }
  EXPECT_EQ(read_json(b / "results.json")["final"], results["final"]);
  // The per-criterion record and the selected epoch's official numbers survive the resume.
  EXPECT_EQ(read_json(b / "results.json")["best_by_metric"], results["best_by_metric"]);
  EXPECT_EQ(read_json(b / "results.json")["best_official"], results["best_official"]);
}

// Every checkpoint records the run's config, the CLIP's sha256 and geometry, the step and the
// program version: `eval`, `encode` and `search` then need only the checkpoint (and the CLIP),
// and a checkpoint given another CLIP is refused, naming what differs.
TEST(TrainCli, CheckpointsDescribeTheirModelSoEvalAndSearchNeedNoConfig) {
  MVA_REQUIRE_VIDEO();
  auto s = test::make_train_setup("train_self_describing", 1);
  std::string out;
  ASSERT_EQ(test::run_command(cli() + " train " + s.config.string() + " --quiet", &out), 0) << out;
  const fs::path ckpt = s.dir / "run_a/checkpoints/last.safetensors";
  const fs::path clip = s.dir / "clip.safetensors";
  const auto meta = read_safetensors(ckpt).metadata;
  EXPECT_EQ(meta.at("mvadapter.version"), library_version());
  EXPECT_EQ(meta.at("mvadapter.clip_sha256"), file_sha256(clip));
  EXPECT_EQ(meta.at("mvadapter.clip"), clip.string());
  EXPECT_EQ(meta.at("step"), "6");
  const auto geometry = nlohmann::json::parse(meta.at("mvadapter.clip_geometry"));
  EXPECT_EQ(geometry.at("vision_width"), 128);
  EXPECT_EQ(geometry.at("embed_dim"), 32);
  EXPECT_EQ(meta.at("mvadapter.config"), read_file_bytes(s.dir / "run_a/config.yaml"));

  // eval with the checkpoint alone gives the run's final metrics.
  ASSERT_EQ(test::run_command(cli() + " eval --quiet --json --adapter " + ckpt.string(), &out), 0)
      << out;
  const auto results = read_json(s.dir / "run_a/results.json");
  const auto printed = nlohmann::json::parse(out.substr(out.find('{')));
  EXPECT_EQ(printed.at("final").at("t2v"), results.at("final").at("t2v"));
  EXPECT_EQ(printed.at("final").at("v2t"), results.at("final").at("v2t"));

  // encode and search too; the first positional argument of search is then a caption.
  const fs::path index = s.dir / "videos.safetensors";
  ASSERT_EQ(
      test::run_command(
          cli() + " encode --videos --adapter " + ckpt.string() + " --out " + index.string(), &out),
      0)
      << out;
  ASSERT_EQ(test::run_command(cli() + " search --json --top-k 3 --adapter " + ckpt.string() +
                                  " --index " + index.string() + " 'a red car' 'a person'",
                              &out),
            0)
      << out;
  const auto hits = nlohmann::json::parse(out.substr(out.find_first_of("[{")));
  EXPECT_EQ(hits.dump().find("a red car") != std::string::npos, true) << out;
  EXPECT_EQ(hits.dump().find("a person") != std::string::npos, true) << out;

  // Another CLIP of the same geometry (one weight changed): refused, naming the hashes.
  auto weights = read_safetensors(clip).tensors;
  auto& w = weights.at("visual.proj");
  w = w.clone();
  w.view(-1)[0] += 1.0f;
  const fs::path other = s.dir / "other_clip.safetensors";
  write_safetensors(other, weights);
  EXPECT_NE(
      test::run_command(
          cli() + " eval --quiet --adapter " + ckpt.string() + " --clip " + other.string(), &out),
      0);
  EXPECT_NE(out.find("trained on " + clip.string()), std::string::npos) << out;
  EXPECT_NE(out.find("sha256 " + file_sha256(clip).substr(0, 12)), std::string::npos) << out;

  // A checkpoint that records no config (converted from the official code) still needs one.
  auto bare = read_safetensors(ckpt).tensors;
  const fs::path converted = s.dir / "converted.safetensors";
  write_safetensors(converted, bare);
  EXPECT_NE(test::run_command(cli() + " eval --quiet --adapter " + converted.string(), &out), 0);
  EXPECT_NE(out.find("records no run config"), std::string::npos) << out;
  // ... and with it, works (nothing recorded, nothing to check).
  EXPECT_EQ(
      test::run_command(
          cli() + " eval --quiet " + s.config.string() + " --adapter " + converted.string(), &out),
      0)
      << out;
}

TEST(TrainCli, BadInputIsOneErrorLine) {
  auto s = test::make_train_setup("train_bad");
  const std::string train = cli() + " train " + s.config.string() + " --quiet";
  struct Case {
    std::string args, expect;
  };
  const std::vector<Case> cases = {
      {" --set train.epoch=3", "did you mean train.epochs"},
      {" --set train.epochs=many", "train.epochs"},
      {" --set model.clip=/nonexistent/ViT-B-16.pt", "/nonexistent/ViT-B-16.pt"},
      {" --set train.precision=fp16", "fp16 needs a CUDA device"},
      {" --set data.words=32", "context_length"},
  };
  for (const auto& c : cases) {
    std::string out;
    EXPECT_EQ(test::run_command(train + c.args, &out), 1) << c.args << "\n" << out;
    EXPECT_NE(out.find("error: "), std::string::npos) << c.args << "\n" << out;
    EXPECT_NE(out.find(c.expect), std::string::npos) << c.args << "\n" << out;
    EXPECT_FALSE(fs::exists(s.dir / "run_a/state")) << c.args;
  }
  // --device cuda:0 trains on a machine whose LibTorch sees a GPU; elsewhere it is one error that
  // says which of the two is missing.
  std::string out;
  const fs::path cuda_run = s.dir / "run_cuda";
  const int cuda_rc = test::run_command(
      train + " --device cuda:0 --set train.output_dir=" + cuda_run.string(), &out);
  if (torch::cuda::is_available()) {
    EXPECT_EQ(cuda_rc, 0) << out;
    EXPECT_TRUE(fs::exists(cuda_run / "results.json")) << out;
  } else {
    EXPECT_EQ(cuda_rc, 1) << out;
    EXPECT_NE(out.find("error: "), std::string::npos) << out;
    EXPECT_NE(
        out.find(torch_has_cuda() ? "'cuda:0' requested but no CUDA GPU is visible"
                                  : "'cuda:0' requested but this LibTorch was built without CUDA"),
        std::string::npos)
        << out;
    EXPECT_FALSE(fs::exists(cuda_run / "state"));
  }
  EXPECT_EQ(test::run_command(cli() + " eval " + s.config.string(), &out), 1);
  EXPECT_NE(out.find("--adapter"), std::string::npos) << out;
  EXPECT_EQ(test::run_command(cli() + " train --resume " + (s.dir / "nowhere").string(), &out), 1);
  EXPECT_NE(out.find("not a run directory"), std::string::npos) << out;
}

TEST(TrainCli, NprocRunsTheSameCommandAsRanks) {
  const auto dir = test::temp_dir("train_nproc");
  const std::string missing = (dir / "missing.yaml").string();
  std::string out;
  // Each rank is this command again without --nproc: it fails on the config as one would, and
  // does not see --nproc (which it would refuse, RANK being set).
  EXPECT_EQ(test::run_command(cli() + " train --nproc 2 " + missing + " --quiet", &out), 1) << out;
  // The first rank to fail stops the other, which may not have printed its own error yet.
  EXPECT_TRUE(out.find("[rank 0] error: ") != std::string::npos ||
              out.find("[rank 1] error: ") != std::string::npos)
      << out;
  EXPECT_NE(out.find(missing), std::string::npos) << out;
  EXPECT_EQ(out.find("already set"), std::string::npos) << out;
  EXPECT_NE(out.find("exited with status 1"), std::string::npos) << out;

  EXPECT_EQ(test::run_command(cli() + " train --nproc=0 " + missing, &out), 1);
  EXPECT_NE(out.find("--nproc 0: expected at least 1"), std::string::npos) << out;
  EXPECT_EQ(test::run_command("RANK=0 WORLD_SIZE=2 " + cli() + " train --nproc 2 " + missing, &out),
            1);
  EXPECT_NE(out.find("RANK=0 is already set"), std::string::npos) << out;
  fs::remove_all(dir);
}

TEST(TrainCli, SigintSavesTheTrainingStateFirst) {
  MVA_REQUIRE_VIDEO();
  auto s = test::make_train_setup("train_sigint", 200);
  const fs::path log = s.dir / "out.txt";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "w", stdout);
    (void)f;
    dup2(fileno(stdout), 2);
    execl(test::cli_binary().c_str(), "mvadapter", "train", s.config.c_str(), "--quiet",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until training has taken a few steps, then interrupt.
  const fs::path metrics = s.dir / "run_a/metrics.jsonl";
  for (int i = 0; i < 600 && (!fs::exists(metrics) || read_lines(metrics).size() < 3); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(fs::exists(metrics));
  kill(pid, SIGINT);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  const fs::path state = s.dir / "run_a/state/train_state.safetensors";
  ASSERT_TRUE(fs::exists(state));
  auto meta = nlohmann::json::parse(read_safetensors(state).metadata["mvadapter.train_state"]);
  EXPECT_GE(meta["step"].get<int64_t>(), 3);
  const auto lines = read_lines(metrics);
  EXPECT_EQ(meta["step"].get<int64_t>(), lines.back()["step"].get<int64_t>());
}

}  // namespace
}  // namespace mva
