#include "commands.h"
#include "mvadapter/core/error.h"

namespace mva::cli {

// Placeholder until its issue lands: the command exists in --help and says so when run.
void add_encode_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("encode", "Encode videos or captions into embedding files (not available yet)");
  cmd->allow_extras();
  cmd->callback([] { throw Error("encode: not available in this build yet"); });
}

}  // namespace mva::cli
