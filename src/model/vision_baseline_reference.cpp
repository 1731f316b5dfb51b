// Convpass and ST-Adapter against their authors' golden tensors (tests/fixtures/baselines).
#include "mvadapter/model/baseline_reference.h"

#include <cmath>
#include <functional>
#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include "mvadapter/adapters/convpass_adapter.h"
#include "mvadapter/adapters/st_adapter.h"
#include "mvadapter/core/error.h"
#include "mvadapter/io/safetensors.h"

namespace mva {

namespace {


/// Copies every `param.<name>` into the module parameter `<name>` (the module registers the
/// authors' names); a parameter on one side only is an error.
void load_authors_parameters(torch::nn::Module& module, const BaselineFixture& fx) {
  auto params = module.named_parameters(true);
  std::set<std::string> loaded;
  torch::NoGradGuard no_grad;
  for (const auto& [key, t] : fx.io) {
    if (key.rfind("param.", 0) != 0) continue;
    const auto name = key.substr(6);
    auto* p = params.find(name);
    if (!p) {
      throw Error(fmt::format("{}: '{}' is not a parameter of our {} module",
                              (fx.dir / "io.safetensors").string(), key, fx.method));
    }
    if (p->sizes() != t.sizes()) {
      throw Error(fmt::format("{}: '{}' has shape [{}], our module's is [{}]",
                              (fx.dir / "io.safetensors").string(), key, fmt::join(t.sizes(), ", "),
                              fmt::join(p->sizes(), ", ")));
    }
    p->copy_(t);
    loaded.insert(name);
  }
  for (const auto& p : params) {
    if (!loaded.count(p.key())) {
      throw Error(fmt::format("{}: no 'param.{}' for our module",
                              (fx.dir / "io.safetensors").string(), p.key()));
    }
  }
}

/// `forward` maps the fixture's input x (authors' layout, requires_grad) to their output y.
ReferenceReport run_check(torch::nn::Module& module, const BaselineFixture& fx,
                          const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                          double tolerance, const std::string& precision) {
  const auto dtype = reference_dtype(precision);
  load_authors_parameters(module, fx);
  module.to(dtype);
  // The fixtures ran in eval mode (Convpass's dropout off).
  module.eval();
  auto x = fx.tensor("in.x").to(dtype).detach().requires_grad_(true);
  auto y = forward(x);
  auto loss = (y * fx.tensor("in.loss_weight").to(dtype)).sum();
  loss.backward();

  std::map<std::string, torch::Tensor> params;
  for (const auto& p : module.named_parameters(true)) params.emplace(p.key(), p.value());
  return compare_with_baseline(fx, {{"y", y}, {"loss", loss}}, {{"x", x}}, params, tolerance,
                               precision);
}

/// Token count of the authors' input = 1 + grid², the grid square as their code assumes.
void check_square_grid(const BaselineFixture& fx, int64_t tokens) {
  const auto grid = fx.size_list("grid");
  if (grid.size() != 2 || grid[0] != grid[1] || 1 + grid[0] * grid[1] != tokens) {
    throw Error(fmt::format("{}: sizes.grid [{}] does not match {} tokens ([CLS] + a square grid)",
                            (fx.dir / "meta.json").string(), fmt::join(grid, ", "), tokens));
  }
}

// Convpass: x [B, N, C] (batch first); our module is sequence first.
ReferenceReport check_convpass(const BaselineFixture& fx, double tolerance,
                               const std::string& precision) {
  BranchAdapterConfig cfg;
  cfg.type = AdapterType::kConvpass;
  cfg.mid_dim = fx.size("dim");
  ConvpassAdapter m(fx.size("C"), cfg);
  check_square_grid(fx, fx.size("N_tokens"));
  return run_check(
      *m, fx, [&](const torch::Tensor& x) { return m->adapt(x.transpose(0, 1)).transpose(0, 1); },
      tolerance, precision);
}

// ST-Adapter: x [B·T, L, C] frame-major; the authors' forward returns x with the delta added to
// the patch tokens.
ReferenceReport check_st_adapter(const BaselineFixture& fx, double tolerance,
                                 const std::string& precision) {
  BranchAdapterConfig cfg;
  cfg.type = AdapterType::kStAdapter;
  cfg.mid_dim = fx.size("adapter_channels");
  cfg.kernel = fx.size_list("kernel_size");
  StAdapter m(fx.size("C"), cfg);
  check_square_grid(fx, fx.size("L_tokens"));
  const int64_t frames = fx.io.count("in.T") ? fx.tensor("in.T").item<int64_t>() : fx.size("T");
  return run_check(
      *m, fx,
      [&](const torch::Tensor& x) {
        const auto lnd = x.transpose(0, 1);
        return (lnd + m->delta(lnd, frames)).transpose(0, 1);
      },
      tolerance, precision);
}

}  // namespace

ReferenceReport check_convpass_reference(const BaselineFixture& fx, double tolerance,
                                         const std::string& precision) {
  return check_convpass(fx, tolerance, precision);
}

ReferenceReport check_st_adapter_reference(const BaselineFixture& fx, double tolerance,
                                           const std::string& precision) {
  return check_st_adapter(fx, tolerance, precision);
}

}  // namespace mva
