#include "commands.h"
#include "mvadapter/core/error.h"

namespace mva::cli {

// Placeholder until its issue lands: the command exists in --help and says so when run.
void add_verify_reference_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("verify-reference", "Check this build against golden tensors of the official implementation (not available yet)");
  cmd->allow_extras();
  cmd->callback([] { throw Error("verify-reference: not available in this build yet"); });
}

}  // namespace mva::cli
