#include "mvadapter/io/csv.h"

#include <fstream>

#include "mvadapter/core/error.h"
#include "test_support.h"

namespace mva {
namespace {

using test::temp_dir;
using Fields = std::vector<std::string>;

std::filesystem::path write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  return path;
}

TEST(Csv, QuotedFieldsKeepCommasQuotesAndNewlines) {
  const std::string text =
      "key,sentence\n"
      "a,\"one, two\"\n"
      "b,\"say \"\"hi\"\"\"\n"
      "c,\"two\nlines\"\n"
      "d,\"\"\n"
      "e,plain \"inner\" quote\n";
  const auto rows = parse_csv(text, "t.csv");
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows[1].fields, (Fields{"a", "one, two"}));
  EXPECT_EQ(rows[2].fields, (Fields{"b", "say \"hi\""}));
  EXPECT_EQ(rows[3].fields, (Fields{"c", "two\nlines"}));
  EXPECT_EQ(rows[3].line, 4);
  EXPECT_EQ(rows[4].fields, (Fields{"d", ""}));
  EXPECT_EQ(rows[4].line, 6);  // the quoted newline moved every later record down one line
  EXPECT_EQ(rows[5].fields, (Fields{"e", "plain \"inner\" quote"}));
}

TEST(Csv, CrLfBomBlankLinesAndEmptyFields) {
  const std::string text = "\xEF\xBB\xBFvideo_id\r\n\r\nvideo0\r\n,\r\n\"x\"\r\nlast";
  const auto rows = parse_csv(text, "t.csv");
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[0].fields, (Fields{"video_id"}));
  EXPECT_EQ(rows[1].fields, (Fields{"video0"}));
  EXPECT_EQ(rows[1].line, 3);
  EXPECT_EQ(rows[2].fields, (Fields{"", ""}));
  EXPECT_EQ(rows[3].fields, (Fields{"x"}));
  EXPECT_EQ(rows[4].fields, (Fields{"last"}));
  EXPECT_EQ(rows[4].line, 6);
}

TEST(Csv, TabsWithoutQuotingTakeQuotesLiterally) {
  const auto rows = parse_csv("id\t\"Hi,\" he says.\n", "t.tsv", CsvDialect{'\t', false});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].fields, (Fields{"id", "\"Hi,\" he says."}));
}

TEST(Csv, UnclosedQuoteNamesTheLineItStarts) {
  EXPECT_ERROR_CONTAINS(parse_csv("a,b\nc,\"open\nmore\n", "q.csv"),
                        "q.csv line 2: quoted field 2 is never closed");
}

TEST(Csv, TextAfterClosingQuoteIsAnError) {
  EXPECT_ERROR_CONTAINS(parse_csv("a,b\nc,\"x\"y\n", "q.csv"),
                        "q.csv line 2: unexpected 'y' after the closing quote of field 2");
}

TEST(CsvTable, ColumnsByNameAndFieldCountChecked) {
  auto dir = temp_dir("csv");
  const auto good = write_text(dir / "good.csv", "key,video_id,sentence\nr0,video8,\"a, b\"\n");
  const CsvTable t = read_csv_table(good);
  EXPECT_EQ(t.column("sentence"), 2u);
  EXPECT_FALSE(t.has_column("caption"));
  ASSERT_EQ(t.rows.size(), 1u);
  EXPECT_EQ(t.rows[0].fields[2], "a, b");
  EXPECT_ERROR_CONTAINS(t.column("caption"),
                        "good.csv line 1: no column 'caption' in the header (columns: key, "
                        "video_id, sentence)");

  const auto bad = write_text(dir / "bad.csv", "key,video_id,sentence\nr0,video8,s\nr1,video9\n");
  EXPECT_ERROR_CONTAINS(read_csv_table(bad), "bad.csv line 3: expected 3 fields");
  const auto empty = write_text(dir / "empty.csv", "");
  EXPECT_ERROR_CONTAINS(read_csv_table(empty), "empty.csv: empty file");
}

}  // namespace
}  // namespace mva
