#include "commands.h"
#include "mvadapter/core/error.h"

namespace mva::cli {

// Placeholder until its issue lands: the command exists in --help and says so when run.
void add_tokenize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenize", "CLIP BPE token ids of captions (not available yet)");
  cmd->allow_extras();
  cmd->callback([] { throw Error("tokenize: not available in this build yet"); });
}

}  // namespace mva::cli
