// The option enums of AdapterConfig: their names, the official-config reader and the key that a
// validation error carries.
#include "mvadapter/adapters/adapter_config.h"

#include <nlohmann/json.hpp>

#include "mvadapter/core/error.h"
#include "test_support.h"

namespace mva {
namespace {

TEST(TemporalCalibration, LettersInAnyOrderEachAtMostOnce) {
  EXPECT_EQ(parse_temporal_calibration(""), TemporalCalibration::kNone);
  EXPECT_EQ(parse_temporal_calibration("c"), TemporalCalibration::kCls);
  EXPECT_EQ(parse_temporal_calibration("p"), TemporalCalibration::kPatches);
  EXPECT_EQ(parse_temporal_calibration("cp"), TemporalCalibration::kClsAndPatches);
  EXPECT_EQ(parse_temporal_calibration("pc"), TemporalCalibration::kClsAndPatches);
  for (const char* bad : {"cc", "x", "cpp", "c ", "C"}) {
    EXPECT_FALSE(parse_temporal_calibration(bad)) << bad;
  }
}

TEST(TemporalCalibration, NamesAreTheLettersAndSayWhatIsCalibrated) {
  EXPECT_EQ(enum_name(TemporalCalibration::kClsAndPatches), "cp");
  EXPECT_EQ(enum_name(TemporalCalibration::kNone), "");
  EXPECT_TRUE(calibrates_cls(TemporalCalibration::kClsAndPatches));
  EXPECT_TRUE(calibrates_patches(TemporalCalibration::kClsAndPatches));
  EXPECT_TRUE(calibrates_cls(TemporalCalibration::kCls));
  EXPECT_FALSE(calibrates_patches(TemporalCalibration::kCls));
  EXPECT_FALSE(calibrates_cls(TemporalCalibration::kPatches));
  EXPECT_FALSE(calibrates_cls(TemporalCalibration::kNone));
  EXPECT_FALSE(calibrates_patches(TemporalCalibration::kNone));
}

TEST(AdapterConfigNames, TypesAndTyingReadTheirTables) {
  EXPECT_EQ(enum_name(AdapterType::kStAdapter), "st_adapter");
  EXPECT_EQ(parse_enum<AdapterType>("cm_adapter", "type"), AdapterType::kCmAdapter);
  EXPECT_EQ(enum_choices<AdapterType>(), "mv, bottleneck, cm_adapter, convpass, st_adapter");
  // The official configs write the position with a space.
  EXPECT_EQ(parse_tying_position("down in", "position"), TyingPosition::kDownIn);
  EXPECT_EQ(parse_tying_position("up_out", "position"), TyingPosition::kUpOut);
  EXPECT_ERROR_CONTAINS(parse_tying_position("middle", "--tying-position"),
                        "--tying-position: 'middle' is not a tying position (expected down_in, "
                        "down_out, up_in or up_out)");
  EXPECT_ERROR_CONTAINS(
      parse_tying_mode("shared", "--tying"),
      "--tying: 'shared' is not a tying mode (expected none, scale or kronecker)");
  EXPECT_EQ(to_string(TyingMode::kKronecker), "kronecker");
}

TEST(AdapterConfigOfficial, TemporalListBecomesOneCalibration) {
  auto cfg = nlohmann::json::parse(R"({
    "visual": {"mlp": {"type": "VideoAdapter", "adapter_idx": [0, 1], "temporal": ["p", "c"]}},
    "text": {"mlp": {"type": "TextTransfAdapter", "adapter_idx": [0, 1]}}})");
  const auto a = AdapterConfig::from_official(cfg, "cfg.py");
  EXPECT_EQ(a.video.temporal, TemporalCalibration::kClsAndPatches);
  EXPECT_EQ(a.video.type, AdapterType::kMv);
  EXPECT_EQ(a.text.type, AdapterType::kMv);
  cfg["visual"]["mlp"]["temporal"] = {"c", "c"};
  EXPECT_ERROR_CONTAINS(AdapterConfig::from_official(cfg, "cfg.py"),
                        "cfg.py: visual.mlp.temporal: 'cc' (expected a combination of c and p)");
}

TEST(AdapterConfigValidate, ErrorsAreConfigErrorsNamingTheKey) {
  AdapterConfig a = AdapterConfig::mv_adapter(3, 3, 2);
  a.tying.mode = TyingMode::kKronecker;
  a.tying.kron_k = 5;
  try {
    a.validate(64, 32, 2, 2);
    FAIL() << "kron_k 5 accepted for widths 64 and 32";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "adapters.tying.kron_k");
    EXPECT_EQ(e.source(), "");
    EXPECT_EQ(e.problem(), "5 must divide the video widths 64 and 64");
    EXPECT_STREQ(e.what(), "adapters.tying.kron_k: 5 must divide the video widths 64 and 64");
  }
  a.tying.kron_k = 4;
  EXPECT_NO_THROW(a.validate(64, 32, 2, 2));
}

}  // namespace
}  // namespace mva
