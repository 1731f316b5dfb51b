#include "mvadapter/data/video_transform.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>
#include <torch/torch.h>
#if MVA_WITH_VIDEO
#include <opencv2/imgproc.hpp>
#endif

#include "mvadapter/core/error.h"
#include "mvadapter/core/tensor_format.h"

namespace mva {
namespace {

// Pillow's fixed-point precision for 8-bit images: 32 bits minus 8 for the pixel, minus 2 spare.
constexpr int kPrecisionBits = 32 - 8 - 2;

double bicubic_kernel(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// Integer weights of one resampling axis, laid out as Pillow computes them: for output pixel i,
// `count[i]` taps starting at input pixel `first[i]`, weights weight[i * taps + k].
struct AxisWeights {
  std::vector<int> first, count;
  std::vector<int32_t> weight;
  int taps = 0;
};

AxisWeights axis_weights(int in_size, int out_size) {
  AxisWeights w;
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);  // widen the kernel when shrinking (antialias)
  const double support = 2.0 * filterscale;
  w.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  w.first.resize(out_size);
  w.count.resize(out_size);
  w.weight.assign(static_cast<size_t>(out_size) * w.taps, 0);
  std::vector<double> k(w.taps);
  for (int i = 0; i < out_size; ++i) {
    const double center = (i + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    // (int) truncates toward zero, as the C code it must match.
    int lo = static_cast<int>(center - support + 0.5);
    if (lo < 0) lo = 0;
    int hi = static_cast<int>(center + support + 0.5);
    if (hi > in_size) hi = in_size;
    const int n = hi - lo;
    double total = 0.0;
    for (int x = 0; x < n; ++x) {
      k[x] = bicubic_kernel((x + lo - center + 0.5) * ss);
      total += k[x];
    }
    for (int x = 0; x < n; ++x) {
      double v = total != 0.0 ? k[x] / total : k[x];
      v *= static_cast<double>(1 << kPrecisionBits);
      w.weight[static_cast<size_t>(i) * w.taps + x] =
          static_cast<int32_t>(v < 0 ? v - 0.5 : v + 0.5);
    }
    w.first[i] = lo;
    w.count[i] = n;
  }
  return w;
}

inline uint8_t clip8(int32_t acc) {
  const int32_t v = acc >> kPrecisionBits;  // arithmetic shift: floor, as Pillow's lookup
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

void check_rgb(const torch::Tensor& img, const char* what) {
  if (img.dim() != 3 || img.size(2) != 3 || img.scalar_type() != torch::kUInt8 || img.size(0) < 1 ||
      img.size(1) < 1) {
    throw Error(fmt::format("{}: expected an RGB uint8 image [H, W, 3], got {} {}", what,
                            c10::toString(img.scalar_type()), shape_str(img.sizes())));
  }
}

// Rows [y0, y0 + rows) and columns [x0, x0 + cols) of Pillow's BICUBIC resize of `src` (HWC,
// contiguous) to out_h x out_w. Each output pixel depends only on its own weights, so computing
// a window gives exactly the pixels of the full resize.
torch::Tensor pil_resize_window(const torch::Tensor& src, int out_h, int out_w, int y0, int rows,
                                int x0, int cols) {
  const int in_h = static_cast<int>(src.size(0));
  const int in_w = static_cast<int>(src.size(1));
  const uint8_t* in = src.data_ptr<uint8_t>();
  const bool horizontal = out_w != in_w;
  const bool vertical = out_h != in_h;
  const AxisWeights wv = vertical ? axis_weights(in_h, out_h) : AxisWeights{};

  // Source rows the vertical pass reads for the requested output rows.
  int src_y0 = y0, src_rows = rows;
  if (vertical) {
    src_y0 = wv.first[y0];
    src_rows = wv.first[y0 + rows - 1] + wv.count[y0 + rows - 1] - src_y0;
  }

  // Horizontal pass into a uint8 buffer (Pillow rounds to 8 bits between passes).
  std::vector<uint8_t> mid(static_cast<size_t>(src_rows) * cols * 3);
  if (horizontal) {
    const AxisWeights wh = axis_weights(in_w, out_w);
    for (int r = 0; r < src_rows; ++r) {
      const uint8_t* row = in + static_cast<size_t>(src_y0 + r) * in_w * 3;
      uint8_t* dst = mid.data() + static_cast<size_t>(r) * cols * 3;
      for (int c = 0; c < cols; ++c) {
        const int xo = x0 + c;
        const int32_t* k = &wh.weight[static_cast<size_t>(xo) * wh.taps];
        const uint8_t* p = row + static_cast<size_t>(wh.first[xo]) * 3;
        int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
        for (int t = 0; t < wh.count[xo]; ++t, p += 3) {
          s0 += p[0] * k[t];
          s1 += p[1] * k[t];
          s2 += p[2] * k[t];
        }
        dst[c * 3 + 0] = clip8(s0);
        dst[c * 3 + 1] = clip8(s1);
        dst[c * 3 + 2] = clip8(s2);
      }
    }
  } else {
    for (int r = 0; r < src_rows; ++r) {
      std::copy_n(in + (static_cast<size_t>(src_y0 + r) * in_w + x0) * 3, cols * 3,
                  mid.data() + static_cast<size_t>(r) * cols * 3);
    }
  }

  auto out = torch::empty({rows, cols, 3}, torch::kUInt8);
  uint8_t* o = out.data_ptr<uint8_t>();
  if (!vertical) {
    std::copy(mid.begin(), mid.end(), o);
    return out;
  }
  const size_t stride = static_cast<size_t>(cols) * 3;
  std::vector<int32_t> acc(stride);
  for (int r = 0; r < rows; ++r) {
    const int yo = y0 + r;
    const int32_t* k = &wv.weight[static_cast<size_t>(yo) * wv.taps];
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    // Row-wise accumulation: the same sums as Pillow's per-pixel loop, in an order that
    // vectorises (integer addition is exact, so the order does not change the result).
    for (int t = 0; t < wv.count[yo]; ++t) {
      const uint8_t* m = mid.data() + static_cast<size_t>(wv.first[yo] - src_y0 + t) * stride;
      const int32_t kt = k[t];
      for (size_t i = 0; i < stride; ++i) acc[i] += m[i] * kt;
    }
    uint8_t* dst = o + static_cast<size_t>(r) * stride;
    for (size_t i = 0; i < stride; ++i) dst[i] = clip8(acc[i]);
  }
  return out;
}

#if MVA_WITH_VIDEO
torch::Tensor opencv_resize(const torch::Tensor& src, int out_h, int out_w, ResizeMethod method) {
  cv::Mat in(static_cast<int>(src.size(0)), static_cast<int>(src.size(1)), CV_8UC3,
             const_cast<uint8_t*>(src.data_ptr<uint8_t>()));
  auto out = torch::empty({out_h, out_w, 3}, torch::kUInt8);
  cv::Mat dst(out_h, out_w, CV_8UC3, out.data_ptr<uint8_t>());
  const int interp = method == ResizeMethod::kOpenCvArea ? cv::INTER_AREA : cv::INTER_CUBIC;
  cv::resize(in, dst, cv::Size(out_w, out_h), 0, 0, interp);
  return out;
}
#else
torch::Tensor opencv_resize(const torch::Tensor&, int, int, ResizeMethod) {
  throw Error("resize: the OpenCV resamplers need a build with MVA_WITH_VIDEO=ON");
}
#endif

}  // namespace

ResizeMethod parse_resize_method(const std::string& name) {
  if (name == "pil") return ResizeMethod::kPilBicubic;
  if (name == "cv-cubic") return ResizeMethod::kOpenCvCubic;
  if (name == "cv-area") return ResizeMethod::kOpenCvArea;
  throw Error(fmt::format("resize method '{}': expected one of pil, cv-cubic, cv-area", name));
}

std::pair<int64_t, int64_t> short_side_size(int64_t height, int64_t width, int64_t size) {
  if (height < 1 || width < 1 || size < 1) {
    throw Error(
        fmt::format("resize: cannot resize a {}x{} image to short side {}", height, width, size));
  }
  const bool tall = height > width;
  const int64_t s = tall ? width : height;
  const int64_t l = tall ? height : width;
  // torchvision's Resize: int(size * long / short), Python's true division then truncation.
  // size * l is an exact integer, so the double quotient is the one Python computes.
  const auto long_side =
      static_cast<int64_t>(static_cast<double>(size * l) / static_cast<double>(s));
  return tall ? std::make_pair(long_side, size) : std::make_pair(size, long_side);
}

torch::Tensor resize_short_side(const torch::Tensor& rgb_hwc, int64_t size, ResizeMethod method) {
  check_rgb(rgb_hwc, "resize");
  auto src = rgb_hwc.contiguous();
  const auto [h, w] = short_side_size(src.size(0), src.size(1), size);
  if (h == src.size(0) && w == src.size(1)) return src.clone();
  if (method != ResizeMethod::kPilBicubic) {
    return opencv_resize(src, static_cast<int>(h), static_cast<int>(w), method);
  }
  return pil_resize_window(src, static_cast<int>(h), static_cast<int>(w), 0, static_cast<int>(h), 0,
                           static_cast<int>(w));
}

torch::Tensor resize_center_crop(const torch::Tensor& rgb_hwc, const TransformOptions& opts) {
  check_rgb(rgb_hwc, "resize");
  auto src = rgb_hwc.contiguous();
  const auto [h, w] = short_side_size(src.size(0), src.size(1), opts.size);
  // torchvision's CenterCrop: int(round((H' - size) / 2.0)), Python's round = ties to even.
  const auto top = static_cast<int>(std::nearbyint((h - opts.size) / 2.0));
  const auto left = static_cast<int>(std::nearbyint((w - opts.size) / 2.0));
  const int size = static_cast<int>(opts.size);
  torch::Tensor crop;
  if (h == src.size(0) && w == src.size(1)) {
    crop = src.slice(0, top, top + size).slice(1, left, left + size);
  } else if (opts.resize == ResizeMethod::kPilBicubic) {
    crop = pil_resize_window(src, static_cast<int>(h), static_cast<int>(w), top, size, left, size);
  } else {
    crop = opencv_resize(src, static_cast<int>(h), static_cast<int>(w), opts.resize)
               .slice(0, top, top + size)
               .slice(1, left, left + size);
  }
  return crop.permute({2, 0, 1}).contiguous();
}

torch::Tensor normalize_clip(const torch::Tensor& frames_u8) {
  if (frames_u8.dim() < 3 || frames_u8.size(-3) != 3) {
    throw Error(fmt::format("normalize: expected frames [..., 3, H, W], got {}",
                            shape_str(frames_u8.sizes())));
  }
  std::vector<int64_t> shape(static_cast<size_t>(frames_u8.dim()), 1);
  shape[shape.size() - 3] = 3;
  const auto on = torch::TensorOptions().device(frames_u8.device());
  auto mean = torch::tensor(std::vector<float>(kClipMean.begin(), kClipMean.end()))
                  .view(shape)
                  .to(on.device());
  auto stdv = torch::tensor(std::vector<float>(kClipStd.begin(), kClipStd.end()))
                  .view(shape)
                  .to(on.device());
  return frames_u8.to(torch::kFloat32).div_(255).sub_(mean).div_(stdv);
}

}  // namespace mva
