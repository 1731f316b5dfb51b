// load_index on arbitrary bytes (a safetensors file with the index metadata), then a search on
// what loaded.
#include <torch/torch.h>

#include "fuzz_support.h"
#include "mvadapter/eval/embedding_index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return mva::fuzz::run_one([&] {
    const auto file = mva::fuzz::write_file(mva::fuzz::fresh_scratch_dir(), "input.index",
                                            mva::fuzz::as_view(data, size));
    const auto index = mva::load_index(file);
    (void)mva::search(index, index.emb[0], 3);
  });
}
