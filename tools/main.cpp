// The `mvadapter` executable: the table of subcommands and the one place errors are printed.
#include <cstdio>
#include <exception>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "commands.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/version.h"

int main(int argc, char** argv) {
  CLI::App app{"mvadapter: parameter-efficient video-text retrieval (MV-Adapter on a frozen CLIP)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("mvadapter ") + mva::library_version());

  using Add = void (*)(CLI::App&);
  static constexpr Add kCommands[] = {
      mva::cli::add_tokenize_command,   mva::cli::add_frames_command,
      mva::cli::add_preprocess_command, mva::cli::add_params_command,
      mva::cli::add_convert_command,    mva::cli::add_verify_reference_command,
      mva::cli::add_train_command,      mva::cli::add_eval_command,
      mva::cli::add_encode_command,     mva::cli::add_search_command,
      mva::cli::add_synth_command,      mva::cli::add_pretrain_command,
      mva::cli::add_compare_command,    mva::cli::add_serve_command,
      mva::cli::add_version_command,
  };
  for (Add add : kCommands) add(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const mva::cli::ExitStatus& e) {
    return e.code;
  } catch (const mva::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    // LibTorch's c10::Error carries a multi-line backtrace; the first line is the message.
    std::string msg = e.what();
    if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
    std::fprintf(stderr, "error: %s\n", msg.c_str());
    return 1;
  }
  return 0;
}
