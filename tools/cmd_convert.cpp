#include "commands.h"
#include "mvadapter/core/error.h"

namespace mva::cli {

// Placeholder until its issue lands: the command exists in --help and says so when run.
void add_convert_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("convert", "Convert an official MV-Adapter .pth checkpoint to safetensors (not available yet)");
  cmd->allow_extras();
  cmd->callback([] { throw Error("convert: not available in this build yet"); });
}

}  // namespace mva::cli
