#include <cstdio>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "cli_model.h"
#include "commands.h"
#include "mvadapter/config/run_setup.h"
#include "mvadapter/core/clock.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/runtime.h"
#include "mvadapter/data/dataset_readers.h"
#include "mvadapter/eval/query_ranks.h"
#include "mvadapter/model/adapter_checkpoint.h"
#include "mvadapter/train/run_results.h"

namespace mva::cli {

void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "eval",
      "Evaluate text-to-video and video-to-text retrieval (R@1/5/10, MdR, MnR) on the config's "
      "test split, with trained adapter weights or zero-shot CLIP. Prints two tables: "
      "eval.convention's (standard: CLIP4Clip's) and the official code's (0-based MdR/MnR).");
  struct Opts {
    ModelArgs model;
    std::string out;
    bool json = false;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  add_model_options(cmd, o->model);
  cmd->add_option("--out", o->out,
                  "folder for results.json (the metrics of this evaluation) and ranks.jsonl (each "
                  "caption's ground-truth rank)");
  cmd->add_flag("--json", o->json,
                "print the metrics as JSON: {\"final\": eval.convention's, \"final_official\": the "
                "official code's}");
  cmd->add_flag("--quiet", o->quiet, "no progress line");
  cmd->callback([o] {
    RunConfig cfg = load_cli_config(o->model, "eval");
    set_threads(static_cast<int>(cfg.train.threads));
    auto group = join_process_group(cfg);  // several ranks share the encoding
    const bool main = group == nullptr || group->is_main();
    if (!main) spdlog::set_level(spdlog::level::warn);
    auto eval_opts = evaluator_options(cfg);  // validates device and precision first
    eval_opts.progress = !o->quiet && main;
    auto model = build_model(cfg, o->model.adapter);
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
      RunResults r = run_results_of(cfg);
      r.command = "eval";
      r.split = cfg.data.test_split;
      r.adapter = o->model.zero_shot ? "zero-shot" : o->model.adapter;
      r.trainable_params = report.trainable;
      r.adapter_params = report.adapter_params;
      r.clip_params = report.clip_params;
      r.percent_of_clip = report.percent_of_clip();
      r.eval_skipped_videos = missing + result.skipped_videos;
      r.wall_time_s = result.seconds;
      r.date = utc_now();
      // One evaluation is both the run's best and its final result, under both conventions.
      r.best = r.final = result.metrics;
      r.best_official = r.final_official = result.official;
      write_run_results(o->out, r);
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
