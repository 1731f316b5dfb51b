#pragma once
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "mvadapter/io/safetensors.h"

namespace mva {

/// Reads a Python pickle (protocols 2 to 5) of plain data — dict, list, tuple, str, bytes, int,
/// float, bool, None — as datasets ship them (MSVD's raw-captions.pkl). Lists and tuples become
/// JSON arrays, str (and Python 2 str) JSON strings, bytes JSON binary values, and dicts JSON
/// objects in insertion order (their keys must be str). Objects shared through the memo keep
/// Python's reference semantics. Anything else — class instances, an unknown opcode, a truncated
/// file, an int beyond 64 bits — throws Error naming the file, the byte offset and the opcode.
nlohmann::ordered_json read_pickle(const std::filesystem::path& file);

/// The same for pickle bytes already in memory; `name` stands for the file in error messages.
nlohmann::ordered_json parse_pickle(std::string_view bytes, const std::string& name);

/// Returns the storage record `key` of a torch.save archive: a 1-D tensor of `numel` `dtype`s.
using StorageReader =
    std::function<torch::Tensor(const std::string& key, torch::ScalarType dtype, int64_t numel)>;

/// A torch.save'd dictionary: its tensors, and those of the dictionaries one level down (a
/// checkpoint's {"state_dict": {...}, "epoch": 3}). Other values are skipped.
struct TorchPickle {
  TensorMap tensors;
  std::map<std::string, TensorMap> nested;
};

/// Reads the data.pkl of a torch.save archive with the same reader, which then also accepts the
/// globals a dictionary of tensors needs — collections.OrderedDict, torch._utils's
/// _rebuild_tensor_v2 and _rebuild_parameter, torch.<Type>Storage — and storage persistent ids
/// (read through `read_storage`); any other global throws Error naming it, so a hostile pickle
/// cannot run code. Tensors are views of their storage, checked to lie inside it.
TorchPickle parse_torch_pickle(std::string_view bytes, const std::string& name,
                               const StorageReader& read_storage);

}  // namespace mva
