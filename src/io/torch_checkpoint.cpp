#include "mvadapter/io/torch_checkpoint.h"

#include <openssl/evp.h>

#include <fstream>
#include <iterator>
#include <memory>

#include <fmt/format.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"

namespace mva {
namespace {

void collect(const c10::IValue& v, TensorMap& out, const std::string& prefix) {
  if (!v.isGenericDict()) return;
  for (const auto& kv : v.toGenericDict()) {
    if (!kv.key().isString()) continue;
    auto name = prefix + kv.key().toStringRef();
    if (kv.value().isTensor()) out.emplace(name, kv.value().toTensor());
  }
}

}  // namespace

TensorMap read_torch_state_dict(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open", path.string()));
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  c10::IValue root;
  try {
    root = torch::pickle_load(bytes);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
    throw Error(
        fmt::format("{}: not a torch.save'd dictionary of tensors ({})", path.string(), msg));
  }
  if (!root.isGenericDict()) {
    throw Error(fmt::format("{}: expected a dictionary of tensors, found {}", path.string(),
                            root.tagKind()));
  }
  auto dict = root.toGenericDict();
  for (const char* key : {"state_dict", "model"}) {
    if (dict.contains(key) && dict.at(key).isGenericDict()) {
      TensorMap nested;
      collect(dict.at(key), nested, "");
      if (!nested.empty()) return nested;
    }
  }
  TensorMap out;
  collect(root, out, "");
  if (out.empty()) throw Error(fmt::format("{}: the dictionary holds no tensors", path.string()));
  return out;
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
