#include "commands.h"
#include "mvadapter/core/error.h"

namespace mva::cli {

// Placeholder until its issue lands: the command exists in --help and says so when run.
void add_search_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("search", "Search an embedding index with a text query or a video (not available yet)");
  cmd->allow_extras();
  cmd->callback([] { throw Error("search: not available in this build yet"); });
}

}  // namespace mva::cli
