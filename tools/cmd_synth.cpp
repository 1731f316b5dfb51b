#include "commands.h"
#include "mvadapter/core/error.h"

namespace mva::cli {

// Placeholder until its issue lands: the command exists in --help and says so when run.
void add_synth_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("synth", "Write the synthetic Shapes video dataset (not available yet)");
  cmd->allow_extras();
  cmd->callback([] { throw Error("synth: not available in this build yet"); });
}

}  // namespace mva::cli
