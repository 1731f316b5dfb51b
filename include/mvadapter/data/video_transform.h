#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include <torch/types.h>

namespace mva {

/// Which resampler shrinks (or enlarges) a frame's short side to the model's resolution.
enum class ResizeMethod {
  /// Pillow's BICUBIC (a = -0.5, antialiased: the kernel widens by the downscale factor; 22-bit
  /// fixed-point weights, horizontal pass then vertical, uint8 between passes). Bit-exact with the
  /// reference pipeline's PIL resize; the default.
  kPilBicubic,
  kOpenCvCubic,  ///< cv::INTER_CUBIC (no antialiasing): ~0.4 levels mean abs diff from PIL
  kOpenCvArea,   ///< cv::INTER_AREA: ~0.6 levels mean abs diff from PIL on downscales
};

/// "pil", "cv-cubic" or "cv-area"; throws Error naming the valid choices otherwise.
ResizeMethod parse_resize_method(const std::string& name);

/// How a decoded frame becomes the square crop the model sees (DESIGN.md §4).
struct TransformOptions {
  int64_t size = 224;  ///< short side after resizing = crop side
  ResizeMethod resize = ResizeMethod::kPilBicubic;
};

/// CLIP's per-channel (RGB) normalisation constants.
inline constexpr std::array<float, 3> kClipMean = {0.48145466f, 0.4578275f, 0.40821073f};
inline constexpr std::array<float, 3> kClipStd = {0.26862954f, 0.26130258f, 0.27577711f};

/// {height, width} after resizing the short side of an h x w image to `size`. The long side is
/// int(size * long / short), truncated, as torchvision's Resize computes it (320x240 -> 298x224,
/// not 299x224).
std::pair<int64_t, int64_t> short_side_size(int64_t height, int64_t width, int64_t size);

/// Resizes an RGB uint8 image [H, W, 3] so its short side is `size`; returns [H', W', 3] uint8.
/// An image already of that size is returned as a copy (as PIL does).
torch::Tensor resize_short_side(const torch::Tensor& rgb_hwc, int64_t size,
                                ResizeMethod method = ResizeMethod::kPilBicubic);

/// Short-side resize then centre crop (offsets round((H' - size) / 2), ties to even, as
/// torchvision's CenterCrop): RGB uint8 [H, W, 3] -> uint8 [3, size, size]. With kPilBicubic
/// only the pixels inside the crop are computed, with the same values a full resize would give.
torch::Tensor resize_center_crop(const torch::Tensor& rgb_hwc, const TransformOptions& opts = {});

/// uint8 [..., 3, H, W] -> float32 (x / 255 - mean) / std with CLIP's constants, as
/// torchvision's ToTensor + Normalize compute it.
torch::Tensor normalize_clip(const torch::Tensor& frames_u8);

}  // namespace mva
