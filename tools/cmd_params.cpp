#include "commands.h"
#include "mvadapter/core/error.h"

namespace mva::cli {

// Placeholder until its issue lands: the command exists in --help and says so when run.
void add_params_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("params", "Trainable-parameter report of a model configuration (not available yet)");
  cmd->allow_extras();
  cmd->callback([] { throw Error("params: not available in this build yet"); });
}

}  // namespace mva::cli
