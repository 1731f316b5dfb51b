// `mvadapter preprocess`: extract 1-fps frames (or re-encode) for a whole folder of videos, once,
// in parallel, resumably.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>
#if MVA_WITH_VIDEO
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#endif

#include "commands.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/runtime.h"
#include "mvadapter/data/video_decoder.h"
#include "mvadapter/data/video_index.h"
#include "mvadapter/data/video_transform.h"

namespace fs = std::filesystem;

namespace mva::cli {
namespace {

struct PreprocessArgs {
  std::string videos, out, mode = "frames", resize = "pil";
  double fps = 1.0;
  int64_t size = 224;
  int jobs = 0;
  int quality = 95;
};

#if MVA_WITH_VIDEO
// Where a video's output goes: a folder of frames, or one re-encoded .mp4 (same relative path).
fs::path target_of(const PreprocessArgs& a, const fs::path& rel) {
  if (a.mode == "frames") return fs::path(a.out) / rel.parent_path() / rel.stem();
  return (fs::path(a.out) / rel).replace_extension(".mp4");
}

torch::Tensor shrink(const PreprocessArgs& a, const torch::Tensor& rgb) {
  return a.size > 0 ? resize_short_side(rgb, a.size, parse_resize_method(a.resize)) : rgb;
}

// Frames go to a temporary folder renamed into place at the end, so an output that exists is
// complete and a rerun skips it.
int64_t extract_frames(const PreprocessArgs& a, const fs::path& video, const fs::path& target) {
  const fs::path tmp =
      target.parent_path() / fmt::format(".tmp-{}-{}", target.filename().string(), ::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  VideoEntry v;
  v.path = video;
  DecodeOptions opts;
  opts.sample_fps = a.fps;
  int64_t written = 0;
  const std::vector<int> params = {cv::IMWRITE_JPEG_QUALITY, a.quality};
  try {
    for_each_sampled_frame(
        v,
        [&](int64_t k, int64_t, const torch::Tensor& rgb) {
          const auto small = shrink(a, rgb).contiguous();
          cv::Mat img(static_cast<int>(small.size(0)), static_cast<int>(small.size(1)), CV_8UC3,
                      small.data_ptr<uint8_t>());
          cv::Mat bgr;
          cv::cvtColor(img, bgr, cv::COLOR_RGB2BGR);
          const auto file = tmp / fmt::format("{:06d}.jpg", k);
          if (!cv::imwrite(file.string(), bgr, params)) {
            throw Error(fmt::format("{}: cannot write the frame", file.string()));
          }
          ++written;
        },
        opts);
    if (written == 0) throw Error(fmt::format("{}: no frames to extract", video.string()));
    fs::rename(tmp, target);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  return written;
}

int64_t reencode(const PreprocessArgs& a, const fs::path& video, const fs::path& target) {
  const fs::path tmp =
      target.parent_path() / fmt::format(".tmp-{}-{}.mp4", target.stem().string(), ::getpid());
  VideoEntry v;
  v.path = video;
  DecodeOptions opts;
  opts.sample_fps = a.fps;
  cv::VideoWriter writer;
  cv::Size size;
  int64_t written = 0;
  try {
    for_each_sampled_frame(
        v,
        [&](int64_t, int64_t, const torch::Tensor& rgb) {
          const auto small = shrink(a, rgb).contiguous();
          cv::Mat img(static_cast<int>(small.size(0)), static_cast<int>(small.size(1)), CV_8UC3,
                      small.data_ptr<uint8_t>());
          cv::Mat bgr;
          cv::cvtColor(img, bgr, cv::COLOR_RGB2BGR);
          if (!writer.isOpened()) {
            size = bgr.size();
            // H.264 when the FFmpeg build has an encoder for it, MPEG-4 part 2 otherwise. At
            // `fps` frames a second, the re-encoded file's own 1-fps frames are exactly these.
            for (const char* cc : {"avc1", "mp4v"}) {
              if (writer.open(tmp.string(), cv::CAP_FFMPEG,
                              cv::VideoWriter::fourcc(cc[0], cc[1], cc[2], cc[3]), a.fps, size)) {
                break;
              }
            }
            if (!writer.isOpened())
              throw Error(fmt::format("{}: cannot open a video writer", tmp.string()));
          }
          if (bgr.size() != size) cv::resize(bgr, bgr, size, 0, 0, cv::INTER_AREA);
          writer.write(bgr);
          ++written;
        },
        opts);
    writer.release();
    if (written == 0) throw Error(fmt::format("{}: no frames to re-encode", video.string()));
    fs::rename(tmp, target);
  } catch (...) {
    writer.release();
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  return written;
}

std::string clock_str(double seconds) {
  const auto s = static_cast<int64_t>(seconds + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02d}:{:02d}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{}:{:02d}", s / 60, s % 60);
}

void run_preprocess(PreprocessArgs a) {
  const fs::path in_dir(a.videos), out_dir(a.out);
  if (!fs::is_directory(in_dir)) throw Error(fmt::format("{}: no such folder of videos", a.videos));
  if (a.mode != "frames" && a.mode != "reencode") {
    throw Error(fmt::format("--mode {}: expected frames or reencode", a.mode));
  }
  parse_resize_method(a.resize);
  fs::create_directories(out_dir);
  const auto out_abs = fs::weakly_canonical(out_dir);

  std::vector<fs::path> videos;  // relative to in_dir
  for (auto it =
           fs::recursive_directory_iterator(in_dir, fs::directory_options::skip_permission_denied);
       it != fs::recursive_directory_iterator(); ++it) {
    if (it->is_directory() && fs::weakly_canonical(it->path()) == out_abs) {
      it.disable_recursion_pending();  // our own output inside the input folder
      continue;
    }
    if (it->is_regular_file() && is_video_file(it->path())) {
      videos.push_back(fs::relative(it->path(), in_dir));
    }
  }
  std::sort(videos.begin(), videos.end());
  const int jobs = a.jobs > 0 ? a.jobs : hardware_threads();

  std::mutex mu;
  std::atomic<size_t> next{0};
  int64_t done = 0, complete = 0, frames = 0;
  std::vector<std::string> failures;
  auto worker = [&] {
    for (size_t i = next++; i < videos.size(); i = next++) {
      const auto target = target_of(a, videos[i]);
      if (fs::exists(target)) {
        std::lock_guard<std::mutex> lk(mu);
        ++complete;
        continue;
      }
      try {
        fs::create_directories(target.parent_path());
        const auto src = in_dir / videos[i];
        const int64_t n =
            a.mode == "frames" ? extract_frames(a, src, target) : reencode(a, src, target);
        std::lock_guard<std::mutex> lk(mu);
        ++done;
        frames += n;
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lk(mu);
        failures.push_back(e.what());
      }
    }
  };

  const bool tty = ::isatty(STDERR_FILENO) != 0;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int j = 0; j < jobs; ++j) pool.emplace_back(worker);
  size_t reported = 0;
  auto report = [&](bool final) {
    std::lock_guard<std::mutex> lk(mu);
    // Failures are printed by this thread only, so they never cut through the progress line.
    for (; reported < failures.size(); ++reported) {
      if (tty) std::fprintf(stderr, "\r\033[K");
      spdlog::warn("preprocess: {}", failures[reported]);
    }
    if (!tty) return;
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int64_t finished = done + static_cast<int64_t>(failures.size());
    const int64_t left = static_cast<int64_t>(videos.size()) - finished - complete;
    const double rate = secs > 0 ? finished / secs : 0.0;
    std::fprintf(stderr, "\r\033[Kpreprocess: %lld/%zu videos  %.2f videos/s  ETA %s%s",
                 static_cast<long long>(finished + complete), videos.size(), rate,
                 rate > 0 ? clock_str(left / rate).c_str() : "?", final ? "\n" : "");
    std::fflush(stderr);
  };
  while (true) {
    bool finished;
    {
      std::lock_guard<std::mutex> lk(mu);
      finished = done + complete + static_cast<int64_t>(failures.size()) ==
                 static_cast<int64_t>(videos.size());
    }
    if (finished) break;
    report(false);
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  for (auto& t : pool) t.join();
  report(true);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf(
      "preprocess: %zu videos in %s: %lld %s, %lld already complete, %zu failed; "
      "%lld frames in %.1f s (%d jobs)\n",
      videos.size(), a.videos.c_str(), static_cast<long long>(done),
      a.mode == "frames" ? "extracted" : "re-encoded", static_cast<long long>(complete),
      failures.size(), static_cast<long long>(frames), secs, jobs);
  std::fflush(stdout);
  if (!failures.empty()) {
    throw Error(fmt::format("preprocess: {} of {} videos failed (listed above)", failures.size(),
                            videos.size()));
  }
}

#else
void run_preprocess(const PreprocessArgs&) { no_video_support("preprocess"); }
#endif  // MVA_WITH_VIDEO

}  // namespace

void add_preprocess_command(CLI::App& app) {
  auto args = std::make_shared<PreprocessArgs>();
  auto* cmd = app.add_subcommand(
      "preprocess", "Extract 1-fps frames or re-encode a whole dataset, in parallel, resumable");
  cmd->add_option("--videos", args->videos, "Folder of videos (searched recursively)")->required();
  cmd->add_option("--out", args->out, "Output folder (same relative layout)")->required();
  cmd->add_option("--mode", args->mode,
                  "frames: a folder of JPEGs per video; reencode: one small .mp4 per video")
      ->check(CLI::IsMember({"frames", "reencode"}));
  cmd->add_option("--fps", args->fps, "Frames kept per second of video")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--size", args->size, "Short side after resizing (0 = keep)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--resize", args->resize, "pil (as the reference) | cv-cubic | cv-area")
      ->check(CLI::IsMember({"pil", "cv-cubic", "cv-area"}));
  cmd->add_option("--jobs", args->jobs, "Videos processed at once (0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--quality", args->quality, "JPEG quality")->check(CLI::Range(1, 100));
  cmd->callback([args] { run_preprocess(*args); });
}

}  // namespace mva::cli
