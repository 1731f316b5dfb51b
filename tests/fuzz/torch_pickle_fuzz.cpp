// parse_torch_pickle on arbitrary bytes: the data.pkl of a torch.save archive, with the globals a
// dictionary of tensors needs allowed, storages from a reader that makes them as claimed (up to a
// bound, as read_torch_state_dict bounds them by the file's size).
#include <torch/torch.h>

#include "fuzz_support.h"
#include "mvadapter/core/error.h"
#include "mvadapter/io/pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return mva::fuzz::run_one([&] {
    const mva::StorageReader storage = [](const std::string& key, torch::ScalarType dtype,
                                          int64_t numel) {
      if (numel > (int64_t{1} << 16)) throw mva::Error("storage '" + key + "' too large");
      return torch::zeros({numel}, torch::TensorOptions().dtype(dtype));
    };
    const auto dict =
        mva::parse_torch_pickle(mva::fuzz::as_view(data, size), "data.pkl", storage);
    // Touch every element a tensor claims: a view past its storage faults here.
    for (const auto& [name, t] : dict.tensors) (void)t.clone();
    for (const auto& [outer, inner] : dict.nested) {
      for (const auto& [name, t] : inner) (void)t.clone();
    }
  });
}
