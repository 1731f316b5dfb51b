#include "commands.h"
#include "mvadapter/core/error.h"

namespace mva::cli {

// Placeholder until its issue lands: the command exists in --help and says so when run.
void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Evaluate retrieval (R@K, MdR, MnR) from a YAML config (not available yet)");
  cmd->allow_extras();
  cmd->callback([] { throw Error("eval: not available in this build yet"); });
}

}  // namespace mva::cli
