#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "commands.h"
#include "mvadapter/clip/clip_loader.h"
#include "mvadapter/config/run_config.h"
#include "mvadapter/core/error.h"
#include "mvadapter/model/retrieval_model.h"

namespace mva::cli {

void add_params_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "params",
      "Trainable-parameter report: per module, total, and the percentage of CLIP (the "
      "paper's 'Tunable Params'). With --arch the model is built with random weights of "
      "that geometry, so no weight file is needed.");
  struct Opts {
    std::string config;
    std::vector<std::string> overrides;
    std::string arch = "ViT-B/16";
    std::string clip;
    int64_t frames = 12, words = 32, mid_dim = 64, heads = 2, factor_dim = 32;
    std::vector<int64_t> tied_layers;
    std::string tying = "scale", position = "down_in", trainable = "adapters", temporal = "c";
    bool no_clip_biases = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("config", o->config,
                  "run config (YAML); its model and adapter sections replace the flags below");
  cmd->add_option("--set", o->overrides, "override a config key: --set adapters.mid_dim=32");
  auto* arch = cmd->add_option("--arch", o->arch, "ViT-B/32, ViT-B/16 or ViT-L/14 (random weights)")
                   ->capture_default_str();
  cmd->add_option("--clip", o->clip, "CLIP weights file instead of --arch");
  cmd->add_option("--frames", o->frames, "frames per video")->capture_default_str();
  cmd->add_option("--words", o->words, "words per caption")->capture_default_str();
  cmd->add_option("--mid-dim", o->mid_dim, "adapter bottleneck d'")->capture_default_str();
  cmd->add_option("--heads", o->heads, "heads of the adapter transformer")->capture_default_str();
  cmd->add_option("--temporal", o->temporal, "video calibration: c, p, cp or ''")
      ->capture_default_str();
  cmd->add_option("--tying", o->tying, "none, scale or kronecker")->capture_default_str();
  cmd->add_option("--tying-position", o->position, "down_in, down_out, up_in, up_out")
      ->capture_default_str();
  cmd->add_option("--tying-layers", o->tied_layers, "tied blocks (default: the last two)");
  cmd->add_option("--factor-dim", o->factor_dim, "d_m of the shared factor")->capture_default_str();
  cmd->add_option("--trainable", o->trainable, "adapters, full, bitfit or none")
      ->capture_default_str();
  cmd->add_flag("--no-clip-biases", o->no_clip_biases,
                "keep CLIP biases frozen (official recipe trains them)");
  cmd->callback([o, arch] {
    if (!o->config.empty()) {
      auto run = load_run_config(o->config, o->overrides);
      // --arch on the command line wins over model.clip: the report needs no weight file.
      ClipModel clip{nullptr};
      if (arch->count() > 0 || run.model.clip.empty()) {
        clip = ClipModel(ClipConfig::named(arch->count() > 0 ? o->arch : run.model.arch));
      } else {
        clip = load_clip(run.model.clip);
      }
      RetrievalModel model(clip, to_retrieval_model_config(run));
      std::printf("config: %s\nCLIP: %s\n", o->config.c_str(), clip->config().summary().c_str());
      std::fputs(parameter_report(*model).to_string().c_str(), stdout);
      return;
    }
    ClipModel clip = o->clip.empty() ? ClipModel(ClipConfig::named(o->arch)) : load_clip(o->clip);
    const auto& cc = clip->config();
    RetrievalModelConfig cfg;
    cfg.adapters = AdapterConfig::mv_adapter(o->frames, o->words, cc.vision_layers);
    cfg.adapters.video.mid_dim = cfg.adapters.text.mid_dim = o->mid_dim;
    cfg.adapters.video.heads = cfg.adapters.text.heads = o->heads;
    const auto temporal = parse_temporal_calibration(o->temporal);
    if (!temporal) {
      throw Error(fmt::format("--temporal: '{}' (expected c, p, cp or '')", o->temporal));
    }
    cfg.adapters.video.temporal = *temporal;
    cfg.adapters.tying.mode = parse_tying_mode(o->tying, "--tying");
    cfg.adapters.tying.position = parse_tying_position(o->position, "--tying-position");
    cfg.adapters.tying.factor_dim = o->factor_dim;
    if (!o->tied_layers.empty()) cfg.adapters.tying.layers = o->tied_layers;
    cfg.trainable = parse_trainable_set(o->trainable, "--trainable");
    cfg.use_adapters = cfg.trainable == TrainableSet::kAdapters;
    cfg.train_clip_biases = !o->no_clip_biases;
    RetrievalModel model(clip, cfg);
    std::printf("CLIP: %s\n", cc.summary().c_str());
    std::fputs(parameter_report(*model).to_string().c_str(), stdout);
  });
}

}  // namespace mva::cli
