#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "mvadapter/clip/transformer.h"
#include "mvadapter/core/enum_names.h"

namespace mva {

/// Which side of which projection Cross-Modality Tying scales (paper App. Table 7).
enum class TyingPosition { kDownIn, kDownOut, kUpIn, kUpOut };
/// down_in, down_out, up_in, up_out (`adapters.tying.position`).
constexpr std::array<EnumName<TyingPosition>, 4> enum_names(TyingPosition) {
  return {{{TyingPosition::kDownIn, "down_in"},
           {TyingPosition::kDownOut, "down_out"},
           {TyingPosition::kUpIn, "up_in"},
           {TyingPosition::kUpOut, "up_out"}}};
}

/// How the video and text adapters of a tied layer share parameters.
enum class TyingMode {
  kNone,       ///< no Cross-Modality Tying
  kScale,      ///< the published form: beta = Linear(f) scales W_down / W_up (official code)
  kKronecker,  ///< W_down = sum_i A_i (x) B_i with A_i shared by both branches
};
/// none, scale, kronecker (`adapters.tying.mode`).
constexpr std::array<EnumName<TyingMode>, 3> enum_names(TyingMode) {
  return {{{TyingMode::kNone, "none"},
           {TyingMode::kScale, "scale"},
           {TyingMode::kKronecker, "kronecker"}}};
}

/// Cross-Modality Tying settings (DESIGN.md §2).
struct TyingConfig {
  TyingMode mode = TyingMode::kScale;
  std::vector<int64_t> layers;  ///< tied block indices; both branches use the same indices
  int64_t factor_dim = 32;      ///< d_m of the shared factor (scale mode)
  TyingPosition position = TyingPosition::kDownIn;
  int64_t kron_k = 4;  ///< number (and size) of the shared A_i (Kronecker mode)

  bool is_tied(int64_t layer) const;
  /// Index K of `layer` among the tied layers (the `prompt.K` it reads); -1 if not tied.
  int64_t tied_index(int64_t layer) const;
};

/// The kind of adapter in one branch (`adapters.{video,text}.type`).
enum class AdapterType {
  kMv,          ///< MV-Adapter (video: Temporal Adaptation; text: bottleneck + causal transformer)
  kBottleneck,  ///< plain down -> activation -> up (AdaptFormer-style baselines)
  /// Cross-Modal Adapter (cm_adapter.h): after the attention and the MLP of every block, in both
  /// branches (their up-projections share channels)
  kCmAdapter,
  kConvpass,   ///< Convpass, beside both sub-layers (video only)
  kStAdapter,  ///< ST-Adapter, before both sub-layers (video only)
};
/// mv, bottleneck, cm_adapter, convpass, st_adapter.
constexpr std::array<EnumName<AdapterType>, 5> enum_names(AdapterType) {
  return {{{AdapterType::kMv, "mv"},
           {AdapterType::kBottleneck, "bottleneck"},
           {AdapterType::kCmAdapter, "cm_adapter"},
           {AdapterType::kConvpass, "convpass"},
           {AdapterType::kStAdapter, "st_adapter"}}};
}

/// The non-linearity of a bottleneck adapter (`adapters.*.activation`).
enum class Activation { kQuickGelu, kRelu };
/// quick_gelu, relu.
constexpr std::array<EnumName<Activation>, 2> enum_names(Activation) {
  return {{{Activation::kQuickGelu, "quick_gelu"}, {Activation::kRelu, "relu"}}};
}

/// What the video adapter's calibration MLP scales (`adapters.video.temporal`, the official
/// `temporal` list): the CLS token, the patches, both or neither.
enum class TemporalCalibration { kNone, kCls, kPatches, kClsAndPatches };
/// "", c, p, cp: the official list's letters joined (the order of parse_temporal_calibration's
/// input does not matter; these are the names written back).
constexpr std::array<EnumName<TemporalCalibration>, 4> enum_names(TemporalCalibration) {
  return {{{TemporalCalibration::kNone, ""},
           {TemporalCalibration::kCls, "c"},
           {TemporalCalibration::kPatches, "p"},
           {TemporalCalibration::kClsAndPatches, "cp"}}};
}
/// Letters c and p, each at most once, in any order ("pc" = "cp"); nullopt for anything else.
std::optional<TemporalCalibration> parse_temporal_calibration(std::string_view letters);
/// True when `t` calibrates the CLS token.
constexpr bool calibrates_cls(TemporalCalibration t) {
  return t == TemporalCalibration::kCls || t == TemporalCalibration::kClsAndPatches;
}
/// True when `t` calibrates the patch tokens.
constexpr bool calibrates_patches(TemporalCalibration t) {
  return t == TemporalCalibration::kPatches || t == TemporalCalibration::kClsAndPatches;
}

/// The adapter of one branch (video or text).
struct BranchAdapterConfig {
  bool enabled = true;
  /// Convpass and ST-Adapter adapt the video branch only.
  AdapterType type = AdapterType::kMv;
  std::vector<int64_t> layers;  ///< blocks with an adapter; empty = every block
  AdapterInsertion insertion = AdapterInsertion::kSeq;
  int64_t mid_dim = 64;  ///< d'
  int64_t heads = 2;     ///< heads of the adapter's transformer block
  double scale = 0.1;
  int64_t seq_len = 12;  ///< frames (video) or words (text): sizes the positional embedding
  /// Video calibration.
  TemporalCalibration temporal = TemporalCalibration::kCls;
  int64_t calibration_dim = 16;  ///< hidden width of the calibration MLP (d'/sigma)
  Activation activation = Activation::kQuickGelu;  ///< bottleneck type only
  /// mv type only: a LayerNorm (weight 1, bias 0) on the adapter's input, the official `lnin`
  /// (its ActivityNet config). The block's own stream is left as it is.
  bool input_norm = false;
  /// st_adapter only: the depth-wise Conv3d kernel over (frames, grid rows, grid columns).
  std::vector<int64_t> kernel = {3, 1, 1};

  bool has_adapter(int64_t layer) const;
  /// True for the types that adapt both sub-layers of a block (convpass, st_adapter): one module
  /// beside or before the attention, another at the MLP.
  bool adapts_attention() const;
};

/// Which encoders get LoRA (`adapters.lora.towers`).
enum class LoraTowers { kBoth, kVideo, kText };
/// both, video, text.
constexpr std::array<EnumName<LoraTowers>, 3> enum_names(LoraTowers) {
  return {
      {{LoraTowers::kBoth, "both"}, {LoraTowers::kVideo, "video"}, {LoraTowers::kText, "text"}}};
}

/// LoRA on the attention projections of CLIP's own blocks (Hu et al. 2021, in `peft`'s form):
/// W x + (alpha / rank) · B A x, A [rank, width] kaiming-uniform, B [width, rank] zero.
struct LoraConfig {
  int64_t rank = 0;      ///< r; 0 = no LoRA
  double alpha = 8.0;    ///< the update is scaled by alpha / rank (peft's default lora_alpha)
  double dropout = 0.0;  ///< on the input of A, while training (peft's lora_dropout)
  /// Projections with an update (written q, k, v, o; o = out_proj).
  std::vector<AttentionProjection> targets = {AttentionProjection::kQuery,
                                              AttentionProjection::kValue};
  LoraTowers towers = LoraTowers::kBoth;

  bool enabled() const { return rank > 0; }
  /// True when LoRA goes into the vision (`video`) or the text tower.
  bool on_tower(bool video) const;
  /// True when projection `p` is one of the targets.
  bool targets_projection(AttentionProjection p) const;
};

/// Every adapter of a RetrievalModel.
struct AdapterConfig {
  BranchAdapterConfig video;
  BranchAdapterConfig text;
  TyingConfig tying;
  LoraConfig lora;
  /// d_s of the Cross-Modal Adapter: the last d_s output channels of every up-projection come
  /// from one tensor shared by the video and the text adapter of that slot (0 = none shared).
  int64_t cm_share_dim = 16;

  /// The paper's recipe for `frames` frames and `words` words on a CLIP with `layers` blocks.
  static AdapterConfig mv_adapter(int64_t frames, int64_t words, int64_t layers = 12);
  /// Reads the official implementation's adapter dict (`official_adapter_cfg` of a fixture's
  /// config.json: `visual.mlp`, `text.mlp`, `modal_dynamic`). Throws Error naming the field.
  static AdapterConfig from_official(const nlohmann::json& cfg, const std::string& source);
  /// Throws ConfigError naming the key (no source) if the settings cannot work (e.g. Kronecker k
  /// not dividing d').
  void validate(int64_t vision_width, int64_t text_width, int64_t vision_layers,
                int64_t text_layers) const;
  /// True when a branch has type cm_adapter (then validate requires it in both).
  bool uses_cm_adapter() const;

 private:
  void validate_cm_adapter(int64_t vision_width, int64_t text_width, int64_t vision_layers,
                           int64_t text_layers) const;
};

/// "down_in" | "down in" | ... -> TyingPosition; throws Error naming `field` otherwise.
TyingPosition parse_tying_position(const std::string& name, const std::string& field);
/// "none" | "scale" | "kronecker" -> TyingMode; throws Error naming `field` otherwise.
TyingMode parse_tying_mode(const std::string& name, const std::string& field);
std::string to_string(TyingPosition p);
std::string to_string(TyingMode m);

}  // namespace mva
