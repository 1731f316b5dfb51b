#include "mvadapter/config/run_setup.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "mvadapter/clip/clip_loader.h"
#include "mvadapter/core/error.h"
#include "mvadapter/data/dataset_readers.h"

namespace mva {

ClipModel load_backbone(const RunConfig& cfg) {
  if (cfg.model.clip.empty()) {
    // Random weights (pre-training from scratch) must depend on train.seed alone, not on what
    // drew from torch's global generator earlier in the process.
    torch::manual_seed(static_cast<uint64_t>(cfg.train.seed));
    return make_random_clip(ClipConfig::named(cfg.model.arch));
  }
  if (!std::filesystem::exists(cfg.model.clip)) {
    throw Error(
        fmt::format("model.clip: weights file '{}' does not exist (set it in the config "
                    "or with --set model.clip=PATH)",
                    cfg.model.clip.string()));
  }
  return load_clip(cfg.model.clip);
}

RetrievalModel build_model(const RunConfig& cfg) {
  auto clip = load_backbone(cfg);
  const auto& cc = clip->config();
  const std::string source = cfg.model.clip.empty() ? cfg.model.arch : cfg.model.clip.string();
  if (cfg.data.words > cc.context_length) {
    throw Error(
        fmt::format("data.words: {} tokens, but the CLIP of {} reads at most {} "
                    "(its context_length)",
                    cfg.data.words, source, cc.context_length));
  }
  if (cfg.data.size != cc.image_resolution) {
    throw Error(fmt::format("data.size: {} px, but the CLIP of {} takes {} px images",
                            cfg.data.size, source, cc.image_resolution));
  }
  // Adapter initialisation draws from torch's global generator: seed it so a config always
  // starts from the same weights (and a resumed run from the same frozen parts).
  torch::manual_seed(static_cast<uint64_t>(cfg.train.seed));
  return RetrievalModel(clip, to_retrieval_model_config(cfg));
}

TokenizeFn make_tokenize_fn(std::shared_ptr<const ClipTokenizer> tokenizer, int64_t max_words,
                            int64_t vocab_size) {
  if (vocab_size < ClipTokenizer::kEot + 1) {
    throw Error(
        fmt::format("model.clip: the text tower has a vocabulary of {} tokens, but the CLIP "
                    "tokenizer gives ids "
                    "up to {}: this CLIP was not trained with the CLIP BPE vocabulary",
                    vocab_size, ClipTokenizer::kEot));
  }
  return [tokenizer = std::move(tokenizer), max_words](const std::string& text) {
    return tokenizer->encode_padded(text, max_words).ids;
  };
}

void check_missing_videos(const Manifest& manifest, OnError on_error) {
  const auto missing = check_videos_exist(manifest);
  if (missing.empty()) return;
  std::vector<std::string> names;
  for (size_t i = 0; i < missing.size() && i < 3; ++i) {
    names.push_back(manifest.videos[static_cast<size_t>(missing[i])].path.string());
  }
  const std::string what =
      fmt::format("{} {}: {} of {} videos are missing (first: {})", manifest.dataset,
                  manifest.split, missing.size(), manifest.videos.size(), fmt::join(names, ", "));
  if (missing.size() == manifest.videos.size()) {
    throw Error(what + "; check data.videos");
  }
  if (on_error == OnError::kFail) throw Error(what + " and data.on_error is fail");
  spdlog::warn("{}; they are skipped (data.on_error: skip)", what);
}

std::filesystem::path run_directory(const RunConfig& cfg) {
  if (!cfg.train.output_dir.empty()) return cfg.train.output_dir;
  return std::filesystem::path("runs") / cfg.name;
}

TrainerOptions trainer_options(const RunConfig& cfg, const std::filesystem::path& run_dir) {
  TrainerOptions o;
  const auto& t = cfg.train;
  o.optimizer.kind = t.optimizer;
  o.optimizer.lr = t.lr;
  o.optimizer.clip_lr = t.clip_lr;
  o.optimizer.weight_decay = t.weight_decay;
  o.optimizer.betas = t.betas;
  o.optimizer.eps = t.eps;
  o.optimizer.warmup = t.warmup;
  o.optimizer.schedule = t.schedule;
  o.optimizer.max_grad_norm = t.max_grad_norm;
  o.optimizer.master_weights = t.master_weights;
  o.epochs = t.epochs;
  o.grad_accum = t.grad_accum;
  // The official runner clips globally and BertAdam clips each tensor again: bert_adam keeps both.
  o.grad_clip = t.grad_clip;
  o.precision = t.precision;
  o.device = parse_device(t.device, "train.device");
  check_precision(o.precision, o.device, "train.precision");
  o.seed = static_cast<uint64_t>(t.seed);
  o.log_every = t.log_every;
  o.save_every_epoch = t.save_every_epoch;
  o.save_every_steps = t.save_every_steps;
  o.on_nonfinite = t.on_nonfinite;
  o.emulate_world_size = t.emulate_world_size;
  o.grad_cache = t.grad_cache;
  o.deterministic = t.deterministic;
  o.activation_checkpointing = t.activation_checkpointing;
  o.eval_every_epoch = cfg.eval.every_epoch;
  o.run_dir = run_dir;
  o.name = cfg.name;
  o.config_yaml = to_yaml(cfg);
  o.run_info = {{"dataset", cfg.data.dataset},
                {"arch", cfg.model.clip.empty() ? cfg.model.arch : cfg.model.clip.string()},
                {"trainable", enum_name(cfg.model.trainable)},
                {"use_adapters", cfg.model.use_adapters},
                {"frames", cfg.data.frames},
                {"words", cfg.data.words}};
  return o;
}

EvaluatorOptions evaluator_options(const RunConfig& cfg) {
  EvaluatorOptions o;
  o.loader = eval_loader_options(cfg);
  o.text_batch_size = std::max<int64_t>(cfg.eval.batch_size, 64);
  o.metrics = metrics_options(cfg);
  o.precision = cfg.train.precision;
  o.device = parse_device(cfg.train.device, "train.device");
  return o;
}

std::unique_ptr<ProcessGroup> join_process_group(RunConfig& cfg) {
  const auto env = dist_env_from_environment();
  if (!env || env->world_size == 1) return nullptr;
  if (cfg.train.device == "cuda") cfg.train.device = fmt::format("cuda:{}", env->local_rank);
  ProcessGroupOptions o;
  o.backend = cfg.dist.backend;
  o.timeout = std::chrono::milliseconds(static_cast<int64_t>(cfg.dist.timeout_s * 1000.0));
  auto group =
      std::make_unique<ProcessGroup>(*env, parse_device(cfg.train.device, "train.device"), o);
  spdlog::info("rank {} of {} ({}, rendezvous {}:{})", env->rank, env->world_size,
               group->backend_name(), env->master_addr, env->master_port);
  return group;
}

namespace {

// The value at a dotted key as YAML text ("" when absent); const lookups never create entries.
std::string yaml_at(const YAML::Node& root, const std::string& key) {
  YAML::Node node = root;
  size_t begin = 0;
  while (true) {
    const size_t dot = key.find('.', begin);
    const std::string part = key.substr(begin, dot == std::string::npos ? dot : dot - begin);
    if (!node.IsMap()) return "";
    const YAML::Node& parent = node;
    YAML::Node child = static_cast<const YAML::Node&>(parent)[part];
    if (!child) return "";
    node.reset(child);
    if (dot == std::string::npos) break;
    begin = dot + 1;
  }
  return YAML::Dump(node);
}

}  // namespace

std::vector<std::string> config_differences(const RunConfig& a, const RunConfig& b) {
  const YAML::Node ya = YAML::Load(to_yaml(a)), yb = YAML::Load(to_yaml(b));
  std::vector<std::string> out;
  for (const auto& key : run_config_keys()) {
    if (yaml_at(ya, key) != yaml_at(yb, key)) out.push_back(key);
  }
  return out;
}

}  // namespace mva
