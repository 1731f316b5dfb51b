#include "mvadapter/io/json_file.h"

#include <algorithm>

#include <fmt/format.h>

#include "mvadapter/core/error.h"
#include "mvadapter/io/csv.h"

namespace mva {

nlohmann::ordered_json parse_json_text(std::string_view text, const std::string& name,
                                       int64_t first_line) {
  try {
    return nlohmann::ordered_json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is 1-based and points at the character that broke the parse (or one past the end).
    const size_t at = std::min<size_t>(e.byte > 0 ? e.byte - 1 : 0, text.size());
    const auto head = text.substr(0, at);
    const int64_t line = first_line + std::count(head.begin(), head.end(), '\n');
    const size_t line_start = head.rfind('\n');
    const size_t column = line_start == std::string_view::npos ? at + 1 : at - line_start;
    std::string reason = e.what();
    // Drop nlohmann's "[json.exception...] parse error at line 1, column 2: " prefix.
    const size_t column_at = reason.find(", column ");
    const size_t cut = column_at == std::string::npos ? column_at : reason.find(": ", column_at);
    if (cut != std::string::npos) reason = reason.substr(cut + 2);
    throw Error(fmt::format("{} line {} column {}: invalid JSON: {}", name, line, column, reason));
  }
}

nlohmann::ordered_json read_json_file(const std::filesystem::path& file) {
  return parse_json_text(read_file_bytes(file), file.string());
}

std::string json_type_name(const nlohmann::ordered_json& value) {
  if (value.is_number()) return "number";
  return value.type_name();
}

}  // namespace mva
