// parse_pickle on arbitrary bytes: the reader of official .pth data.pkl and MSVD's caption pickle.
#include <nlohmann/json.hpp>

#include "fuzz_support.h"
#include "mvadapter/io/pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return mva::fuzz::run_one([&] {
    const auto j = mva::parse_pickle(mva::fuzz::as_view(data, size), "input.pkl");
    // Walk the result (shared memo objects, deep nesting); strings need not be UTF-8.
    (void)j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  });
}
