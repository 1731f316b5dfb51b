#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace mva {

/// Named tensors in a stable (sorted) order; what weight files and fixtures hold.
using TensorMap = std::map<std::string, torch::Tensor>;

/// The contents of a .safetensors file: tensors and the free-form `__metadata__` strings.
struct SafetensorsFile {
  TensorMap tensors;
  std::map<std::string, std::string> metadata;
};

/// Reads a .safetensors file through mmap. Every header field is validated (header length within
/// the file, JSON well-formed, dtype known, shape × dtype size == byte length, offsets inside the
/// data area and not overlapping); a bad file throws Error naming the file and the problem.
/// Tensors are CPU views of a private copy-on-write mapping: writing to them never touches the
/// file, and the mapping lives until the last tensor is gone.
SafetensorsFile read_safetensors(const std::filesystem::path& path);

/// Writes tensors (contiguous CPU copies are made as needed) with optional metadata, atomically:
/// a temporary file in the same folder is fsync'ed and renamed over `path`.
void write_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata = {});

/// The safetensors dtype name ("F32", "BF16", ...) of a torch dtype; throws Error for dtypes the
/// format does not define.
std::string safetensors_dtype_name(torch::ScalarType t);

}  // namespace mva
