#include "mvadapter/model/precision.h"

#include <charconv>
#include <limits>
#include <string_view>

#include <ATen/autocast_mode.h>
#include <fmt/format.h>
#include <torch/version.h>

#include "mvadapter/adapters/projection.h"
#include "mvadapter/clip/transformer.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/runtime.h"

// LibTorch 2.4 replaced the per-device autocast setters by ones taking a DeviceType; the old
// ones still exist there but warn. Pick by version so both builds are quiet.
#if defined(TORCH_VERSION_MAJOR) && \
    (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4))
#define MVA_AUTOCAST_DEVICE_API 1
#else
#define MVA_AUTOCAST_DEVICE_API 0
#endif

namespace mva {

Precision parse_precision(const std::string& name, const std::string& field) {
  if (auto v = enum_from_name<Precision>(name)) return *v;
  throw Error(fmt::format("{}: unknown precision '{}' (expected {})", field, name,
                          enum_choices<Precision>(" or ")));
}

std::string to_string(Precision p) {
  return enum_name(p);
}

MasterWeights parse_master_weights(const std::string& name, const std::string& field) {
  if (auto v = enum_from_name<MasterWeights>(name)) return *v;
  throw Error(fmt::format("{}: unknown master weights '{}' (expected {})", field, name,
                          enum_choices<MasterWeights>(" or ")));
}

std::string to_string(MasterWeights m) {
  return enum_name(m);
}

std::set<std::string> official_fp16_parameters(const torch::nn::Module& model) {
  std::set<std::string> out;
  for (const auto& item : model.named_modules()) {
    const auto& m = *item.value();
    const std::string prefix = item.key().empty() ? "" : item.key() + ".";
    std::vector<std::string> local;
    if (dynamic_cast<const torch::nn::LinearImpl*>(&m) ||
        dynamic_cast<const torch::nn::Conv1dImpl*>(&m) ||
        dynamic_cast<const torch::nn::Conv2dImpl*>(&m) ||
        dynamic_cast<const torch::nn::Conv3dImpl*>(&m) || dynamic_cast<const ProjectionImpl*>(&m)) {
      local = {"weight", "bias"};
    } else if (dynamic_cast<const MultiheadAttentionImpl*>(&m)) {
      local = {"in_proj_weight", "in_proj_bias"};  // out_proj is a Linear of its own
    }
    // convert_weights also casts any attribute named proj or text_projection, on any module.
    local.push_back("proj");
    local.push_back("text_projection");
    const auto own = m.named_parameters(/*recurse=*/false);
    for (const auto& name : local) {
      if (own.contains(name) && own[name].defined()) out.insert(prefix + name);
    }
  }
  return out;
}

void round_to_official_fp16(torch::nn::Module& model) {
  const auto names = official_fp16_parameters(model);
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters()) {
    if (names.count(item.key())) item.value().copy_(item.value().to(torch::kHalf));
  }
}

void check_precision(Precision precision, const torch::Device& device, const std::string& field) {
  if (precision == Precision::kFp16 && !device.is_cuda()) {
    throw Error(fmt::format("{}: fp16 needs a CUDA device (on CPU use bf16 or fp32)", field));
  }
}

std::optional<torch::Device> device_from_name(const std::string& name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name == "cuda") return torch::Device(torch::kCUDA, 0);
  constexpr std::string_view kPrefix = "cuda:";
  if (name.size() <= kPrefix.size() || name.compare(0, kPrefix.size(), kPrefix) != 0) {
    return std::nullopt;
  }
  const char* begin = name.data() + kPrefix.size();
  const char* end = name.data() + name.size();
  int index = 0;
  const auto [ptr, ec] = std::from_chars(begin, end, index);
  // Digits only (no sign), and an index the device type can hold.
  if (ec != std::errc() || ptr != end || *begin == '-' || *begin == '+' ||
      index > std::numeric_limits<c10::DeviceIndex>::max()) {
    return std::nullopt;
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

torch::Device parse_device(const std::string& name, const std::string& field) {
  const auto device = device_from_name(name);
  if (!device) {
    throw Error(fmt::format("{}: unknown device '{}' (expected cpu, cuda or cuda:N)", field, name));
  }
  if (device->is_cpu()) return *device;
  const int index = device->index();
  if (!torch_has_cuda()) {
    throw Error(fmt::format(
        "{}: '{}' requested but this LibTorch was built without CUDA (use cpu, or build against "
        "a CUDA LibTorch: README, \"GPUs\")",
        field, name));
  }
  if (!torch::cuda::is_available()) {
    throw Error(fmt::format(
        "{}: '{}' requested but no CUDA GPU is visible to this CUDA LibTorch (check nvidia-smi "
        "and CUDA_VISIBLE_DEVICES, or use cpu)",
        field, name));
  }
  const int count = static_cast<int>(torch::cuda::device_count());
  if (index >= count) {
    throw Error(fmt::format("{}: '{}' requested but only {} CUDA device(s) are visible", field,
                            name, count));
  }
  return *device;
}

AutocastGuard::AutocastGuard(Precision precision, const torch::Device& device) {
  if (precision == Precision::kFp32) return;
  active_ = true;
  cuda_ = device.is_cuda();
  const at::ScalarType dtype = precision == Precision::kBf16 ? at::kBFloat16 : at::kHalf;
#if MVA_AUTOCAST_DEVICE_API
  const auto type = cuda_ ? at::kCUDA : at::kCPU;
  prev_enabled_ = at::autocast::is_autocast_enabled(type);
  prev_dtype_ = at::autocast::get_autocast_dtype(type);
  at::autocast::set_autocast_enabled(type, true);
  at::autocast::set_autocast_dtype(type, dtype);
#else
  if (cuda_) {
    prev_enabled_ = at::autocast::is_enabled();
    prev_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    prev_enabled_ = at::autocast::is_cpu_enabled();
    prev_dtype_ = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  // The cast cache holds casted weights for the region; drop it when the outermost region ends.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if MVA_AUTOCAST_DEVICE_API
  const auto type = cuda_ ? at::kCUDA : at::kCPU;
  at::autocast::set_autocast_enabled(type, prev_enabled_);
  at::autocast::set_autocast_dtype(type, prev_dtype_);
#else
  if (cuda_) {
    at::autocast::set_enabled(prev_enabled_);
    at::autocast::set_autocast_gpu_dtype(prev_dtype_);
  } else {
    at::autocast::set_cpu_enabled(prev_enabled_);
    at::autocast::set_autocast_cpu_dtype(prev_dtype_);
  }
#endif
}

}  // namespace mva
