#include "mvadapter/clip/clip_config.h"

#include <cmath>
#include <set>

#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"

namespace mva {
namespace {

const torch::Tensor& need(const TensorMap& w, const std::string& name, const std::string& source) {
  auto it = w.find(name);
  if (it == w.end()) {
    throw Error(
        fmt::format("{}: missing tensor '{}' (not an OpenAI CLIP ViT checkpoint?)", source, name));
  }
  return it->second;
}

// Counts distinct N in "<prefix>N.<anything>".
int64_t count_blocks(const TensorMap& w, const std::string& prefix) {
  std::set<std::string> ids;
  for (const auto& [name, t] : w) {
    if (name.rfind(prefix, 0) != 0) continue;
    auto rest = name.substr(prefix.size());
    ids.insert(rest.substr(0, rest.find('.')));
  }
  return static_cast<int64_t>(ids.size());
}

}  // namespace

ClipConfig ClipConfig::from_weights(const TensorMap& w, const std::string& source) {
  ClipConfig c;
  const auto& conv = need(w, "visual.conv1.weight", source);
  if (conv.dim() != 4) throw Error(fmt::format("{}: visual.conv1.weight must be 4-D", source));
  c.vision_width = conv.size(0);
  c.vision_patch_size = conv.size(-1);
  c.vision_layers = count_blocks(w, "visual.transformer.resblocks.");
  const auto& vpos = need(w, "visual.positional_embedding", source);
  const auto grid = static_cast<int64_t>(std::lround(std::sqrt(double(vpos.size(0) - 1))));
  if (grid * grid + 1 != vpos.size(0)) {
    throw Error(fmt::format("{}: visual.positional_embedding has {} rows, expected grid^2 + 1",
                            source, vpos.size(0)));
  }
  c.image_resolution = c.vision_patch_size * grid;
  c.embed_dim = need(w, "text_projection", source).size(1);
  c.context_length = need(w, "positional_embedding", source).size(0);
  c.vocab_size = need(w, "token_embedding.weight", source).size(0);
  c.transformer_width = need(w, "ln_final.weight", source).size(0);
  c.transformer_heads = c.transformer_width / 64;
  c.transformer_layers = count_blocks(w, "transformer.resblocks.");
  if (c.vision_layers == 0 || c.transformer_layers == 0) {
    throw Error(fmt::format("{}: no transformer blocks found (vision {}, text {})", source,
                            c.vision_layers, c.transformer_layers));
  }
  return c;
}

ClipConfig ClipConfig::named(const std::string& arch) {
  ClipConfig c;
  if (arch == "ViT-B/32" || arch == "ViT-B-32" || arch == "v32") {
    c.vision_patch_size = 32;
  } else if (arch == "ViT-B/16" || arch == "ViT-B-16" || arch == "v16") {
    c.vision_patch_size = 16;
  } else if (arch == "ViT-L/14" || arch == "ViT-L-14" || arch == "vl14") {
    c.embed_dim = 768;
    c.vision_layers = 24;
    c.vision_width = 1024;
    c.vision_patch_size = 14;
    c.transformer_width = 768;
    c.transformer_heads = 12;
  } else if (arch == "Tiny-32") {
    // The embedded demo's CLIP (DESIGN.md §7): pre-trained from scratch by `mvadapter pretrain`
    // on 32 px frames in minutes on a CPU. Not a released model.
    c.embed_dim = 128;
    c.image_resolution = 32;
    c.vision_layers = 4;
    c.vision_width = 128;
    c.vision_patch_size = 8;
    c.context_length = 16;
    c.transformer_width = 128;
    c.transformer_heads = 2;
    c.transformer_layers = 4;
  } else {
    throw Error(
        fmt::format("arch '{}': unknown CLIP architecture (expected ViT-B/32, ViT-B/16, "
                    "ViT-L/14 or Tiny-32)",
                    arch));
  }
  return c;
}

std::string ClipConfig::summary() const {
  return fmt::format(
      "vision width {}, {} layers, patch {}, {} px | text width {}, {} layers, context {}, vocab "
      "{} | embed {}",
      vision_width, vision_layers, vision_patch_size, image_resolution, transformer_width,
      transformer_layers, context_length, vocab_size, embed_dim);
}

}  // namespace mva
