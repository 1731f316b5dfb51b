#include "mvadapter/train/reference_replay.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include <fmt/format.h>

#include "mvadapter/core/error.h"
#include "mvadapter/dist/gather.h"
#include "mvadapter/io/safetensors.h"

namespace mva {
namespace {

namespace fs = std::filesystem;

// The official runner's clip_grad_norm_(model.parameters(), 1.0): a constant there, not a setting.
constexpr double kOfficialGlobalClip = 1.0;

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw Error(fmt::format("{}: cannot open", path.string()));
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: not valid JSON ({})", path.string(), e.what()));
  }
}

const nlohmann::json& field(const nlohmann::json& j, const std::string& key,
                            const std::string& source, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) {
    throw Error(fmt::format("{}: missing field '{}{}'", source, where, key));
  }
  return j.at(key);
}

double number(const nlohmann::json& j, const std::string& key, const std::string& source,
              const std::string& where) {
  const auto& v = field(j, key, source, where);
  if (!v.is_number()) {
    throw Error(fmt::format("{}: '{}{}' is {}, expected a number", source, where, key, v.dump()));
  }
  return v.get<double>();
}

const torch::Tensor& tensor(const TensorMap& m, const std::string& name, const fs::path& file) {
  auto it = m.find(name);
  if (it == m.end()) throw Error(fmt::format("{}: missing tensor '{}'", file.string(), name));
  return it->second;
}

}  // namespace

ReplayStepFn emulated_ranks_step(int64_t ranks) {
  if (ranks < 1) throw Error(fmt::format("replay: {} ranks, expected >= 1", ranks));
  return [ranks](RetrievalModelImpl& model, const ReplayBatch& b) {
    auto t = model.embed_texts(b.text);
    auto v = model.embed_videos(b.video, b.v_mask);
    // The official W-rank update in one process (train.emulate_world_size): the embeddings'
    // gradient divided by W, logit_scale's not (DESIGN.md §8).
    const double factor = 1.0 / static_cast<double>(ranks);
    t = gather_rows(t, nullptr, factor);
    v = gather_rows(v, nullptr, factor);
    auto loss = contrastive_loss(model.logits(t, v));
    loss.backward();
    return loss.item<double>();
  };
}

OptimizerOptions official_optimizer_options(const nlohmann::json& cfg, const std::string& source) {
  const std::string at = "official_optimizer_cfg.";
  // Our model trains adapters + factors (adapter.*) and every CLIP bias (.*_no_decay); other
  // trainable sets are other recipes the replay does not rebuild.
  const auto& types = field(cfg, "trainable_type", source, at);
  const std::set<std::string> want{"adapter.*", ".*_no_decay"};
  std::set<std::string> got;
  if (types.is_array()) {
    for (const auto& t : types) got.insert(t.is_string() ? t.get<std::string>() : t.dump());
  }
  if (got != want) {
    throw Error(
        fmt::format("{}: '{}trainable_type' is {}, expected [\"adapter.*\", \".*_no_decay\"]",
                    source, at, types.dump()));
  }
  auto group = [&](const char* name) -> const nlohmann::json& {
    return field(cfg, name, source, at);
  };
  auto lr = [&](const char* g) { return number(group(g), "lr", source, at + g + "."); };
  auto wd = [&](const char* g) { return number(group(g), "weight_decay", source, at + g + "."); };
  auto require = [&](bool ok, const std::string& what, const std::string& expected) {
    if (!ok) throw Error(fmt::format("{}: {}{} {}", source, at, what, expected));
  };

  OptimizerOptions o;
  o.kind = OptimizerKind::kBertAdam;
  o.schedule = ScheduleKind::kCosine;  // the official runner's warmup_cosine
  o.betas = {0.9, 0.98};
  o.eps = 1e-6;
  o.max_grad_norm = 1.0;
  o.warmup = number(cfg, "warmup_proportion", source, at);
  o.lr = lr("adapter_decay");
  o.clip_lr = lr("clip_decay");
  o.weight_decay = wd("adapter_decay");
  require(lr("adapter_no_decay") == o.lr, "adapter_no_decay.lr",
          fmt::format("must equal adapter_decay.lr {} (one adapter lr here)", o.lr));
  require(wd("adapter_no_decay") == 0.0, "adapter_no_decay.weight_decay", "must be 0");
  require(lr("clip_no_decay") == o.clip_lr, "clip_no_decay.lr",
          fmt::format("must equal clip_decay.lr {} (one CLIP lr here)", o.clip_lr));
  require(wd("clip_decay") == o.weight_decay, "clip_decay.weight_decay",
          fmt::format("must equal adapter_decay.weight_decay {}", o.weight_decay));
  const double bias_wd = wd("clip_no_decay");
  require(bias_wd == o.weight_decay || bias_wd == 0.0, "clip_no_decay.weight_decay",
          fmt::format("must be {} or 0", o.weight_decay));
  o.decay_clip_biases = bias_wd != 0.0;
  // default and other_*: no parameter of our model falls there (logit_scale is frozen).
  return o;
}

const TensorCheck& ReplayReport::worst_weight() const {
  if (weights.empty()) throw Error("replay: no final weights were compared");
  return *std::max_element(
      weights.begin(), weights.end(),
      [](const TensorCheck& a, const TensorCheck& b) { return a.rel_error < b.rel_error; });
}

bool ReplayReport::ok() const {
  bool all = loss.ok && grad_norm.ok && !weights.empty();
  for (const auto& c : lr) all = all && c.ok;
  for (const auto& c : weights) all = all && c.ok;
  return all;
}

std::string ReplayReport::to_string() const {
  auto line = [](const TensorCheck& c) {
    return fmt::format("{:<72} {:>12.3e} {:>12.3e}  {}\n", c.name, c.max_abs_error, c.rel_error,
                       c.ok ? "ok" : "FAIL");
  };
  std::string s = fmt::format("replay of {}: {} steps, {} rank{} emulated, {}\n", fixture, steps,
                              ranks, ranks == 1 ? "" : "s", precision);
  s += fmt::format("{:<72} {:>12} {:>12}\n", "tensor", "max |err|", "rel err");
  s += line(loss);
  s += line(grad_norm);
  for (const auto& c : lr) s += line(c);
  if (!weights.empty()) {
    const auto& worst = worst_weight();
    s += line(TensorCheck{"worst final weight: " + worst.name, worst.max_abs_error, worst.rel_error,
                          worst.ok});
    for (const auto& c : weights) {
      if (!c.ok && &c != &worst) s += line(c);
    }
  }
  const auto good =
      std::count_if(weights.begin(), weights.end(), [](const TensorCheck& c) { return c.ok; });
  s += fmt::format("{} of {} final tensors within {:.0e} relative ({} replay of {}): {}\n", good,
                   weights.size(), tolerance, precision, fixture, ok() ? "PASS" : "FAIL");
  return s;
}

ReplayReport replay_training_steps(const fs::path& dir, const std::string& fixture,
                                   const ReplayOptions& options) {
  const auto dtype = reference_dtype(options.precision, "precision");
  if (options.ranks < 0) {
    throw Error(fmt::format("replay ranks: {}, expected >= 0 (0 = the fixture's world_size)",
                            options.ranks));
  }
  const auto json_path = dir / (fixture + ".json");
  const auto st_path = dir / (fixture + ".safetensors");
  const auto meta = read_json(json_path);
  const auto ref = read_safetensors(st_path).tensors;
  const double steps_value = number(meta, "steps", json_path.string(), "");
  const auto steps = static_cast<int64_t>(steps_value);
  if (steps < 1 || static_cast<double>(steps) != steps_value) {
    throw Error(fmt::format("{}: 'steps' is {}, expected a whole number >= 1", json_path.string(),
                            steps_value));
  }
  const int64_t world = meta.value("world_size", int64_t{1});

  // dist_steps carries its own global batch; train_steps trains on io.safetensors' batch.
  const bool own_batch = ref.count("in.video") > 0;
  const auto batch_path = own_batch ? st_path : dir / "io.safetensors";
  const TensorMap batch_file = own_batch ? TensorMap() : read_safetensors(batch_path).tensors;
  const TensorMap& inputs = own_batch ? ref : batch_file;
  ReplayBatch batch{tensor(inputs, "in.video", batch_path).to(dtype),
                    tensor(inputs, "in.v_mask", batch_path), tensor(inputs, "in.text", batch_path)};

  auto model = load_reference_model(dir, dtype, /*train_clip_biases=*/true);
  if (auto it = ref.find("init.logit_scale"); it != ref.end()) {
    torch::NoGradGuard no_grad;
    model->clip->logit_scale.fill_(it->second.reshape({}).item<double>());
  }

  auto opt_options = official_optimizer_options(
      field(meta, "official_optimizer_cfg", json_path.string(), ""), json_path.string());
  if (!options.per_tensor_clip) opt_options.max_grad_norm = 0.0;
  if (!options.warmup) opt_options.warmup = 0.0;
  Optimizer optimizer(*model, opt_options, steps);

  ReplayReport report;
  report.fixture = fixture;
  report.precision = options.precision;
  report.tolerance = options.tolerance;
  report.steps = steps;
  report.ranks = options.ranks > 0 ? options.ranks : world;
  const ReplayStepFn step = options.step ? options.step : emulated_ranks_step(report.ranks);

  std::vector<double> losses, norms, lrs;
  for (int64_t k = 0; k < steps; ++k) {
    optimizer.zero_grad();
    losses.push_back(step(*model, batch));
    norms.push_back(
        clip_grad_norm(optimizer.parameters(), options.global_clip ? kOfficialGlobalClip : 0.0));
    lrs.push_back(optimizer.lr_of(ParamGroup::kAdapterDecay));
    optimizer.step();
    if (options.clamp_logit_scale) clamp_logit_scale(*model);
  }

  const double tol = options.tolerance;
  auto as_tensor = [](const std::vector<double>& v) { return torch::tensor(v, torch::kFloat64); };
  report.loss =
      compare_tensors("step.loss", as_tensor(losses), tensor(ref, "step.loss", st_path), tol);
  report.grad_norm = compare_tensors("step.grad_norm", as_tensor(norms),
                                     tensor(ref, "step.grad_norm", st_path), tol);
  if (auto it = ref.find("step.lr_adapter"); it != ref.end()) {
    report.lr.push_back(compare_tensors("step.lr_adapter", as_tensor(lrs), it->second, tol));
  }

  std::set<std::string> compared;
  for (const auto& p : model->named_parameters(/*recurse=*/true)) {
    if (!p.value().requires_grad()) continue;
    const auto names = official_names(p.key());
    const auto parts = p.value().chunk(static_cast<int64_t>(names.size()), 0);
    for (size_t i = 0; i < names.size(); ++i) {
      const std::string key = "final." + names[i];
      compared.insert(key);
      auto it = ref.find(key);
      if (it == ref.end()) {
        report.weights.push_back(
            {key + " (trainable here, absent from the reference)", INFINITY, INFINITY, false});
        continue;
      }
      report.weights.push_back(compare_tensors(key, parts[i], it->second, tol));
    }
  }
  for (const auto& [name, t] : ref) {
    if (name.rfind("final.", 0) == 0 && !compared.count(name)) {
      report.weights.push_back(
          {name + " (in the reference, not trainable here)", INFINITY, INFINITY, false});
    }
  }
  return report;
}

std::vector<std::string> training_fixtures_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const char* name : {"train_steps", "dist_steps"}) {
    if (fs::exists(dir / (std::string(name) + ".safetensors"))) out.emplace_back(name);
  }
  return out;
}

}  // namespace mva
