#pragma once
#include <CLI/CLI.hpp>

namespace mva::cli {

// One function per subcommand (tools/cmd_<name>.cpp): registers its options on `app` and sets the
// callback that calls the library. main.cpp holds only the table of these.
void add_tokenize_command(CLI::App& app);
void add_version_command(CLI::App& app);

}  // namespace mva::cli
