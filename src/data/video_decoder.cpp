#include "mvadapter/data/video_decoder.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <string>

#include <fmt/format.h>
#include <torch/torch.h>
#if MVA_WITH_VIDEO
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#endif

#include "mvadapter/core/error.h"
#include "mvadapter/core/strings.h"

namespace fs = std::filesystem;

namespace mva {
namespace {

// "frame9" < "frame10": digit runs compare by value, everything else byte by byte.
bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const bool da = std::isdigit(static_cast<unsigned char>(a[i])) != 0;
    const bool db = std::isdigit(static_cast<unsigned char>(b[j])) != 0;
    if (da && db) {
      size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      size_t is = i, js = j;  // skip leading zeros, then compare by length and digits
      while (is + 1 < ie && a[is] == '0') ++is;
      while (js + 1 < je && b[js] == '0') ++js;
      if (ie - is != je - js) return ie - is < je - js;
      const int c = a.compare(is, ie - is, b, js, je - js);
      if (c != 0) return c < 0;
      if (ie - i != je - j) return ie - i < je - j;  // "01" after "1": keep the order total
      i = ie;
      j = je;
    } else {
      if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

#if MVA_WITH_VIDEO

void check_positions(const std::vector<int64_t>& positions, int64_t n, const fs::path& path) {
  for (size_t i = 0; i < positions.size(); ++i) {
    if (positions[i] < 0 || positions[i] >= n || (i > 0 && positions[i] <= positions[i - 1])) {
      throw Error(
          fmt::format("{}: frame selection gave position {} (at {}) of {} sampled frames; "
                      "expected increasing positions in [0, {})",
                      path.string(), positions[i], i, n, n));
    }
  }
}

torch::Tensor bgr_to_rgb_tensor(const cv::Mat& bgr) {
  auto out = torch::empty({bgr.rows, bgr.cols, 3}, torch::kUInt8);
  cv::Mat dst(bgr.rows, bgr.cols, CV_8UC3, out.data_ptr<uint8_t>());
  cv::cvtColor(bgr, dst, cv::COLOR_BGR2RGB);
  return out;
}

// What the sampled frames of a video are, given its frame count.
struct Plan {
  std::vector<int64_t> sample_index;  // source index of every sampled frame
  std::vector<int64_t> positions;     // chosen positions among them
  std::vector<int64_t> needed;        // sorted distinct source indices of the chosen frames
};

Plan make_plan(int64_t frame_count, double fps, const VideoEntry& v, const DecodeOptions& o,
               const FrameSelector& select) {
  Plan p;
  try {
    p.sample_index = sampled_frame_indices(frame_count, fps, o.sample_fps, v.start_s, v.end_s);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", v.path.string(), e.what()));
  }
  p.positions = select(static_cast<int64_t>(p.sample_index.size()));
  check_positions(p.positions, static_cast<int64_t>(p.sample_index.size()), v.path);
  for (auto pos : p.positions) p.needed.push_back(p.sample_index[static_cast<size_t>(pos)]);
  p.needed.erase(std::unique(p.needed.begin(), p.needed.end()), p.needed.end());
  return p;
}

cv::VideoCapture open_capture(const fs::path& path) {
  cv::VideoCapture cap;
  if (!cap.open(path.string(), cv::CAP_FFMPEG) || !cap.isOpened()) {
    throw Error(
        fmt::format("{}: cannot open as a video (not a video file, unsupported codec, or "
                    "truncated before its index)",
                    path.string()));
  }
  return cap;
}

struct PassResult {
  int64_t decoded = 0;  // frames grabbed
  bool eof = false;     // the stream ended (rather than the pass stopping early)
};

// Grabs frames in order and retrieves only `needed` (sorted) into `out`; with stop_early, stops
// once the last needed frame is in.
PassResult decode_pass(cv::VideoCapture& cap, const std::vector<int64_t>& needed, bool stop_early,
                       std::map<int64_t, torch::Tensor>& out, const fs::path& path) {
  PassResult r;
  size_t next = 0;
  cv::Mat bgr;
  while (true) {
    if (stop_early && next == needed.size()) return r;
    if (!cap.grab()) {
      r.eof = true;
      return r;
    }
    if (next < needed.size() && needed[next] == r.decoded) {
      if (!cap.retrieve(bgr) || bgr.empty() || bgr.type() != CV_8UC3) {
        throw Error(fmt::format("{}: frame {} was decoded but could not be converted to RGB",
                                path.string(), r.decoded));
      }
      out[r.decoded] = bgr_to_rgb_tensor(bgr);
      ++next;
    }
    ++r.decoded;
  }
}

VideoFrames read_video_file(const VideoEntry& v, const FrameSelector& select,
                            const DecodeOptions& o) {
  const auto& path = v.path;
  cv::VideoCapture cap = open_capture(path);
  const double fps = cap.get(cv::CAP_PROP_FPS);
  if (!std::isfinite(fps) || fps <= 0.0) {
    throw Error(fmt::format("{}: the container gives no frame rate ({})", path.string(), fps));
  }
  const auto reported = static_cast<int64_t>(cap.get(cv::CAP_PROP_FRAME_COUNT));
  // Containers without an exact count (duration x fps estimates) can be off by a frame or two;
  // missing more than a second of frames means the file is cut short.
  const int64_t tolerance = std::max<int64_t>(2, static_cast<int64_t>(std::ceil(fps)));

  std::map<int64_t, torch::Tensor> got;
  Plan plan;
  int64_t frame_count = 0;
  if (reported > 0) {
    plan = make_plan(reported, fps, v, o, select);
    // A window that ends well inside the video does not depend on the exact frame count.
    const bool window_inside =
        v.end_s >= 0 && v.end_s * fps < static_cast<double>(reported - tolerance);
    const bool stop_early = o.trust_frame_count || window_inside;
    const PassResult r = decode_pass(cap, plan.needed, stop_early, got, path);
    if (r.eof) {
      if (r.decoded == 0) {
        throw Error(fmt::format("{}: no frame could be decoded (container says {})", path.string(),
                                reported));
      }
      if (r.decoded + tolerance < reported) {
        throw Error(
            fmt::format("{}: decoding stopped after {} of {} frames (file truncated or "
                        "corrupt)",
                        path.string(), r.decoded, reported));
      }
      frame_count = r.decoded;
      if (frame_count != reported) plan = make_plan(frame_count, fps, v, o, select);
    } else {
      frame_count = reported;
    }
  } else {
    // No count in the container: count by decoding, then decode again for the chosen frames.
    const PassResult r = decode_pass(cap, {}, false, got, path);
    if (r.decoded == 0) throw Error(fmt::format("{}: no frame could be decoded", path.string()));
    frame_count = r.decoded;
    plan = make_plan(frame_count, fps, v, o, select);
  }

  const bool complete = std::all_of(plan.needed.begin(), plan.needed.end(),
                                    [&](int64_t i) { return got.count(i) != 0; });
  if (!complete) {
    // The decoded count differed from the container's and moved the chosen frames: one more pass
    // with the exact plan (rare; only for containers whose count is wrong).
    got.clear();
    cap = open_capture(path);
    decode_pass(cap, plan.needed, true, got, path);
    for (auto i : plan.needed) {
      if (got.count(i) == 0) {
        throw Error(fmt::format("{}: frame {} of {} could not be decoded on the second pass",
                                path.string(), i, frame_count));
      }
    }
  }

  VideoFrames out;
  out.fps = fps;
  out.decoded_frames = frame_count;
  out.sample_index = std::move(plan.sample_index);
  out.positions = std::move(plan.positions);
  for (auto pos : out.positions) out.frames.push_back(got.at(out.sample_index[pos]));
  return out;
}

VideoFrames read_frame_folder(const VideoEntry& v, const FrameSelector& select,
                              const DecodeOptions& o) {
  const auto files = list_frame_files(v.path);
  VideoFrames out;
  out.fps = o.sample_fps;
  out.decoded_frames = static_cast<int64_t>(files.size());
  // The files are already the sampled frames: position k is at time k / sample_fps.
  out.sample_index =
      sampled_frame_indices(out.decoded_frames, o.sample_fps, o.sample_fps, v.start_s, v.end_s);
  out.positions = select(out.num_sampled());
  check_positions(out.positions, out.num_sampled(), v.path);
  for (auto pos : out.positions) {
    const auto& file = files[static_cast<size_t>(out.sample_index[pos])];
    cv::Mat bgr = cv::imread(file.string(), cv::IMREAD_COLOR);
    if (bgr.empty()) {
      throw Error(
          fmt::format("{}: cannot read the image (corrupt or not a JPEG/PNG)", file.string()));
    }
    out.frames.push_back(bgr_to_rgb_tensor(bgr));
  }
  return out;
}

VideoFrames stream_video_file(const VideoEntry& v, const SampledFrameFn& on_frame,
                              const DecodeOptions& o) {
  cv::VideoCapture cap = open_capture(v.path);
  const double fps = cap.get(cv::CAP_PROP_FPS);
  if (!std::isfinite(fps) || fps <= 0.0) {
    throw Error(fmt::format("{}: the container gives no frame rate ({})", v.path.string(), fps));
  }
  const auto reported = static_cast<int64_t>(cap.get(cv::CAP_PROP_FRAME_COUNT));
  const int64_t tolerance = std::max<int64_t>(2, static_cast<int64_t>(std::ceil(fps)));
  const double start = v.start_s > 0.0 ? v.start_s : 0.0;
  VideoFrames out;
  out.fps = fps;
  // The k-th sample time and its frame, computed as sampled_frame_indices does; no frame count
  // is needed because every sampled frame is kept.
  int64_t k = 0;
  auto target = [&](int64_t kk) -> int64_t {
    const double t = start + static_cast<double>(kk) / o.sample_fps;
    if (v.end_s >= 0.0 && t > v.end_s) return -1;
    return static_cast<int64_t>(t * fps);
  };
  int64_t want = target(0);
  int64_t i = 0;
  cv::Mat bgr;
  while (want >= 0 && cap.grab()) {
    if (i == want) {
      if (!cap.retrieve(bgr) || bgr.empty() || bgr.type() != CV_8UC3) {
        throw Error(fmt::format("{}: frame {} was decoded but could not be converted to RGB",
                                v.path.string(), i));
      }
      const auto rgb = bgr_to_rgb_tensor(bgr);
      while (want == i) {  // a sample rate above the video's repeats frames
        on_frame(k, i, rgb);
        out.sample_index.push_back(i);
        want = target(++k);
      }
    }
    ++i;
  }
  const bool eof = want >= 0;
  if (eof) {
    if (i == 0) throw Error(fmt::format("{}: no frame could be decoded", v.path.string()));
    if (reported > 0 && i + tolerance < reported) {
      throw Error(
          fmt::format("{}: decoding stopped after {} of {} frames (file truncated or "
                      "corrupt)",
                      v.path.string(), i, reported));
    }
  }
  out.decoded_frames = eof ? i : std::max(i, reported);
  return out;
}

#endif  // MVA_WITH_VIDEO

}  // namespace

std::vector<int64_t> sampled_frame_indices(int64_t frame_count, double fps, double sample_fps,
                                           double start_s, double end_s) {
  if (!(fps > 0.0) || !(sample_fps > 0.0)) {
    throw Error(
        fmt::format("frame sampling: fps {} and sample fps {} must be positive", fps, sample_fps));
  }
  const double start = start_s > 0.0 ? start_s : 0.0;
  // A container may claim any length: bound the list before building it, not after.
  double stop = static_cast<double>(frame_count) / fps;
  if (end_s >= 0.0) stop = std::min(stop, end_s);
  const double samples = (stop - start) * sample_fps;
  if (samples > static_cast<double>(kMaxSampledFrames)) {
    throw Error(fmt::format(
        "frame sampling: {} frames at {} fps sampled at {} per second give {:.0f} frames, more "
        "than the {} mvadapter reads from one video (a corrupt container, or not a clip)",
        frame_count, fps, sample_fps, samples, kMaxSampledFrames));
  }
  std::vector<int64_t> out;
  for (int64_t k = 0;; ++k) {
    const double t = start + static_cast<double>(k) / sample_fps;
    if (end_s >= 0.0 && t > end_s) break;
    const auto index = static_cast<int64_t>(t * fps);
    if (index >= frame_count) break;
    out.push_back(index);
  }
  return out;
}

std::vector<fs::path> list_frame_files(const fs::path& folder) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) {
    throw Error(fmt::format("{}: no such folder of frames", folder.string()));
  }
  std::vector<fs::path> files;
  fs::directory_iterator listing(folder, ec);
  if (ec)
    throw Error(fmt::format("{}: cannot list the frames ({})", folder.string(), ec.message()));
  for (const auto& e : listing) {
    if (!e.is_regular_file()) continue;
    const auto ext = ascii_lower(e.path().extension().string());
    if (ext == ".jpg" || ext == ".jpeg" || ext == ".png") files.push_back(e.path());
  }
  if (ec) throw Error(fmt::format("{}: cannot list the folder: {}", folder.string(), ec.message()));
  if (files.empty()) {
    throw Error(fmt::format("{}: the folder holds no *.jpg or *.png frames", folder.string()));
  }
  std::sort(files.begin(), files.end(), [](const fs::path& a, const fs::path& b) {
    return natural_less(a.filename().string(), b.filename().string());
  });
  return files;
}

VideoFrames read_video(const VideoEntry& video, const FrameSelector& select,
                       const DecodeOptions& opts) {
  if (!(opts.sample_fps > 0.0)) {
    throw Error(
        fmt::format("{}: sample fps {} must be positive", video.path.string(), opts.sample_fps));
  }
  std::error_code ec;
  const bool exists = fs::exists(video.path, ec);
  if (ec) {  // e.g. a folder on the way without permission: not the same as a missing file
    throw Error(fmt::format("{}: cannot access ({})", video.path.string(), ec.message()));
  }
  if (!exists) {
    throw Error(fmt::format("{}: no such {}", video.path.string(),
                            video.frame_folder ? "folder of frames" : "video file"));
  }
#if MVA_WITH_VIDEO
  if (video.frame_folder) return read_frame_folder(video, select, opts);
  if (!fs::is_regular_file(video.path, ec)) {
    throw Error(fmt::format("{}: not a regular file (a folder of frames needs frame_folder)",
                            video.path.string()));
  }
  // FFmpeg would report an unreadable file as one it cannot decode.
  if (!std::ifstream(video.path, std::ios::binary)) {
    throw Error(fmt::format("{}: cannot read ({})", video.path.string(), std::strerror(errno)));
  }
  return read_video_file(video, select, opts);
#else
  throw Error(
      fmt::format("{}: this build has no video support (MVA_WITH_VIDEO=OFF)", video.path.string()));
#endif
}

VideoFrames for_each_sampled_frame(const VideoEntry& video, const SampledFrameFn& on_frame,
                                   const DecodeOptions& opts) {
  if (!(opts.sample_fps > 0.0)) {
    throw Error(
        fmt::format("{}: sample fps {} must be positive", video.path.string(), opts.sample_fps));
  }
  std::error_code ec;
  if (!fs::exists(video.path, ec)) {
    throw Error(fmt::format("{}: no such {}", video.path.string(),
                            video.frame_folder ? "folder of frames" : "video file"));
  }
#if MVA_WITH_VIDEO
  if (!video.frame_folder) return stream_video_file(video, on_frame, opts);
  // A folder is read one file at a time anyway.
  VideoFrames all = read_video(
      video, [](int64_t) { return std::vector<int64_t>{}; }, opts);
  const auto files = list_frame_files(video.path);
  for (int64_t k = 0; k < all.num_sampled(); ++k) {
    const auto& file = files[static_cast<size_t>(all.sample_index[static_cast<size_t>(k)])];
    cv::Mat bgr = cv::imread(file.string(), cv::IMREAD_COLOR);
    if (bgr.empty()) {
      throw Error(
          fmt::format("{}: cannot read the image (corrupt or not a JPEG/PNG)", file.string()));
    }
    on_frame(k, all.sample_index[static_cast<size_t>(k)], bgr_to_rgb_tensor(bgr));
  }
  return all;
#else
  throw Error(
      fmt::format("{}: this build has no video support (MVA_WITH_VIDEO=OFF)", video.path.string()));
#endif
}

VideoFrames read_video(const VideoEntry& video, const DecodeOptions& opts) {
  return read_video(
      video,
      [](int64_t n) {
        std::vector<int64_t> all(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
        return all;
      },
      opts);
}

}  // namespace mva
