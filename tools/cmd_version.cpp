#include <cstdio>

#include <torch/torch.h>

#include "commands.h"
#include "mvadapter/core/runtime.h"

namespace mva::cli {

void add_version_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("version", "Print the versions of mvadapter and its libraries");
  cmd->callback([] {
    std::printf("mvadapter 0.1.0\nLibTorch %s\nthreads available: %d\n", TORCH_VERSION,
                hardware_threads());
  });
}

}  // namespace mva::cli
