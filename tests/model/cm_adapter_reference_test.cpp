// The Cross-Modal Adapter against the authors' code (tests/fixtures/baselines/cm_adapter).
#include <torch/torch.h>

#include "mvadapter/model/baseline_reference.h"
#include "test_support.h"

namespace mva {
namespace {

std::filesystem::path fixture() {
  return test::fixture_path("baselines/cm_adapter");
}

TEST(CmAdapterReference, Fp64MatchesOutputsAndEveryGradient) {
  auto report = check_baseline_reference(fixture(), 1e-5, "fp64");
  EXPECT_TRUE(report.ok()) << report.to_string();
  // 6 outputs (4 module-level, 2 blocks) + the loss, and one line per grad.* of the fixture:
  // 6 inputs, 10 stacked adapter tensors, 2 x 12 CLIP block tensors.
  EXPECT_EQ(report.checks.size(), 7u + 6u + 10u + 24u) << report.to_string();
}

TEST(CmAdapterReference, Fp32MatchesWithinFloatRounding) {
  // fp32 rounding of a different op order (our fused q/k/v, the adapter residual added last):
  // measured worst 4.1e-7 (fp64: 6.0e-7, the reference's own fp32 rounding).
  auto report = check_baseline_reference(fixture(), 1e-5, "fp32");
  EXPECT_TRUE(report.ok()) << report.to_string();
}

TEST(CmAdapterReference, ChangedSharedGradientIsReportedAsFailure) {
  auto dir = test::temp_dir("cm_adapter_bad");
  for (const char* f : {"meta.json", "README.md"})
    std::filesystem::copy_file(fixture() / f, dir / f);
  auto io = read_safetensors(fixture() / "io.safetensors").tensors;
  auto& g = io.at("grad.vt_adapter_up_share_weight");
  // Half of it, as if only one tower fed the shared tensor.
  g = g.clone() * 0.5;
  write_safetensors(dir / "io.safetensors", io);
  auto report = check_baseline_reference(dir, 1e-5, "fp64");
  EXPECT_FALSE(report.ok());
  for (const auto& c : report.checks) {
    EXPECT_EQ(c.ok, c.name != "grad.vt_adapter_up_share_weight") << c.name;
  }
}

}  // namespace
}  // namespace mva
