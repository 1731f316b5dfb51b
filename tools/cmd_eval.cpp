#include <cstdio>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "commands.h"
#include "mvadapter/config/run_setup.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/runtime.h"
#include "mvadapter/data/dataset_readers.h"
#include "mvadapter/eval/query_ranks.h"
#include "mvadapter/io/atomic_file.h"
#include "mvadapter/model/adapter_checkpoint.h"

namespace mva::cli {

void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "eval",
      "Evaluate text-to-video and video-to-text retrieval (R@1/5/10, MdR, MnR) on the config's "
      "test split, with trained adapter weights or zero-shot CLIP. Prints two tables: "
      "eval.convention's (standard: CLIP4Clip's) and the official code's (0-based MdR/MnR).");
  struct Opts {
    std::string config;
    std::vector<std::string> overrides;
    std::string adapter;
    bool zero_shot = false;
    std::string out;
    std::string device;
    bool json = false;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("config", o->config, "run config (YAML)")->required();
  cmd->add_option("--set", o->overrides, "override a config key (repeatable)");
  auto* adapter = cmd->add_option("--adapter", o->adapter,
                                  "adapter weights: checkpoints/best.safetensors of a run, or an "
                                  "official .pth");
  auto* zs = cmd->add_flag("--zero-shot", o->zero_shot, "plain CLIP, no adapters");
  adapter->excludes(zs);
  cmd->add_option("--out", o->out,
                  "folder for results.json (the metrics of this evaluation) and ranks.jsonl (each "
                  "caption's ground-truth rank)");
  cmd->add_option("--device", o->device, "cpu, cuda or cuda:N (overrides train.device)");
  cmd->add_flag("--json", o->json,
                "print the metrics as JSON: {\"final\": eval.convention's, \"final_official\": the "
                "official code's}");
  cmd->add_flag("--quiet", o->quiet, "no progress line");
  cmd->callback([o] {
    if (o->adapter.empty() && !o->zero_shot) {
      throw Error("eval: give --adapter CKPT (trained weights) or --zero-shot (plain CLIP)");
    }
    auto overrides = o->overrides;
    if (!o->device.empty()) overrides.push_back("train.device=" + o->device);
    RunConfig cfg = load_run_config(o->config, overrides);
    if (o->zero_shot) {
      cfg.model.use_adapters = false;
      cfg.model.trainable = TrainableSet::kNone;
    }
    if (!o->adapter.empty() && !std::filesystem::exists(o->adapter)) {
      throw Error(fmt::format("--adapter: '{}' does not exist", o->adapter));
    }
    set_threads(static_cast<int>(cfg.train.threads));
    auto group = join_process_group(cfg);  // several ranks share the encoding
    const bool main = group == nullptr || group->is_main();
    if (!main) spdlog::set_level(spdlog::level::warn);
    auto eval_opts = evaluator_options(cfg);  // validates device and precision first
    eval_opts.progress = !o->quiet && main;
    auto model = build_model(cfg);
    if (!o->adapter.empty()) load_adapter_weights(*model, o->adapter);
    model->to(eval_opts.device);
    auto tokenize = make_tokenize_fn(std::make_shared<const ClipTokenizer>(), cfg.data.words,
                                     model->clip->config().vocab_size);
    Manifest test_set = read_dataset(test_dataset_spec(cfg));
    check_missing_videos(test_set, cfg.data.on_error);
    // Left out up front by the rule `encode` shares; videos that exist but fail to decode are
    // still skipped by the evaluator. results.json counts both.
    const auto captions_before = static_cast<int64_t>(test_set.captions.size());
    const int64_t missing = drop_missing_videos(test_set);
    const int64_t missing_captions =
        captions_before - static_cast<int64_t>(test_set.captions.size());
    Evaluator evaluator(std::move(test_set), eval_opts, tokenize, group.get());
    auto result = evaluator.evaluate(*model);
    if (!main) return;  // rank 0 reports

    if (!o->out.empty()) {
      std::filesystem::create_directories(o->out);
      const auto report = parameter_report(*model);
      nlohmann::json j = {{"name", cfg.name},
                          {"command", "eval"},
                          {"dataset", cfg.data.dataset},
                          {"split", cfg.data.test_split},
                          {"adapter", o->zero_shot ? "zero-shot" : o->adapter},
                          {"trainable_params", report.trainable},
                          {"clip_params", report.clip_params},
                          {"percent_of_clip", report.percent_of_clip()},
                          {"eval_skipped_videos", missing + result.skipped_videos},
                          {"wall_time_s", result.seconds}};
      // One evaluation is both the run's best and its final result, under both conventions.
      j.update(result.labelled("best"));
      j.update(result.labelled("final"));
      write_text_atomically(std::filesystem::path(o->out) / "results.json", j.dump(2) + "\n");
      write_query_ranks(std::filesystem::path(o->out) / "ranks.jsonl", result.t2v_ranks);
    }
    if (o->json) {
      std::printf("%s\n", result.labelled("final").dump(2).c_str());
    } else {
      if (missing > 0) {
        std::printf("left out %lld missing videos and their %lld captions\n",
                    static_cast<long long>(missing), static_cast<long long>(missing_captions));
      }
      std::printf("%s", result.tables().c_str());
    }
  });
}

}  // namespace mva::cli
