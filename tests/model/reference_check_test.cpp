#include "mvadapter/model/reference_check.h"

#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "mvadapter/model/adapter_checkpoint.h"
#include "test_support.h"

namespace mva {
namespace {

TEST(VerifyReference, TinyFixtureMatchesOfficialOutputsLossAndEveryGradient) {
  auto report = verify_reference(test::fixture_path("mv_adapter_tiny"), 1e-5);
  EXPECT_TRUE(report.ok()) << report.to_string();
  // 4 outputs + one gradient per trainable tensor of the fixture (official names, no aliases).
  auto io = read_safetensors(test::fixture_path("mv_adapter_tiny/io.safetensors")).tensors;
  int64_t grads = 0;
  for (const auto& [name, t] : io) grads += name.rfind("grad.", 0) == 0;
  EXPECT_EQ(static_cast<int64_t>(report.checks.size()), 4 + grads) << report.to_string();
}

TEST(VerifyReference, Fp32PathMatchesWithinFloatRounding) {
  // In fp32 our op order differs from PyTorch's (fused q/k/v, scaling), so the smallest
  // gradients move by ~1e-5 of their scale; everything stays within 5e-5.
  auto report = verify_reference(test::fixture_path("mv_adapter_tiny"), 5e-5, "fp32");
  EXPECT_TRUE(report.ok()) << report.to_string();
}

TEST(VerifyReference, OfficialPthCheckpointGivesTheSameTensorsAsSafetensors) {
  auto dir = test::fixture_path("mv_adapter_tiny");
  auto from_pth = read_adapter_weights(dir / "adapter_official.pth");
  auto from_st = read_adapter_weights(dir / "adapter.safetensors");
  ASSERT_EQ(from_pth.size(), from_st.size());
  for (const auto& [name, t] : from_st) {
    ASSERT_TRUE(from_pth.count(name)) << name;
    EXPECT_TRUE(torch::equal(from_pth.at(name), t)) << name;
  }
  // The alias of the shared factor is folded into clip.prompt.0.
  EXPECT_TRUE(from_st.count("clip.prompt.0"));
  EXPECT_FALSE(from_st.count("clip.visual.transformer.resblocks.1.mlp.adapter.shared_factor"));
}

TEST(VerifyReference, ConvertWritesSafetensorsThatVerifyToo) {
  auto src = test::fixture_path("mv_adapter_tiny");
  auto dir = test::temp_dir("convert");
  for (const char* f : {"config.json", "clip.safetensors", "io.safetensors"}) {
    std::filesystem::copy_file(src / f, dir / f);
  }
  auto n = convert_official_checkpoint(src / "adapter_official.pth", dir / "adapter.safetensors");
  EXPECT_GT(n, 0);
  auto report = verify_reference(dir, 1e-5);
  EXPECT_TRUE(report.ok()) << report.to_string();
}

TEST(VerifyReference, ChangedGradientIsReportedAsFailure) {
  auto src = test::fixture_path("mv_adapter_tiny");
  auto dir = test::temp_dir("verify_bad");
  for (const char* f : {"config.json", "clip.safetensors", "adapter.safetensors"}) {
    std::filesystem::copy_file(src / f, dir / f);
  }
  auto io = read_safetensors(src / "io.safetensors").tensors;
  auto& g = io.at("grad.clip.prompt.0");
  g = g.clone() + 0.5 * g.abs().max();
  write_safetensors(dir / "io.safetensors", io);
  auto report = verify_reference(dir, 1e-5);
  EXPECT_FALSE(report.ok());
  for (const auto& c : report.checks) EXPECT_EQ(c.ok, c.name != "grad.clip.prompt.0") << c.name;
}

TEST(VerifyReference, MissingFilesAreNamed) {
  auto dir = test::temp_dir("verify_empty");
  EXPECT_ERROR_CONTAINS(verify_reference(dir), "config.json: cannot open");
}

}  // namespace
}  // namespace mva
