#include "mvadapter/io/safetensors.h"

#include <fstream>

#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "test_support.h"

namespace mva {
namespace {

using test::temp_dir;

// Builds a raw safetensors file from a header string and a data area.
std::filesystem::path write_raw(const std::filesystem::path& dir, const std::string& header,
                                const std::string& data, int64_t declared_len = -1) {
  auto path = dir / "raw.safetensors";
  std::ofstream out(path, std::ios::binary);
  uint64_t n = declared_len < 0 ? header.size() : static_cast<uint64_t>(declared_len);
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << header << data;
  return path;
}

TEST(Safetensors, RoundTripsEveryDtypeWithMetadata) {
  auto dir = temp_dir("st");
  TensorMap in;
  in["f32"] = torch::randn({3, 4});
  in["f16"] = torch::randn({5}).to(torch::kFloat16);
  in["bf16"] = torch::randn({2, 2}).to(torch::kBFloat16);
  in["i64"] = torch::arange(7, torch::kInt64);
  in["i32"] = torch::arange(6, torch::kInt32).reshape({2, 3});
  in["u8"] = torch::arange(200, torch::kUInt8);
  in["scalar"] = torch::tensor(3.5f);
  in["empty"] = torch::zeros({0, 4});
  write_safetensors(dir / "a.safetensors", in, {{"step", "12"}, {"format", "test"}});
  auto got = read_safetensors(dir / "a.safetensors");
  ASSERT_EQ(got.tensors.size(), in.size());
  for (const auto& [name, t] : in) {
    ASSERT_TRUE(got.tensors.count(name)) << name;
    EXPECT_EQ(got.tensors[name].scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(got.tensors[name].sizes(), t.sizes()) << name;
    EXPECT_TRUE(torch::equal(got.tensors[name], t)) << name;
  }
  EXPECT_EQ(got.metadata.at("step"), "12");
  EXPECT_EQ(got.metadata.at("format"), "test");
}

TEST(Safetensors, WritingToALoadedTensorLeavesTheFileUnchanged) {
  auto dir = temp_dir("st");
  write_safetensors(dir / "a.safetensors", {{"w", torch::ones({4})}});
  auto a = read_safetensors(dir / "a.safetensors");
  a.tensors["w"].fill_(7);
  auto b = read_safetensors(dir / "a.safetensors");
  EXPECT_TRUE(torch::equal(b.tensors["w"], torch::ones({4})));
}

TEST(Safetensors, ReadsTheFixtureWrittenByPython) {
  auto f = read_safetensors(test::fixture_path("mv_adapter_tiny/clip.safetensors"));
  EXPECT_EQ(f.metadata.at("format"), "openai-clip");
  EXPECT_EQ(f.tensors.at("visual.conv1.weight").sizes(), (std::vector<int64_t>{128, 3, 16, 16}));
  EXPECT_EQ(f.tensors.at("logit_scale").dim(), 0);
}

struct BadCase {
  const char* name;
  std::string header;
  std::string data;
  int64_t declared_len;
  const char* expect;
};

class SafetensorsMalformed : public ::testing::TestWithParam<BadCase> {};

TEST_P(SafetensorsMalformed, GivesAClearErrorNamingTheFile) {
  const auto& c = GetParam();
  auto dir = temp_dir("stbad");
  auto path = write_raw(dir, c.header, c.data, c.declared_len);
  try {
    read_safetensors(path);
    FAIL() << "expected an error for case " << c.name;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos)
        << "message '" << msg << "' lacks '" << c.expect << "'";
  }
}

const std::string k8(8, '\0');
INSTANTIATE_TEST_SUITE_P(
    Cases, SafetensorsMalformed,
    ::testing::Values(
        BadCase{"HeaderLengthPastEnd", R"({})", "", 1000, "runs past the end"},
        BadCase{"NotJson", R"({"a": )", "", -1, "not valid JSON"},
        BadCase{"NotObject", R"([1,2])", "", -1, "not a JSON object"},
        BadCase{"UnknownDtype", R"({"a":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}})", k8, -1,
                "unknown dtype 'F31'"},
        BadCase{"MissingDtype", R"({"a":{"shape":[2],"data_offsets":[0,8]}})", k8, -1, "'dtype'"},
        BadCase{"NegativeShape", R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", k8,
                -1, "not a non-negative integer"},
        BadCase{"ShapeSizeMismatch", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                k8, -1, "needs 12 bytes but data_offsets span 8"},
        BadCase{"OffsetsPastData", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", k8,
                -1, "run past the data area"},
        BadCase{"OffsetsReversed", R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", k8,
                -1, "begin > end"},
        BadCase{"BadOffsets", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", k8, -1,
                "data_offsets"},
        BadCase{
            "Overlap",
            R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
            k8, -1, "overlap"},
        BadCase{"MetadataNotStrings", R"({"__metadata__":{"a":1}})", "", -1, "not a string"},
        BadCase{"TooShort", "", "", 0, "header"}),
    [](const ::testing::TestParamInfo<BadCase>& i) { return std::string(i.param.name); });

// A header that claims 101 MB, in a file that really is that long (sparse: no disk used):
// refused by its length before a byte of it is parsed.
TEST(Safetensors, HeaderOverTheHundredMegabyteLimitIsRefused) {
  auto dir = temp_dir("st_huge_header");
  const uint64_t claimed = 101ull << 20;
  auto path = write_raw(dir, "{", "", static_cast<int64_t>(claimed));
  std::filesystem::resize_file(path, 8 + claimed);
  EXPECT_ERROR_CONTAINS(read_safetensors(path),
                        path.string() + ": header length 105906176 exceeds the 100 MB limit");
  std::filesystem::remove_all(dir);
}

TEST(Safetensors, FileShorterThanEightBytesIsAnError) {
  auto dir = temp_dir("st");
  auto path = dir / "short.safetensors";
  std::ofstream(path) << "abc";
  EXPECT_ERROR_CONTAINS(read_safetensors(path), "too short");
}

// Found by fuzzing (tests/fuzz, safetensors): an unaligned tensor is copied, and an empty one has
// no storage to copy into; memcpy to null is undefined even for zero bytes (a UBSan report in the
// sanitizer build, tests/sanitizers).
TEST(Safetensors, ReadsAnEmptyTensorAtAnUnalignedOffset) {
  auto dir = temp_dir("st");
  std::string header = R"({"u8":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                       R"("empty":{"dtype":"I32","shape":[0,4],"data_offsets":[1,1]}})";
  // Pad with JSON whitespace so the data area starts 8-aligned: offset 1 is then unaligned.
  header.append((8 - (8 + header.size()) % 8) % 8, ' ');
  auto got = read_safetensors(write_raw(dir, header, std::string("\x07", 1)));
  ASSERT_TRUE(got.tensors.count("empty"));
  EXPECT_EQ(got.tensors["empty"].sizes(), (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(got.tensors["empty"].scalar_type(), torch::kInt32);
  EXPECT_EQ(got.tensors["u8"].item<uint8_t>(), 7);
}

TEST(Safetensors, MissingFileNamesThePath) {
  EXPECT_ERROR_CONTAINS(read_safetensors("/nonexistent/x.safetensors"),
                        "/nonexistent/x.safetensors");
}

}  // namespace
}  // namespace mva
