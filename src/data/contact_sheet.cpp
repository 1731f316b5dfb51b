#include "mvadapter/data/contact_sheet.h"

#include <algorithm>
#include <fstream>

#include <fmt/format.h>
#if MVA_WITH_VIDEO
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

#include "mvadapter/core/error.h"

namespace mva {

#if MVA_WITH_VIDEO
std::vector<uint8_t> contact_sheet_png(const ClipFrames& clip, int columns, double sample_fps) {
  const int f = static_cast<int>(clip.frames.size(0));
  const int s = static_cast<int>(clip.frames.size(2));
  const int cols = std::max(1, std::min(columns, f));
  const int rows = (f + cols - 1) / cols;
  const int gap = 4;
  cv::Mat sheet(rows * (s + gap) + gap, cols * (s + gap) + gap, CV_8UC3, cv::Scalar(40, 40, 40));
  const double scale = std::max(0.4, s / 320.0);
  const int thick = std::max(1, s / 160);
  for (int i = 0; i < f; ++i) {
    const int x = gap + (i % cols) * (s + gap);
    const int y = gap + (i / cols) * (s + gap);
    cv::Mat tile = sheet(cv::Rect(x, y, s, s));
    auto hwc = clip.frames[i].permute({1, 2, 0}).contiguous();
    cv::Mat rgb(s, s, CV_8UC3, hwc.data_ptr<uint8_t>());
    cv::cvtColor(rgb, tile, cv::COLOR_RGB2BGR);
    const bool real = clip.mask[i].item<int64_t>() != 0;
    const std::string label =
        real ? fmt::format("#{} ({:g}s)", clip.source_index[static_cast<size_t>(i)],
                           static_cast<double>(clip.positions[static_cast<size_t>(i)]) / sample_fps)
             : std::string("padding");
    const cv::Point at(4, static_cast<int>(4 + 22 * scale));
    cv::putText(tile, label, at, cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(0, 0, 0), thick + 2,
                cv::LINE_AA);
    cv::putText(tile, label, at, cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(255, 255, 255), thick,
                cv::LINE_AA);
  }
  std::vector<uint8_t> png;
  if (!cv::imencode(".png", sheet, png)) throw Error("contact sheet: PNG encoding failed");
  return png;
}
#else
std::vector<uint8_t> contact_sheet_png(const ClipFrames&, int, double) {
  throw Error("contact sheet: this build has no video support (MVA_WITH_VIDEO=OFF)");
}
#endif

void write_contact_sheet(const std::filesystem::path& path, const ClipFrames& clip, int columns,
                         double sample_fps) {
  const auto png = contact_sheet_png(clip, columns, sample_fps);
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(png.data()), static_cast<std::streamsize>(png.size()));
  if (!out) throw Error(fmt::format("{}: cannot write the contact sheet", path.string()));
}

}  // namespace mva
