// Convpass as a module: the authors' initialisation (meta.json of the shared fixture) and the
// [CLS]/patch convolution. Equality with the authors' forward and backward is
// tests/model/baseline_reference_test.cpp.
#include "mvadapter/adapters/convpass_adapter.h"

#include <cmath>

#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "mvadapter/io/json_file.h"
#include "test_support.h"

namespace mva {
namespace {

BranchAdapterConfig convpass_config(int64_t r, double scale = 0.1) {
  BranchAdapterConfig c;
  c.type = AdapterType::kConvpass;
  c.insertion = AdapterInsertion::kLnPar;
  c.mid_dim = r;
  c.scale = scale;
  return c;
}

TEST(ConvpassAdapter, InitialisesAsTheAuthorsMeasured) {
  auto meta = read_json_file(test::fixture_path("baselines/convpass/meta.json"));
  const auto& measured = meta["original_init"]["measured"];
  const int64_t C = meta["sizes"]["C"], r = meta["sizes"]["dim"];
  torch::manual_seed(5);
  ConvpassAdapter m(C, convpass_config(r));
  auto params = m->named_parameters();
  for (const auto& [name, stats] : measured.items()) {
    ASSERT_TRUE(params.contains(name)) << name << " is not one of our parameters";
    const auto& p = params[name];
    EXPECT_EQ(p.sizes().vec(), stats["shape"].get<std::vector<int64_t>>()) << name;
    const double n = static_cast<double>(p.numel());
    EXPECT_NEAR(p.eq(0).sum().item<double>() / n, stats["frac_zero"].get<double>(), 1e-6) << name;
    EXPECT_NEAR(p.eq(1).sum().item<double>() / n, stats["frac_one"].get<double>(), 1e-6) << name;
  }
  // The conv is the identity on its centre tap: weight[:, :, 1, 1] = I.
  EXPECT_TENSOR_NEAR(m->adapter_conv->weight.select(3, 1).select(2, 1), torch::eye(r), 0.0);
  // xavier_uniform on [r, C]: U(-sqrt(6 / (C + r)), +), std = bound / sqrt(3).
  const double bound = std::sqrt(6.0 / static_cast<double>(C + r));
  const auto& w = m->adapter_down->weight;
  EXPECT_LE(w.abs().max().item<double>(), bound);
  EXPECT_NEAR(w.std().item<double>(), measured["adapter_down.weight"]["std"].get<double>(), 2e-3);
}

TEST(ConvpassAdapter, OutputIsZeroAtInitialisation) {
  torch::manual_seed(5);
  ConvpassAdapter m(64, convpass_config(8, 10.0));
  auto x = torch::randn({1 + 16, 3, 64});
  auto out = m->forward(x, AdapterContext{});
  EXPECT_EQ(out.sizes(), x.sizes());
  EXPECT_EQ(out.abs().max().item<double>(), 0.0);
}

TEST(ConvpassAdapter, ClsUsesTheCentreTapAndPatchesTheirNeighbours) {
  // r = 1, width 1, down = up = identity-like so the conv acts on x itself (QuickGELU between).
  torch::manual_seed(5);
  ConvpassAdapter m(1, convpass_config(1, 2.0));
  {
    torch::NoGradGuard no_grad;
    m->adapter_down->weight.fill_(1.0);
    m->adapter_up->weight.fill_(1.0);
    m->adapter_conv->weight.copy_(torch::arange(9.0).reshape({1, 1, 3, 3}));
    m->adapter_conv->bias.fill_(0.5);
  }
  m->eval();  // no dropout
  // [CLS] + a 2x2 grid, one sample.
  auto x = torch::tensor({0.3, -0.2, 0.7, 1.1, -0.4}).reshape({5, 1, 1});
  auto d = quick_gelu(x).flatten();
  const auto k = [](int i, int j) { return static_cast<double>(3 * i + j); };
  std::vector<double> pre = {k(1, 1) * d[0].item<double>() + 0.5};
  // Patch (i, j) of the grid sees its neighbours through taps (1 + di, 1 + dj).
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) {
      double s = 0.5;
      for (int a = 0; a < 2; ++a) {
        for (int b = 0; b < 2; ++b) s += k(1 + a - i, 1 + b - j) * d[1 + 2 * a + b].item<double>();
      }
      pre.push_back(s);
    }
  }
  auto want =
      2.0 * quick_gelu(torch::tensor(pre, torch::kFloat64)).reshape({5, 1, 1}).to(torch::kFloat32);
  EXPECT_TENSOR_NEAR(m->forward(x, AdapterContext{}), want, 1e-6);
}

TEST(ConvpassAdapter, RejectsTokensThatAreNotASquareGrid) {
  ConvpassAdapter m(8, convpass_config(2));
  EXPECT_ERROR_CONTAINS(m->adapt(torch::randn({1 + 6, 2, 8})), "not [CLS] + a square grid");
}

}  // namespace
}  // namespace mva
