#include <cstdio>
#include <filesystem>
#include <string>

#include "commands.h"
#include "mvadapter/clip/clip_loader.h"
#include "mvadapter/io/safetensors.h"
#include "mvadapter/io/torch_checkpoint.h"
#include "mvadapter/model/adapter_checkpoint.h"

namespace mva::cli {

void add_convert_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "convert",
      "Convert an official MV-Adapter checkpoint (.pth as the official runner saves it) "
      "to safetensors with the same tensor names; or a CLIP TorchScript archive (.pt) to "
      "safetensors with OpenAI names, which loads without LibTorch's TorchScript "
      "deserializer");
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  cmd->add_option("CHECKPOINT", *in, "official .pth file, or a CLIP .pt TorchScript archive")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("-o,--out", *out, "output .safetensors file")->required();
  cmd->callback([in, out] {
    if (is_torchscript_archive(*in)) {
      const ClipWeights w = read_clip_weights(*in);
      write_safetensors(
          *out, w.tensors,
          {{"format", "openai-clip"}, {"source", std::filesystem::path(*in).filename().string()}});
      std::printf("wrote %zu CLIP tensors to %s\n", w.tensors.size(), out->c_str());
      return;
    }
    auto n = convert_official_checkpoint(*in, *out);
    std::printf("wrote %lld tensors to %s\n", static_cast<long long>(n), out->c_str());
  });
}

}  // namespace mva::cli
