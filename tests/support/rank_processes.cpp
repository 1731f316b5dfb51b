#include "rank_processes.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "mvadapter/core/launcher.h"
#include "test_support.h"

namespace mva::test {

RankProcesses::RankProcesses(int world, const std::vector<std::string>& argv,
                             const std::vector<std::string>& env)
    : dir_(temp_dir("ranks")), status_(static_cast<size_t>(world), -1) {
  const int port = free_loopback_port();
  for (int r = 0; r < world; ++r) {
    const auto out = dir_ / ("rank" + std::to_string(r) + ".log");
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      for (const auto& kv : env) ::putenv(const_cast<char*>(kv.c_str()));
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    pids_.push_back(pid);
  }
}

RankProcesses::~RankProcesses() {
  for (size_t r = 0; r < pids_.size(); ++r) {
    if (status_[r] < 0) {
      ::kill(pids_[r], SIGKILL);
      ::waitpid(pids_[r], nullptr, 0);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

int RankProcesses::wait_rank(int rank, std::chrono::seconds timeout) {
  const auto r = static_cast<size_t>(rank);
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (status_[r] < 0) {
    int st = 0;
    const pid_t got = ::waitpid(pids_[r], &st, WNOHANG);
    if (got == pids_[r]) {
      status_[r] = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      break;
    }
    if (std::chrono::steady_clock::now() > until) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return status_[r];
}

std::vector<int> RankProcesses::wait(std::chrono::seconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (size_t r = 0; r < pids_.size(); ++r) {
    const auto left =
        std::chrono::duration_cast<std::chrono::seconds>(until - std::chrono::steady_clock::now());
    if (wait_rank(static_cast<int>(r), std::max(left, std::chrono::seconds(0))) < 0) {
      ::kill(pids_[r], SIGKILL);
      wait_rank(static_cast<int>(r), std::chrono::seconds(10));
    }
  }
  return status_;
}

std::string RankProcesses::output(int rank) const {
  std::ifstream in(dir_ / ("rank" + std::to_string(rank) + ".log"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool is_dist_worker() {
  const char* v = std::getenv("MVA_DIST_WORKER");
  return v != nullptr && std::string(v) == "1";
}

bool run_worker_test(int world, const std::string& test_name, std::string* report,
                     const std::vector<std::string>& env, std::chrono::seconds timeout) {
  std::vector<std::string> all_env = env;
  all_env.push_back("MVA_DIST_WORKER=1");
  RankProcesses ranks(world, {"/proc/self/exe", "--gtest_filter=" + test_name}, all_env);
  const auto status = ranks.wait(timeout);
  bool ok = true;
  std::ostringstream msg;
  for (int r = 0; r < world; ++r) {
    const auto out = ranks.output(r);
    // A worker that skipped or matched no test must not count as a pass.
    const bool ran = out.find("[  PASSED  ] 1 test") != std::string::npos;
    if (status[static_cast<size_t>(r)] != 0 || !ran) ok = false;
    msg << "--- rank " << r << " (exit " << status[static_cast<size_t>(r)] << ")\n" << out;
  }
  if (report) *report = msg.str();
  return ok;
}

}  // namespace mva::test
