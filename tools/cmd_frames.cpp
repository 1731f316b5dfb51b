#include "commands.h"
#include "mvadapter/core/error.h"

namespace mva::cli {

// Placeholder until its issue lands: the command exists in --help and says so when run.
void add_frames_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("frames", "Decode one video into the frames the model sees (+ contact sheet) (not available yet)");
  cmd->allow_extras();
  cmd->callback([] { throw Error("frames: not available in this build yet"); });
}

}  // namespace mva::cli
