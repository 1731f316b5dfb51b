#include <CLI/CLI.hpp>

#include "commands.h"

namespace mva::cli {

void add_pretrain_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "pretrain",
      "CLIP-style image-text pre-training of a small CLIP from scratch (all parameters train; "
      "data.frames: 1 gives single frames). Writes RUN/clip.safetensors with OpenAI names, which "
      "every other command loads like a released CLIP (model.clip).");
  auto o = std::make_shared<TrainInvocation>();
  o->pretrain = true;
  cmd->add_option("config", o->config, "pre-training config (YAML); optional with --resume");
  cmd->add_option("--set", o->overrides, "override a config key (repeatable)");
  cmd->add_option("--resume", o->resume, "run directory to continue");
  cmd->add_option("--device", o->device, "cpu, cuda or cuda:N (overrides train.device)");
  cmd->add_option("--out", o->clip_out, "also write the CLIP weights here (.safetensors)");
  cmd->add_option("--stop-after-epochs", o->stop_after_epochs,
                  "save the training state and stop once this many epochs are done");
  cmd->add_flag("--quiet", o->quiet, "no progress line");
  cmd->callback([o] { run_training(*o); });
}

}  // namespace mva::cli
