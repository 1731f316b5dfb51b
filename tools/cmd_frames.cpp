// `mvadapter frames`: decode one video exactly as training does and show what the model sees.
#include <cstdio>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include "commands.h"
#include "mvadapter/core/error.h"
#include "mvadapter/data/contact_sheet.h"
#include "mvadapter/data/video_loader.h"
#include "mvadapter/io/safetensors.h"

namespace mva::cli {
namespace {

struct FramesArgs {
  std::string video, out, sheet, sampling = "official", resize = "pil";
  int64_t frames = 12, size = 224;
  int columns = 4;
  double fps = 1.0, start = -1.0, end = -1.0;
};

#if MVA_WITH_VIDEO
void run_frames(const FramesArgs& a) {
  VideoEntry v;
  v.path = a.video;
  v.id = v.path.stem().string();
  v.frame_folder = std::filesystem::is_directory(v.path);
  v.start_s = a.start;
  v.end_s = a.end;
  ClipOptions opts;
  opts.frames = a.frames;
  opts.sampling = parse_frame_sampling(a.sampling);
  opts.transform.size = a.size;
  opts.transform.resize = parse_resize_method(a.resize);
  opts.decode.sample_fps = a.fps;
  const ClipFrames clip = load_video_clip(v, opts);

  // Padding slots carry -1, so every tensor has F rows.
  auto positions = torch::full({a.frames}, -1, torch::kInt64);
  auto indices = torch::full({a.frames}, -1, torch::kInt64);
  for (size_t i = 0; i < clip.positions.size(); ++i) {
    positions[static_cast<int64_t>(i)] = clip.positions[i];
    indices[static_cast<int64_t>(i)] = clip.source_index[i];
  }
  write_safetensors(a.out,
                    {{"frames", clip.frames},
                     {"mask", clip.mask},
                     {"positions", positions},
                     {"indices", indices}},
                    {{"video", a.video},
                     {"fps", fmt::format("{}", clip.fps)},
                     {"decoded_frames", std::to_string(clip.decoded_frames)},
                     {"num_sampled", std::to_string(clip.num_sampled)},
                     {"sampling", a.sampling},
                     {"size", std::to_string(a.size)},
                     {"resize", a.resize}});
  if (!a.sheet.empty()) write_contact_sheet(a.sheet, clip, a.columns, a.fps);
  std::printf(
      "%s: %lld frames at %.4g fps, %lld sampled at %g fps; kept %zu of %lld (%s): "
      "frames %s\n",
      a.video.c_str(), static_cast<long long>(clip.decoded_frames), clip.fps,
      static_cast<long long>(clip.num_sampled), a.fps, clip.positions.size(),
      static_cast<long long>(a.frames), a.sampling.c_str(),
      fmt::format("{}", clip.source_index).c_str());
  std::printf("wrote %s%s\n", a.out.c_str(), a.sheet.empty() ? "" : (" and " + a.sheet).c_str());
}
#else
void run_frames(const FramesArgs&) {
  no_video_support("frames");
}
#endif

}  // namespace

void add_frames_command(CLI::App& app) {
  auto args = std::make_shared<FramesArgs>();
  auto* cmd = app.add_subcommand(
      "frames", "Decode one video into the frames the model sees (+ contact sheet)");
  cmd->add_option("video", args->video, "Video file, or a folder of frames")->required();
  cmd->add_option("--out", args->out,
                  "Output .safetensors: frames uint8 [F,3,S,S], mask, "
                  "positions, indices")
      ->required();
  cmd->add_option("--sheet", args->sheet, "Also write a contact sheet (PNG) of the crops");
  cmd->add_option("--frames", args->frames, "Frames to keep (F)")->check(CLI::PositiveNumber);
  cmd->add_option("--sampling", args->sampling, "official | linspace | head | tail")
      ->check(CLI::IsMember({"official", "linspace", "head", "tail"}));
  cmd->add_option("--size", args->size, "Resolution of the square crop")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--resize", args->resize, "pil (exact reference) | cv-cubic | cv-area")
      ->check(CLI::IsMember({"pil", "cv-cubic", "cv-area"}));
  cmd->add_option("--fps", args->fps, "Frames sampled per second of video")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--start", args->start, "Window start in seconds");
  cmd->add_option("--end", args->end, "Window end in seconds");
  cmd->add_option("--columns", args->columns, "Tiles per row of the contact sheet")
      ->check(CLI::PositiveNumber);
  cmd->callback([args] { run_frames(*args); });
}

}  // namespace mva::cli
