// Decode + sample + preprocess throughput (clips/s) of the data layer, for comparison with the
// Python cv2 + PIL pipeline in decode_bench_python.py. Plain timers; see bench/README.md.
//
//   decode_bench [--videos DIR] [--repeat R] [--frames F] [--size S] [--threads 1,2] [--resize pil]
//                [--trust-count 0|1]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "mvadapter/data/video_index.h"
#include "mvadapter/data/video_loader.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double cpu_seconds() {
  return static_cast<double>(std::clock()) / CLOCKS_PER_SEC;
}

}  // namespace

int main(int argc, char** argv) {
  std::string videos = std::string(MVA_SOURCE_DIR) + "/tests/fixtures/video/videos";
  int repeat = 3;
  int64_t frames = 12, size = 224;
  std::string threads_arg = "1,2", resize = "pil";
  bool trust_count = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--videos")
      videos = v;
    else if (k == "--repeat")
      repeat = std::stoi(v);
    else if (k == "--frames")
      frames = std::stoll(v);
    else if (k == "--size")
      size = std::stoll(v);
    else if (k == "--threads")
      threads_arg = v;
    else if (k == "--resize")
      resize = v;
    else if (k == "--trust-count")
      trust_count = v == "1";
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  try {
    // The normalisation on the consumer thread must not fan out over cores the decoders use.
    torch::set_num_threads(1);
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(videos)) {
      if (mva::is_video_file(e.path())) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) throw mva::Error(videos + ": no videos");
    mva::Manifest m;
    for (int r = 0; r < repeat; ++r) {
      for (const auto& f : files) {
        mva::VideoEntry v;
        v.id = f.stem().string();
        v.path = f;
        m.videos.push_back(v);
      }
    }
    mva::LoaderOptions o;
    o.mode = mva::LoaderMode::kVideos;
    o.batch_size = 8;
    o.clip.frames = frames;
    o.clip.transform.size = size;
    o.clip.transform.resize = mva::parse_resize_method(resize);
    o.clip.decode.trust_frame_count = trust_count;

    // Warm-up: codec and page cache.
    mva::load_video_clip(m.videos[0], o.clip);

    // Where a single thread spends its time, per stage, over one pass of the clips.
    double t_decode = 0, t_crop = 0, t_norm = 0;
    for (const auto& f : files) {
      mva::VideoEntry v;
      v.path = f;
      auto t0 = Clock::now();
      const auto d = mva::read_video(v, [&](int64_t n) {
        return mva::sample_frames(n, frames, mva::FrameSampling::kOfficial);
      });
      t_decode += seconds_since(t0);
      t0 = Clock::now();
      std::vector<torch::Tensor> crops;
      for (const auto& fr : d.frames)
        crops.push_back(mva::resize_center_crop(fr, o.clip.transform));
      t_crop += seconds_since(t0);
      t0 = Clock::now();
      auto x = mva::normalize_clip(torch::stack(crops));
      t_norm += seconds_since(t0);
    }
    const double nf = static_cast<double>(files.size());
    std::printf(
        "stages (1 thread, ms per clip): decode+retrieve %.1f, resize+crop %.1f, "
        "normalise %.1f\n",
        1e3 * t_decode / nf, 1e3 * t_crop / nf, 1e3 * t_norm / nf);

    std::stringstream ss(threads_arg);
    std::string item;
    while (std::getline(ss, item, ',')) {
      o.threads = std::stoi(item);
      mva::VideoLoader loader(m, o);
      const double c0 = cpu_seconds();
      const auto t0 = Clock::now();
      loader.start_epoch(0);
      int64_t clips = 0;
      while (auto b = loader.next()) clips += b->frames.size(0);
      const double wall = seconds_since(t0);
      const double cpu = cpu_seconds() - c0;
      std::printf(
          "threads=%d clips=%lld frames=%lld size=%lld resize=%s trust_count=%d wall=%.2fs "
          "cpu=%.2fs cpu/clip=%.0fms clips/s=%.2f skipped=%lld\n",
          o.threads, static_cast<long long>(clips), static_cast<long long>(frames),
          static_cast<long long>(size), resize.c_str(), trust_count ? 1 : 0, wall, cpu,
          1e3 * cpu / static_cast<double>(clips), clips / wall,
          static_cast<long long>(loader.stats().samples_skipped));
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
