#include "mvadapter/core/launcher.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "mvadapter/core/error.h"
#include "test_support.h"

namespace mva {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

// What the launcher wrote, one entry per sink call.
struct Captured {
  std::vector<std::string> out, err;
  std::string all_err() const {
    std::string s;
    for (const auto& l : err) s += l;
    return s;
  }
};

// n ranks of `sh -c script`, output captured, a short grace period.
LaunchOptions shell_ranks(int n, const std::string& script, Captured& cap) {
  LaunchOptions o;
  o.program = "/bin/sh";
  o.args = {"sh", "-c", script};
  o.nproc = n;
  o.grace = 1s;
  o.out = [&cap](std::string_view s) { cap.out.emplace_back(s); };
  o.err = [&cap](std::string_view s) { cap.err.emplace_back(s); };
  return o;
}

size_t open_fd_count() {
  return static_cast<size_t>(
      std::distance(fs::directory_iterator("/proc/self/fd"), fs::directory_iterator()));
}

// True once a process is gone or a zombie nobody reaped yet (pid 1 in a container may not reap).
bool process_gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close_paren = all.rfind(')');
  return close_paren != std::string::npos && close_paren + 2 < all.size() &&
         all[close_paren + 2] == 'Z';
}

// Whether any live (non-zombie) process is in process group `pgid`.
bool group_alive(pid_t pgid) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto close_paren = all.rfind(')');
    if (close_paren == std::string::npos) continue;
    std::istringstream rest(all.substr(close_paren + 1));
    char state = 0;
    long ppid = 0, pgrp = 0;
    rest >> state >> ppid >> pgrp;
    if (pgrp == pgid && state != 'Z') return true;
  }
  return false;
}

bool group_gone_within(pid_t pgid, std::chrono::seconds limit) {
  const auto until = SteadyClock::now() + limit;
  while (group_alive(pgid)) {
    if (SteadyClock::now() >= until) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

bool wait_for_files(const std::vector<fs::path>& files, std::chrono::seconds limit) {
  const auto until = SteadyClock::now() + limit;
  while (SteadyClock::now() < until) {
    if (std::all_of(files.begin(), files.end(), [](const fs::path& f) { return fs::exists(f); }))
      return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

int line_count(const fs::path& file) {
  std::ifstream in(file);
  int n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

void expect_no_children_left() {
  errno = 0;
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1) << "a child of the test is left (zombie?)";
  EXPECT_EQ(errno, ECHILD);
}

// Restores an environment variable at the end of a test.
class ScopedEnv {
 public:
  explicit ScopedEnv(const char* key) : key_(key) {
    if (const char* v = std::getenv(key)) old_ = v;
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(key_, old_->c_str(), 1);
    } else {
      ::unsetenv(key_);
    }
  }

 private:
  const char* key_;
  std::optional<std::string> old_;
};

TEST(Launcher, EveryRankGetsItsRankAndTheSamePort) {
  ScopedEnv keep("MASTER_PORT");
  ::unsetenv("MASTER_PORT");
  Captured cap;
  auto opts =
      shell_ranks(3,
                  "echo \"rank=$RANK world=$WORLD_SIZE local=$LOCAL_RANK lws=$LOCAL_WORLD_SIZE "
                  "addr=$MASTER_ADDR port=$MASTER_PORT\"",
                  cap);
  ASSERT_EQ(launch_local_ranks(opts), 0) << cap.all_err();

  ASSERT_EQ(cap.out.size(), 3u);
  const std::regex line(
      R"(\[rank (\d)\] rank=(\d) world=3 local=(\d) lws=3 addr=127\.0\.0\.1 port=(\d+)\n)");
  std::set<std::string> ranks, ports;
  for (const auto& l : cap.out) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(l, m, line)) << "unexpected line: " << l;
    EXPECT_EQ(m[1].str(), m[2].str()) << "prefix names another rank than RANK: " << l;
    EXPECT_EQ(m[2].str(), m[3].str()) << "LOCAL_RANK differs from RANK on one machine: " << l;
    ranks.insert(m[1].str());
    ports.insert(m[4].str());
  }
  EXPECT_EQ(ranks, (std::set<std::string>{"0", "1", "2"}));
  ASSERT_EQ(ports.size(), 1u) << "ranks were given different ports";
  const int port = std::stoi(*ports.begin());
  EXPECT_GT(port, 0);
  EXPECT_LT(port, 65536);
}

TEST(Launcher, KeepsTheUsersMasterPort) {
  ScopedEnv keep("MASTER_PORT");
  ::setenv("MASTER_PORT", "29517", 1);
  Captured cap;
  ASSERT_EQ(launch_local_ranks(shell_ranks(2, "echo $MASTER_PORT", cap)), 0);
  std::sort(cap.out.begin(), cap.out.end());  // ranks run concurrently
  EXPECT_EQ(cap.out, (std::vector<std::string>{"[rank 0] 29517\n", "[rank 1] 29517\n"}));
}

TEST(Launcher, ThreadsPerRankUnlessTheUserChoseAndExtraVariables) {
  ScopedEnv keep("MVA_THREADS");
  ::unsetenv("MVA_THREADS");
  Captured cap;
  auto opts = shell_ranks(1, "echo \"$MVA_THREADS $MVA_LAUNCHER_TEST $HOME\"", cap);
  opts.threads_per_rank = 3;
  opts.env = {{"MVA_LAUNCHER_TEST", "extra"}};
  ASSERT_EQ(launch_local_ranks(opts), 0);
  const std::string home = std::getenv("HOME") ? std::getenv("HOME") : "";
  ASSERT_EQ(cap.out.size(), 1u);
  EXPECT_EQ(cap.out[0], "[rank 0] 3 extra " + home + "\n") << "inherited variables kept";

  ::setenv("MVA_THREADS", "5", 1);
  cap.out.clear();
  ASSERT_EQ(launch_local_ranks(opts), 0);
  ASSERT_EQ(cap.out.size(), 1u);
  EXPECT_EQ(cap.out[0], "[rank 0] 5 extra " + home + "\n") << "the user's MVA_THREADS wins";
}

TEST(Launcher, AllRanksExitingZeroGiveZeroAndLeaveNothingBehind) {
  const size_t fds_before = open_fd_count();
  Captured cap;
  EXPECT_EQ(launch_local_ranks(shell_ranks(3, "exit 0", cap)), 0);
  EXPECT_TRUE(cap.err.empty()) << cap.all_err();
  EXPECT_EQ(open_fd_count(), fds_before) << "the launcher leaked file descriptors";
  expect_no_children_left();
}

TEST(Launcher, FailingRankStopsTheOthersAndGivesItsStatus) {
  const auto dir = test::temp_dir("launcher_fail");
  Captured cap;
  // Rank 1 fails once the others are surely running (they leave a file first).
  const std::string script = fmt::format(
      "echo $$; touch {0}/started.$RANK; "
      "if [ $RANK = 1 ]; then "
      "  while [ ! -e {0}/started.0 ] || [ ! -e {0}/started.2 ]; do sleep 0.05; done; exit 3; "
      "fi; sleep 60; echo not stopped",
      dir.string());
  const auto t0 = SteadyClock::now();
  EXPECT_EQ(launch_local_ranks(shell_ranks(3, script, cap)), 3) << cap.all_err();
  EXPECT_LT(SteadyClock::now() - t0, 20s) << "the other ranks were not stopped";

  ASSERT_EQ(cap.out.size(), 3u);
  const std::regex pid_line(R"(\[rank (\d)\] (\d+)\n)");
  for (const auto& l : cap.out) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(l, m, pid_line)) << l;
    const pid_t pid = std::stoi(m[2].str());
    EXPECT_TRUE(group_gone_within(pid, 5s)) << "rank " << m[1] << "'s process group is alive";
    if (m[1].str() == "1") {
      EXPECT_NE(
          cap.all_err().find(fmt::format(
              "mvadapter: rank 1 (pid {}) exited with status 3; stopping the other ranks\n", pid)),
          std::string::npos)
          << cap.all_err();
    }
  }
  expect_no_children_left();
  fs::remove_all(dir);
}

TEST(Launcher, RankKilledBySignalGives128PlusItAndIsNamed) {
  Captured cap;
  const auto t0 = SteadyClock::now();
  EXPECT_EQ(
      launch_local_ranks(shell_ranks(2, "if [ $RANK = 1 ]; then kill -9 $$; fi; sleep 60", cap)),
      128 + SIGKILL);
  EXPECT_LT(SteadyClock::now() - t0, 20s);
  const std::regex message(R"(mvadapter: rank 1 \(pid \d+\) was killed by SIGKILL.*\n)");
  ASSERT_FALSE(cap.err.empty());
  EXPECT_TRUE(std::regex_match(cap.err[0], message)) << cap.err[0];
  expect_no_children_left();
}

TEST(Launcher, RankIgnoringSigtermIsKilledAfterTheGracePeriod) {
  const auto dir = test::temp_dir("launcher_grace");
  Captured cap;
  const std::string script = fmt::format(
      "if [ $RANK = 1 ]; then while [ ! -e {0}/trapped ]; do sleep 0.05; done; exit 1; fi; "
      "trap '' TERM; touch {0}/trapped; sleep 60; echo not killed",
      dir.string());
  const auto t0 = SteadyClock::now();
  EXPECT_EQ(launch_local_ranks(shell_ranks(2, script, cap)), 1);
  const auto took = SteadyClock::now() - t0;
  EXPECT_GE(took, 1s) << "SIGKILL came before the grace period ended";
  EXPECT_LT(took, 20s) << "the rank ignoring SIGTERM was not killed";
  EXPECT_NE(cap.all_err().find("rank 0 (pid "), std::string::npos);
  EXPECT_NE(cap.all_err().find("still running 1 s after SIGTERM; sending SIGKILL"),
            std::string::npos)
      << cap.all_err();
  EXPECT_TRUE(cap.out.empty());
  expect_no_children_left();
  fs::remove_all(dir);
}

TEST(Launcher, PartialLastLineIsRelayedWithThePrefixAndStreamsStaySeparate) {
  Captured cap;
  ASSERT_EQ(
      launch_local_ranks(shell_ranks(
          1, "printf 'first\\nsec'; sleep 0.2; printf 'ond\\nno newline'; printf 'oops\\n' >&2",
          cap)),
      0);
  EXPECT_EQ(cap.out, (std::vector<std::string>{"[rank 0] first\n", "[rank 0] second\n",
                                               "[rank 0] no newline\n"}));
  EXPECT_EQ(cap.err, (std::vector<std::string>{"[rank 0] oops\n"}));
}

TEST(Launcher, CarriageReturnEndsALineSoRedrawsKeepThePrefix) {
  Captured cap;
  ASSERT_EQ(launch_local_ranks(shell_ranks(1, "printf '10%%\\r20%%\\r\\ndone\\r'", cap)), 0);
  EXPECT_EQ(cap.out,
            (std::vector<std::string>{"[rank 0] 10%\r", "[rank 0] 20%\r\n", "[rank 0] done\r"}));
}

// A test program started in the background by a script (`cmd &`, as CI may run it) inherits
// SIGINT ignored, which the launcher rightly leaves alone and the ranks inherit. The SIGINT tests
// are about a SIGINT the user can send, so they run with the default disposition (restored after).
class DefaultSigint {
 public:
  DefaultSigint() {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(SIGINT, &dfl, &before_);
  }
  ~DefaultSigint() { ::sigaction(SIGINT, &before_, nullptr); }
  DefaultSigint(const DefaultSigint&) = delete;
  DefaultSigint& operator=(const DefaultSigint&) = delete;

 private:
  struct sigaction before_ {};
};

// Sends `sig` to this process once every file exists; the launcher must be relaying by then.
std::thread signal_when(std::vector<fs::path> files, int sig) {
  return std::thread([files = std::move(files), sig] {
    if (wait_for_files(files, 20s)) ::kill(::getpid(), sig);
  });
}

TEST(Launcher, SigintIsForwardedOnceAndTheRanksStatusReturned) {
  const auto dir = test::temp_dir("launcher_sigint");
  const DefaultSigint sigint;
  Captured cap;
  // A forwarded SIGINT stops the foreground sleep and runs the trap; a second delivery would add
  // a line to the marker file during the pause after it.
  const std::string script = fmt::format(
      "trap 'echo int >> {0}/int.$RANK; got=1' INT; touch {0}/ready.$RANK; sleep 60; "
      "if [ \"$got\" = 1 ]; then sleep 0.3; exit 130; fi; exit 0",
      dir.string());
  auto sender = signal_when({dir / "ready.0", dir / "ready.1"}, SIGINT);
  const int status = launch_local_ranks(shell_ranks(2, script, cap));
  sender.join();
  EXPECT_EQ(status, 130) << cap.all_err();
  EXPECT_EQ(line_count(dir / "int.0"), 1) << "rank 0 got SIGINT other than once";
  EXPECT_EQ(line_count(dir / "int.1"), 1) << "rank 1 got SIGINT other than once";
  EXPECT_NE(cap.all_err().find("mvadapter: got SIGINT; passing it on to every rank"),
            std::string::npos)
      << cap.all_err();
  struct sigaction after {};
  ::sigaction(SIGINT, nullptr, &after);
  EXPECT_EQ(after.sa_handler, SIG_DFL) << "the SIGINT handler was not restored";
  expect_no_children_left();
  fs::remove_all(dir);
}

TEST(Launcher, SecondSigintKillsRanksThatKeepRunning) {
  const DefaultSigint sigint;
  const auto dir = test::temp_dir("launcher_sigint2");
  Captured cap;
  const std::string script = fmt::format(
      "trap 'touch {0}/int.$RANK' INT; touch {0}/ready.$RANK; while :; do sleep 0.05; done",
      dir.string());
  auto sender = std::thread([&dir] {
    if (!wait_for_files({dir / "ready.0", dir / "ready.1"}, 20s)) return;
    ::kill(::getpid(), SIGINT);
    if (!wait_for_files({dir / "int.0", dir / "int.1"}, 20s)) return;
    ::kill(::getpid(), SIGINT);
  });
  const auto t0 = SteadyClock::now();
  const int status = launch_local_ranks(shell_ranks(2, script, cap));
  sender.join();
  EXPECT_EQ(status, 128 + SIGKILL) << cap.all_err();
  EXPECT_LT(SteadyClock::now() - t0, 20s);
  EXPECT_NE(cap.all_err().find("got SIGINT again; killing every rank"), std::string::npos)
      << cap.all_err();
  expect_no_children_left();
  fs::remove_all(dir);
}

TEST(Launcher, StatusesSurviveACallerIgnoringSigchld) {
  struct sigaction ignore {
  }, before{}, after{};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  ::sigaction(SIGCHLD, &ignore, &before);
  Captured cap;
  const int status = launch_local_ranks(shell_ranks(2, "exit $((RANK * 4))", cap));
  ::sigaction(SIGCHLD, &before, &after);
  EXPECT_EQ(status, 4) << cap.all_err();
  EXPECT_EQ(after.sa_handler, SIG_IGN) << "the caller's SIGCHLD disposition was not restored";
}

TEST(Launcher, ProgramThatCannotRunIsAClearError) {
  const size_t fds_before = open_fd_count();
  Captured cap;
  auto opts = shell_ranks(2, "", cap);
  opts.program = "/no/such/program";
  EXPECT_ERROR_CONTAINS(launch_local_ranks(opts),
                        "cannot run /no/such/program: No such file or directory");
  EXPECT_EQ(open_fd_count(), fds_before);
  expect_no_children_left();
  opts.nproc = 0;
  EXPECT_ERROR_CONTAINS(launch_local_ranks(opts), "nproc = 0: expected at least 1");
}

// Run only as the launcher that RanksDieWithAKilledLauncher kills (it is re-executed for that).
TEST(Launcher, DISABLED_LauncherToBeKilled) {
  const char* dir = std::getenv("MVA_LAUNCHER_TEST_DIR");
  ASSERT_NE(dir, nullptr);
  LaunchOptions opts;
  opts.program = "/bin/sh";
  opts.args = {"sh", "-c",
               fmt::format("echo $$ > {0}/rank.pid.tmp && mv {0}/rank.pid.tmp {0}/rank.pid; "
                           "exec sleep 60",
                           dir)};
  launch_local_ranks(opts);
}

TEST(Launcher, RanksDieWithAKilledLauncher) {
  const auto dir = test::temp_dir("launcher_pdeath");
  ScopedEnv keep("MVA_LAUNCHER_TEST_DIR");
  ::setenv("MVA_LAUNCHER_TEST_DIR", dir.c_str(), 1);
  const pid_t launcher = ::fork();
  if (launcher == 0) {
    ::execl("/proc/self/exe", "test_core", "--gtest_filter=Launcher.DISABLED_LauncherToBeKilled",
            "--gtest_also_run_disabled_tests", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ASSERT_GT(launcher, 0);
  const bool started = wait_for_files({dir / "rank.pid"}, 20s);
  ::kill(launcher, SIGKILL);
  int st = 0;
  ::waitpid(launcher, &st, 0);
  ASSERT_TRUE(started) << "the re-executed launcher did not start its rank";
  pid_t rank = 0;
  std::ifstream(dir / "rank.pid") >> rank;
  ASSERT_GT(rank, 0);
  const auto until = SteadyClock::now() + 10s;
  while (!process_gone(rank) && SteadyClock::now() < until) std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(process_gone(rank)) << "rank " << rank << " outlived its SIGKILLed launcher";
  if (!process_gone(rank)) ::kill(rank, SIGKILL);
  fs::remove_all(dir);
}

TEST(Launcher, SignalNames) {
  EXPECT_EQ(signal_name(SIGKILL), "SIGKILL");
  EXPECT_EQ(signal_name(SIGINT), "SIGINT");
  EXPECT_EQ(signal_name(SIGTERM), "SIGTERM");
}

TEST(Launcher, WithoutOptionDropsBothFormsAndKeepsTheRest) {
  const std::vector<std::string> args{"mvadapter", "train", "--nproc", "2",
                                      "c.yaml",    "--set", "a=1",     "--nproc=3",
                                      "--nprocs",  "--",    "--nproc", "4"};
  EXPECT_EQ(without_option(args, "--nproc"),
            (std::vector<std::string>{"mvadapter", "train", "c.yaml", "--set", "a=1", "--nprocs",
                                      "--", "--nproc", "4"}));
}

TEST(Launcher, OwnArgumentsAreThisProcesssArgv) {
  const auto args = own_arguments();
  ASSERT_FALSE(args.empty());
  EXPECT_NE(args[0].find("test_core"), std::string::npos) << args[0];
}

TEST(Launcher, FreeLoopbackPortIsUsable) {
  const int port = free_loopback_port();
  EXPECT_GT(port, 0);
  EXPECT_LT(port, 65536);
}

}  // namespace
}  // namespace mva
