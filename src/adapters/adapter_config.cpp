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
  return type == AdapterType::kConvpass || type == AdapterType::kStAdapter;
}

std::optional<TemporalCalibration> parse_temporal_calibration(std::string_view letters) {
  const auto c = std::count(letters.begin(), letters.end(), 'c');
  const auto p = std::count(letters.begin(), letters.end(), 'p');
  if (c > 1 || p > 1 || static_cast<size_t>(c + p) != letters.size()) return std::nullopt;
  return c ? (p ? TemporalCalibration::kClsAndPatches : TemporalCalibration::kCls)
           : (p ? TemporalCalibration::kPatches : TemporalCalibration::kNone);
}

bool LoraConfig::on_tower(bool video) const {
  return enabled() && (towers == LoraTowers::kBoth ||
                       towers == (video ? LoraTowers::kVideo : LoraTowers::kText));
}

bool LoraConfig::targets_projection(AttentionProjection p) const {
  return std::find(targets.begin(), targets.end(), p) != targets.end();
}

TyingPosition parse_tying_position(const std::string& name, const std::string& field) {
  // The official configs write "down in".
  std::string n = name;
  std::replace(n.begin(), n.end(), ' ', '_');
  if (auto v = enum_from_name<TyingPosition>(n)) return *v;
  throw Error(fmt::format("{}: '{}' is not a tying position (expected {})", field, name,
                          enum_choices<TyingPosition>(" or ")));
}

TyingMode parse_tying_mode(const std::string& name, const std::string& field) {
  if (auto v = enum_from_name<TyingMode>(name)) return *v;
  throw Error(fmt::format("{}: '{}' is not a tying mode (expected {})", field, name,
                          enum_choices<TyingMode>(" or ")));
}

std::string to_string(TyingPosition p) {
  return enum_name(p);
}

std::string to_string(TyingMode m) {
  return enum_name(m);
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
  b.type = AdapterType::kMv;
  b.layers = get_or<std::vector<int64_t>>(m, "adapter_idx", {}, w);
  b.insertion =
      parse_adapter_insertion(get_or<std::string>(m, "forward", "seq", w), w + ".forward");
  b.mid_dim = get_or<int64_t>(m, video ? "cls_mid" : "mid_dim", 64, w);
  b.heads = get_or<int64_t>(m, "n_head", 2, w);
  b.scale = get_or<double>(m, "scale", 0.1, w);
  b.seq_len = get_or<int64_t>(m, "seq_len", 12, w);
  b.input_norm = get_or<bool>(m, "lnin", false, w);
  if (video) {
    std::string letters;
    for (const auto& t : get_or<std::vector<std::string>>(m, "temporal", {}, w)) letters += t;
    const auto temporal = parse_temporal_calibration(letters);
    if (!temporal) {
      throw Error(fmt::format("{}.temporal: '{}' (expected a combination of c and p)", w, letters));
    }
    b.temporal = *temporal;
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
  return (video.enabled && video.type == AdapterType::kCmAdapter) ||
         (text.enabled && text.type == AdapterType::kCmAdapter);
}

void AdapterConfig::validate_cm_adapter(int64_t vision_width, int64_t text_width,
                                        int64_t vision_layers, int64_t text_layers) const {
  auto fail = [](const std::string& key, const std::string& problem) {
    throw ConfigError("", key, problem);
  };
  // The authors' module: one adapter after the attention and one after the MLP of every block of
  // both towers, one r for both (the shared up-projection is [d_s, r]).
  for (const auto* b : {&video, &text}) {
    const std::string p = fmt::format("adapters.{}.", b == &video ? "video" : "text");
    if (!b->enabled || b->type != AdapterType::kCmAdapter) {
      fail(p + "type",
           "the Cross-Modal Adapter needs type cm_adapter in both branches (its up-projection is "
           "shared by the video and the text adapters)");
    }
    if (!b->layers.empty()) {
      fail(p + "layers", "the Cross-Modal Adapter goes into every block (expected [])");
    }
    if (b->insertion != AdapterInsertion::kSeq) {
      fail(p + "insertion", "the Cross-Modal Adapter reads the sub-layer output (expected seq)");
    }
  }
  if (video.mid_dim != text.mid_dim) {
    fail("adapters.text.mid_dim",
         fmt::format("{} differs from adapters.video.mid_dim {} (the Cross-Modal Adapter's shared "
                     "up-projection reads the same r in both branches)",
                     text.mid_dim, video.mid_dim));
  }
  if (vision_layers > text_layers) {
    fail("adapters.video.type",
         fmt::format("the Cross-Modal Adapter shares up-projections per text block, but the "
                     "vision tower has more blocks ({} > {})",
                     vision_layers, text_layers));
  }
  if (cm_share_dim < 0 || cm_share_dim > std::min(vision_width, text_width)) {
    fail("adapters.cm_share_dim", fmt::format("{} (expected 0 to {}, the smaller width)",
                                              cm_share_dim, std::min(vision_width, text_width)));
  }
  if (tying.mode != TyingMode::kNone) {
    fail("adapters.tying.mode",
         "the Cross-Modal Adapter shares its own up-projection (expected none)");
  }
}

void AdapterConfig::validate(int64_t vision_width, int64_t text_width, int64_t vision_layers,
                             int64_t text_layers) const {
  auto fail = [](const std::string& key, const std::string& problem) {
    throw ConfigError("", key, problem);
  };
  auto check_branch = [&fail](const BranchAdapterConfig& b, const std::string& name,
                              int64_t layers) {
    if (!b.enabled) return;
    const std::string p = "adapters." + name + ".";
    const auto type = enum_name(b.type);
    if (b.adapts_attention() && name != "video") {
      fail(p + "type", fmt::format("{} adapts the video branch only (the paper's baselines put a "
                                   "bottleneck adapter in the text encoder)",
                                   type));
    }
    // The authors' placements; other slots would be a different method.
    if (b.type == AdapterType::kConvpass && b.insertion != AdapterInsertion::kLnPar) {
      fail(p + "insertion",
           fmt::format("convpass sits beside each sub-layer and reads its LayerNorm output "
                       "(expected ln_par, got {})",
                       enum_name(b.insertion)));
    }
    if (b.type == AdapterType::kStAdapter && b.insertion != AdapterInsertion::kPre) {
      fail(p + "insertion",
           fmt::format("st_adapter runs in series before each sub-layer (expected pre, got {})",
                       enum_name(b.insertion)));
    }
    if (b.type == AdapterType::kStAdapter) {
      if (b.kernel.size() != 3 ||
          std::any_of(b.kernel.begin(), b.kernel.end(), [](int64_t k) { return k % 2 != 1; })) {
        // Odd sizes: the authors' padding k // 2 keeps the frame count and the grid.
        fail(p + "kernel", fmt::format("expected 3 odd sizes (frames, rows, columns), got [{}]",
                                       fmt::join(b.kernel, ", ")));
      }
    }
    if (b.mid_dim <= 0) fail(p + "mid_dim", "must be positive");
    if (b.type == AdapterType::kMv && (b.heads <= 0 || b.mid_dim % b.heads != 0)) {
      fail(p + "heads", fmt::format("{} does not divide mid_dim {}", b.heads, b.mid_dim));
    }
    for (auto l : b.layers) {
      if (l < 0 || l >= layers) {
        fail(p + "layers", fmt::format("block {} does not exist (the model has {})", l, layers));
      }
    }
    if (b.input_norm && b.type != AdapterType::kMv) {
      fail(p + "input_norm",
           fmt::format("only the mv adapter has an input LayerNorm (type is '{}')", type));
    }
  };
  check_branch(video, "video", vision_layers);
  check_branch(text, "text", text_layers);
  if (uses_cm_adapter()) validate_cm_adapter(vision_width, text_width, vision_layers, text_layers);
  if (lora.rank < 0) fail("adapters.lora.rank", fmt::format("{} is negative", lora.rank));
  if (lora.enabled()) {
    if (!(lora.alpha > 0)) {
      fail("adapters.lora.alpha", fmt::format("{} must be positive", lora.alpha));
    }
    if (!(lora.dropout >= 0 && lora.dropout < 1)) {
      fail("adapters.lora.dropout", fmt::format("{} (expected >= 0 and < 1)", lora.dropout));
    }
    if (lora.targets.empty()) {
      fail("adapters.lora.targets",
           fmt::format("empty (expected some of {})", enum_choices<AttentionProjection>()));
    }
    for (auto it = lora.targets.begin(); it != lora.targets.end(); ++it) {
      if (std::find(lora.targets.begin(), it, *it) != it) {
        fail("adapters.lora.targets", fmt::format("'{}' is listed twice", enum_name(*it)));
      }
    }
    for (auto [width, name] : {std::pair{vision_width, "video"}, std::pair{text_width, "text"}}) {
      if (lora.on_tower(std::string(name) == "video") && lora.rank > width) {
        fail("adapters.lora.rank",
             fmt::format("{} exceeds the {} width {}", lora.rank, name, width));
      }
    }
  }
  if (tying.mode == TyingMode::kNone) return;
  if (!video.enabled || !text.enabled) {
    fail("adapters.tying", "Cross-Modality Tying needs adapters in both branches");
  }
  for (auto l : tying.layers) {
    if (!video.has_adapter(l) || !text.has_adapter(l)) {
      fail("adapters.tying.layers", fmt::format("block {} has no adapter in both branches", l));
    }
  }
  if (tying.mode == TyingMode::kKronecker) {
    const int64_t k = tying.kron_k;
    for (auto [d, dm, name] : {std::tuple{vision_width, video.mid_dim, "video"},
                               std::tuple{text_width, text.mid_dim, "text"}}) {
      if (k <= 0 || d % k != 0 || dm % k != 0) {
        fail("adapters.tying.kron_k",
             fmt::format("{} must divide the {} widths {} and {}", k, name, d, dm));
      }
    }
  } else if (tying.factor_dim <= 0) {
    fail("adapters.tying.factor_dim", "must be positive");
  }
}

}  // namespace mva
