#include <cstdio>
#include <string>

#include "commands.h"
#include "mvadapter/model/adapter_checkpoint.h"

namespace mva::cli {

void add_convert_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "convert",
      "Convert an official MV-Adapter checkpoint (.pth as the official runner saves it) "
      "to safetensors with the same tensor names");
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  cmd->add_option("CHECKPOINT", *in, "official .pth file")->required()->check(CLI::ExistingFile);
  cmd->add_option("-o,--out", *out, "output .safetensors file")->required();
  cmd->callback([in, out] {
    auto n = convert_official_checkpoint(*in, *out);
    std::printf("wrote %lld tensors to %s\n", static_cast<long long>(n), out->c_str());
  });
}

}  // namespace mva::cli
