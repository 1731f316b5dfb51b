#include "commands.h"
#include "mvadapter/core/error.h"

namespace mva::cli {

// Placeholder until its issue lands: the command exists in --help and says so when run.
void add_pretrain_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("pretrain", "Pre-train a small CLIP on image-text pairs (not available yet)");
  cmd->allow_extras();
  cmd->callback([] { throw Error("pretrain: not available in this build yet"); });
}

}  // namespace mva::cli
