#include "commands.h"
#include "mvadapter/core/error.h"

namespace mva::cli {

void add_tokenize_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenize", "CLIP BPE token ids of captions (not built yet)");
  cmd->callback([] { throw Error("tokenize: not implemented yet"); });
}

}  // namespace mva::cli
