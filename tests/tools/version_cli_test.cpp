// `mvadapter version`: what the program says of itself, here the allocator the build linked.
#include <string>

#include <gtest/gtest.h>

#include "mvadapter/core/runtime.h"
#include "test_support.h"

namespace mva {
namespace {

TEST(VersionCli, NamesTheAllocatorTheBuildLinked) {
  std::string out;
  ASSERT_EQ(test::run_command(test::cli_binary().string() + " version", &out), 0) << out;
  // MVA_WITH_TCMALLOC comes from CMake for this file alone (tests/CMakeLists.txt).
  const std::string want = MVA_WITH_TCMALLOC ? "tcmalloc" : "glibc malloc";
  EXPECT_NE(out.find("memory allocator: " + want + "\n"), std::string::npos) << out;
  // This test program itself is not linked against it.
  EXPECT_EQ(memory_allocator(), "glibc malloc");
}

}  // namespace
}  // namespace mva
