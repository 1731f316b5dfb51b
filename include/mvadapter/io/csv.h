#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace mva {

/// How a delimited text file is split into fields.
struct CsvDialect {
  char delimiter = ',';
  /// RFC 4180 double quotes. Off for formats whose text holds bare quotes at field starts
  /// (LSMDC's tab-separated files are split on tabs only, as every reference loader does).
  bool quoting = true;
};

/// One record of a delimited file and the 1-based line it starts on.
struct CsvRecord {
  int64_t line = 0;
  std::vector<std::string> fields;
};

/// Splits `text` into records. "\n" and "\r\n" end a record, blank lines are skipped and a
/// leading UTF-8 byte-order mark is ignored. With quoting, a field that starts with '"' runs to
/// the matching quote ("" inside stands for one quote) and may span lines; an unclosed quote or
/// text after a closing quote throws Error naming `name` and the line. Fields are not trimmed.
std::vector<CsvRecord> parse_csv(std::string_view text, const std::string& name,
                                 const CsvDialect& dialect = {});

/// Reads a whole file and splits it as parse_csv does.
std::vector<CsvRecord> read_csv(const std::filesystem::path& file, const CsvDialect& dialect = {});

/// A delimited file whose first record names the columns; every row has one field per column.
struct CsvTable {
  std::string file;  ///< for error messages
  std::vector<std::string> header;
  std::vector<CsvRecord> rows;

  /// Index of the column called `name`; throws Error naming the file and the columns it has.
  size_t column(const std::string& name) const;
  /// Whether a column called `name` exists.
  bool has_column(const std::string& name) const;
};

/// Reads a file with a header line. An empty file, or a row whose field count differs from the
/// header's, throws Error naming the file, the line and both counts.
CsvTable read_csv_table(const std::filesystem::path& file, const CsvDialect& dialect = {});

/// The bytes of a whole file; throws Error naming the file when it cannot be read.
std::string read_file_bytes(const std::filesystem::path& file);

}  // namespace mva
