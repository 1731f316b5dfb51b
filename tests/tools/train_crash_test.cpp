// Crash safety of `mvadapter train` end to end (docs/robustness.md, "Crash safety"): a run killed
// with SIGKILL at a random moment or in the middle of writing a checkpoint, resumed, ends with the
// weights of a run never killed; a full disk or a read-only run directory is one error that
// leaves the last state loadable; a non-finite loss stops the run or is skipped. Faults come from
// MVA_FAULT_INJECT (io/fault_inject.h). One thread (MVA_THREADS=1, train.threads 1), so weights
// compare bit for bit.
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include "cli_fixture.h"
#include "mvadapter/io/safetensors.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace mva {
namespace {

// 2 epochs of 6 steps; the state is saved after steps 2 and 4 of each epoch and at its end.
constexpr int kEpochs = 2;
constexpr int64_t kSteps = 12;
constexpr const char* kSaveEvery = "  save_every_steps: 2\n";

std::string cli() {
  return test::cli_binary().string();
}

// The records of a metrics.jsonl that is perhaps still being written: a partial last line is
// left out.
std::vector<nlohmann::json> read_records(const fs::path& p) {
  std::vector<nlohmann::json> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    try {
      out.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::exception&) {
    }
  }
  return out;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

int64_t last_step(const fs::path& metrics) {
  int64_t step = 0;
  for (const auto& r : read_records(metrics)) {
    if (r.value("kind", "") == "train") step = std::max(step, r["step"].get<int64_t>());
  }
  return step;
}

nlohmann::json state_meta(const fs::path& run) {
  auto file = read_safetensors(run / "state/train_state.safetensors");
  return nlohmann::json::parse(file.metadata.at("mvadapter.train_state"));
}

std::vector<std::string> temp_files(const fs::path& run) {
  std::vector<std::string> out;
  for (const auto& sub : {fs::path(), fs::path("state"), fs::path("checkpoints")}) {
    if (!fs::exists(run / sub)) continue;
    for (const auto& e : fs::directory_iterator(run / sub)) {
      const auto name = e.path().filename().string();
      if (name.find(".tmp.") != std::string::npos) out.push_back((sub / name).string());
    }
  }
  return out;
}

// `train` into `run` with MVA_FAULT_INJECT=`inject` (empty: none); returns the exit status
// (128 + signal when killed).
int train(const test::TrainSetup& s, const fs::path& run, const std::string& inject,
          std::string* out, const std::string& args = "") {
  const std::string env = inject.empty() ? "" : "MVA_FAULT_INJECT=" + inject + " ";
  return test::run_command(env + cli() + " train " + s.config.string() + " --quiet --set " +
                               "train.output_dir=" + run.string() + args,
                           out);
}

int resume(const fs::path& run, std::string* out) {
  return test::run_command(cli() + " train --quiet --resume " + run.string(), out);
}

// The resumed run ends as the reference: the same adapter weights bit for bit, the same final
// metrics, each step logged once, no temporary file left.
void expect_same_run(const fs::path& got, const fs::path& want) {
  auto w = read_safetensors(want / "checkpoints/last.safetensors").tensors;
  auto g = read_safetensors(got / "checkpoints/last.safetensors").tensors;
  ASSERT_EQ(g.size(), w.size());
  for (const auto& [name, t] : w) {
    ASSERT_TRUE(g.count(name)) << name;
    EXPECT_TRUE(torch::equal(g[name], t)) << name << " differs from the uninterrupted run's";
  }
  std::ifstream a(got / "results.json"), b(want / "results.json");
  EXPECT_EQ(nlohmann::json::parse(a)["final"], nlohmann::json::parse(b)["final"]);
  std::vector<int64_t> steps;
  int evals = 0;
  for (const auto& r : read_records(got / "metrics.jsonl")) {
    if (r["kind"] == "train") steps.push_back(r["step"].get<int64_t>());
    if (r["kind"] == "eval") ++evals;
  }
  std::vector<int64_t> want_steps(kSteps);
  for (int64_t i = 0; i < kSteps; ++i) want_steps[i] = i + 1;
  EXPECT_EQ(steps, want_steps) << "metrics.jsonl: every step once, in order";
  EXPECT_EQ(evals, kEpochs);
  EXPECT_EQ(temp_files(got), std::vector<std::string>{});
}

// Starts `train` into `run`, kills it with SIGKILL `delay` after metrics.jsonl shows step
// `kill_step`, and returns the wait status (-1 when it ended before).
int kill_at_step(const test::TrainSetup& s, const fs::path& run, int64_t kill_step,
                 std::chrono::milliseconds delay) {
  const fs::path log = run.string() + ".out";
  const std::string output_dir = "train.output_dir=" + run.string();
  pid_t pid = fork();
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "w", stdout);
    (void)f;
    dup2(fileno(stdout), 2);
    execl(test::cli_binary().c_str(), "mvadapter", "train", s.config.c_str(), "--quiet", "--set",
          output_dir.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto metrics = run / "metrics.jsonl";
  for (int i = 0; i < 60000 && last_step(metrics) < kill_step; ++i) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return -1;  // ended on its own
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::this_thread::sleep_for(delay);
  if (waitpid(pid, nullptr, WNOHANG) == pid) return -1;
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

TEST(TrainCrash, KilledAtAnyMomentResumesToTheWeightsOfAnUninterruptedRun) {
  MVA_REQUIRE_VIDEO();
  auto s = test::make_train_setup("train_crash_kill", kEpochs, kSaveEvery);
  std::string out;
  const fs::path ref = s.dir / "reference";
  ASSERT_EQ(train(s, ref, "", &out), 0) << out;
  ASSERT_EQ(last_step(ref / "metrics.jsonl"), kSteps);

  // SIGKILL at random moments: after a random step, plus up to a step's time more (inside a
  // step, a state write, an evaluation). MVA_CRASH_TEST_SEED repeats a failing draw.
  const char* seed_env = std::getenv("MVA_CRASH_TEST_SEED");
  const unsigned seed =
      seed_env ? static_cast<unsigned>(std::atoi(seed_env)) : std::random_device{}();
  SCOPED_TRACE("MVA_CRASH_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed);
  for (int round = 0; round < 2; ++round) {
    // From step 3 on, the state of step 2 is on disk; after step 10 the run may end first.
    const int64_t step = std::uniform_int_distribution<int64_t>(3, kSteps - 2)(rng);
    auto delay = std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 300)(rng));
    fs::path run = s.dir / fmt::format("random_{}", round);
    int status = kill_at_step(s, run, step, delay);
    if (status == -1) {
      // A machine fast enough to finish within the delay: kill right after the step instead.
      delay = std::chrono::milliseconds(0);
      run += "_again";
      status = kill_at_step(s, run, step, delay);
    }
    SCOPED_TRACE(fmt::format("killed {} ms after step {}", delay.count(), step));
    ASSERT_TRUE(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the run was not killed (status " << status << "); its output:\n"
        << read_text(run.string() + ".out");
    EXPECT_GE(state_meta(run)["step"].get<int64_t>(), 2) << "the last state is loadable";
    ASSERT_EQ(resume(run, &out), 0) << out;
    expect_same_run(run, ref);
  }

  // SIGKILL in the middle of a write: the temporary file is complete, the rename not done.
  struct Case {
    std::string inject;
    int64_t state_step;  // the state left on disk
  };
  const std::vector<Case> cases = {
      {"kill_during_write:2@train_state.safetensors", 2},  // the mid-epoch state of step 4
      {"kill_during_write:1@last.safetensors", 4},         // the checkpoint at the end of epoch 1
      {"kill_during_write:1@results.json", 6},             // after the state of epoch 1
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.inject);
    const fs::path run = s.dir / c.inject.substr(c.inject.find('@') + 1);
    ASSERT_EQ(train(s, run, c.inject, &out), 128 + SIGKILL) << out;
    EXPECT_EQ(state_meta(run)["step"].get<int64_t>(), c.state_step);
    EXPECT_EQ(temp_files(run).size(), 1u) << "the killed write's temporary file";
    ASSERT_EQ(resume(run, &out), 0) << out;
    expect_same_run(run, ref);
  }
  fs::remove_all(s.dir);
}

TEST(TrainCrash, FullDiskOrReadOnlyRunDirectoryIsOneErrorAndKeepsTheLastState) {
  MVA_REQUIRE_VIDEO();
  auto s = test::make_train_setup("train_crash_disk", kEpochs, kSaveEvery);
  struct Case {
    std::string inject, file, reason;
    int64_t state_step;
  };
  const std::vector<Case> cases = {
      // The third state write: the end of epoch 1.
      {"enospc:3@train_state.safetensors", "state/train_state.safetensors",
       "No space left on device", 4},
      {"readonly@last.safetensors", "checkpoints/last.safetensors", "Read-only file system", 4},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.inject);
    const fs::path run = s.dir / c.inject.substr(0, c.inject.find(':'));
    std::string out;
    ASSERT_EQ(train(s, run, c.inject, &out), 1) << out;
    EXPECT_EQ(out.find("error: "), out.rfind("error: ")) << "one error line:\n" << out;
    const auto error = out.substr(out.find("error: "));
    EXPECT_NE(error.find((run / c.file).string()), std::string::npos) << error;
    EXPECT_NE(error.find(c.reason), std::string::npos) << error;
    EXPECT_EQ(state_meta(run)["step"].get<int64_t>(), c.state_step);
    EXPECT_EQ(temp_files(run), std::vector<std::string>{});
  }
  fs::remove_all(s.dir);
}

TEST(TrainCrash, NonfiniteLossStopsAtItsStepAndKeepsTheLastGoodState) {
  MVA_REQUIRE_VIDEO();
  auto s = test::make_train_setup("train_crash_nan_stop", kEpochs, kSaveEvery);
  const fs::path run = s.dir / "run";
  std::string out;
  ASSERT_EQ(train(s, run, "nonfinite_loss:5", &out), 1) << out;
  EXPECT_NE(out.find("error: epoch 1 step 5: non-finite training loss"), std::string::npos) << out;
  EXPECT_NE(out.find("(step 4)"), std::string::npos) << out;
  EXPECT_EQ(state_meta(run)["step"].get<int64_t>(), 4);
  EXPECT_EQ(last_step(run / "metrics.jsonl"), 4) << "step 5 never completed";
  for (const auto& [name, t] : read_safetensors(run / "state/train_state.safetensors").tensors) {
    if (t.is_floating_point()) {
      EXPECT_TRUE(torch::isfinite(t).all().item<bool>()) << name;
    }
  }
  // The good state continues.
  ASSERT_EQ(resume(run, &out), 0) << out;
  EXPECT_EQ(last_step(run / "metrics.jsonl"), kSteps);
  fs::remove_all(s.dir);
}

TEST(TrainCrash, NonfiniteLossWithSkipDropsThatUpdateAndCountsIt) {
  MVA_REQUIRE_VIDEO();
  auto s = test::make_train_setup("train_crash_nan_skip", kEpochs,
                                  std::string(kSaveEvery) + "  on_nonfinite: skip\n");
  const fs::path run = s.dir / "run";
  std::string out;
  ASSERT_EQ(train(s, run, "nonfinite_loss:5", &out), 0) << out;
  EXPECT_NE(out.find("step 5: non-finite training loss"), std::string::npos) << out;
  for (const auto& r : read_records(run / "metrics.jsonl")) {
    if (r["kind"] != "train") continue;
    const int64_t step = r["step"].get<int64_t>();
    EXPECT_EQ(r["skipped_steps"].get<int64_t>(), step < 5 ? 0 : 1) << "step " << step;
    EXPECT_EQ(r["loss"].is_null(), step == 5) << "step " << step;
  }
  std::ifstream results(run / "results.json");
  EXPECT_EQ(nlohmann::json::parse(results)["skipped_steps"], 1);
  for (const auto& [name, t] : read_safetensors(run / "checkpoints/last.safetensors").tensors) {
    EXPECT_TRUE(torch::isfinite(t).all().item<bool>()) << name << ": the NaN update was applied";
  }
  fs::remove_all(s.dir);
}

}  // namespace
}  // namespace mva
