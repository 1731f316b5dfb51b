#include "mvadapter/adapters/adapter_config.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "mvadapter/core/error.h"

namespace mva {

bool TyingConfig::is_tied(int64_t layer) const {
  return tied_index(layer) >= 0;
}

int64_t TyingConfig::tied_index(int64_t layer) const {
  if (mode == TyingMode::kNone) return -1;
  auto it = std::find(layers.begin(), layers.end(), layer);
  return it == layers.end() ? -1 : static_cast<int64_t>(it - layers.begin());
}

bool BranchAdapterConfig::has_adapter(int64_t layer) const {
  return enabled &&
         (layers.empty() || std::find(layers.begin(), layers.end(), layer) != layers.end());
}

bool BranchAdapterConfig::adapts_attention() const {
  return type == "convpass" || type == "st_adapter";
}

const std::vector<std::string>& branch_adapter_types() {
  static const std::vector<std::string> kTypes = {"mv", "bottleneck", "cm_adapter", "convpass",
                                                  "st_adapter"};
  return kTypes;
}

bool LoraConfig::on_tower(bool video) const {
  return enabled() && (towers == "both" || towers == (video ? "video" : "text"));
}

bool LoraConfig::targets_projection(AttentionProjection p) const {
  const char* name = p == AttentionProjection::kQuery   ? "q"
                     : p == AttentionProjection::kKey   ? "k"
                     : p == AttentionProjection::kValue ? "v"
                                                        : "o";
  return std::find(targets.begin(), targets.end(), name) != targets.end();
}

TyingPosition parse_tying_position(const std::string& name, const std::string& field) {
  std::string n = name;
  std::replace(n.begin(), n.end(), ' ', '_');
  if (n == "down_in") return TyingPosition::kDownIn;
  if (n == "down_out") return TyingPosition::kDownOut;
  if (n == "up_in") return TyingPosition::kUpIn;
  if (n == "up_out") return TyingPosition::kUpOut;
  throw Error(
      fmt::format("{}: '{}' is not a tying position (expected down_in, down_out, up_in or "
                  "up_out)",
                  field, name));
}

TyingMode parse_tying_mode(const std::string& name, const std::string& field) {
  if (name == "none") return TyingMode::kNone;
  if (name == "scale") return TyingMode::kScale;
  if (name == "kronecker") return TyingMode::kKronecker;
  throw Error(
      fmt::format("{}: '{}' is not a tying mode (expected none, scale or kronecker)", field, name));
}

std::string to_string(TyingPosition p) {
  switch (p) {
    case TyingPosition::kDownIn:
      return "down_in";
    case TyingPosition::kDownOut:
      return "down_out";
    case TyingPosition::kUpIn:
      return "up_in";
    case TyingPosition::kUpOut:
      return "up_out";
  }
  return "?";
}

std::string to_string(TyingMode m) {
  switch (m) {
    case TyingMode::kNone:
      return "none";
    case TyingMode::kScale:
      return "scale";
    case TyingMode::kKronecker:
      return "kronecker";
  }
  return "?";
}

AdapterConfig AdapterConfig::mv_adapter(int64_t frames, int64_t words, int64_t layers) {
  AdapterConfig c;
  c.video.seq_len = frames;
  c.text.seq_len = words;
  c.tying.layers = {layers - 2, layers - 1};
  return c;
}

namespace {

template <typename T>
T get_or(const nlohmann::json& j, const char* key, T fallback, const std::string& where) {
  if (!j.contains(key)) return fallback;
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}.{}: wrong type ({})", where, key, e.what()));
  }
}

BranchAdapterConfig branch_from_official(const nlohmann::json& j, const std::string& where,
                                         bool video) {
  BranchAdapterConfig b;
  if (!j.is_object() || !j.contains("mlp")) {
    b.enabled = false;
    return b;
  }
  const auto& m = j.at("mlp");
  const auto w = where + ".mlp";
  auto type = get_or<std::string>(m, "type", "", w);
  if (video && type != "VideoAdapter") {
    throw Error(fmt::format("{}.type: '{}' is not supported (expected VideoAdapter)", w, type));
  }
  if (!video && type != "TextTransfAdapter") {
    throw Error(
        fmt::format("{}.type: '{}' is not supported (expected TextTransfAdapter)", w, type));
  }
  b.type = "mv";
  b.layers = get_or<std::vector<int64_t>>(m, "adapter_idx", {}, w);
  b.insertion =
      parse_adapter_insertion(get_or<std::string>(m, "forward", "seq", w), w + ".forward");
  b.mid_dim = get_or<int64_t>(m, video ? "cls_mid" : "mid_dim", 64, w);
  b.heads = get_or<int64_t>(m, "n_head", 2, w);
  b.scale = get_or<double>(m, "scale", 0.1, w);
  b.seq_len = get_or<int64_t>(m, "seq_len", 12, w);
  b.input_norm = get_or<bool>(m, "lnin", false, w);
  if (video) {
    b.temporal.clear();
    for (const auto& t : get_or<std::vector<std::string>>(m, "temporal", {}, w)) b.temporal += t;
    if (get_or<bool>(m, "pca", false, w)) {
      throw Error(
          fmt::format("{}.pca: PCA patch pooling is not supported (every released config "
                      "uses the mean)",
                      w));
    }
  } else if (get_or<std::string>(m, "attn_type", "uni", w) != "uni") {
    throw Error(fmt::format("{}.attn_type: only 'uni' (causal) is supported", w));
  }
  return b;
}

}  // namespace

AdapterConfig AdapterConfig::from_official(const nlohmann::json& cfg, const std::string& source) {
  AdapterConfig c;
  c.video = branch_from_official(cfg.value("visual", nlohmann::json::object()), source + ": visual",
                                 true);
  c.text =
      branch_from_official(cfg.value("text", nlohmann::json::object()), source + ": text", false);
  if (cfg.contains("modal_dynamic") && !cfg.at("modal_dynamic").is_null()) {
    const auto& md = cfg.at("modal_dynamic");
    const auto w = source + ": modal_dynamic";
    c.tying.mode = TyingMode::kScale;
    c.tying.layers = get_or<std::vector<int64_t>>(md, "adapter_idx", {}, w);
    c.tying.factor_dim = get_or<int64_t>(md, "factor_dim", 32, w);
    c.tying.position =
        parse_tying_position(get_or<std::string>(md, "position", "down in", w), w + ".position");
  } else {
    c.tying.mode = TyingMode::kNone;
    c.tying.layers.clear();
  }
  return c;
}

bool AdapterConfig::uses_cm_adapter() const {
  return (video.enabled && video.type == "cm_adapter") ||
         (text.enabled && text.type == "cm_adapter");
}

void AdapterConfig::validate_cm_adapter(int64_t vision_width, int64_t text_width,
                                        int64_t vision_layers, int64_t text_layers) const {
  // The authors' module: one adapter after the attention and one after the MLP of every block of
  // both towers, one r for both (the shared up-projection is [d_s, r]).
  for (const auto* b : {&video, &text}) {
    const char* name = b == &video ? "video" : "text";
    if (!b->enabled || b->type != "cm_adapter") {
      throw Error(fmt::format(
          "adapters.{}.type: the Cross-Modal Adapter needs type cm_adapter in both branches "
          "(its up-projection is shared by the video and the text adapters)",
          name));
    }
    if (!b->layers.empty()) {
      throw Error(fmt::format(
          "adapters.{}.layers: the Cross-Modal Adapter goes into every block (expected [])", name));
    }
    if (b->insertion != AdapterInsertion::kSeq) {
      throw Error(fmt::format(
          "adapters.{}.insertion: the Cross-Modal Adapter reads the sub-layer output (expected "
          "seq)",
          name));
    }
  }
  if (video.mid_dim != text.mid_dim) {
    throw Error(fmt::format(
        "adapters.text.mid_dim: {} differs from adapters.video.mid_dim {} (the Cross-Modal "
        "Adapter's shared up-projection reads the same r in both branches)",
        text.mid_dim, video.mid_dim));
  }
  if (vision_layers > text_layers) {
    throw Error(fmt::format(
        "adapters.video.type: the Cross-Modal Adapter shares up-projections per text block, but "
        "the vision tower has more blocks ({} > {})",
        vision_layers, text_layers));
  }
  if (cm_share_dim < 0 || cm_share_dim > std::min(vision_width, text_width)) {
    throw Error(fmt::format("adapters.cm_share_dim: {} (expected 0 to {}, the smaller width)",
                            cm_share_dim, std::min(vision_width, text_width)));
  }
  if (tying.mode != TyingMode::kNone) {
    throw Error(
        "adapters.tying.mode: the Cross-Modal Adapter shares its own up-projection (expected "
        "none)");
  }
}

void AdapterConfig::validate(int64_t vision_width, int64_t text_width, int64_t vision_layers,
                             int64_t text_layers) const {
  auto check_branch = [](const BranchAdapterConfig& b, const char* name, int64_t layers) {
    if (!b.enabled) return;
    const auto& types = branch_adapter_types();
    if (std::find(types.begin(), types.end(), b.type) == types.end()) {
      throw Error(fmt::format("adapters.{}.type: '{}' (expected one of: {})", name, b.type,
                              fmt::join(types, ", ")));
    }
    if (b.adapts_attention() && std::string(name) != "video") {
      throw Error(
          fmt::format("adapters.{}.type: {} adapts the video branch only (the paper's "
                      "baselines put a bottleneck adapter in the text encoder)",
                      name, b.type));
    }
    // The authors' placements; other slots would be a different method.
    if (b.type == "convpass" && b.insertion != AdapterInsertion::kLnPar) {
      throw Error(
          fmt::format("adapters.{}.insertion: convpass sits beside each sub-layer and "
                      "reads its LayerNorm output (expected ln_par, got {})",
                      name, to_string(b.insertion)));
    }
    if (b.type == "st_adapter" && b.insertion != AdapterInsertion::kPre) {
      throw Error(
          fmt::format("adapters.{}.insertion: st_adapter runs in series before each "
                      "sub-layer (expected pre, got {})",
                      name, to_string(b.insertion)));
    }
    if (b.type == "st_adapter") {
      if (b.kernel.size() != 3 ||
          std::any_of(b.kernel.begin(), b.kernel.end(), [](int64_t k) { return k % 2 != 1; })) {
        // Odd sizes: the authors' padding k // 2 keeps the frame count and the grid.
        throw Error(
            fmt::format("adapters.{}.kernel: expected 3 odd sizes (frames, rows, "
                        "columns), got [{}]",
                        name, fmt::join(b.kernel, ", ")));
      }
    }
    if (b.mid_dim <= 0) throw Error(fmt::format("adapters.{}.mid_dim: must be positive", name));
    if (b.type == "mv" && (b.heads <= 0 || b.mid_dim % b.heads != 0)) {
      throw Error(fmt::format("adapters.{}.heads: {} does not divide mid_dim {}", name, b.heads,
                              b.mid_dim));
    }
    for (auto l : b.layers) {
      if (l < 0 || l >= layers) {
        throw Error(fmt::format("adapters.{}.layers: block {} does not exist (the model has {})",
                                name, l, layers));
      }
    }
    for (char t : b.temporal) {
      if (t != 'c' && t != 'p') {
        throw Error(fmt::format("adapters.{}.temporal: '{}' (expected a combination of c and p)",
                                name, b.temporal));
      }
    }
    if (b.activation != "quick_gelu" && b.activation != "relu") {
      throw Error(fmt::format("adapters.{}.activation: '{}' (expected quick_gelu or relu)", name,
                              b.activation));
    }
    if (b.input_norm && b.type != "mv") {
      throw Error(
          fmt::format("adapters.{}.input_norm: only the mv adapter has an input LayerNorm "
                      "(type is '{}')",
                      name, b.type));
    }
  };
  check_branch(video, "video", vision_layers);
  check_branch(text, "text", text_layers);
  if (uses_cm_adapter()) validate_cm_adapter(vision_width, text_width, vision_layers, text_layers);
  if (lora.rank < 0) throw Error(fmt::format("adapters.lora.rank: {} is negative", lora.rank));
  if (lora.enabled()) {
    if (!(lora.alpha > 0)) {
      throw Error(fmt::format("adapters.lora.alpha: {} must be positive", lora.alpha));
    }
    if (!(lora.dropout >= 0 && lora.dropout < 1)) {
      throw Error(fmt::format("adapters.lora.dropout: {} (expected >= 0 and < 1)", lora.dropout));
    }
    if (lora.towers != "both" && lora.towers != "video" && lora.towers != "text") {
      throw Error(
          fmt::format("adapters.lora.towers: '{}' (expected both, video or text)", lora.towers));
    }
    if (lora.targets.empty()) {
      throw Error("adapters.lora.targets: empty (expected some of q, k, v, o)");
    }
    for (size_t i = 0; i < lora.targets.size(); ++i) {
      const auto& t = lora.targets[i];
      if (t != "q" && t != "k" && t != "v" && t != "o") {
        throw Error(fmt::format("adapters.lora.targets: '{}' (expected some of q, k, v, o)", t));
      }
      if (std::find(lora.targets.begin(), lora.targets.begin() + static_cast<std::ptrdiff_t>(i),
                    t) != lora.targets.begin() + static_cast<std::ptrdiff_t>(i)) {
        throw Error(fmt::format("adapters.lora.targets: '{}' is listed twice", t));
      }
    }
    for (auto [width, name] : {std::pair{vision_width, "video"}, std::pair{text_width, "text"}}) {
      if (lora.on_tower(std::string(name) == "video") && lora.rank > width) {
        throw Error(
            fmt::format("adapters.lora.rank: {} exceeds the {} width {}", lora.rank, name, width));
      }
    }
  }
  if (tying.mode == TyingMode::kNone) return;
  if (!video.enabled || !text.enabled) {
    throw Error("adapters.tying: Cross-Modality Tying needs adapters in both branches");
  }
  for (auto l : tying.layers) {
    if (!video.has_adapter(l) || !text.has_adapter(l)) {
      throw Error(
          fmt::format("adapters.tying.layers: block {} has no adapter in both branches", l));
    }
  }
  if (tying.mode == TyingMode::kKronecker) {
    const int64_t k = tying.kron_k;
    for (auto [d, dm, name] : {std::tuple{vision_width, video.mid_dim, "video"},
                               std::tuple{text_width, text.mid_dim, "text"}}) {
      if (k <= 0 || d % k != 0 || dm % k != 0) {
        throw Error(fmt::format("adapters.tying.kron_k: {} must divide the {} widths {} and {}", k,
                                name, d, dm));
      }
    }
  } else if (tying.factor_dim <= 0) {
    throw Error("adapters.tying.factor_dim: must be positive");
  }
}

}  // namespace mva
