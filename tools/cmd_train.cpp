#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "commands.h"
#include "mvadapter/clip/clip_loader.h"
#include "mvadapter/config/run_setup.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/launcher.h"
#include "mvadapter/core/runtime.h"
#include "mvadapter/data/dataset_readers.h"
#include "mvadapter/dist/process_group.h"

namespace mva::cli {
namespace {

// The running Trainer's stop token, for the handler (set before the handler is installed).
StopToken g_sigint_stop;

extern "C" void on_sigint(int) {
  // First Ctrl-C: finish the current step and save the training state. Second: default action.
  g_sigint_stop.request();
  std::signal(SIGINT, SIG_DFL);
}

// Console + run_dir/train.log; the file gets debug lines (per-window throughput) too. Ranks other
// than 0 print only warnings and errors, and keep a file (train.rank<N>.log) only when asked.
void log_to_run_dir(const std::filesystem::path& run_dir, int rank, bool all_ranks) {
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  console->set_level(rank == 0 ? spdlog::level::info : spdlog::level::warn);
  std::vector<spdlog::sink_ptr> sinks{console};
  if (rank == 0 || all_ranks) {
    const auto name = rank == 0 ? std::string("train.log") : fmt::format("train.rank{}.log", rank);
    auto file =
        std::make_shared<spdlog::sinks::basic_file_sink_mt>((run_dir / name).string(), false);
    file->set_level(spdlog::level::debug);
    sinks.push_back(file);
  }
  auto logger = std::make_shared<spdlog::logger>("mvadapter", sinks.begin(), sinks.end());
  logger->set_level(spdlog::level::debug);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

// --nproc N: this same command line again as N local ranks (what torchrun does on one machine);
// the training code reads RANK, WORLD_SIZE and MASTER_* from the environment. The cores are split
// between the ranks unless the user set MVA_THREADS.
void launch_ranks(int nproc) {
  for (const char* name : {"RANK", "WORLD_SIZE"}) {
    if (const char* v = std::getenv(name); v != nullptr && *v != '\0') {
      throw Error(fmt::format(
          "--nproc: {}={} is already set (this process was started by a launcher such as "
          "torchrun); run it without --nproc",
          name, v));
    }
  }
  LaunchOptions opts;
  opts.program = "/proc/self/exe";
  opts.args = without_option(own_arguments(), "--nproc");
  opts.nproc = nproc;
  opts.threads_per_rank = std::max(1, hardware_threads() / nproc);
  if (const int status = launch_local_ranks(opts); status != 0) throw ExitStatus{status};
}

}  // namespace

void run_training(const TrainInvocation& inv) {
  auto overrides = inv.overrides;
  if (!inv.device.empty()) overrides.push_back("train.device=" + inv.device);
  RunConfig cfg;
  std::filesystem::path run_dir;
  const bool resume = !inv.resume.empty();
  if (resume) {
    run_dir = inv.resume;
    const auto saved = run_dir / "config.yaml";
    if (!std::filesystem::exists(saved)) {
      throw Error(
          fmt::format("--resume {}: no config.yaml there (not a run directory)", run_dir.string()));
    }
    cfg = load_run_config(saved, overrides);
    if (!inv.config.empty()) {
      auto given = load_run_config(inv.config, overrides);
      given.train.output_dir = cfg.train.output_dir;
      given.name = cfg.name;
      auto diff = config_differences(cfg, given);
      // The device, how ranks talk and how often the state is saved may change between
      // sessions; everything else shapes the result.
      diff.erase(std::remove_if(diff.begin(), diff.end(),
                                [](const std::string& k) {
                                  return k == "train.device" || k == "train.save_every_steps" ||
                                         k.rfind("dist.", 0) == 0;
                                }),
                 diff.end());
      if (!diff.empty()) {
        throw Error(fmt::format(
            "--resume {}: {} differs from the run's config.yaml in: {} (resume with the run's "
            "own config, or start a new run)",
            run_dir.string(), inv.config, fmt::join(diff, ", ")));
      }
    }
  } else {
    if (inv.config.empty())
      throw Error(fmt::format("{}: give a CONFIG file (or --resume RUN)",
                              inv.pretrain ? "pretrain" : "train"));
    cfg = load_run_config(inv.config, overrides);
    run_dir = run_directory(cfg);
    if (std::filesystem::exists(Trainer::state_path(run_dir))) {
      throw Error(fmt::format(
          "{}: a run already exists there; continue it with --resume {}, or choose another "
          "folder with --set train.output_dir=DIR",
          run_dir.string(), run_dir.string()));
    }
  }
  // A multi-process run: the ranks come from the environment (torchrun, srun, --nproc).
  const auto env = dist_env_from_environment();
  const int rank = env ? env->rank : 0;
  std::filesystem::create_directories(run_dir);
  log_to_run_dir(run_dir, rank, cfg.dist.log_all_ranks);
  const int threads = set_threads(static_cast<int>(cfg.train.threads));
  auto group = join_process_group(cfg);

  auto options = trainer_options(cfg, run_dir);  // validates device and precision first
  options.stop_after_epochs = inv.stop_after_epochs;
  options.group = group.get();
  options.progress = !inv.quiet;
  options.stop = g_sigint_stop;
  auto model = build_model(cfg);
  options.checkpoint_metadata = checkpoint_provenance(cfg, *model->clip);
  auto tokenizer = std::make_shared<const ClipTokenizer>();
  auto tokenize = make_tokenize_fn(tokenizer, cfg.data.words, model->clip->config().vocab_size);

  Manifest train_set = read_dataset(train_dataset_spec(cfg));
  check_missing_videos(train_set, cfg.data.on_error);
  auto loader_opts = group ? train_loader_options(cfg, group->rank(), group->world_size())
                           : train_loader_options(cfg);
  loader_opts.pin_memory = options.device.is_cuda();
  loader_opts.drop_last = true;  // as CLIP4Clip: a tiny last batch gives a weak contrastive loss
  if (static_cast<int64_t>(train_set.captions.size()) <
      loader_opts.batch_size * loader_opts.world_size) {
    loader_opts.drop_last = false;
  }
  VideoLoader loader(std::move(train_set), loader_opts, tokenize);
  std::unique_ptr<Evaluator> evaluator;
  if (!inv.pretrain) {
    Manifest test_set = read_dataset(test_dataset_spec(cfg));
    check_missing_videos(test_set, cfg.data.on_error);
    evaluator = std::make_unique<Evaluator>(std::move(test_set), evaluator_options(cfg), tokenize,
                                            group.get());
  }
  options.run_info.command = inv.pretrain ? "pretrain" : "train";
  spdlog::info("run {} in {}: {} on {} ({} threads), {} training samples, {} test videos", cfg.name,
               run_dir.string(), cfg.data.dataset, options.device.str(), threads,
               loader.epoch_order(0).size(), evaluator ? evaluator->manifest().videos.size() : 0);
  spdlog::info("{}", parameter_report(*model).to_string());

  Trainer trainer(model, loader, evaluator.get(), options);
  std::signal(SIGINT, on_sigint);
  auto summary = trainer.run(resume);
  std::signal(SIGINT, SIG_DFL);
  const bool main = group == nullptr || group->is_main();  // rank 0 reports for all ranks
  if (summary.interrupted) {
    if (main)
      std::printf(
          "stopped after %lld of %lld epochs; training state: %s\ncontinue with: "
          "mvadapter train --resume %s\n",
          static_cast<long long>(summary.epochs_done), static_cast<long long>(cfg.train.epochs),
          summary.state_path.string().c_str(), run_dir.string().c_str());
    if (inv.stop_after_epochs == 0 || summary.epochs_done < inv.stop_after_epochs)
      throw ExitStatus{130};
    return;
  }
  if (!main) return;
  if (inv.pretrain) {
    // The product of pre-training is a CLIP like a released one (OpenAI names, no adapters).
    const auto clip_path = run_dir / "clip.safetensors";
    save_clip(*model->clip, clip_path,
              {{"format", "mvadapter-clip"},
               {"arch", cfg.model.arch},
               {"steps", std::to_string(summary.steps)},
               {"config", to_yaml(cfg)}});
    std::printf("CLIP weights: %s\n", clip_path.string().c_str());
    if (!inv.clip_out.empty()) {
      save_clip(*model->clip, inv.clip_out,
                {{"format", "mvadapter-clip"}, {"arch", cfg.model.arch}});
      std::printf("CLIP weights: %s\n", inv.clip_out.c_str());
    }
  }
  if (summary.final_eval) {
    std::printf("final evaluation (epoch %lld):\n%s", static_cast<long long>(summary.final_epoch),
                summary.final_eval->tables().c_str());
  }
  std::printf("run directory: %s (results.json, report.html, checkpoints/best.safetensors)\n",
              run_dir.string().c_str());
}

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "train",
      "Train from a YAML config: adapters (or the baseline the config names) on a frozen CLIP, "
      "evaluating after every epoch. Writes a run directory (config.yaml, train.log, "
      "metrics.jsonl, checkpoints/, state/, results.json, report.html). Ctrl-C saves the "
      "training state; --resume RUN continues it.");
  auto o = std::make_shared<TrainInvocation>();
  cmd->add_option("config", o->config, "run config (YAML); optional with --resume");
  cmd->add_option("--set", o->overrides, "override a config key: --set train.lr=1e-5 (repeatable)");
  cmd->add_option("--resume", o->resume, "run directory to continue from its saved training state");
  cmd->add_option("--device", o->device, "cpu, cuda or cuda:N (overrides train.device)");
  cmd->add_option("--stop-after-epochs", o->stop_after_epochs,
                  "save the training state and stop once this many epochs are done (continue "
                  "later with --resume)");
  cmd->add_flag("--quiet", o->quiet, "no progress line");
  auto nproc = std::make_shared<int>(1);
  cmd->add_option("--nproc", *nproc,
                  "run N ranks on this machine, as torchrun would: each gets RANK, WORLD_SIZE, "
                  "MASTER_ADDR/PORT and cores/N threads (unless MVA_THREADS is set); their "
                  "output is prefixed [rank i]; Ctrl-C reaches every rank");
  cmd->callback([o, nproc] {
    if (*nproc < 1) throw Error(fmt::format("--nproc {}: expected at least 1", *nproc));
    if (*nproc > 1) return launch_ranks(*nproc);
    run_training(*o);
  });
}

}  // namespace mva::cli
