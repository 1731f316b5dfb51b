// The baseline modules against their authors' code: tests/fixtures/baselines/<method> (copied from
// the shared fixtures; README.md there says how they were made).
#include "mvadapter/model/baseline_reference.h"

#include <fstream>

#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "mvadapter/io/safetensors.h"
#include "test_support.h"

namespace mva {
namespace {

// fp32: our op order differs from PyTorch's (the conv on [N, r, g, g] vs theirs, the LND
// transposes, the sum of the loss), so the outputs and gradients move by float rounding only.
constexpr double kFp32Tolerance = 1e-5;

class VisionBaselineReference : public ::testing::TestWithParam<const char*> {};

TEST_P(VisionBaselineReference, MatchesTheAuthorsOutputsAndEveryGradientInFp64) {
  const auto dir = test::fixture_path(std::string("baselines/") + GetParam());
  ASSERT_TRUE(is_baseline_fixture(dir));
  auto report = check_baseline_reference(dir, 1e-5, "fp64");
  EXPECT_TRUE(report.ok()) << report.to_string();
  // out.y, out.loss, grad.in.x and one gradient per parameter of the fixture.
  auto io = read_safetensors(dir / "io.safetensors").tensors;
  int64_t params = 0;
  for (const auto& [name, t] : io) params += name.rfind("param.", 0) == 0;
  EXPECT_EQ(static_cast<int64_t>(report.checks.size()), 3 + params) << report.to_string();
}

TEST_P(VisionBaselineReference, MatchesInFp32WithinFloatRounding) {
  const auto dir = test::fixture_path(std::string("baselines/") + GetParam());
  auto report = check_baseline_reference(dir, kFp32Tolerance, "fp32");
  EXPECT_TRUE(report.ok()) << report.to_string();
}

TEST_P(VisionBaselineReference, AChangedGradientFails) {
  const auto src = test::fixture_path(std::string("baselines/") + GetParam());
  const auto dir = test::temp_dir(std::string("baseline_bad_") + GetParam());
  std::filesystem::copy_file(src / "meta.json", dir / "meta.json",
                             std::filesystem::copy_options::overwrite_existing);
  auto io = read_safetensors(src / "io.safetensors").tensors;
  auto& g = io.at("grad.in.x");
  g = g.clone();
  g.view(-1)[7] += 1e-3 * g.abs().max().item<float>();
  write_safetensors(dir / "io.safetensors", io);
  auto report = check_baseline_reference(dir, 1e-5, "fp64");
  EXPECT_FALSE(report.ok()) << report.to_string();
  for (const auto& c : report.checks) EXPECT_EQ(c.ok, c.name != "grad.in.x") << c.name;
}

INSTANTIATE_TEST_SUITE_P(Methods, VisionBaselineReference,
                         ::testing::Values("convpass", "st_adapter"));

TEST(VisionBaselineReferenceErrors, UnknownMethodNamesTheKnownOnes) {
  const auto dir = test::temp_dir("baseline_unknown");
  std::ofstream(dir / "meta.json") << R"({"method": "hunyuan", "sizes": {}})";
  std::filesystem::copy_file(test::fixture_path("baselines/st_adapter/io.safetensors"),
                             dir / "io.safetensors",
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_ERROR_CONTAINS(check_baseline_reference(dir),
                        "method 'hunyuan' has no reference check (known: convpass, st_adapter, "
                        "cm_adapter, seqtransf)");
}

TEST(VisionBaselineReferenceErrors, AParameterOurModuleLacksIsNamed) {
  const auto src = test::fixture_path("baselines/st_adapter");
  const auto dir = test::temp_dir("baseline_extra_param");
  std::filesystem::copy_file(src / "meta.json", dir / "meta.json",
                             std::filesystem::copy_options::overwrite_existing);
  auto io = read_safetensors(src / "io.safetensors").tensors;
  io["param.scale"] = torch::ones({1});
  write_safetensors(dir / "io.safetensors", io);
  EXPECT_ERROR_CONTAINS(check_baseline_reference(dir),
                        "'param.scale' is not a parameter of our st_adapter module");
}

TEST(VisionBaselineReferenceErrors, TheMvAdapterLayoutIsNotABaselineFixture) {
  EXPECT_FALSE(is_baseline_fixture(test::fixture_path("mv_adapter_tiny")));
}

}  // namespace
}  // namespace mva
