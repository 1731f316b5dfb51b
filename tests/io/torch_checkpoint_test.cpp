#include "mvadapter/io/torch_checkpoint.h"

#include <caffe2/serialize/inline_container.h>

#include <torch/serialize.h>
#include <fstream>

#include "mvadapter/core/error.h"
#include "mvadapter/io/csv.h"
#include "test_support.h"

namespace mva {
namespace {

using test::fixture_path;
using test::temp_dir;

// LibTorch's own unpickler, the independent reference for what the file holds.
TensorMap reference_state_dict(const std::filesystem::path& path) {
  const std::string bytes = read_file_bytes(path);
  const auto root = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  TensorMap out;
  for (const auto& kv : root.toGenericDict()) {
    out.emplace(kv.key().toStringRef(), kv.value().toTensor());
  }
  return out;
}

TEST(TorchCheckpoint, OfficialPthReadsAsLibTorchsUnpicklerReadsIt) {
  const auto file = fixture_path("mv_adapter_tiny/adapter_official.pth");
  const TensorMap got = read_torch_state_dict(file);
  const TensorMap want = reference_state_dict(file);
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, t] : want) {
    SCOPED_TRACE(name);
    ASSERT_EQ(got.count(name), 1u);
    EXPECT_EQ(got.at(name).scalar_type(), t.scalar_type());
    EXPECT_EQ(got.at(name).sizes(), t.sizes());
    EXPECT_TRUE(got.at(name).equal(t));
  }
}

// torch.save({"state_dict": OrderedDict(a=s[1:5], b=s[::2], h=ones(2, 3, fp16).t(),
// i=tensor([1, 2]), p=Parameter(zeros(2))), "epoch": 3}) with s = arange(8.) (Python torch
// 1.13): views sharing one storage, a transposed fp16 tensor, int64, a Parameter, nesting.
TEST(TorchCheckpoint, NestedStateDictWithSharedStoragesAndParameters) {
  const TensorMap got = read_torch_state_dict(fixture_path("torch_save/nested_state_dict.pth"));
  ASSERT_EQ(got.size(), 5u);
  EXPECT_TRUE(got.at("a").equal(torch::tensor({1.0f, 2.0f, 3.0f, 4.0f})));
  EXPECT_TRUE(got.at("b").equal(torch::tensor({0.0f, 2.0f, 4.0f, 6.0f})));
  EXPECT_EQ(got.at("h").scalar_type(), torch::kFloat16);
  EXPECT_EQ(got.at("h").sizes(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(got.at("h").strides(), (std::vector<int64_t>{1, 3}));
  EXPECT_TRUE(got.at("h").equal(torch::ones({3, 2}, torch::kFloat16)));
  EXPECT_TRUE(got.at("i").equal(torch::tensor({int64_t{1}, int64_t{2}})));
  EXPECT_TRUE(got.at("p").equal(torch::zeros({2})));
}

TEST(TorchCheckpoint, TellsTorchScriptArchivesFromStateDicts) {
  EXPECT_TRUE(is_torchscript_archive(fixture_path("mv_adapter_tiny/clip_openai.pt")));
  EXPECT_FALSE(is_torchscript_archive(fixture_path("mv_adapter_tiny/adapter_official.pth")));
  EXPECT_FALSE(is_torchscript_archive(fixture_path("mv_adapter_tiny/adapter.safetensors")));
  EXPECT_ERROR_CONTAINS(read_torch_state_dict(fixture_path("mv_adapter_tiny/clip_openai.pt")),
                        "a TorchScript archive, not a torch.save'd dictionary");
}

// An archive as torch.save writes it, with a hand-made data.pkl and storage records.
std::filesystem::path write_archive(const std::filesystem::path& dir, const std::string& pickle,
                                    const std::string& storage) {
  const auto path = dir / "sd.pth";
  caffe2::serialize::PyTorchStreamWriter writer(path.string());
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  writer.writeRecord("data/0", storage.data(), storage.size());
  writer.writeEndOfFile();
  return path;
}

#define BYTES(lit) std::string(lit, sizeof(lit) - 1)

// {'w': _rebuild_tensor_v2(storage '0' of `numel` floats, 0, (1,), (1,), False, {})}
std::string one_tensor_pickle(uint32_t numel) {
  std::string n = "J";
  for (int k = 0; k < 4; ++k) n += static_cast<char>((numel >> (8 * k)) & 0xff);
  return BYTES("\x80\x02}(X\x01\x00\x00\x00w") + "ctorch._utils\n_rebuild_tensor_v2\n((" +
         BYTES("X\x07\x00\x00\x00storage") + "ctorch\nFloatStorage\n" +
         BYTES(
             "X\x01\x00\x00\x00"
             "0") +
         BYTES(
             "X\x03\x00\x00\x00"
             "cpu") +
         n + BYTES("tQK\x00K\x01\x85K\x01\x85\x89}tRu.");
}

TEST(TorchCheckpoint, HandMadeArchiveReadsItsTensor) {
  auto dir = temp_dir("torch_checkpoint");
  const float values[2] = {1.5f, -2.0f};
  const auto path = write_archive(dir, one_tensor_pickle(2),
                                  std::string(reinterpret_cast<const char*>(values), 8));
  const auto got = read_torch_state_dict(path);
  ASSERT_EQ(got.count("w"), 1u);
  EXPECT_TRUE(got.at("w").equal(torch::tensor({1.5f})));
}

TEST(TorchCheckpoint, StorageClaimingMoreThanTheFileIsRefusedBeforeAllocating) {
  auto dir = temp_dir("torch_checkpoint");
  // 2^30 floats (4 GiB) claimed by a file of a few hundred bytes.
  const auto path = write_archive(dir, one_tensor_pickle(1u << 30), std::string(8, '\0'));
  EXPECT_ERROR_CONTAINS(read_torch_state_dict(path),
                        "storage '0' claims 1073741824 elements (4 bytes each), more than the "
                        "file's");
}

TEST(TorchCheckpoint, StorageRecordOfTheWrongSizeIsRefused) {
  auto dir = temp_dir("torch_checkpoint");
  const auto path = write_archive(dir, one_tensor_pickle(3), std::string(8, '\0'));
  EXPECT_ERROR_CONTAINS(read_torch_state_dict(path),
                        "storage record 'data/0' holds 8 bytes, expected 12 (3 x Float)");
}

TEST(TorchCheckpoint, NotAZipArchiveNamesThePath) {
  auto dir = temp_dir("torch_checkpoint");
  const auto path = dir / "legacy.pth";
  std::ofstream(path, std::ios::binary)
      << std::string("\x80\x02\x8a\x0a", 4) << std::string(20, 'x');
  EXPECT_ERROR_CONTAINS(read_torch_state_dict(path),
                        path.string() + ": not a torch.save zip archive");
}

}  // namespace
}  // namespace mva
