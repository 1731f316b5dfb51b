#include "mvadapter/io/torch_checkpoint.h"

#include <openssl/evp.h>

#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>

#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "mvadapter/io/pickle.h"

namespace mva {
namespace {

std::string first_line(const std::string& msg) {
  return msg.substr(0, msg.find('\n'));
}

// The zip container of torch.save and TorchScript archives (miniz, inside LibTorch).
std::unique_ptr<caffe2::serialize::PyTorchStreamReader> open_archive(
    const std::filesystem::path& path) {
  if (!std::filesystem::is_regular_file(path))
    throw Error(fmt::format("{}: cannot open: no such file", path.string()));
  try {
    return std::make_unique<caffe2::serialize::PyTorchStreamReader>(path.string());
  } catch (const std::exception& e) {
    throw Error(
        fmt::format("{}: not a torch.save zip archive ({}); files written by torch.save "
                    "before PyTorch 1.6 (the legacy format) are not supported",
                    path.string(), first_line(e.what())));
  }
}

}  // namespace

bool is_torchscript_archive(const std::filesystem::path& path) {
  try {
    caffe2::serialize::PyTorchStreamReader zip(path.string());
    return zip.hasRecord("constants.pkl");
  } catch (const std::exception&) {
    return false;
  }
}

TensorMap read_torch_state_dict(const std::filesystem::path& path) {
  auto zip = open_archive(path);
  const auto file_bytes = static_cast<int64_t>(std::filesystem::file_size(path));
  TorchPickle root;
  try {
    if (zip->hasRecord("constants.pkl")) {
      throw Error(
          fmt::format("{}: a TorchScript archive, not a torch.save'd dictionary of "
                      "tensors",
                      path.string()));
    }
    if (!zip->hasRecord("data.pkl"))
      throw Error(fmt::format("{}: no data.pkl record: not a torch.save archive", path.string()));
    auto [pickle, pickle_bytes] = zip->getRecord("data.pkl");
    // Storages are stored uncompressed: one larger than the file is a lie, refused before any
    // allocation of that size.
    const StorageReader read_storage = [&](const std::string& key, torch::ScalarType dtype,
                                           int64_t numel) {
      const int64_t element = static_cast<int64_t>(c10::elementSize(dtype));
      if (numel > file_bytes / element) {
        throw Error(
            fmt::format("{}: storage '{}' claims {} elements ({} bytes each), more than "
                        "the file's {} bytes",
                        path.string(), key, numel, element, file_bytes));
      }
      const std::string record = "data/" + key;
      if (!zip->hasRecord(record))
        throw Error(fmt::format("{}: storage record '{}' is missing", path.string(), record));
      auto [data, bytes] = zip->getRecord(record);
      if (static_cast<int64_t>(bytes) != numel * element) {
        throw Error(fmt::format("{}: storage record '{}' holds {} bytes, expected {} ({} x {})",
                                path.string(), record, bytes, numel * element, numel,
                                c10::toString(dtype)));
      }
      auto out = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
      if (bytes > 0) std::memcpy(out.data_ptr(), data.get(), bytes);
      return out;
    };
    root =
        parse_torch_pickle(std::string_view(static_cast<const char*>(pickle.get()), pickle_bytes),
                           path.string() + ":data.pkl", read_storage);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {  // the zip reader's c10::Error (a damaged record)
    throw Error(fmt::format("{}: damaged archive ({})", path.string(), first_line(e.what())));
  }
  for (const char* key : {"state_dict", "model"}) {
    auto nested = root.nested.find(key);
    if (nested != root.nested.end() && !nested->second.empty()) return nested->second;
  }
  if (root.tensors.empty())
    throw Error(fmt::format("{}: the dictionary holds no tensors", path.string()));
  return root.tensors;
}

std::string file_sha256(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open", path.string()));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(in.gcount()));
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  std::string hex;
  for (unsigned i = 0; i < len; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

}  // namespace mva
