#pragma once
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

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

}  // namespace mva
