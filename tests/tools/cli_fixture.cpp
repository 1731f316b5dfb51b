#include "cli_fixture.h"

#include <algorithm>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <torch/torch.h>

#include "mvadapter/clip/clip_loader.h"
#include "mvadapter/clip/clip_model.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace mva::test {

void write_full_vocab_tiny_clip(const fs::path& out) {
  auto clip = load_clip(fixture_path("mv_adapter_tiny/clip.safetensors"));
  auto cfg = clip->config();
  cfg.vocab_size = 49408;
  torch::manual_seed(0);
  auto grown = make_random_clip(cfg);
  {
    torch::NoGradGuard ng;
    auto src = clip->named_parameters();
    for (auto& p : grown->named_parameters()) {
      const auto& w = src[p.key()];
      if (p.key() == "token_embedding.weight") {
        p.value().narrow(0, 0, w.size(0)).copy_(w);
      } else {
        p.value().copy_(w);
      }
    }
  }
  save_clip(*grown, out);
}

std::vector<std::string> fixture_clip_files() {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(fixture_path("video/videos"))) {
    files.push_back(e.path().filename().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string tiny_model_yaml(const std::filesystem::path& clip) {
  return "model:\n  clip: " + clip.string() +
         "\n"
         "adapters:\n"
         "  video: {mid_dim: 16, heads: 2, calibration_dim: 4}\n"
         "  text: {mid_dim: 16, heads: 2}\n"
         "  tying: {mode: scale, layers: [1], factor_dim: 8}\n";
}

namespace {

// Three captions per video to train on, one to test with.
void write_dataset(const fs::path& dir) {
  const auto files = fixture_clip_files();
  std::ofstream train(dir / "train.jsonl"), test(dir / "test.jsonl");
  for (size_t i = 0; i < files.size(); ++i) {
    nlohmann::json t = {{"video", files[i]},
                        {"captions",
                         {fmt::format("clip {} of the set", i), fmt::format("video number {}", i),
                          fmt::format("the {} th scene", i)}}};
    train << t.dump() << "\n";
    test << nlohmann::json({{"video", files[i]}, {"caption", fmt::format("video number {}", i)}})
                .dump()
         << "\n";
  }
}

}  // namespace

namespace {

/// The data section of the fixture configs: JSONL splits in `dir` over the fixture clips, 4
/// frames of 32 px, 8 words; no train split when `train_split` is empty.
std::string data_yaml(const fs::path& dir, const std::string& train_split) {
  return fmt::format(R"(data:
  dataset: jsonl
  root: {}
  videos: {}
{}  test_split: test.jsonl
  frames: 4
  words: 8
  size: 32
  workers: 2
)",
                     dir.string(), fixture_path("video/videos").string(),
                     train_split.empty() ? "" : "  train_split: " + train_split + "\n");
}

}  // namespace

TrainSetup make_train_setup(const std::string& tag, int epochs, const std::string& train_extra) {
  TrainSetup s;
  s.dir = temp_dir(tag);
  write_full_vocab_tiny_clip(s.dir / "clip.safetensors");
  write_dataset(s.dir);
  s.config = s.dir / "tiny.yaml";
  std::ofstream(s.config) << fmt::format(
      R"({model}{data}train:
  epochs: {epochs}
  batch_size: 4
  lr: 2.0e-3
  warmup: 0.1
  log_every: 1
  threads: 1
  output_dir: {dir}/run_a
{extra}eval:
  batch_size: 3
)",
      fmt::arg("model", tiny_model_yaml(s.dir / "clip.safetensors")),
      fmt::arg("data", data_yaml(s.dir, "train.jsonl")), fmt::arg("dir", s.dir.string()),
      fmt::arg("epochs", epochs), fmt::arg("extra", train_extra));
  return s;
}

// A JSONL test split over the 8 fixture clips, two captions each.
IndexSetup make_index_setup(const std::string& tag) {
  IndexSetup s;
  s.dir = temp_dir(tag);
  write_full_vocab_tiny_clip(s.dir / "clip.safetensors");
  s.videos = fixture_clip_files();
  std::ofstream test(s.dir / "test.jsonl");
  for (size_t i = 0; i < s.videos.size(); ++i) {
    test << nlohmann::json({{"video", s.videos[i]},
                            {"captions",
                             {fmt::format("a person in clip number {}", i),
                              fmt::format("the {} th scene with a red car", i)}}})
                .dump()
         << "\n";
  }
  s.config = s.dir / "tiny.yaml";
  std::ofstream(s.config) << fmt::format(
      R"({model}{data}train:
  threads: 1
eval:
  batch_size: 3
)",
      fmt::arg("model", tiny_model_yaml(s.dir / "clip.safetensors")),
      fmt::arg("data", data_yaml(s.dir, "")));
  return s;
}

}  // namespace mva::test
