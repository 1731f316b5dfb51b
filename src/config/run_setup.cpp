#include "mvadapter/config/run_setup.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include "mvadapter/clip/clip_loader.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/version.h"
#include "mvadapter/data/dataset_readers.h"
#include "mvadapter/io/torch_checkpoint.h"
#include "mvadapter/model/adapter_checkpoint.h"
#include "mvadapter/train/run_report.h"

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

RetrievalModel build_model(const RunConfig& cfg, const std::filesystem::path& checkpoint) {
  auto model = build_model(cfg);
  if (!checkpoint.empty()) {
    check_checkpoint_backbone(checkpoint, cfg, *model->clip);
    load_adapter_weights(*model, checkpoint);
  }
  return model;
}

RunResults run_results_of(const RunConfig& cfg) {
  RunResults r;
  r.name = cfg.name;
  r.dataset = cfg.data.dataset;
  r.arch = cfg.model.clip.empty() ? cfg.model.arch : cfg.model.clip.string();
  r.trainable = enum_name(cfg.model.trainable);
  r.use_adapters = cfg.model.use_adapters;
  r.frames = cfg.data.frames;
  r.words = cfg.data.words;
  r.precision = enum_name(cfg.train.precision);
  return r;
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
  // The run directory's page, rebuilt from results.json and metrics.jsonl: a failure to draw it
  // must not fail the run.
  o.callbacks.on_results = [](const std::filesystem::path& dir) {
    try {
      write_run_report(dir);
    } catch (const std::exception& e) {
      spdlog::warn("report.html not written: {}", e.what());
    }
  };
  o.run_info = run_results_of(cfg);
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

namespace {

// The metadata keys of an adapter checkpoint's provenance (safetensors __metadata__ strings).
constexpr const char* kMetaVersion = "mvadapter.version";
constexpr const char* kMetaConfig = "mvadapter.config";
constexpr const char* kMetaClip = "mvadapter.clip";
constexpr const char* kMetaClipSha256 = "mvadapter.clip_sha256";
constexpr const char* kMetaClipGeometry = "mvadapter.clip_geometry";

// ClipConfig's fields by name, in declaration order: what the geometry check compares and names.
std::vector<std::pair<const char*, int64_t>> geometry_fields(const ClipConfig& c) {
  return {{"embed_dim", c.embed_dim},
          {"image_resolution", c.image_resolution},
          {"vision_layers", c.vision_layers},
          {"vision_width", c.vision_width},
          {"vision_patch_size", c.vision_patch_size},
          {"context_length", c.context_length},
          {"vocab_size", c.vocab_size},
          {"transformer_width", c.transformer_width},
          {"transformer_heads", c.transformer_heads},
          {"transformer_layers", c.transformer_layers}};
}

// What a run's backbone is, in words: the weight file, or the random draw that made it.
std::string backbone_name(const RunConfig& cfg) {
  if (!cfg.model.clip.empty()) return cfg.model.clip.string();
  return fmt::format("random {} (train.seed {})", cfg.model.arch, cfg.train.seed);
}

}  // namespace

std::map<std::string, std::string> checkpoint_provenance(const RunConfig& cfg,
                                                         const ClipModelImpl& clip) {
  nlohmann::json geometry = nlohmann::json::object();
  for (const auto& [name, value] : geometry_fields(clip.config())) geometry[name] = value;
  std::map<std::string, std::string> meta = {
      {kMetaVersion, library_version()},
      {kMetaConfig, to_yaml(cfg)},
      {kMetaClip, backbone_name(cfg)},
      {kMetaClipGeometry, geometry.dump()},
  };
  // Streams the whole file once a run (~1 s for ViT-B/16): the only reliable identity of weights.
  if (!cfg.model.clip.empty()) meta[kMetaClipSha256] = file_sha256(cfg.model.clip);
  return meta;
}

std::optional<RunConfig> config_from_checkpoint(const std::filesystem::path& checkpoint,
                                                const std::vector<std::string>& overrides) {
  if (checkpoint.extension() != ".safetensors") return std::nullopt;  // an official .pth
  const auto file = read_safetensors(checkpoint);
  const auto it = file.metadata.find(kMetaConfig);
  if (it == file.metadata.end()) return std::nullopt;
  return parse_run_config(it->second, checkpoint.string() + " (its recorded config)", overrides);
}

void check_checkpoint_backbone(const std::filesystem::path& checkpoint, const RunConfig& cfg,
                               const ClipModelImpl& clip) {
  if (checkpoint.extension() != ".safetensors") return;
  const auto meta = read_safetensors(checkpoint).metadata;
  const auto recorded_name = meta.find(kMetaClip);
  const std::string trained_on =
      recorded_name == meta.end() ? std::string("another CLIP") : recorded_name->second;
  std::vector<std::string> differences;
  if (auto g = meta.find(kMetaClipGeometry); g != meta.end()) {
    const auto recorded = nlohmann::json::parse(g->second, nullptr, false);
    if (!recorded.is_object()) {
      throw Error(fmt::format("{}: metadata {} is not a JSON object", checkpoint.string(),
                              kMetaClipGeometry));
    }
    for (const auto& [name, value] : geometry_fields(clip.config())) {
      const auto r = recorded.find(name);
      if (r != recorded.end() && r->is_number_integer() && r->get<int64_t>() != value) {
        differences.push_back(
            fmt::format("{} {} (checkpoint) vs {}", name, r->get<int64_t>(), value));
      }
    }
  }
  // Weights of the same geometry can still be another CLIP: the file's hash tells. A random
  // backbone has none; its recorded name (arch and seed) must then match.
  if (auto s = meta.find(kMetaClipSha256); s != meta.end()) {
    if (cfg.model.clip.empty()) {
      differences.push_back("the checkpoint was trained on a weights file, this model is " +
                            backbone_name(cfg));
    } else if (const auto sha = file_sha256(cfg.model.clip); sha != s->second) {
      differences.push_back(fmt::format("sha256 {}... (checkpoint) vs {}...",
                                        s->second.substr(0, 12), sha.substr(0, 12)));
    }
  } else if (recorded_name != meta.end() && cfg.model.clip.empty() &&
             recorded_name->second != backbone_name(cfg)) {
    differences.push_back(fmt::format("backbone '{}' (checkpoint) vs '{}'", recorded_name->second,
                                      backbone_name(cfg)));
  }
  if (!differences.empty()) {
    throw Error(fmt::format(
        "{}: these adapter weights were trained on {}, not on the CLIP given ({}): {}. Give the "
        "CLIP they were trained with (model.clip, or --clip)",
        checkpoint.string(), trained_on, backbone_name(cfg), fmt::join(differences, "; ")));
  }
}

}  // namespace mva
