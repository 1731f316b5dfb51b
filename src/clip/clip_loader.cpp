#include "mvadapter/clip/clip_loader.h"

#include <fstream>
#include <regex>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "mvadapter/io/module_state.h"
#include "mvadapter/io/safetensors.h"
#include "mvadapter/io/torch_checkpoint.h"

namespace mva {
namespace {

bool starts_with(const std::string& s, const std::string& p) {
  return s.rfind(p, 0) == 0;
}

bool is_zip(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
}

// Entries OpenAI's archives carry besides weights; build_model deletes them too.
bool is_archive_extra(const std::string& name) {
  return name == "input_resolution" || name == "context_length" || name == "vocab_size";
}

TensorMap read_torchscript(const std::filesystem::path& path) {
  torch::jit::Module m;
  try {
    m = torch::jit::load(path.string(), torch::kCPU);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
    throw Error(fmt::format("{}: not a TorchScript archive ({})", path.string(), msg));
  }
  TensorMap out;
  for (const auto& p : m.named_parameters(true)) out.emplace(p.name, p.value.detach().clone());
  for (const auto& b : m.named_buffers(true)) out.emplace(b.name, b.value.detach().clone());
  return out;
}

// Block-local renames, both directions share this table (OpenAI suffix, HF suffix).
const std::vector<std::pair<std::string, std::string>> kBlockNames = {
    {"attn.out_proj.weight", "self_attn.out_proj.weight"},
    {"attn.out_proj.bias", "self_attn.out_proj.bias"},
    {"ln_1.weight", "layer_norm1.weight"},
    {"ln_1.bias", "layer_norm1.bias"},
    {"ln_2.weight", "layer_norm2.weight"},
    {"ln_2.bias", "layer_norm2.bias"},
    {"mlp.c_fc.weight", "mlp.fc1.weight"},
    {"mlp.c_fc.bias", "mlp.fc1.bias"},
    {"mlp.c_proj.weight", "mlp.fc2.weight"},
    {"mlp.c_proj.bias", "mlp.fc2.bias"},
};

// Top-level renames (OpenAI, HF, transposed).
struct TopName {
  const char* openai;
  const char* hf;
  bool transpose;
};
const TopName kTopNames[] = {
    {"visual.class_embedding", "vision_model.embeddings.class_embedding", false},
    {"visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight", false},
    {"visual.positional_embedding", "vision_model.embeddings.position_embedding.weight", false},
    {"visual.ln_pre.weight", "vision_model.pre_layrnorm.weight", false},
    {"visual.ln_pre.bias", "vision_model.pre_layrnorm.bias", false},
    {"visual.ln_post.weight", "vision_model.post_layernorm.weight", false},
    {"visual.ln_post.bias", "vision_model.post_layernorm.bias", false},
    {"visual.proj", "visual_projection.weight", true},
    {"token_embedding.weight", "text_model.embeddings.token_embedding.weight", false},
    {"positional_embedding", "text_model.embeddings.position_embedding.weight", false},
    {"ln_final.weight", "text_model.final_layer_norm.weight", false},
    {"ln_final.bias", "text_model.final_layer_norm.bias", false},
    {"text_projection", "text_projection.weight", true},
    {"logit_scale", "logit_scale", false},
};

}  // namespace

TensorMap hf_to_openai(const TensorMap& hf, const std::string& source) {
  TensorMap out;
  static const std::regex layer_re(R"(^(vision_model|text_model)\.encoder\.layers\.(\d+)\.(.+)$)");
  std::map<std::string, std::array<torch::Tensor, 3>> qkv;  // openai in_proj name -> q, k, v
  for (const auto& [name, t] : hf) {
    if (name.size() >= 12 && name.compare(name.size() - 12, 12, "position_ids") == 0) continue;
    bool done = false;
    for (const auto& top : kTopNames) {
      if (name == top.hf) {
        out[top.openai] = top.transpose ? t.t().contiguous() : t;
        done = true;
        break;
      }
    }
    if (done) continue;
    std::smatch m;
    if (!std::regex_match(name, m, layer_re)) {
      throw Error(fmt::format("{}: unexpected Hugging Face tensor '{}'", source, name));
    }
    const std::string prefix =
        (m[1] == "vision_model" ? "visual.transformer.resblocks." : "transformer.resblocks.") +
        m[2].str() + ".";
    const std::string rest = m[3];
    static const std::regex qkv_re(R"(^self_attn\.([qkv])_proj\.(weight|bias)$)");
    std::smatch q;
    if (std::regex_match(rest, q, qkv_re)) {
      const int slot = q[1] == "q" ? 0 : (q[1] == "k" ? 1 : 2);
      qkv[prefix + "attn.in_proj_" + q[2].str()][slot] = t;
      continue;
    }
    for (const auto& [oa, h] : kBlockNames) {
      if (rest == h) {
        out[prefix + oa] = t;
        done = true;
        break;
      }
    }
    if (!done) throw Error(fmt::format("{}: unexpected Hugging Face tensor '{}'", source, name));
  }
  for (auto& [name, parts] : qkv) {
    for (int i = 0; i < 3; ++i) {
      if (!parts[i].defined()) {
        throw Error(fmt::format("{}: {} is missing its {} projection", source, name, "qkv"[i]));
      }
    }
    out[name] = torch::cat({parts[0], parts[1], parts[2]}, 0);
  }
  return out;
}

TensorMap openai_to_hf(const TensorMap& openai) {
  TensorMap out;
  static const std::regex block_re(
      R"(^(visual\.transformer|transformer)\.resblocks\.(\d+)\.(.+)$)");
  for (const auto& [name, t] : openai) {
    bool done = false;
    for (const auto& top : kTopNames) {
      if (name == top.openai) {
        out[top.hf] = top.transpose ? t.t().contiguous() : t;
        done = true;
        break;
      }
    }
    if (done) continue;
    std::smatch m;
    if (!std::regex_match(name, m, block_re)) continue;
    const std::string prefix = (m[1] == "visual.transformer" ? "vision_model" : "text_model") +
                               std::string(".encoder.layers.") + m[2].str() + ".";
    const std::string rest = m[3];
    if (rest == "attn.in_proj_weight" || rest == "attn.in_proj_bias") {
      auto parts = t.chunk(3, 0);
      const std::string kind = rest == "attn.in_proj_weight" ? "weight" : "bias";
      out[prefix + "self_attn.q_proj." + kind] = parts[0].contiguous();
      out[prefix + "self_attn.k_proj." + kind] = parts[1].contiguous();
      out[prefix + "self_attn.v_proj." + kind] = parts[2].contiguous();
      continue;
    }
    for (const auto& [oa, h] : kBlockNames) {
      if (rest == oa) out[prefix + h] = t;
    }
  }
  return out;
}

namespace {

const std::map<std::string, std::string>& known_clip_releases() {
  static const std::map<std::string, std::string> kKnown = {
      {"ViT-B-32.pt", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"},
      {"ViT-B-16.pt", "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f"},
      {"ViT-L-14.pt", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836"},
  };
  return kKnown;
}

}  // namespace

bool is_known_clip_sha256(const std::string& sha256) {
  for (const auto& [name, sha] : known_clip_releases()) {
    if (sha == sha256) return true;
  }
  return false;
}

std::optional<std::string> known_clip_sha256(const std::string& file_name) {
  const auto& known = known_clip_releases();
  auto it = known.find(file_name);
  if (it == known.end()) return std::nullopt;
  return it->second;
}

ClipWeights read_clip_weights(const std::filesystem::path& path) {
  if (!std::filesystem::is_regular_file(path)) {
    throw Error(
        fmt::format("{}: CLIP weights file not found (download ViT-B-16.pt from OpenAI's "
                    "CLIP release, see README)",
                    path.string()));
  }
  ClipWeights w;
  if (auto want = known_clip_sha256(path.filename().string())) {
    auto got = file_sha256(path);
    w.sha256 = got;
    if (got != *want) {
      spdlog::warn("{}: sha256 {} differs from OpenAI's published {}; the file may be damaged",
                   path.string(), got, *want);
    }
  }
  if (path.extension() == ".safetensors") {
    auto file = read_safetensors(path);
    bool hf = false;
    for (const auto& [name, t] : file.tensors) {
      if (starts_with(name, "vision_model.") || starts_with(name, "text_model.")) hf = true;
    }
    w.format = hf ? ClipWeightFormat::kHuggingFace : ClipWeightFormat::kOpenAiSafetensors;
    w.tensors = hf ? hf_to_openai(file.tensors, path.string()) : std::move(file.tensors);
  } else if (is_zip(path) && is_torchscript_archive(path)) {
    // LibTorch's TorchScript deserializer is not hardened against hostile files: OpenAI's own
    // releases are trusted by their hash, anything else is loaded with a warning.
    if (!w.sha256) w.sha256 = file_sha256(path);
    if (!is_known_clip_sha256(*w.sha256)) {
      spdlog::warn(
          "{}: a TorchScript archive that is not one of OpenAI's CLIP releases (sha256 {}): "
          "TorchScript goes through LibTorch's deserializer, which is not hardened against "
          "hostile files. Load archives from people you trust only; to share weights, convert "
          "them once with `mvadapter convert {} -o OUT.safetensors` and load the safetensors file",
          path.string(), *w.sha256, path.string());
    }
    w.format = ClipWeightFormat::kOpenAiTorchScript;
    w.tensors = read_torchscript(path);
  } else if (is_zip(path)) {
    // A torch.save'd state dict: read by our own pickle reader (safe for any file).
    w.format = ClipWeightFormat::kOpenAiStateDict;
    w.tensors = read_torch_state_dict(path);
  } else {
    throw Error(
        fmt::format("{}: not a CLIP weight file (expected an OpenAI .pt archive or "
                    ".safetensors)",
                    path.string()));
  }
  for (auto it = w.tensors.begin(); it != w.tensors.end();) {
    if (is_archive_extra(it->first)) {
      it = w.tensors.erase(it);
    } else {
      // Released archives are fp16; the frozen backbone runs in fp32 (autocast handles bf16).
      if (it->second.is_floating_point()) it->second = it->second.to(torch::kFloat32);
      ++it;
    }
  }
  return w;
}

ClipModel build_clip(const TensorMap& weights, const std::string& source) {
  auto cfg = ClipConfig::from_weights(weights, source);
  ClipModel model(cfg);
  load_module_state(*model, weights, source);
  return model;
}

ClipModel load_clip(const std::filesystem::path& path) {
  return build_clip(read_clip_weights(path).tensors, path.string());
}

void save_clip(const ClipModelImpl& clip, const std::filesystem::path& path,
               const std::map<std::string, std::string>& metadata) {
  auto tensors = module_state(
      clip, [](const std::string& name, const torch::Tensor&) { return !is_adapter_tensor(name); });
  for (auto& [name, t] : tensors) t = t.to(torch::kCPU, torch::kFloat32).contiguous();
  write_safetensors(path, tensors, metadata);
}

}  // namespace mva
