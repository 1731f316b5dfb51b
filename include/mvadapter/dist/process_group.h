#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <torch/types.h>

#include "mvadapter/core/enum_names.h"

namespace mva {

/// Where this process sits in a multi-process run, as torchrun, SLURM or `--nproc` describe it.
struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

/// The run's place from the environment: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT
/// (torchrun, `mvadapter train --nproc`); without RANK, SLURM_PROCID, SLURM_NTASKS and
/// SLURM_LOCALID (srun) with MASTER_ADDR and MASTER_PORT from the job script. nullopt when
/// neither is set (one process). Throws Error naming the variable that is missing or malformed.
std::optional<DistEnv> dist_env_from_environment();

/// The collective library of a process group.
enum class DistBackend {
  kAuto,  ///< NCCL for CUDA devices when this build has it, Gloo otherwise
  kGloo,  ///< CPU tensors (CUDA tensors are staged through the host)
  kNccl,  ///< CUDA tensors; needs a LibTorch built with NCCL
};
/// auto, gloo, nccl (`dist.backend`).
constexpr std::array<EnumName<DistBackend>, 3> enum_names(DistBackend) {
  return {
      {{DistBackend::kAuto, "auto"}, {DistBackend::kGloo, "gloo"}, {DistBackend::kNccl, "nccl"}}};
}
/// "auto" | "gloo" | "nccl" -> DistBackend; throws Error naming `field` otherwise.
DistBackend parse_dist_backend(const std::string& name, const std::string& field);
std::string to_string(DistBackend backend);
/// Whether this build was compiled against a LibTorch with ProcessGroupNCCL.
bool nccl_available();

/// Settings of a process group (the `dist.*` config keys).
struct ProcessGroupOptions {
  DistBackend backend = DistBackend::kAuto;
  /// Rendezvous and every collective give up after this long (then the group names the ranks that
  /// did not arrive).
  std::chrono::milliseconds timeout{std::chrono::minutes(30)};
  /// How often each rank tells the store it is alive (used only to name a dead or hung rank).
  std::chrono::milliseconds heartbeat{std::chrono::milliseconds(500)};
};

/// A c10d process group (TCPStore rendezvous; ProcessGroupGloo or ProcessGroupNCCL) with the few
/// collectives data-parallel training needs. Every collective is numbered; a background thread
/// keeps a heartbeat in the store, so when a collective fails or times out the error names the
/// rank that died (its heartbeat stopped) or hangs (alive, but it never reached this collective)
/// instead of a bare transport error or a hang.
///
/// Collectives take tensors on any device: they are staged to device() and back. All ranks must
/// call the same collectives in the same order with tensors of the same shape and dtype.
class ProcessGroup {
 public:
  /// Joins the group (blocks until all WORLD_SIZE ranks have joined or the timeout passes).
  /// `device` is where this rank computes: NCCL needs a CUDA device, Gloo communicates on the CPU.
  ProcessGroup(const DistEnv& env, torch::Device device, const ProcessGroupOptions& options = {});
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  /// Rank 0 writes the run's files.
  bool is_main() const { return env_.rank == 0; }
  /// Where collective tensors live (CPU for Gloo, this rank's GPU for NCCL).
  torch::Device device() const { return comm_device_; }
  /// "gloo" or "nccl".
  std::string backend_name() const;

  /// Sum over ranks, in place. `what` names the collective in errors.
  void all_reduce_sum(torch::Tensor& t, const std::string& what);
  /// Every rank's `t` (same shape on all ranks) concatenated along dim 0 in rank order, on t's
  /// device.
  torch::Tensor all_gather_cat(const torch::Tensor& t, const std::string& what);
  /// `t` of rank `root` copied into `t` of every rank.
  void broadcast(torch::Tensor& t, int root, const std::string& what);
  /// Waits for every rank.
  void barrier(const std::string& what);
  /// Every rank passes its own `text` (one item per line); throws Error on every rank, naming the
  /// first rank and line that differ from rank 0's, unless all are equal.
  void check_identical(const std::string& text, const std::string& what);

  /// The ranks that are dead or have not reached collective `seq` (from the heartbeats); empty
  /// when nothing is known to be wrong. For error messages.
  std::string diagnose(int64_t seq);

 private:
  struct Impl;
  template <typename Fn>
  void run_collective(const std::string& what, Fn&& fn);
  void heartbeat_loop();

  DistEnv env_;
  ProcessGroupOptions options_;
  torch::Device comm_device_;
  std::unique_ptr<Impl> impl_;
  std::atomic<int64_t> seq_{0};
  std::atomic<bool> stop_heartbeat_{false};
  std::thread heartbeat_;
};

}  // namespace mva
