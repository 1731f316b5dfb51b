#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace mva::cli {

// Thrown by a command that ends with a non-zero status after doing its work (e.g. an interrupted
// training run, 130): main() unwinds the stack, so loaders and files close, and returns `code`.
struct ExitStatus {
  int code;
};

// What `train` and `pretrain` were asked to do (they share one implementation, cmd_train.cpp).
struct TrainInvocation {
  std::string config;
  std::vector<std::string> overrides;
  std::string resume;
  std::string device;
  int64_t stop_after_epochs = 0;
  bool quiet = false;
  bool pretrain = false;  // no evaluation; the CLIP itself is the product (saved with OpenAI names)
  std::string clip_out;   // pretrain: also write the CLIP here
};
void run_training(const TrainInvocation& inv);

/// Throws the one error a command that needs video decoding gives in a build without it
/// (MVA_WITH_VIDEO=OFF, the model-only build): "<command>: this build has no video support ...".
[[noreturn]] void no_video_support(const std::string& command);

// One function per subcommand (tools/cmd_<name>.cpp): registers its options on `app` and sets the
// callback that calls the library. main.cpp holds only the table of these.
void add_tokenize_command(CLI::App& app);  // tokenize: CLIP BPE token ids of captions
void add_frames_command(
    CLI::App& app);  // frames: Decode one video into the frames the model sees (+ contact sheet)
void add_preprocess_command(CLI::App& app);  // preprocess: Extract 1-fps frames or re-encode a
                                             // whole dataset, in parallel, resumable
void add_params_command(
    CLI::App& app);  // params: Trainable-parameter report of a model configuration
void add_convert_command(
    CLI::App& app);  // convert: Convert an official MV-Adapter .pth checkpoint to safetensors
void add_verify_reference_command(CLI::App& app);  // verify-reference: Check this build against
                                                   // golden tensors of the official implementation
void add_train_command(CLI::App& app);             // train: Train adapters from a YAML config
void add_eval_command(
    CLI::App& app);  // eval: Evaluate retrieval (R@K, MdR, MnR) from a YAML config
void add_encode_command(CLI::App& app);  // encode: Encode videos or captions into embedding files
void add_search_command(
    CLI::App& app);  // search: Search an embedding index with a text query or a video
void add_synth_command(CLI::App& app);     // synth: Write the synthetic Shapes video dataset
void add_pretrain_command(CLI::App& app);  // pretrain: Pre-train a small CLIP on image-text pairs
void add_compare_command(CLI::App& app);   // compare: one Markdown table of several runs
void add_serve_command(CLI::App& app);     // serve: search page and JSON API over an index
void add_version_command(CLI::App& app);

}  // namespace mva::cli
