#pragma once
// Real multi-process runs for the distributed tests: the ranks are separate processes started
// with the environment torchrun gives them, on a free loopback port.
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace mva::test {

/// `world` processes running `argv`, rank r with RANK=r, LOCAL_RANK=r, WORLD_SIZE, MASTER_ADDR,
/// MASTER_PORT (and `env` entries "NAME=value"); stdout and stderr of each go to a file.
class RankProcesses {
 public:
  RankProcesses(int world, const std::vector<std::string>& argv,
                const std::vector<std::string>& env = {});
  ~RankProcesses();  ///< kills what still runs

  pid_t pid(int rank) const { return pids_[static_cast<size_t>(rank)]; }
  /// Waits for every rank (at most `timeout` in all, then SIGKILL); returns each exit status,
  /// 128 + signal for a signal, as a shell reports it.
  std::vector<int> wait(std::chrono::seconds timeout);
  /// Waits for one rank only (same convention); -1 if it did not end in time.
  int wait_rank(int rank, std::chrono::seconds timeout);
  /// What rank r printed so far.
  std::string output(int rank) const;

 private:
  std::filesystem::path dir_;
  std::vector<pid_t> pids_;
  std::vector<int> status_;
};

/// Runs a gtest of this very test binary in `world` processes (each gets MVA_DIST_WORKER=1 and
/// the rank environment); returns true when every rank exited 0 after running the test, else
/// false with every rank's output in `report`.
bool run_worker_test(int world, const std::string& test_name, std::string* report,
                     const std::vector<std::string>& env = {},
                     std::chrono::seconds timeout = std::chrono::seconds(120));

/// True inside a rank started by run_worker_test; worker tests skip themselves otherwise.
bool is_dist_worker();

}  // namespace mva::test
