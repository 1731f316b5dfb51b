#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "mvadapter/core/enum_names.h"

namespace mva {

/// How F frames are chosen among the n sampled (1-fps) frames of a video.
enum class FrameSampling {
  kOfficial,  ///< MV-Adapter `slice_framepos: 2`: positions floor(i * n / F), i = 0..F-1
  kLinspace,  ///< CLIP4Clip: np.linspace(0, n - 1, F) cast to int (always includes the last)
  kHead,      ///< the first F (`slice_framepos: 0`)
  kTail,      ///< the last F (`slice_framepos: 1`)
};
/// official, linspace, head, tail (`data.sampling`).
constexpr std::array<EnumName<FrameSampling>, 4> enum_names(FrameSampling) {
  return {{{FrameSampling::kOfficial, "official"},
           {FrameSampling::kLinspace, "linspace"},
           {FrameSampling::kHead, "head"},
           {FrameSampling::kTail, "tail"}}};
}

/// "official", "linspace", "head" or "tail"; throws Error naming the valid choices otherwise.
FrameSampling parse_frame_sampling(const std::string& name);

/// The name parse_frame_sampling accepts for `mode`.
std::string frame_sampling_name(FrameSampling mode);

/// Positions (0..n-1, increasing) of the frames to keep: `count` of them when n >= count, all n
/// otherwise (the caller pads with zero frames and mask 0). Throws Error when count < 1 or n < 0.
std::vector<int64_t> sample_frames(int64_t n, int64_t count, FrameSampling mode);

}  // namespace mva
