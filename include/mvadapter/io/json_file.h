#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mva {

/// Parses a whole JSON file, keeping object keys in file order (several datasets define their
/// order by it). A syntax error throws Error naming the file, the line and the column.
nlohmann::ordered_json read_json_file(const std::filesystem::path& file);

/// Parses `text`; errors name `name` and the line, counted from `first_line` (so one line of a
/// JSONL file reports its own line number).
nlohmann::ordered_json parse_json_text(std::string_view text, const std::string& name,
                                       int64_t first_line = 1);

/// "object", "array", "string", "number", "boolean" or "null": for "expected X, got Y" errors.
std::string json_type_name(const nlohmann::ordered_json& value);

}  // namespace mva
