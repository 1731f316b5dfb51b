#include "mvadapter/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>

#include <fmt/format.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mvadapter/core/error.h"
#include "mvadapter/core/tensor_format.h"
#include "mvadapter/io/atomic_file.h"

namespace mva {
namespace {

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
  int64_t size;
};

constexpr DtypeInfo kDtypes[] = {
    {"F64", torch::kFloat64, 8},   {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8},   {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},     {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

// Header sizes beyond this are not weight files but corruption; safetensors itself caps at 100 MB.
constexpr uint64_t kMaxHeader = 100ull << 20;

// Owns one read-only file mapping; tensors share it through their deleter.
struct Mapping {
  void* addr = MAP_FAILED;
  size_t size = 0;
  ~Mapping() {
    if (addr != MAP_FAILED) ::munmap(addr, size);
  }
};

}  // namespace

std::string safetensors_dtype_name(torch::ScalarType t) {
  for (const auto& d : kDtypes) {
    if (d.type == t) return d.name;
  }
  throw Error(fmt::format("safetensors: dtype {} has no safetensors name", c10::toString(t)));
}

SafetensorsFile read_safetensors(const std::filesystem::path& path) {
  const std::string file = path.string();
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(fmt::format("{}: cannot open ({})", file, std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error(fmt::format("{}: cannot stat ({})", file, std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(fmt::format("{}: not a regular file", file));
  }
  const auto file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    throw Error(
        fmt::format("{}: {} bytes is too short for a safetensors file (needs an 8-byte "
                    "header length)",
                    file, file_size));
  }
  auto map = std::make_shared<Mapping>();
  map->size = static_cast<size_t>(file_size);
  // Private + writable: tensors that are modified in place get copy-on-write pages, never the file.
  map->addr = ::mmap(nullptr, map->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map->addr == MAP_FAILED) {
    throw Error(fmt::format("{}: mmap failed ({})", file, std::strerror(errno)));
  }
  auto* base = static_cast<uint8_t*>(map->addr);

  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | base[i];
  if (header_len > file_size - 8) {
    throw Error(fmt::format("{}: header length {} runs past the end of the file ({} bytes)", file,
                            header_len, file_size));
  }
  if (header_len > kMaxHeader) {
    throw Error(fmt::format("{}: header length {} exceeds the 100 MB limit", file, header_len));
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(reinterpret_cast<const char*>(base + 8),
                                   reinterpret_cast<const char*>(base + 8 + header_len));
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: header is not valid JSON ({})", file, e.what()));
  }
  if (!header.is_object()) throw Error(fmt::format("{}: header is not a JSON object", file));

  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = file_size - data_start;
  SafetensorsFile out;
  struct Span {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Span> spans;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) throw Error(fmt::format("{}: __metadata__ is not an object", file));
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) {
          throw Error(fmt::format("{}: __metadata__['{}'] is not a string", file, k));
        }
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    auto where = fmt::format("{}: tensor '{}'", file, name);
    if (!entry.is_object()) throw Error(where + ": entry is not an object");
    if (!entry.contains("dtype") || !entry["dtype"].is_string()) {
      throw Error(where + ": missing string field 'dtype'");
    }
    const auto dtype_name = entry["dtype"].get<std::string>();
    const DtypeInfo* dt = find_dtype(dtype_name);
    if (dt == nullptr) throw Error(fmt::format("{}: unknown dtype '{}'", where, dtype_name));
    if (!entry.contains("shape") || !entry["shape"].is_array()) {
      throw Error(where + ": missing array field 'shape'");
    }
    std::vector<int64_t> shape;
    uint64_t numel = 1;
    for (const auto& d : entry["shape"]) {
      if (!d.is_number_unsigned()) {
        throw Error(fmt::format("{}: shape {} has an entry that is not a non-negative integer",
                                where, entry["shape"].dump()));
      }
      auto v = d.get<uint64_t>();
      if (v != 0 && numel > std::numeric_limits<uint64_t>::max() / v / 8) {
        throw Error(fmt::format("{}: shape {} overflows", where, entry["shape"].dump()));
      }
      numel *= v;
      shape.push_back(static_cast<int64_t>(v));
    }
    const auto& offs = entry.contains("data_offsets") ? entry["data_offsets"] : nlohmann::json();
    if (!offs.is_array() || offs.size() != 2 || !offs[0].is_number_unsigned() ||
        !offs[1].is_number_unsigned()) {
      throw Error(where + ": 'data_offsets' must be two non-negative integers [begin, end]");
    }
    const auto begin = offs[0].get<uint64_t>();
    const auto end = offs[1].get<uint64_t>();
    if (begin > end)
      throw Error(fmt::format("{}: data_offsets [{}, {}] has begin > end", where, begin, end));
    if (end > data_size) {
      throw Error(fmt::format("{}: data_offsets [{}, {}] run past the data area ({} bytes)", where,
                              begin, end, data_size));
    }
    if (numel * static_cast<uint64_t>(dt->size) != end - begin) {
      throw Error(fmt::format("{}: shape {} of {} needs {} bytes but data_offsets span {}", where,
                              shape_str(shape), dtype_name, numel * dt->size, end - begin));
    }
    spans.push_back({begin, end, name});
    uint8_t* ptr = base + data_start + begin;
    torch::Tensor t;
    auto opts = torch::TensorOptions().dtype(dt->type);
    if (reinterpret_cast<uintptr_t>(ptr) % static_cast<uintptr_t>(dt->size) != 0) {
      // Unaligned data would trip vectorised kernels; take a copy instead of a view.
      t = torch::empty(shape, opts);
      // An empty tensor has no storage (data_ptr() is null), and memcpy from or to null is
      // undefined even for zero bytes.
      if (end > begin) std::memcpy(t.data_ptr(), ptr, end - begin);
    } else {
      auto keep = map;
      t = torch::from_blob(
          ptr, shape, [keep](void*) mutable { keep.reset(); }, opts);
    }
    out.tensors.emplace(name, std::move(t));
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin < b.begin || (a.begin == b.begin && a.end < b.end);
  });
  for (size_t i = 1; i < spans.size(); ++i) {
    if (spans[i].begin < spans[i - 1].end) {
      throw Error(fmt::format("{}: tensors '{}' and '{}' overlap in the data area", file,
                              spans[i - 1].name, spans[i].name));
    }
  }
  return out;
}

void write_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> blobs;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (!tensor.defined()) {
      throw Error(fmt::format("{}: tensor '{}' is undefined", path.string(), name));
    }
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    auto bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", safetensors_dtype_name(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    blobs.push_back(std::move(t));
  }
  std::string json = header.dump();
  // Pad so the data area starts 8-byte aligned: readers can then map tensors without copies.
  json.append((8 - (json.size() % 8)) % 8, ' ');
  write_file_atomically(path, [&](const std::function<void(std::string_view)>& put) {
    char len[8];
    uint64_t n = json.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    put(std::string_view(len, 8));
    put(json);
    for (const auto& t : blobs) {
      put(std::string_view(static_cast<const char*>(t.data_ptr()),
                           static_cast<size_t>(t.numel()) * t.element_size()));
    }
  });
}

}  // namespace mva
