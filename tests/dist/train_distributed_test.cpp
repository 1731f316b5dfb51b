// `mvadapter train` and `eval` on several ranks, each a real process with torchrun's environment,
// against one process on the same global batch: tiny fixture CLIP, real MSR-VTT clips, Gloo.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "cli_fixture.h"
#include "mvadapter/io/safetensors.h"
#include "rank_processes.h"
#include "test_support.h"

namespace fs = std::filesystem;
using std::chrono::seconds;

namespace mva {
namespace {

// 8 clips x 3 captions to train on (24 pairs); 7 test videos, so 2 ranks get unequal shards.
struct Data {
  fs::path dir;
};

const Data& data() {
  static const Data d = [] {
    Data x;
    x.dir = test::temp_dir("dist_data");
    test::write_full_vocab_tiny_clip(x.dir / "clip.safetensors");
    const auto files = test::fixture_clip_files();
    std::ofstream train(x.dir / "train.jsonl"), test(x.dir / "test.jsonl");
    for (size_t i = 0; i < files.size(); ++i) {
      train << nlohmann::json(
                   {{"video", files[i]},
                    {"captions",
                     {fmt::format("clip {} of the set", i), fmt::format("video number {}", i),
                      fmt::format("the {} th scene", i)}}})
                   .dump()
            << "\n";
      if (i + 1 < files.size()) {
        test << nlohmann::json(
                    {{"video", files[i]},
                     {"captions", {fmt::format("video number {}", i), fmt::format("scene {}", i)}}})
                    .dump()
             << "\n";
      }
    }
    return x;
  }();
  return d;
}

// A config in `dir` (its own output folder) with these extra `train:` lines.
fs::path write_config(const fs::path& dir, const std::string& name, int epochs, int batch,
                      const std::string& train_extra = "") {
  const auto path = dir / (name + ".yaml");
  std::ofstream(path) << fmt::format(
      R"({model}data:
  dataset: jsonl
  root: {data}
  videos: {videos}
  train_split: train.jsonl
  test_split: test.jsonl
  frames: 4
  words: 8
  size: 32
  workers: 1
train:
  epochs: {epochs}
  batch_size: {batch}
  lr: 2.0e-3
  # Adam divides by sqrt(v) + eps: with eps 1e-6, components whose gradient is ~0 turn fp32
  # round-off (the ranks sum in another order) into full-size steps. A larger eps keeps the
  # comparison about the gradients, which is what these tests check.
  eps: 1.0e-3
  warmup: 0.1
  log_every: 1
  threads: 1
  output_dir: {dir}/{name}
{extra}eval:
  batch_size: 3
dist:
  timeout_s: 20
)",
      fmt::arg("model", test::tiny_model_yaml(data().dir / "clip.safetensors")),
      fmt::arg("data", data().dir.string()), fmt::arg("dir", dir.string()), fmt::arg("name", name),
      fmt::arg("videos", test::fixture_path("video/videos").string()), fmt::arg("epochs", epochs),
      fmt::arg("batch", batch), fmt::arg("extra", train_extra));
  return path;
}

std::vector<std::string> cli_args(std::vector<std::string> args) {
  args.insert(args.begin(), test::cli_binary().string());
  args.push_back("--quiet");
  return args;
}

// One process; asserts it succeeded.
void run_single(const std::vector<std::string>& args) {
  std::string cmd, out;
  for (const auto& a : cli_args(args)) cmd += a + " ";
  ASSERT_EQ(test::run_command(cmd, &out), 0) << out;
}

// W ranks; asserts they all succeeded.
void run_ranks(int world, const std::vector<std::string>& args) {
  test::RankProcesses ranks(world, cli_args(args));
  const auto status = ranks.wait(seconds(600));
  for (int r = 0; r < world; ++r) {
    ASSERT_EQ(status[static_cast<size_t>(r)], 0) << "rank " << r << ":\n" << ranks.output(r);
  }
}

std::vector<nlohmann::json> train_lines(const fs::path& run) {
  std::vector<nlohmann::json> out;
  std::ifstream in(run / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["kind"] == "train") out.push_back(j);
  }
  return out;
}

nlohmann::json results(const fs::path& run) {
  std::ifstream in(run / "results.json");
  return nlohmann::json::parse(in);
}

// Every adapter tensor of two checkpoints within `tol` (relative).
void expect_same_weights(const fs::path& a, const fs::path& b, double tol) {
  auto wa = read_safetensors(a), wb = read_safetensors(b);
  ASSERT_EQ(wa.tensors.size(), wb.tensors.size());
  ASSERT_GT(wa.tensors.size(), 10u);
  for (const auto& [name, t] : wa.tensors) {
    ASSERT_TRUE(wb.tensors.count(name)) << name;
    EXPECT_TENSOR_NEAR(wb.tensors.at(name), t, tol) << name;
  }
}

TEST(TrainDistributed, TwoRanksTrainAndEvaluateAsOneProcessWithTheGlobalBatch) {
  const auto dir = test::temp_dir("dist_train");
  // 3 steps of a global batch of 8: one process with 8, two ranks with 4 each.
  const auto one = write_config(dir, "one", 1, 8), two = write_config(dir, "two", 1, 8);
  run_single({"train", one.string()});
  run_ranks(2, {"train", two.string()});

  const auto la = train_lines(dir / "one"), lb = train_lines(dir / "two");
  ASSERT_EQ(la.size(), 3u);
  ASSERT_EQ(lb.size(), 3u);
  for (size_t i = 0; i < la.size(); ++i) {
    const double a = la[i]["loss"], b = lb[i]["loss"];
    EXPECT_NEAR(b, a, 1e-5 * std::abs(a)) << "step " << i + 1;
    EXPECT_EQ(la[i]["samples"], lb[i]["samples"]) << "global position, step " << i + 1;
  }
  expect_same_weights(dir / "one/checkpoints/last.safetensors",
                      dir / "two/checkpoints/last.safetensors", 1e-5);
  // Rank 0 alone writes the run's files.
  EXPECT_FALSE(fs::exists(dir / "two/train.rank1.log"));
  EXPECT_EQ(results(dir / "two")["final"]["num_videos"], 7);

  // The same checkpoint evaluated by 1 and by 2 ranks: exactly the same metrics (7 videos, so
  // the shards are 4 + 3; 14 captions, 7 + 7).
  const auto ckpt = (dir / "one/checkpoints/last.safetensors").string();
  run_single({"eval", one.string(), "--adapter", ckpt, "--out", (dir / "eval1").string()});
  run_ranks(2, {"eval", one.string(), "--adapter", ckpt, "--out", (dir / "eval2").string()});
  const auto e1 = results(dir / "eval1")["final"], e2 = results(dir / "eval2")["final"];
  EXPECT_EQ(e1, e2);
  EXPECT_EQ(e1["num_videos"], 7);
  EXPECT_EQ(e1["num_captions"], 14);
}

TEST(TrainDistributed, GradCacheEqualsTheUnaccumulatedStep) {
  const auto dir = test::temp_dir("dist_gradcache");
  // Global batch 8, 3 steps: whole batches; 4 cached micro-batches; 2 ranks x 2 micro-batches.
  const auto whole = write_config(dir, "whole", 1, 8);
  const auto cached = write_config(dir, "cached", 1, 8, "  grad_accum: 4\n  grad_cache: true\n");
  const auto cached2 = write_config(dir, "cached2", 1, 8, "  grad_accum: 2\n  grad_cache: true\n");
  const auto plain = write_config(dir, "plain", 1, 8, "  grad_accum: 4\n");
  run_single({"train", whole.string()});
  run_single({"train", cached.string()});
  run_ranks(2, {"train", cached2.string()});
  run_single({"train", plain.string()});
  const auto ref = dir / "whole/checkpoints/last.safetensors";
  expect_same_weights(ref, dir / "cached/checkpoints/last.safetensors", 1e-5);
  expect_same_weights(ref, dir / "cached2/checkpoints/last.safetensors", 1e-5);
  const auto lw = train_lines(dir / "whole"), lc = train_lines(dir / "cached");
  ASSERT_EQ(lw.size(), 3u);
  ASSERT_EQ(lc.size(), 3u);
  for (size_t i = 0; i < lw.size(); ++i) {
    EXPECT_NEAR(lc[i]["loss"].get<double>(), lw[i]["loss"].get<double>(),
                1e-5 * lw[i]["loss"].get<double>())
        << "step " << i + 1;
  }
  // Negative control: plain accumulation (a loss per micro-batch of 2) is a different step.
  auto wa = read_safetensors(ref),
       wp = read_safetensors(dir / "plain/checkpoints/last.safetensors");
  double worst = 0;
  for (const auto& [name, t] : wa.tensors) {
    worst = std::max(worst, test::relative_error(wp.tensors.at(name), t));
  }
  EXPECT_GT(worst, 1e-3);
}

TEST(TrainDistributed, ResumesOnAnotherNumberOfRanksToTheSameWeights) {
  const auto dir = test::temp_dir("dist_resume");
  const auto ref = write_config(dir, "ref", 2, 4);
  run_single({"train", ref.string()});
  // 2 ranks for epoch 1, then 1 process; and the reverse.
  const auto a = write_config(dir, "a", 2, 4), b = write_config(dir, "b", 2, 4);
  {
    test::RankProcesses ranks(2, cli_args({"train", a.string(), "--stop-after-epochs", "1"}));
    const auto status = ranks.wait(seconds(600));
    ASSERT_EQ(status[0], 0) << ranks.output(0);
    ASSERT_EQ(status[1], 0) << ranks.output(1);
  }
  run_single({"train", "--resume", (dir / "a").string()});
  run_single({"train", b.string(), "--stop-after-epochs", "1"});
  run_ranks(2, {"train", "--resume", (dir / "b").string()});
  const auto want = dir / "ref/checkpoints/last.safetensors";
  expect_same_weights(want, dir / "a/checkpoints/last.safetensors", 1e-5);
  expect_same_weights(want, dir / "b/checkpoints/last.safetensors", 1e-5);
  EXPECT_EQ(results(dir / "a")["epochs_done"], 2);
  EXPECT_EQ(results(dir / "b")["steps"], 12);
}

TEST(TrainDistributed, KilledRankStopsTheOthersWithItsNameAndKeepsTheCheckpoint) {
  const auto dir = test::temp_dir("dist_kill");
  const auto cfg = write_config(dir, "run", 50, 4);
  test::RankProcesses ranks(2, cli_args({"train", cfg.string()}));
  const auto ckpt = dir / "run/checkpoints/epoch_1.safetensors";
  const auto until = std::chrono::steady_clock::now() + seconds(300);
  while (!fs::exists(ckpt) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(fs::exists(ckpt)) << ranks.output(0);
  ::kill(ranks.pid(1), SIGKILL);
  const auto t0 = std::chrono::steady_clock::now();
  const int status = ranks.wait_rank(0, seconds(60));
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(ranks.wait_rank(1, seconds(5)), 128 + SIGKILL);
  ASSERT_NE(status, -1) << "rank 0 did not stop:\n" << ranks.output(0);
  EXPECT_NE(status, 0);
  EXPECT_LT(took, seconds(20 + 10)) << "within dist.timeout_s (20 s) and the diagnosis";
  EXPECT_NE(ranks.output(0).find("rank 1 stopped responding"), std::string::npos)
      << ranks.output(0);
  // The checkpoints written before the failure are intact.
  EXPECT_GT(read_safetensors(dir / "run/checkpoints/last.safetensors").tensors.size(), 10u);
  EXPECT_GT(read_safetensors(dir / "run/state/train_state.safetensors").tensors.size(), 10u);
}

TEST(TrainDistributed, CtrlCOnTheLauncherSavesTheStateOnceAndStopsEveryRank) {
  const auto dir = test::temp_dir("dist_sigint");
  const auto cfg = write_config(dir, "run", 50, 4);
  const auto log = dir / "launcher.log";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    for (const char* v : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}) {
      ::unsetenv(v);
    }
    const std::string bin = test::cli_binary().string();
    ::execl(bin.c_str(), bin.c_str(), "train", "--nproc", "2", cfg.c_str(), "--quiet",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto ckpt = dir / "run/checkpoints/epoch_1.safetensors";
  const auto until = std::chrono::steady_clock::now() + seconds(300);
  while (!fs::exists(ckpt) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const auto read_log = [&] {
    std::ifstream in(log);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  ASSERT_TRUE(fs::exists(ckpt)) << read_log();
  ::kill(pid, SIGINT);
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st)) << read_log();
  EXPECT_EQ(WEXITSTATUS(st), 130) << read_log();
  const auto out = read_log();
  // Both ranks stopped at the same step; rank 0 alone wrote the state, once.
  EXPECT_NE(out.find("[rank 0] stopped after"), std::string::npos) << out;
  EXPECT_EQ(out.find("[rank 1] stopped after"), std::string::npos) << out;
  auto state = read_safetensors(dir / "run/state/train_state.safetensors");
  const auto meta = nlohmann::json::parse(state.metadata.at("mvadapter.train_state"));
  EXPECT_GE(meta["step"].get<int>(), 6);
  EXPECT_EQ(meta["sample"].get<int>() % 4, 0) << "a global position at a step boundary";
  // And the run continues from there (one process, two more epochs).
  run_single({"train", "--resume", (dir / "run").string(), "--stop-after-epochs",
              std::to_string(meta["epoch"].get<int>() + 1)});
  EXPECT_EQ(results(dir / "run")["epochs_done"], meta["epoch"].get<int>() + 1);
}

}  // namespace
}  // namespace mva
