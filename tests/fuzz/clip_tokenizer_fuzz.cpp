// The CLIP tokenizer on arbitrary text: ftfy-style fixing, HTML unescaping, lower-casing, the
// regex split and BPE, then decoding the ids back.
#include "fuzz_support.h"
#include "mvadapter/text/clip_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const mva::ClipTokenizer tokenizer;
  return mva::fuzz::run_one([&] {
    const auto text = mva::fuzz::as_view(data, size);
    const auto padded = tokenizer.encode_padded(text, 77);
    (void)tokenizer.decode(padded.ids);
    (void)tokenizer.decode(tokenizer.encode(text));
  });
}
