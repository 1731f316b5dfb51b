#include "mvadapter/io/csv.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "mvadapter/core/error.h"

namespace mva {

std::vector<CsvRecord> parse_csv(std::string_view text, const std::string& name,
                                 const CsvDialect& dialect) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::vector<CsvRecord> records;
  CsvRecord record;
  std::string field;
  int64_t line = 1;
  size_t i = 0;
  const size_t n = text.size();
  bool record_has_text = false;  // false for a blank line, which is skipped

  auto end_field = [&] {
    record.fields.push_back(std::move(field));
    field.clear();
  };
  auto end_record = [&] {
    end_field();
    if (record_has_text) records.push_back(std::move(record));
    record = CsvRecord{};
    record_has_text = false;
  };
  // True (and consumes it) when a line ending starts at `i`.
  auto at_newline = [&](size_t& k) {
    if (text[k] == '\n') {
      ++k;
      return true;
    }
    if (text[k] == '\r' && k + 1 < n && text[k + 1] == '\n') {
      k += 2;
      return true;
    }
    return false;
  };

  while (i < n) {
    if (record.fields.empty() && field.empty() && !record_has_text) record.line = line;
    if (dialect.quoting && field.empty() && text[i] == '"') {
      const int64_t start_line = line;
      record_has_text = true;
      ++i;
      for (;;) {
        if (i >= n) {
          throw Error(fmt::format("{} line {}: quoted field {} is never closed (missing '\"')",
                                  name, start_line, record.fields.size() + 1));
        }
        const char c = text[i++];
        if (c == '"') {
          if (i < n && text[i] == '"') {
            field.push_back('"');
            ++i;
            continue;
          }
          break;
        }
        if (c == '\n') ++line;
        field.push_back(c);
      }
      if (i >= n) break;
      if (text[i] == dialect.delimiter) {
        ++i;
        end_field();
        continue;
      }
      if (at_newline(i)) {
        end_record();
        ++line;
        continue;
      }
      throw Error(
          fmt::format("{} line {}: unexpected '{}' after the closing quote of field {} "
                      "(a quote inside a quoted field must be doubled)",
                      name, line, text[i], record.fields.size() + 1));
    }
    if (at_newline(i)) {
      end_record();
      ++line;
      continue;
    }
    const char c = text[i++];
    record_has_text = true;
    if (c == dialect.delimiter) {
      end_field();
    } else {
      field.push_back(c);
    }
  }
  if (record_has_text || !record.fields.empty() || !field.empty()) end_record();
  return records;
}

std::string read_file_bytes(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open: {}", file.string(), std::strerror(errno)));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw Error(fmt::format("{}: read error", file.string()));
  return buffer.str();
}

std::vector<CsvRecord> read_csv(const std::filesystem::path& file, const CsvDialect& dialect) {
  return parse_csv(read_file_bytes(file), file.string(), dialect);
}

size_t CsvTable::column(const std::string& name) const {
  for (size_t k = 0; k < header.size(); ++k) {
    if (header[k] == name) return k;
  }
  throw Error(fmt::format("{} line 1: no column '{}' in the header (columns: {})", file, name,
                          fmt::join(header, ", ")));
}

bool CsvTable::has_column(const std::string& name) const {
  for (const auto& h : header) {
    if (h == name) return true;
  }
  return false;
}

CsvTable read_csv_table(const std::filesystem::path& file, const CsvDialect& dialect) {
  CsvTable table;
  table.file = file.string();
  auto records = read_csv(file, dialect);
  if (records.empty())
    throw Error(fmt::format("{}: empty file, expected a header line", table.file));
  table.header = std::move(records.front().fields);
  for (size_t r = 1; r < records.size(); ++r) {
    if (records[r].fields.size() != table.header.size()) {
      throw Error(fmt::format("{} line {}: expected {} fields ({}), got {}", table.file,
                              records[r].line, table.header.size(), fmt::join(table.header, ", "),
                              records[r].fields.size()));
    }
    table.rows.push_back(std::move(records[r]));
  }
  return table;
}

}  // namespace mva
