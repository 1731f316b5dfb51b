// CLIP4Clip's seqTransf head against the authors' code (tests/fixtures/baselines/seqtransf).
#include <torch/torch.h>

#include "mvadapter/model/baseline_reference.h"
#include "test_support.h"

namespace mva {
namespace {

std::filesystem::path fixture() {
  return test::fixture_path("baselines/seqtransf");
}

TEST(SeqTransfReference, Fp64MatchesOutputsAndEveryGradient) {
  auto report = check_baseline_reference(fixture(), 1e-5, "fp64");
  EXPECT_TRUE(report.ok()) << report.to_string();
  // 5 intermediates/outputs + the loss; grads: 2 inputs, logit_scale, positions, 2 x 12 blocks.
  EXPECT_EQ(report.checks.size(), 6u + 2u + 1u + 1u + 24u) << report.to_string();
}

TEST(SeqTransfReference, Fp32MatchesWithinFloatRounding) {
  auto report = check_baseline_reference(fixture(), 1e-5, "fp32");
  EXPECT_TRUE(report.ok()) << report.to_string();
}

TEST(SeqTransfReference, ChangedPositionGradientIsReportedAsFailure) {
  auto dir = test::temp_dir("seqtransf_bad");
  std::filesystem::copy_file(fixture() / "meta.json", dir / "meta.json");
  auto io = read_safetensors(fixture() / "io.safetensors").tensors;
  auto& g = io.at("grad.frame_position_embeddings.weight");
  g = g.clone() + 0.5 * g.abs().max();
  write_safetensors(dir / "io.safetensors", io);
  auto report = check_baseline_reference(dir, 1e-5, "fp64");
  EXPECT_FALSE(report.ok());
  for (const auto& c : report.checks) {
    EXPECT_EQ(c.ok, c.name != "grad.frame_position_embeddings.weight") << c.name;
  }
}

}  // namespace
}  // namespace mva
