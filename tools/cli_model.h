#pragma once
// What `encode`, `search` and `serve` share: a run config and its model from CONFIG + --adapter |
// --zero-shot, set up as `eval` does, and the provenance an embedding index records about them.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "mvadapter/config/run_setup.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/runtime.h"
#include "mvadapter/eval/embedding_index.h"
#include "mvadapter/model/adapter_checkpoint.h"

namespace mva::cli {

/// A model ready to embed: the resolved config, the model on its device, the evaluation settings
/// and the tokenizer, and which weights were loaded.
struct CliModel {
  RunConfig cfg;
  RetrievalModel model{nullptr};
  EvaluatorOptions eval;
  TokenizeFn tokenize;
  std::string adapter;  ///< absolute path of the adapter weights, or "zero-shot"
};

/// The options every embedding command takes.
struct ModelArgs {
  std::string config;  ///< empty: the config the adapter checkpoint records
  std::vector<std::string> overrides;
  std::string adapter;
  bool zero_shot = false;
  std::string device;
  std::string clip;  ///< --clip: the CLIP weights (model.clip)
};

/// Whether a positional argument names a run config (YAML) rather than, for `search`, a query.
inline bool is_config_path(const std::string& arg) {
  const auto ext = std::filesystem::path(arg).extension();
  return ext == ".yaml" || ext == ".yml";
}

/// Sends log lines (decode failures, model warnings) to stderr, so stdout holds only the results
/// (spdlog's default logger writes to stdout).
inline void log_to_stderr() {
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "mvadapter", std::make_shared<spdlog::sinks::stderr_color_sink_mt>()));
}

/// Registers [CONFIG], --set, --adapter, --zero-shot, --clip and --device on `cmd`.
inline void add_model_options(CLI::App* cmd, ModelArgs& a) {
  cmd->add_option("config", a.config,
                  "run config (YAML); optional with an --adapter checkpoint of this program, "
                  "which records its run's config");
  // One value per --set, so a QUERY after it is not taken as another override.
  cmd->add_option("--set", a.overrides, "override a config key (repeatable)")
      ->allow_extra_args(false);
  auto* adapter = cmd->add_option("--adapter", a.adapter,
                                  "adapter weights: checkpoints/best.safetensors of a run, or an "
                                  "official .pth");
  auto* zs = cmd->add_flag("--zero-shot", a.zero_shot, "plain CLIP, no adapters");
  adapter->excludes(zs);
  cmd->add_option("--device", a.device, "cpu, cuda or cuda:N (overrides train.device)");
  cmd->add_option("--clip", a.clip, "CLIP weights (overrides model.clip)");
}

/// The run config of `a` (zero-shot: no adapters), checked before any weights are read.
inline RunConfig load_cli_config(const ModelArgs& a, const std::string& command) {
  if (a.adapter.empty() && !a.zero_shot) {
    throw Error(fmt::format("{}: give --adapter CKPT (trained weights) or --zero-shot (plain CLIP)",
                            command));
  }
  if (!a.adapter.empty() && !std::filesystem::exists(a.adapter)) {
    throw Error(fmt::format("--adapter: '{}' does not exist", a.adapter));
  }
  auto overrides = a.overrides;
  if (!a.device.empty()) overrides.push_back("train.device=" + a.device);
  // A path as YAML: a plain scalar cannot hold every file name (': ', '#').
  if (!a.clip.empty()) overrides.push_back("model.clip=" + nlohmann::json(a.clip).dump());
  RunConfig cfg;
  if (!a.config.empty()) {
    cfg = load_run_config(a.config, overrides);
  } else if (a.zero_shot) {
    throw Error(
        fmt::format("{}: give a CONFIG file (--zero-shot has no checkpoint to take the "
                    "configuration from)",
                    command));
  } else if (auto recorded = config_from_checkpoint(a.adapter, overrides)) {
    cfg = std::move(*recorded);
  } else {
    throw Error(
        fmt::format("{}: --adapter {} records no run config (an official or converted "
                    "checkpoint, or one from before mvadapter 0.2): give the CONFIG it "
                    "was trained with",
                    command, a.adapter));
  }
  if (a.zero_shot) {
    cfg.model.use_adapters = false;
    cfg.model.trainable = TrainableSet::kNone;
  }
  return cfg;
}

/// Builds the model of `cfg` with the weights `a` names, on the configured device.
inline CliModel build_cli_model(RunConfig cfg, const ModelArgs& a) {
  CliModel m;
  set_threads(static_cast<int>(cfg.train.threads));
  m.eval = evaluator_options(cfg);  // validates device and precision first
  m.model = build_model(cfg, a.adapter);
  m.model->to(m.eval.device);
  m.tokenize = make_tokenize_fn(std::make_shared<const ClipTokenizer>(), cfg.data.words,
                                m.model->clip->config().vocab_size);
  m.adapter = a.zero_shot ? "zero-shot" : std::filesystem::weakly_canonical(a.adapter).string();
  m.cfg = std::move(cfg);
  return m;
}

/// Which model an index was made with (the `info` an index records and `search` compares).
inline nlohmann::json model_info(const CliModel& m) {
  return {{"config", m.cfg.name},
          {"adapter", m.adapter},
          {"arch", m.cfg.model.arch},
          {"clip", m.cfg.model.clip.empty()
                       ? std::string()
                       : std::filesystem::weakly_canonical(m.cfg.model.clip).string()},
          {"geometry", m.model->clip->config().summary()}};
}

/// Checks an index answers for `m`: D hard (the ranking would be meaningless), the adapter and
/// CLIP weights only warned about (the user may compare models on purpose).
inline void check_model_matches(const EmbeddingIndex& index, const std::string& index_file,
                                const CliModel& m) {
  const int64_t d = m.model->clip->config().embed_dim;
  if (d != index.dim()) {
    throw Error(fmt::format(
        "{}: the index has D={} but the model of {} embeds to D={} (encode the index with the "
        "same model)",
        index_file, index.dim(), m.cfg.name, d));
  }
  const auto now = model_info(m);
  for (const char* key : {"adapter", "clip"}) {
    const std::string was = index.info.contains(key) && index.info[key].is_string()
                                ? index.info[key].get<std::string>()
                                : std::string();
    if (index.info.contains(key) && was != now[key].get<std::string>()) {
      spdlog::warn("{}: the index was encoded with {} '{}', this search uses '{}'", index_file, key,
                   was, now[key].get<std::string>());
    }
  }
}

}  // namespace mva::cli
