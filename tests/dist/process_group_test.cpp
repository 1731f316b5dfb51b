// Real c10d process groups (TCPStore + ProcessGroupGloo over loopback), each rank a process: this
// test binary started again with the rank's environment (RankProcesses).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "mvadapter/core/launcher.h"
#include "mvadapter/dist/process_group.h"
#include "rank_processes.h"
#include "test_support.h"

namespace mva {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// The group of a worker rank; the timeout is short so failures show quickly.
std::unique_ptr<ProcessGroup> join(milliseconds timeout = milliseconds(20000)) {
  auto env = dist_env_from_environment();
  EXPECT_TRUE(env.has_value());
  ProcessGroupOptions o;
  o.backend = DistBackend::kGloo;
  o.timeout = timeout;
  o.heartbeat = milliseconds(200);
  return std::make_unique<ProcessGroup>(*env, torch::kCPU, o);
}

class ScopedEnv {
 public:
  explicit ScopedEnv(std::vector<std::pair<std::string, std::string>> vars) {
    for (const char* name : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
                             "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"}) {
      if (const char* v = std::getenv(name)) saved_.emplace_back(name, v);
      ::unsetenv(name);
    }
    for (const auto& [k, v] : vars) ::setenv(k.c_str(), v.c_str(), 1);
  }
  ~ScopedEnv() {
    for (const char* name : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
                             "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"}) {
      ::unsetenv(name);
    }
    for (const auto& [k, v] : saved_) ::setenv(k.c_str(), v.c_str(), 1);
  }

 private:
  std::vector<std::pair<std::string, std::string>> saved_;
};

TEST(DistEnv, ReadsTorchrunVariables) {
  ScopedEnv env({{"RANK", "3"},
                 {"WORLD_SIZE", "8"},
                 {"LOCAL_RANK", "1"},
                 {"MASTER_ADDR", "node7"},
                 {"MASTER_PORT", "29512"}});
  auto e = dist_env_from_environment();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->rank, 3);
  EXPECT_EQ(e->world_size, 8);
  EXPECT_EQ(e->local_rank, 1);
  EXPECT_EQ(e->master_addr, "node7");
  EXPECT_EQ(e->master_port, 29512);
}

TEST(DistEnv, ReadsSlurmVariablesWhenTorchrunsAreAbsent) {
  ScopedEnv env({{"SLURM_PROCID", "5"},
                 {"SLURM_NTASKS", "16"},
                 {"SLURM_LOCALID", "1"},
                 {"MASTER_ADDR", "n01"},
                 {"MASTER_PORT", "12345"}});
  auto e = dist_env_from_environment();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->rank, 5);
  EXPECT_EQ(e->world_size, 16);
  EXPECT_EQ(e->local_rank, 1);
}

TEST(DistEnv, NoVariablesIsOneProcessAndBadOnesAreNamed) {
  {
    ScopedEnv env({});
    EXPECT_FALSE(dist_env_from_environment().has_value());
  }
  {
    ScopedEnv env({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "1"}});
    EXPECT_ERROR_CONTAINS(dist_env_from_environment(), "RANK='2': expected an integer in [0, 1]");
  }
  {
    ScopedEnv env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "1"}});
    EXPECT_ERROR_CONTAINS(dist_env_from_environment(), "MASTER_ADDR is not set");
  }
  {
    ScopedEnv env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}});
    EXPECT_ERROR_CONTAINS(dist_env_from_environment(), "MASTER_PORT is not set");
  }
  {
    ScopedEnv env({{"RANK", "0"}, {"WORLD_SIZE", "x"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "1"}});
    EXPECT_ERROR_CONTAINS(dist_env_from_environment(), "WORLD_SIZE='x'");
  }
}

TEST(DistBackend, NamesAndNcclAvailability) {
  EXPECT_EQ(parse_dist_backend("gloo", "dist.backend"), DistBackend::kGloo);
  EXPECT_ERROR_CONTAINS(parse_dist_backend("mpi", "dist.backend"),
                        "dist.backend: 'mpi' is not a backend (expected auto, gloo or nccl)");
  if (!nccl_available()) {
    DistEnv one;
    ProcessGroupOptions o;
    o.backend = DistBackend::kNccl;
    EXPECT_ERROR_CONTAINS(ProcessGroup(one, torch::kCPU, o), "this build has no ProcessGroupNCCL");
  }
}

// ---- worker bodies (run only inside the ranks) -----------------------------------------------

TEST(ProcessGroupWorker, Collectives) {
  if (!test::is_dist_worker()) GTEST_SKIP() << "runs inside a rank";
  auto pg = join();
  const int r = pg->rank(), w = pg->world_size();
  auto sum = torch::full({3}, static_cast<double>(r + 1), torch::kFloat64);
  pg->all_reduce_sum(sum, "test sum");
  EXPECT_TRUE(torch::equal(sum, torch::full({3}, w * (w + 1) / 2.0, torch::kFloat64)));

  auto mine = torch::arange(2 * 3, torch::kFloat).view({2, 3}) + 100 * r;
  auto all = pg->all_gather_cat(mine, "test gather");
  ASSERT_EQ(all.sizes(), (std::vector<int64_t>{2 * w, 3}));
  for (int k = 0; k < w; ++k) {
    EXPECT_TRUE(torch::equal(all.narrow(0, 2 * k, 2),
                             torch::arange(6, torch::kFloat).view({2, 3}) + 100 * k));
  }
  auto b = torch::full({4}, static_cast<float>(r == 1 ? 7 : -1));
  pg->broadcast(b, 1, "test broadcast");
  EXPECT_TRUE(torch::equal(b, torch::full({4}, 7.0f)));
  pg->check_identical("a\nb\nc\n", "a test list");
  EXPECT_EQ(pg->backend_name(), "gloo");
}

TEST(ProcessGroupWorker, DifferentParameterListsAreNamed) {
  if (!test::is_dist_worker()) GTEST_SKIP() << "runs inside a rank";
  auto pg = join();
  const std::string text = pg->rank() == 1 ? "w1 [4]\nw2 [8]\n" : "w1 [4]\nw2 [9]\n";
  EXPECT_ERROR_CONTAINS(pg->check_identical(text, "the trainable parameters"),
                        "line 2 is 'w2 [9]' on rank 0 but 'w2 [8]' on rank 1");
}

TEST(ProcessGroupWorker, DeadRankIsNamed) {
  if (!test::is_dist_worker()) GTEST_SKIP() << "runs inside a rank";
  auto pg = join(milliseconds(15000));
  auto x = torch::ones({4});
  pg->all_reduce_sum(x, "warm up");
  if (pg->rank() == 1) ::kill(::getpid(), SIGKILL);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_ERROR_CONTAINS(pg->all_reduce_sum(x, "all-reduce gradients"),
                        "rank 1 stopped responding (died or was killed)");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(15));
}

TEST(ProcessGroupWorker, HungRankIsNamedAfterTheTimeout) {
  if (!test::is_dist_worker()) GTEST_SKIP() << "runs inside a rank";
  auto pg = join(milliseconds(3000));
  if (pg->rank() == 1) {
    std::this_thread::sleep_for(seconds(12));  // "hangs" in its own work; heartbeat still runs
    ::_exit(0);
  }
  auto x = torch::ones({4});
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_ERROR_CONTAINS(pg->all_reduce_sum(x, "all-reduce gradients"),
                        "rank 1 is alive but never reached this collective (hangs)");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(10));
}

// ---- the tests that start the ranks ----------------------------------------------------------

TEST(ProcessGroup, TwoRanksSumGatherBroadcastAndCompare) {
  std::string report;
  EXPECT_TRUE(test::run_worker_test(2, "ProcessGroupWorker.Collectives", &report)) << report;
}

TEST(ProcessGroup, ThreeRanksSumGatherBroadcastAndCompare) {
  std::string report;
  EXPECT_TRUE(test::run_worker_test(3, "ProcessGroupWorker.Collectives", &report)) << report;
}

TEST(ProcessGroup, RanksWithDifferentParametersStopWithTheFirstDifference) {
  std::string report;
  EXPECT_TRUE(
      test::run_worker_test(2, "ProcessGroupWorker.DifferentParameterListsAreNamed", &report))
      << report;
}

TEST(ProcessGroup, SurvivorNamesTheKilledRankInsteadOfHanging) {
  // Rank 1 kills itself (exit 137); rank 0's test must pass.
  test::RankProcesses ranks(2,
                            {"/proc/self/exe", "--gtest_filter=ProcessGroupWorker.DeadRankIsNamed"},
                            {"MVA_DIST_WORKER=1"});
  const auto status = ranks.wait(seconds(60));
  EXPECT_EQ(status[0], 0) << ranks.output(0);
  EXPECT_NE(ranks.output(0).find("[  PASSED  ] 1 test"), std::string::npos) << ranks.output(0);
  EXPECT_EQ(status[1], 128 + SIGKILL);
}

TEST(ProcessGroup, SurvivorNamesTheHungRankAtTheTimeout) {
  test::RankProcesses ranks(
      2, {"/proc/self/exe", "--gtest_filter=ProcessGroupWorker.HungRankIsNamedAfterTheTimeout"},
      {"MVA_DIST_WORKER=1"});
  const auto status = ranks.wait(seconds(60));
  EXPECT_EQ(status[0], 0) << ranks.output(0);
  EXPECT_NE(ranks.output(0).find("[  PASSED  ] 1 test"), std::string::npos) << ranks.output(0);
}

TEST(ProcessGroup, RendezvousFailureIsOneClearError) {
  // One rank of two: nobody else comes, rank 0's store gives up after the timeout.
  DistEnv env;
  env.rank = 0;
  env.world_size = 2;
  env.master_port = free_loopback_port();
  ProcessGroupOptions o;
  o.timeout = milliseconds(1500);
  EXPECT_ERROR_CONTAINS(ProcessGroup(env, torch::kCPU, o), "rendezvous at 127.0.0.1:");
}

}  // namespace
}  // namespace mva
