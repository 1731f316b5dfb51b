// read_safetensors on arbitrary bytes: the header length, the JSON header and every offset come
// from the file, and the tensors are views into its mapping.
#include <torch/torch.h>

#include "fuzz_support.h"
#include "mvadapter/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return mva::fuzz::run_one([&] {
    const auto file = mva::fuzz::write_file(mva::fuzz::fresh_scratch_dir(), "input.safetensors",
                                            mva::fuzz::as_view(data, size));
    const auto st = mva::read_safetensors(file);
    // Touch every byte a tensor claims: a view past the end of the mapping faults here.
    for (const auto& [name, t] : st.tensors) (void)t.clone();
  });
}
