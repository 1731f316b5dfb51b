#pragma once
#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mva {

/// Receives the launcher's output: one whole prefixed line per call, with its terminator ('\n',
/// or '\r' for a progress redraw, which then overwrites itself on a terminal prefix and all).
using OutputSink = std::function<void(std::string_view text)>;

/// What launch_local_ranks starts and how it stops it.
struct LaunchOptions {
  std::string program;            ///< exec'd as is (no PATH search): "/proc/self/exe" re-runs us
  std::vector<std::string> args;  ///< argv of every rank, argv[0] included
  int nproc = 1;                  ///< number of ranks, >= 1
  /// Extra variables for every rank; they win over the inherited ones and the launcher's own.
  std::vector<std::pair<std::string, std::string>> env;
  /// > 0: each rank gets MVA_THREADS=threads_per_rank, unless MVA_THREADS is already in the
  /// environment or in `env` (the user's choice wins). N ranks on C cores want C / N each.
  int threads_per_rank = 0;
  /// After one rank fails, how long the others get between SIGTERM and SIGKILL.
  std::chrono::milliseconds grace{30000};
  OutputSink out;  ///< the ranks' stdout lines; empty: the launcher's stdout
  OutputSink err;  ///< the ranks' stderr lines and the launcher's own messages; empty: stderr
};

/// Runs opts.nproc copies of opts.program on this machine, as torchrun does for one node: each
/// rank gets MASTER_ADDR=127.0.0.1, MASTER_PORT (the inherited one, else a free loopback port),
/// RANK, LOCAL_RANK, WORLD_SIZE and LOCAL_WORLD_SIZE, and runs in its own process group with
/// stdin from /dev/null. Every line a rank writes is relayed with the prefix "[rank i] ".
/// When a rank exits non-zero or dies of a signal, the launcher names it, sends SIGTERM to the
/// others and SIGKILL after opts.grace. SIGINT / SIGTERM sent to the launcher during the call are
/// forwarded once to every rank, which then stops as it chooses; a second one sends SIGKILL.
/// Ranks die with the launcher (SIGTERM), even when it is killed with SIGKILL.
/// Returns 0 when every rank exited 0, else the status of the first rank that did not
/// (128 + N for signal N, as a shell reports it). Throws Error when a rank cannot be started
/// (e.g. the program cannot be executed), after stopping the ranks already running.
/// One call at a time per process (it owns SIGINT / SIGTERM while it runs).
int launch_local_ranks(const LaunchOptions& opts);

/// A TCP port free on 127.0.0.1 right now (the kernel's pick for port 0).
int free_loopback_port();

/// "SIGKILL" for SIGKILL; "signal N" for one without a name here.
std::string signal_name(int sig);

/// args without the option `name` and its value, in either form ("--nproc 2", "--nproc=2").
std::vector<std::string> without_option(const std::vector<std::string>& args,
                                        std::string_view name);

/// This process's own argv, as it was started (read from /proc/self/cmdline).
std::vector<std::string> own_arguments();

}  // namespace mva
