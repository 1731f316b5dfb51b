// The YAML config loader on arbitrary text: parsing, duplicate keys, origins, `base:` and `--set`
// overrides on the result. A relative `base:` resolves in the folder the fuzzer runs in
// (scripts/fuzz.sh: build-fuzz/fuzz-runs/config_yaml); changing folders here would break
// libFuzzer's relative corpus paths.
#include "fuzz_support.h"
#include "mvadapter/config/config_tree.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return mva::fuzz::run_one([&] {
    const auto [text, override_text] = mva::fuzz::split_files(mva::fuzz::as_view(data, size));
    auto tree = mva::parse_config_tree(std::string(text), "input.yaml");
    for (const auto& [key, origin] : tree.origins) (void)tree.origin_of(key);
    if (override_text) mva::apply_override(tree, std::string(*override_text));
    (void)mva::expand_env(std::string(text), "input.yaml");
  });
}
