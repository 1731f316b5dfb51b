// ST-Adapter as a module: identity at initialisation (the authors' init, meta.json of the shared
// fixture) and the frame mask (ours; the authors' module has none). Equality with the authors'
// forward and backward is tests/model/baseline_reference_test.cpp.
#include "mvadapter/adapters/st_adapter.h"

#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "mvadapter/io/json_file.h"
#include "test_support.h"

namespace mva {
namespace {

BranchAdapterConfig st_config(int64_t ca, std::vector<int64_t> kernel = {3, 1, 1}) {
  BranchAdapterConfig c;
  c.type = AdapterType::kStAdapter;
  c.insertion = AdapterInsertion::kPre;
  c.mid_dim = ca;
  c.kernel = std::move(kernel);
  return c;
}

void randomise(torch::nn::Module& m) {
  torch::NoGradGuard no_grad;
  for (auto& p : m.parameters()) p.normal_(0, 0.5);
}

TEST(StAdapter, IsTheIdentityAtInitialisationAsTheAuthorsMeasured) {
  auto meta = read_json_file(test::fixture_path("baselines/st_adapter/meta.json"));
  const auto& measured = meta["original_init"]["measured"];
  const int64_t C = meta["sizes"]["C"], ca = meta["sizes"]["adapter_channels"];
  torch::manual_seed(5);
  StAdapter m(C, st_config(ca, meta["sizes"]["kernel_size"].get<std::vector<int64_t>>()));
  auto params = m->named_parameters();
  EXPECT_EQ(params.size(), measured.size());
  for (const auto& [name, stats] : measured.items()) {
    ASSERT_TRUE(params.contains(name)) << name << " is not one of our parameters";
    const auto& p = params[name];
    EXPECT_EQ(p.sizes().vec(), stats["shape"].get<std::vector<int64_t>>()) << name;
    const double zero = p.eq(0).sum().item<double>() / static_cast<double>(p.numel());
    EXPECT_NEAR(zero, stats["frac_zero"].get<double>(), 1e-6) << name;
  }
  // fc2 is NOT zero (nn.Linear's default, U(-1/sqrt(Ca), 1/sqrt(Ca))): only the conv is.
  EXPECT_GT(m->fc2->weight.abs().max().item<double>(), 0.0);
  EXPECT_LE(m->fc2->weight.abs().max().item<double>(), 1.0 / std::sqrt(static_cast<double>(ca)));

  auto x = torch::randn({1 + 16, 2 * 4, C});
  auto mask = torch::ones({2, 4}, torch::kLong);
  EXPECT_EQ(m->forward(x, AdapterContext{mask}).abs().max().item<double>(), 0.0);
}

TEST(StAdapter, LeavesClsUnchanged) {
  torch::manual_seed(5);
  StAdapter m(16, st_config(4));
  randomise(*m);
  auto d = m->delta(torch::randn({1 + 9, 2 * 3, 16}), 3);
  EXPECT_EQ(d[0].abs().max().item<double>(), 0.0);
  EXPECT_GT(d.narrow(0, 1, 9).abs().max().item<double>(), 0.0);
}

TEST(StAdapter, PaddedFramesChangeNothingInRealFrames) {
  torch::manual_seed(5);
  const int64_t B = 2, T = 4, P = 4, C = 16;
  StAdapter m(C, st_config(4));
  randomise(*m);
  // Video 0: 4 real frames; video 1: 2 real frames then 2 padded ones.
  auto mask = torch::tensor({{1, 1, 1, 1}, {1, 1, 0, 0}}, torch::kLong);
  auto x = torch::randn({1 + P, B * T, C});
  auto other = x.clone();
  other.narrow(1, B * T - 2, 2).normal_(0, 3.0);  // other content in the padded frames
  const auto real = torch::tensor({0, 1, 2, 3, 4, 5});
  auto a = m->forward(x, AdapterContext{mask}).index_select(1, real);
  auto b = m->forward(other, AdapterContext{mask}).index_select(1, real);
  EXPECT_TENSOR_NEAR(b, a, 0.0);
  // The same as a clip that ends at its last real frame (zero padding beyond the ends).
  auto short_clip = m->delta(x.narrow(1, T, 2), 2);
  EXPECT_TENSOR_NEAR(a.narrow(1, T, 2), short_clip, 1e-6);
  // Negative control: without the mask, the padded frames leak into frame 1 of video 1.
  auto leak_a = m->delta(x, T).index_select(1, real);
  auto leak_b = m->delta(other, T).index_select(1, real);
  EXPECT_GT(test::relative_error(leak_b, leak_a), 1e-3);
}

TEST(StAdapter, RejectsRowsThatAreNotWholeClips) {
  StAdapter m(8, st_config(2));
  EXPECT_ERROR_CONTAINS(m->delta(torch::randn({5, 6, 8}), 4), "not whole clips of 4 frames");
}

}  // namespace
}  // namespace mva
