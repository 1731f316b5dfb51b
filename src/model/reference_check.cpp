#include "mvadapter/model/reference_check.h"

#include <fstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mvadapter/clip/clip_loader.h"
#include "mvadapter/core/error.h"
#include "mvadapter/io/safetensors.h"
#include "mvadapter/model/adapter_checkpoint.h"
#include "mvadapter/model/retrieval_model.h"

namespace mva {

bool ReferenceReport::ok() const {
  for (const auto& c : checks) {
    if (!c.ok) return false;
  }
  return !checks.empty();
}

std::string ReferenceReport::to_string() const {
  std::string s = fmt::format("{:<72} {:>12} {:>12}  {}\n", "tensor", "max |err|", "rel err", "");
  for (const auto& c : checks) {
    s += fmt::format("{:<72} {:>12.3e} {:>12.3e}  {}\n", c.name, c.max_abs_error, c.rel_error,
                     c.ok ? "ok" : "FAIL");
  }
  s += fmt::format(
      "{} of {} tensors within {:.0e} relative ({} forward/backward): {}\n",
      std::count_if(checks.begin(), checks.end(), [](const TensorCheck& c) { return c.ok; }),
      checks.size(), tolerance, precision, ok() ? "PASS" : "FAIL");
  return s;
}

namespace {

std::filesystem::path first_existing(const std::filesystem::path& dir,
                                     std::initializer_list<const char*> names, const char* what) {
  for (const char* n : names) {
    if (std::filesystem::exists(dir / n)) return dir / n;
  }
  throw Error(fmt::format("{}: no {} file (looked for {})", dir.string(), what,
                          fmt::join(names.begin(), names.end(), ", ")));
}

const torch::Tensor& io_tensor(const TensorMap& io, const std::string& name,
                               const std::filesystem::path& file) {
  auto it = io.find(name);
  if (it == io.end()) throw Error(fmt::format("{}: missing tensor '{}'", file.string(), name));
  return it->second;
}

}  // namespace

torch::ScalarType reference_dtype(const std::string& precision, const std::string& field) {
  if (precision == "fp64") return torch::kFloat64;
  if (precision == "fp32") return torch::kFloat32;
  throw Error(fmt::format("{}: '{}' (expected fp64 or fp32)", field, precision));
}

TensorCheck compare_tensors(const std::string& name, const torch::Tensor& got,
                            const torch::Tensor& want, double tol) {
  TensorCheck c;
  c.name = name;
  auto g = got.detach().to(torch::kFloat64);
  auto w = want.detach().to(torch::kFloat64);
  if (g.numel() != w.numel()) {
    c.max_abs_error = c.rel_error = std::numeric_limits<double>::infinity();
    return c;
  }
  g = g.reshape(w.sizes());
  c.max_abs_error = w.numel() ? (g - w).abs().max().item<double>() : 0.0;
  c.rel_error = c.max_abs_error / std::max(w.numel() ? w.abs().max().item<double>() : 0.0, 1e-6);
  c.ok = c.rel_error <= tol;
  return c;
}

RetrievalModel load_reference_model(const std::filesystem::path& dir, torch::ScalarType dtype,
                                    bool train_clip_biases) {
  const auto cfg_path = dir / "config.json";
  std::ifstream in(cfg_path);
  if (!in) throw Error(fmt::format("{}: cannot open", cfg_path.string()));
  nlohmann::json cfg;
  try {
    cfg = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: not valid JSON ({})", cfg_path.string(), e.what()));
  }
  if (!cfg.contains("official_adapter_cfg")) {
    throw Error(fmt::format("{}: missing field 'official_adapter_cfg'", cfg_path.string()));
  }
  RetrievalModelConfig mc;
  mc.adapters = AdapterConfig::from_official(cfg["official_adapter_cfg"], cfg_path.string());
  mc.use_adapters = true;
  mc.trainable = TrainableSet::kAdapters;
  mc.train_clip_biases = train_clip_biases;

  auto clip =
      load_clip(first_existing(dir, {"clip_openai.pt", "clip.safetensors"}, "CLIP weights"));
  RetrievalModel model(clip, mc);
  load_adapter_weights(*model, first_existing(dir, {"adapter.safetensors", "adapter_official.pth"},
                                              "adapter weights"));
  model->to(dtype);
  model->train();
  return model;
}

ReferenceReport verify_reference(const std::filesystem::path& dir, double tolerance,
                                 const std::string& precision) {
  const auto dtype = reference_dtype(precision);
  // The fixtures' forward recipe: adapters and shared factors train, CLIP (biases too) is frozen.
  auto model = load_reference_model(dir, dtype, /*train_clip_biases=*/false);

  const auto io_path = dir / "io.safetensors";
  auto io = read_safetensors(io_path).tensors;
  const auto& video = io_tensor(io, "in.video", io_path);
  const auto& v_mask = io_tensor(io, "in.v_mask", io_path);
  const auto& text = io_tensor(io, "in.text", io_path);

  auto visual = model->encode_frames(video.to(dtype), v_mask);
  auto text_out = model->encode_text(text);
  auto t_emb = text_out / text_out.norm(2, -1, true);
  auto v_emb = RetrievalModelImpl::pool_frames(visual, v_mask);
  auto logits = model->logits(t_emb, v_emb);
  auto loss = contrastive_loss(logits);
  loss.backward();

  ReferenceReport report;
  report.tolerance = tolerance;
  report.precision = precision;
  report.checks.push_back(compare_tensors("out.visual_output", visual,
                                          io_tensor(io, "out.visual_output", io_path), tolerance));
  report.checks.push_back(compare_tensors("out.text_output", text_out,
                                          io_tensor(io, "out.text_output", io_path), tolerance));
  report.checks.push_back(compare_tensors("out.logits_t2v", logits,
                                          io_tensor(io, "out.logits_t2v", io_path), tolerance));
  report.checks.push_back(
      compare_tensors("out.loss", loss, io_tensor(io, "out.loss", io_path), tolerance));
  std::map<std::string, torch::Tensor> params;
  for (const auto& p : model->named_parameters(true)) params.emplace(p.key(), p.value());
  int64_t grads = 0;
  for (const auto& [name, want] : io) {
    if (name.rfind("grad.", 0) != 0) continue;
    const auto pname = name.substr(5);
    auto it = params.find(pname);
    if (it == params.end()) {
      report.checks.push_back({name + " (no such parameter)", INFINITY, INFINITY, false});
      continue;
    }
    auto g = it->second.grad();
    if (!g.defined()) g = torch::zeros_like(it->second);
    report.checks.push_back(compare_tensors(name, g, want, tolerance));
    ++grads;
  }
  for (const auto& [name, p] : params) {
    if (p.requires_grad() && !io.count("grad." + name)) {
      report.checks.push_back({"grad." + name + " (trainable here, absent from the reference)",
                               INFINITY, INFINITY, false});
    }
  }
  if (grads == 0) throw Error(fmt::format("{}: holds no grad.* tensors", io_path.string()));
  return report;
}

}  // namespace mva
