#include "mvadapter/model/baseline_reference.h"

#include <cmath>
#include <fstream>

#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"

namespace mva {

TensorMap BaselineFixture::params() const {
  TensorMap out;
  for (const auto& [name, t] : io) {
    if (name.rfind("param.", 0) == 0) out.emplace(name.substr(6), t);
  }
  return out;
}

int64_t BaselineFixture::size(const std::string& key) const {
  const auto& sizes = meta.value("sizes", nlohmann::json::object());
  if (!sizes.contains(key) || !sizes.at(key).is_number_integer()) {
    throw Error(
        fmt::format("{}: sizes.{}: missing or not an integer", (dir / "meta.json").string(), key));
  }
  return sizes.at(key).get<int64_t>();
}

std::vector<int64_t> BaselineFixture::size_list(const std::string& key) const {
  const auto& sizes = meta.value("sizes", nlohmann::json::object());
  if (!sizes.contains(key) || !sizes.at(key).is_array()) {
    throw Error(
        fmt::format("{}: sizes.{}: missing or not a list", (dir / "meta.json").string(), key));
  }
  return sizes.at(key).get<std::vector<int64_t>>();
}

const torch::Tensor& BaselineFixture::tensor(const std::string& name) const {
  auto it = io.find(name);
  if (it == io.end()) {
    throw Error(fmt::format("{}: missing tensor '{}'", (dir / "io.safetensors").string(), name));
  }
  return it->second;
}

ReferenceReport compare_with_baseline(const BaselineFixture& fx,
                                      const std::map<std::string, torch::Tensor>& outputs,
                                      const std::map<std::string, torch::Tensor>& inputs,
                                      const std::map<std::string, torch::Tensor>& params,
                                      double tolerance, const std::string& precision) {
  ReferenceReport report;
  report.tolerance = tolerance;
  report.precision = precision;
  for (const auto& [name, got] : outputs) {
    report.checks.push_back(
        compare_tensors("out." + name, got, fx.tensor("out." + name), tolerance));
  }
  int64_t grads = 0;
  for (const auto& [name, want] : fx.io) {
    if (name.rfind("grad.", 0) != 0) continue;
    ++grads;
    const bool input = name.rfind("grad.in.", 0) == 0;
    const auto& pool = input ? inputs : params;
    auto it = pool.find(name.substr(input ? 8 : 5));
    if (it == pool.end()) {
      report.checks.push_back({name + " (no such tensor here)", INFINITY, INFINITY, false});
      continue;
    }
    auto g = it->second.grad();
    // No gradient at all means the graph never reached it: as wrong as a zero where the
    // reference has values, and right where the reference is zero too.
    if (!g.defined()) g = torch::zeros_like(it->second);
    report.checks.push_back(compare_tensors(name, g, want, tolerance));
  }
  if (grads == 0) {
    throw Error(fmt::format("{}: holds no grad.* tensors", (fx.dir / "io.safetensors").string()));
  }
  return report;
}

bool is_baseline_fixture(const std::filesystem::path& dir) {
  return std::filesystem::exists(dir / "meta.json");
}

BaselineFixture load_baseline_fixture(const std::filesystem::path& dir) {
  BaselineFixture fx;
  fx.dir = dir;
  const auto meta_path = dir / "meta.json";
  std::ifstream in(meta_path);
  if (!in) throw Error(fmt::format("{}: cannot open", meta_path.string()));
  try {
    fx.meta = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: not valid JSON ({})", meta_path.string(), e.what()));
  }
  if (!fx.meta.contains("method") || !fx.meta.at("method").is_string()) {
    throw Error(fmt::format("{}: missing field 'method'", meta_path.string()));
  }
  fx.method = fx.meta.at("method").get<std::string>();
  fx.io = read_safetensors(dir / "io.safetensors").tensors;
  return fx;
}

ReferenceReport check_baseline_reference(const std::filesystem::path& dir, double tolerance,
                                         const std::string& precision) {
  const auto fx = load_baseline_fixture(dir);
  if (fx.method == "convpass") return check_convpass_reference(fx, tolerance, precision);
  if (fx.method == "st_adapter") return check_st_adapter_reference(fx, tolerance, precision);
  if (fx.method == "cm_adapter") return check_cm_adapter_reference(fx, tolerance, precision);
  if (fx.method == "seqtransf") return check_seqtransf_reference(fx, tolerance, precision);
  throw Error(
      fmt::format("{}: method '{}' has no reference check (known: convpass, st_adapter, "
                  "cm_adapter, seqtransf)",
                  (dir / "meta.json").string(), fx.method));
}

}  // namespace mva
