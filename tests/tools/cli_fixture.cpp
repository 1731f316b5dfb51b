#include "cli_fixture.h"

#include <algorithm>

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

}  // namespace mva::test
