// `mvadapter synth`: write the synthetic Shapes video dataset (DESIGN.md §7).
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "mvadapter/core/error.h"
#include "mvadapter/data/synthetic_shapes.h"

namespace mva::cli {

void add_synth_command(CLI::App& app) {
  auto opts = std::make_shared<ShapesOptions>();
  auto out = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand(
      "synth",
      "Write the synthetic Shapes video dataset: shapes that change colour, MSR-VTT annotations");
  cmd->add_option("--out", *out, "Output folder (empty, new, or an earlier synth output)")
      ->required();
  cmd->add_option("--seed", opts->seed, "Random seed: the same seed writes the same dataset")
      ->capture_default_str();
  cmd->add_option("--frames", opts->frames,
                  "F: clip length in seconds, i.e. the frames the 1-fps sampler sees")
      ->capture_default_str();
  cmd->add_option("--size", opts->size, "Frame side in pixels (even)")->capture_default_str();
  cmd->add_option("--fps", opts->fps, "Frames written per second of clip")->capture_default_str();
  cmd->add_option("--train-per-class", opts->train_per_class,
                  "Training videos per (shape, ordered colour pair)")
      ->capture_default_str();
  cmd->add_option(
         "--shapes", opts->shapes,
         "How many shapes, the first of: circle, cross, triangle, square, diamond, star, ring")
      ->capture_default_str();
  cmd->add_option(
         "--colors", opts->colors,
         "How many colours, the first of: red, green, blue, yellow, magenta, cyan, orange, white")
      ->capture_default_str();
  cmd->add_flag("--motion", opts->motion,
                "The shape also moves left/right/up/down and the captions say so");
  cmd->add_option("--codec", opts->codec,
                  "mp4v | avc1 (.mp4) | MJPG (.avi); default: the first that this build can write");
  cmd->add_option("--threads", opts->threads, "Encoding threads (0 = all cores)")
      ->capture_default_str();
  cmd->callback([opts, out] {
    const auto t0 = std::chrono::steady_clock::now();
    const ShapesSummary s = write_shapes_dataset(*out, *opts);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf(
        "synth: %lld train videos (%lld captions), %lld test videos, %lld pretrain windows in "
        "%s (%s, %lld frames at %lld fps, %lld px, seed %llu) in %.1f s\n",
        static_cast<long long>(s.train_videos), static_cast<long long>(s.train_captions),
        static_cast<long long>(s.test_videos), static_cast<long long>(s.pretrain_items),
        out->c_str(), s.codec.c_str(), static_cast<long long>(opts->frames * opts->fps),
        static_cast<long long>(opts->fps), static_cast<long long>(opts->size),
        static_cast<unsigned long long>(opts->seed), secs);
    std::fflush(stdout);
  });
}

}  // namespace mva::cli
