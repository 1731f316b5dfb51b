#include "mvadapter/io/json_file.h"

#include <fstream>

#include "mvadapter/core/error.h"
#include "test_support.h"

namespace mva {
namespace {

using test::temp_dir;

std::filesystem::path write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  return path;
}

TEST(JsonFile, SyntaxErrorNamesLineAndColumn) {
  auto dir = temp_dir("json");
  const auto file = write_text(dir / "x.json", "{\n  \"a\": 1,\n  \"b\": ,\n}\n");
  // The parser stops at the ',' after "b": line 3, column 8.
  EXPECT_ERROR_CONTAINS(read_json_file(file), file.string() + " line 3 column 8: invalid JSON");
  EXPECT_ERROR_CONTAINS(parse_json_text("{\"a\": [1, 2", "one.jsonl", 7), "one.jsonl line 7");
}

TEST(JsonFile, KeepsKeyOrder) {
  const auto j = parse_json_text(R"({"z": 1, "a": 2, "m": 3})", "o.json");
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"z", "a", "m"}));
}

TEST(JsonFile, TypeNamesForMessages) {
  EXPECT_EQ(json_type_name(nlohmann::ordered_json(3)), "number");
  EXPECT_EQ(json_type_name(nlohmann::ordered_json(2.5)), "number");
  EXPECT_EQ(json_type_name(nlohmann::ordered_json("s")), "string");
  EXPECT_EQ(json_type_name(nlohmann::ordered_json::array()), "array");
}

}  // namespace
}  // namespace mva
