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
#include "mvadapter/io/json_file.h"
#include "mvadapter/io/safetensors.h"

namespace mva {

namespace {

namespace fs = std::filesystem;

/// A fixture as read from disk, with the list-valued sizes these two modules need.
struct AuthorsFixture {
  fs::path dir;
  nlohmann::ordered_json meta;
  TensorMap io;

  const torch::Tensor& tensor(const std::string& name) const {
    auto it = io.find(name);
    if (it == io.end()) {
      throw Error(fmt::format("{}: missing tensor '{}'", (dir / "io.safetensors").string(), name));
    }
    return it->second;
  }
  int64_t size(const char* key) const {
    const auto& sizes = meta.at("sizes");
    if (!sizes.contains(key) || !sizes.at(key).is_number_integer()) {
      throw Error(fmt::format("{}: sizes.{} is missing or not an integer",
                              (dir / "meta.json").string(), key));
    }
    return sizes.at(key).get<int64_t>();
  }
  std::vector<int64_t> sizes(const char* key) const {
    const auto& sizes = meta.at("sizes");
    if (!sizes.contains(key) || !sizes.at(key).is_array()) {
      throw Error(
          fmt::format("{}: sizes.{} is missing or not a list", (dir / "meta.json").string(), key));
    }
    return sizes.at(key).get<std::vector<int64_t>>();
  }
};

/// Copies every `param.<name>` into the module parameter `<name>` (the module registers the
/// authors' names); a parameter on one side only is an error.
void load_authors_parameters(torch::nn::Module& module, const AuthorsFixture& fx) {
  auto params = module.named_parameters(true);
  std::set<std::string> loaded;
  torch::NoGradGuard no_grad;
  for (const auto& [key, t] : fx.io) {
    if (key.rfind("param.", 0) != 0) continue;
    const auto name = key.substr(6);
    auto* p = params.find(name);
    if (!p) {
      throw Error(fmt::format("{}: '{}' is not a parameter of our {} module",
                              (fx.dir / "io.safetensors").string(), key,
                              fx.meta.value("method", "?")));
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
ReferenceReport run_check(torch::nn::Module& module, const AuthorsFixture& fx,
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

  ReferenceReport report;
  report.tolerance = tolerance;
  report.precision = precision;
  report.checks.push_back(compare_tensors("out.y", y, fx.tensor("out.y"), tolerance));
  report.checks.push_back(compare_tensors("out.loss", loss, fx.tensor("out.loss"), tolerance));
  report.checks.push_back(
      compare_tensors("grad.in.x", x.grad(), fx.tensor("grad.in.x"), tolerance));
  for (const auto& p : module.named_parameters(true)) {
    auto g = p.value().grad();
    if (!g.defined()) g = torch::zeros_like(p.value());
    const auto name = "grad." + p.key();
    report.checks.push_back(compare_tensors(name, g, fx.tensor(name), tolerance));
  }
  return report;
}

/// Token count of the authors' input = 1 + grid², the grid square as their code assumes.
void check_square_grid(const AuthorsFixture& fx, int64_t tokens) {
  const auto grid = fx.sizes("grid");
  if (grid.size() != 2 || grid[0] != grid[1] || 1 + grid[0] * grid[1] != tokens) {
    throw Error(fmt::format("{}: sizes.grid [{}] does not match {} tokens ([CLS] + a square grid)",
                            (fx.dir / "meta.json").string(), fmt::join(grid, ", "), tokens));
  }
}

// Convpass: x [B, N, C] (batch first); our module is sequence first.
ReferenceReport check_convpass(const AuthorsFixture& fx, double tolerance,
                               const std::string& precision) {
  BranchAdapterConfig cfg;
  cfg.type = "convpass";
  cfg.mid_dim = fx.size("dim");
  ConvpassAdapter m(fx.size("C"), cfg);
  check_square_grid(fx, fx.size("N_tokens"));
  return run_check(
      *m, fx, [&](const torch::Tensor& x) { return m->adapt(x.transpose(0, 1)).transpose(0, 1); },
      tolerance, precision);
}

// ST-Adapter: x [B·T, L, C] frame-major; the authors' forward returns x with the delta added to
// the patch tokens.
ReferenceReport check_st_adapter(const AuthorsFixture& fx, double tolerance,
                                 const std::string& precision) {
  BranchAdapterConfig cfg;
  cfg.type = "st_adapter";
  cfg.mid_dim = fx.size("adapter_channels");
  cfg.kernel = fx.sizes("kernel_size");
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

AuthorsFixture read_fixture(const fs::path& dir) {
  AuthorsFixture fx;
  fx.dir = dir;
  fx.meta = read_json_file(dir / "meta.json");
  if (!fx.meta.contains("sizes") || !fx.meta.at("sizes").is_object()) {
    throw Error(fmt::format("{}: no 'sizes' object", (dir / "meta.json").string()));
  }
  fx.io = read_safetensors(dir / "io.safetensors").tensors;
  return fx;
}

}  // namespace

ReferenceReport check_convpass_reference(const fs::path& dir, double tolerance,
                                         const std::string& precision) {
  return check_convpass(read_fixture(dir), tolerance, precision);
}

ReferenceReport check_st_adapter_reference(const fs::path& dir, double tolerance,
                                           const std::string& precision) {
  return check_st_adapter(read_fixture(dir), tolerance, precision);
}

}  // namespace mva
