// The YAML config loader on arbitrary text: parsing, duplicate keys, origins, `base:` (relative
// bases resolve in the empty scratch folder) and `--set` overrides on the result.
#include <unistd.h>

#include "fuzz_support.h"
#include "mvadapter/config/config_tree.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return mva::fuzz::run_one([&] {
    const auto [text, override_text] = mva::fuzz::split_files(mva::fuzz::as_view(data, size));
    // Relative `base:` paths resolve against the current folder: the empty scratch one, not the
    // folder the fuzzer was started in.
    if (::chdir(mva::fuzz::fresh_scratch_dir().c_str()) != 0) return;
    auto tree = mva::parse_config_tree(std::string(text), "input.yaml");
    for (const auto& [key, origin] : tree.origins) (void)tree.origin_of(key);
    if (override_text) mva::apply_override(tree, std::string(*override_text));
    (void)mva::expand_env(std::string(text), "input.yaml");
  });
}
