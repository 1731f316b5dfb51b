#include "mvadapter/data/frame_sampler.h"

#include <fmt/format.h>

#include "mvadapter/core/error.h"

namespace mva {

FrameSampling parse_frame_sampling(const std::string& name) {
  if (auto v = enum_from_name<FrameSampling>(name)) return *v;
  throw Error(
      fmt::format("frame sampling '{}': expected one of {}", name, enum_choices<FrameSampling>()));
}

std::string frame_sampling_name(FrameSampling mode) {
  return enum_name(mode);
}

std::vector<int64_t> sample_frames(int64_t n, int64_t count, FrameSampling mode) {
  if (count < 1) throw Error(fmt::format("frame sampling: frame count {} must be >= 1", count));
  if (n < 0) throw Error(fmt::format("frame sampling: {} frames available", n));
  std::vector<int64_t> out;
  if (n <= count) {
    // Every mode keeps all frames when there are not more than asked for (padding follows).
    for (int64_t i = 0; i < n; ++i) out.push_back(i);
    return out;
  }
  out.reserve(static_cast<size_t>(count));
  switch (mode) {
    case FrameSampling::kOfficial:
      for (int64_t i = 0; i < count; ++i) out.push_back(i * n / count);
      break;
    case FrameSampling::kLinspace: {
      if (count == 1) {
        out.push_back(0);
        break;
      }
      // numpy: y = arange(count) * ((stop - start) / (count - 1)) + start, last = stop exactly,
      // then a truncating cast. The same double operations give the same integers.
      const double step = static_cast<double>(n - 1) / static_cast<double>(count - 1);
      for (int64_t i = 0; i + 1 < count; ++i) {
        out.push_back(static_cast<int64_t>(static_cast<double>(i) * step));
      }
      out.push_back(n - 1);
      break;
    }
    case FrameSampling::kHead:
      for (int64_t i = 0; i < count; ++i) out.push_back(i);
      break;
    case FrameSampling::kTail:
      for (int64_t i = n - count; i < n; ++i) out.push_back(i);
      break;
  }
  return out;
}

}  // namespace mva
