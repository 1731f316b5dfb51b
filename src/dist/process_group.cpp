// ProcessGroupGloo.hpp declares nothing unless told that this LibTorch has Gloo (it does: Debian's
// and the official builds); defined here, not on the command line, to keep the shared PCH valid.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#if MVA_WITH_NCCL && !defined(USE_C10D_NCCL)
#define USE_C10D_NCCL 1
#endif
#include "mvadapter/dist/process_group.h"

#include <cstdlib>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if MVA_WITH_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "mvadapter/core/error.h"

namespace mva {
namespace {

using std::chrono::milliseconds;

std::optional<std::string> env_string(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

int env_int(const char* name, int min, int max, std::optional<int> fallback = std::nullopt) {
  auto v = env_string(name);
  if (!v) {
    if (fallback) return *fallback;
    throw Error(
        fmt::format("{} is not set: a distributed run needs RANK, WORLD_SIZE, "
                    "MASTER_ADDR and MASTER_PORT (as torchrun sets them)",
                    name));
  }
  char* end = nullptr;
  const long n = std::strtol(v->c_str(), &end, 10);
  if (end == v->c_str() || *end != '\0' || n < min || n > max) {
    throw Error(fmt::format("{}='{}': expected an integer in [{}, {}]", name, *v, min, max));
  }
  return static_cast<int>(n);
}

std::vector<uint8_t> bytes_of(const std::string& s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}
std::string string_of(const std::vector<uint8_t>& b) {
  return std::string(b.begin(), b.end());
}

// The message without LibTorch's backtrace, on one line.
std::string short_message(const std::exception& e) {
  const auto* ce = dynamic_cast<const c10::Error*>(&e);
  std::string m = ce != nullptr ? ce->what_without_backtrace() : e.what();
  if (auto nl = m.find('\n'); nl != std::string::npos) m.resize(nl);
  return m;
}

std::string heartbeat_key(int rank) {
  return fmt::format("mva/heartbeat/{}", rank);
}

// The first line where two texts differ (1-based) and the two lines.
std::optional<std::tuple<size_t, std::string, std::string>> first_difference(const std::string& a,
                                                                             const std::string& b) {
  std::istringstream sa(a), sb(b);
  std::string la, lb;
  for (size_t line = 1;; ++line) {
    const bool ga = static_cast<bool>(std::getline(sa, la));
    const bool gb = static_cast<bool>(std::getline(sb, lb));
    if (!ga && !gb) return std::nullopt;
    if (!ga) la = "(nothing)";
    if (!gb) lb = "(nothing)";
    if (!ga || !gb || la != lb) return std::make_tuple(line, la, lb);
  }
}

}  // namespace

std::optional<DistEnv> dist_env_from_environment() {
  DistEnv env;
  if (env_string("RANK") || env_string("WORLD_SIZE")) {
    env.world_size = env_int("WORLD_SIZE", 1, 1 << 20);
    env.rank = env_int("RANK", 0, env.world_size - 1);
    env.local_rank = env_int("LOCAL_RANK", 0, env.world_size - 1, 0);
  } else if (env_string("SLURM_PROCID") && env_string("SLURM_NTASKS")) {
    env.world_size = env_int("SLURM_NTASKS", 1, 1 << 20);
    env.rank = env_int("SLURM_PROCID", 0, env.world_size - 1);
    env.local_rank = env_int("SLURM_LOCALID", 0, env.world_size - 1, 0);
    if (env.world_size == 1) return std::nullopt;  // a plain `srun mvadapter ...`
  } else {
    return std::nullopt;
  }
  env.master_addr = env_string("MASTER_ADDR").value_or("");
  if (env.master_addr.empty()) {
    if (env.world_size > 1) {
      throw Error(
          "MASTER_ADDR is not set: a distributed run needs the address of rank 0 (torchrun sets "
          "it; under SLURM export MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" "
          "| head -n 1))");
    }
    env.master_addr = "127.0.0.1";
  }
  env.master_port = env_int("MASTER_PORT", 1, 65535,
                            env.world_size > 1 ? std::nullopt : std::optional<int>(29500));
  return env;
}

DistBackend parse_dist_backend(const std::string& name, const std::string& field) {
  if (auto v = enum_from_name<DistBackend>(name)) return *v;
  throw Error(fmt::format("{}: '{}' is not a backend (expected {})", field, name,
                          enum_choices<DistBackend>(" or ")));
}

std::string to_string(DistBackend backend) {
  return enum_name(backend);
}

bool nccl_available() {
  return MVA_WITH_NCCL != 0;
}

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::TCPStore> store;            // collectives' rendezvous + our keys
  c10::intrusive_ptr<c10d::TCPStore> heartbeat_store;  // own connection: used from a thread
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  bool nccl = false;
};

ProcessGroup::ProcessGroup(const DistEnv& env, torch::Device device,
                           const ProcessGroupOptions& options)
    : env_(env), options_(options), comm_device_(torch::kCPU), impl_(std::make_unique<Impl>()) {
  if (env.world_size < 1 || env.rank < 0 || env.rank >= env.world_size) {
    throw Error(fmt::format("distributed: rank {} is not in [0, WORLD_SIZE = {})", env.rank,
                            env.world_size));
  }
  DistBackend backend = options.backend;
  if (backend == DistBackend::kAuto) {
    backend = device.is_cuda() && nccl_available() ? DistBackend::kNccl : DistBackend::kGloo;
  }
  if (backend == DistBackend::kNccl && !nccl_available()) {
    throw Error(
        "dist.backend: nccl, but this build has no ProcessGroupNCCL (build against a CUDA "
        "LibTorch with NCCL; README \"GPUs\"), or use dist.backend: gloo");
  }
  if (backend == DistBackend::kNccl && !device.is_cuda()) {
    throw Error(fmt::format("dist.backend: nccl communicates between GPUs, but this run is on {}",
                            device.str()));
  }
  impl_->nccl = backend == DistBackend::kNccl;
  const auto where = fmt::format("{}:{}", env.master_addr, env.master_port);
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(env.master_port);
    so.isServer = env.rank == 0;
    so.numWorkers = static_cast<size_t>(env.world_size);
    so.waitWorkers = true;
    so.timeout = options.timeout;
    impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    c10d::TCPStoreOptions hb = so;
    hb.isServer = false;
    hb.numWorkers = c10::nullopt;
    hb.waitWorkers = false;
    impl_->heartbeat_store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, hb);
    auto pg_store = c10::make_intrusive<c10d::PrefixStore>("pg", impl_->store);
    if (impl_->nccl) {
#if MVA_WITH_NCCL
      // Timeouts are only enforced by NCCL's watchdog with async error handling on; the two
      // names are LibTorch 1.x-2.1 and 2.2+.
      ::setenv("NCCL_ASYNC_ERROR_HANDLING", "1", 0);
      ::setenv("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1", 0);
      c10::cuda::set_device(device.index() < 0 ? 0 : device.index());
      comm_device_ = device;
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = options.timeout;
      impl_->pg =
          c10::make_intrusive<c10d::ProcessGroupNCCL>(pg_store, env.rank, env.world_size, o);
#endif
    } else {
      auto o = c10d::ProcessGroupGloo::Options::create(options.timeout);
      const bool loopback = env.master_addr == "127.0.0.1" || env.master_addr == "localhost";
      if (auto ifname = env_string("GLOO_SOCKET_IFNAME")) {
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(*ifname));
      } else if (loopback) {
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      o->threads = 2;
      impl_->pg =
          c10::make_intrusive<c10d::ProcessGroupGloo>(pg_store, env.rank, env.world_size, o);
    }
  } catch (const std::exception& e) {
    throw Error(fmt::format(
        "distributed: rendezvous at {} as rank {} of {} ({}) failed within {} s (is MASTER_ADDR "
        "reachable, MASTER_PORT free on rank 0, and did all {} ranks start?): {}",
        where, env.rank, env.world_size, impl_->nccl ? "nccl" : "gloo",
        options.timeout.count() / 1000.0, env.world_size, short_message(e)));
  }
  heartbeat_ = std::thread([this] { heartbeat_loop(); });
}

ProcessGroup::~ProcessGroup() {
  stop_heartbeat_.store(true);
  if (heartbeat_.joinable()) heartbeat_.join();
}

std::string ProcessGroup::backend_name() const {
  return impl_->nccl ? "nccl" : "gloo";
}

void ProcessGroup::heartbeat_loop() {
  int64_t beat = 0;
  while (!stop_heartbeat_.load()) {
    try {
      impl_->heartbeat_store->set(heartbeat_key(env_.rank),
                                  bytes_of(fmt::format("{} {}", ++beat, seq_.load())));
    } catch (const std::exception&) {
      return;  // the store (rank 0) is gone; the next collective reports it
    }
    const auto until = std::chrono::steady_clock::now() + options_.heartbeat;
    while (!stop_heartbeat_.load() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(milliseconds(20));
    }
  }
}

std::string ProcessGroup::diagnose(int64_t seq) {
  // Two looks at every heartbeat, a few beats apart: a counter that does not move is a rank that
  // died (or is stopped); a moving one that has not reached `seq` is a rank that hangs.
  auto look = [&] {
    std::vector<std::optional<std::pair<int64_t, int64_t>>> out(env_.world_size);
    for (int r = 0; r < env_.world_size; ++r) {
      const auto key = heartbeat_key(r);
      if (!impl_->store->check({key})) continue;
      std::istringstream in(string_of(impl_->store->get(key)));
      int64_t beat = 0, s = 0;
      in >> beat >> s;
      out[r] = std::make_pair(beat, s);
    }
    return out;
  };
  try {
    impl_->store->setTimeout(milliseconds(5000));
    const auto first = look();
    std::this_thread::sleep_for(options_.heartbeat * 4);
    const auto second = look();
    std::vector<int> dead, behind;
    for (int r = 0; r < env_.world_size; ++r) {
      if (r == env_.rank) continue;
      if (!second[r] || (first[r] && first[r]->first == second[r]->first)) {
        dead.push_back(r);
      } else if (second[r]->second < seq) {
        behind.push_back(r);
      }
    }
    std::vector<std::string> parts;
    if (!dead.empty()) {
      parts.push_back(fmt::format("rank{} {} stopped responding (died or was killed)",
                                  dead.size() > 1 ? "s" : "", fmt::join(dead, ", ")));
    }
    if (!behind.empty()) {
      parts.push_back(fmt::format("rank{} {} {} alive but never reached this collective (hangs)",
                                  behind.size() > 1 ? "s" : "", fmt::join(behind, ", "),
                                  behind.size() > 1 ? "are" : "is"));
    }
    return fmt::format("{}", fmt::join(parts, "; "));
  } catch (const std::exception&) {
    if (env_.rank == 0) return "";
    return fmt::format("rank 0 is gone (its rendezvous store at {}:{} does not answer)",
                       env_.master_addr, env_.master_port);
  }
}

template <typename Fn>
void ProcessGroup::run_collective(const std::string& what, Fn&& fn) {
  const int64_t seq = ++seq_;
  try {
    auto work = fn();
    work->wait(options_.timeout);
  } catch (const std::exception& e) {
    std::string why = diagnose(seq);
    if (why.empty()) why = "no other rank is known to have failed";
    throw Error(fmt::format("distributed: {} (collective #{}) failed on rank {} of {}: {} [{}]",
                            what, seq, env_.rank, env_.world_size, why, short_message(e)));
  }
}

void ProcessGroup::all_reduce_sum(torch::Tensor& t, const std::string& what) {
  std::vector<torch::Tensor> buf{t.device() == comm_device_ ? t : t.to(comm_device_)};
  run_collective(what, [&] { return impl_->pg->allreduce(buf); });
  if (!buf[0].is_same(t)) t.copy_(buf[0]);
}

torch::Tensor ProcessGroup::all_gather_cat(const torch::Tensor& t, const std::string& what) {
  std::vector<torch::Tensor> in{t.to(comm_device_).contiguous()};
  std::vector<std::vector<torch::Tensor>> out(1);
  for (int r = 0; r < env_.world_size; ++r) out[0].push_back(torch::empty_like(in[0]));
  run_collective(what, [&] { return impl_->pg->allgather(out, in); });
  return torch::cat(out[0]).to(t.device());
}

void ProcessGroup::broadcast(torch::Tensor& t, int root, const std::string& what) {
  std::vector<torch::Tensor> buf{t.device() == comm_device_ ? t : t.to(comm_device_)};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  run_collective(what, [&] { return impl_->pg->broadcast(buf, o); });
  if (!buf[0].is_same(t)) t.copy_(buf[0]);
}

void ProcessGroup::barrier(const std::string& what) {
  auto one = torch::ones({1}, torch::TensorOptions().device(comm_device_));
  all_reduce_sum(one, what);
}

void ProcessGroup::check_identical(const std::string& text, const std::string& what) {
  // The texts go through the store (they may differ in length); a barrier makes sure every
  // rank has written its own before anyone compares.
  const int64_t seq = seq_.load();
  auto key_at = [&](int r) { return fmt::format("mva/check/{}/{}/{}", what, seq, r); };
  impl_->store->set(key_at(env_.rank), bytes_of(text));
  barrier("check " + what);
  const std::string reference = string_of(impl_->store->get(key_at(0)));
  for (int r = 1; r < env_.world_size; ++r) {
    const std::string other = r == env_.rank ? text : string_of(impl_->store->get(key_at(r)));
    if (auto d = first_difference(reference, other)) {
      const auto& [line, a, b] = *d;
      throw Error(fmt::format(
          "distributed: the ranks disagree on {}: line {} is '{}' on rank 0 but '{}' on rank {} "
          "(every rank must run the same config and code)",
          what, line, a, b, r));
    }
  }
  barrier("checked " + what);
}

}  // namespace mva
