// The dispatch of `verify-reference` on a baseline folder (meta.json naming the method).
#include "mvadapter/model/baseline_reference.h"

#include <fstream>

#include "mvadapter/core/error.h"
#include "test_support.h"

namespace mva {
namespace {

TEST(BaselineReference, UnknownMethodAndMissingFilesAreNamed) {
  auto dir = test::temp_dir("baseline_unknown");
  EXPECT_FALSE(is_baseline_fixture(dir));
  EXPECT_ERROR_CONTAINS(check_baseline_reference(dir), "meta.json: cannot open");
  std::ofstream(dir / "meta.json") << R"({"method": "vpt"})";
  std::filesystem::copy_file(test::fixture_path("baselines/seqtransf/io.safetensors"),
                             dir / "io.safetensors");
  EXPECT_TRUE(is_baseline_fixture(dir));
  EXPECT_ERROR_CONTAINS(check_baseline_reference(dir), "method 'vpt'");
}

}  // namespace
}  // namespace mva
