#include <cstdio>

#include <torch/torch.h>

#include <fmt/format.h>

#include "commands.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/runtime.h"
#include "mvadapter/core/version.h"

namespace mva::cli {

void no_video_support(const std::string& command) {
  throw Error(fmt::format(
      "{}: this build has no video support (configured with MVA_WITH_VIDEO=OFF); rebuild with "
      "-DMVA_WITH_VIDEO=ON (needs OpenCV) to decode videos",
      command));
}

void add_version_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("version", "Print the versions of mvadapter and its libraries");
  cmd->callback([] {
    std::printf("mvadapter %s\nLibTorch %s\nthreads available: %d\nvideo: %s\n", library_version(),
                TORCH_VERSION, hardware_threads(),
                MVA_WITH_VIDEO ? "yes (OpenCV)" : "no (MVA_WITH_VIDEO=OFF)");
    // Which vocabulary a tokenizer would read: the installed one, the source tree's, or none.
    std::string vocab;
    try {
      vocab = find_asset("bpe_simple_vocab_16e6.txt.gz");
    } catch (const Error& e) {
      vocab = std::string("not found (") + e.what() + ")";
    }
    std::printf("vocabulary: %s\n", vocab.c_str());
    std::printf("memory allocator: %s\n", memory_allocator().c_str());
  });
}

}  // namespace mva::cli
