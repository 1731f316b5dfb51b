// The program of tests/cmake/parent_project: built against mvadapter included with
// add_subdirectory. Light headers only, so it costs a second to compile.
#include <cstdio>

#include "mvadapter/core/error.h"
#include "mvadapter/core/runtime.h"
#include "mvadapter/core/version.h"

int main() {
  try {
    std::printf("mvadapter %s, vocabulary %s\n", mva::library_version(),
                mva::find_asset("bpe_simple_vocab_16e6.txt.gz").c_str());
  } catch (const mva::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
