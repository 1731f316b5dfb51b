#include "commands.h"
#include "mvadapter/core/error.h"

namespace mva::cli {

// Placeholder until its issue lands: the command exists in --help and says so when run.
void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train adapters from a YAML config (not available yet)");
  cmd->allow_extras();
  cmd->callback([] { throw Error("train: not available in this build yet"); });
}

}  // namespace mva::cli
