#include "commands.h"
#include "mvadapter/core/error.h"

namespace mva::cli {

// Placeholder until its issue lands: the command exists in --help and says so when run.
void add_preprocess_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("preprocess", "Extract 1-fps frames or re-encode a whole dataset, in parallel, resumable (not available yet)");
  cmd->allow_extras();
  cmd->callback([] { throw Error("preprocess: not available in this build yet"); });
}

}  // namespace mva::cli
