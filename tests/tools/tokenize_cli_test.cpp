// `mvadapter tokenize` run as a user would, checked against the official ids in the fixture.
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace mva {
namespace {

nlohmann::json fixture_case(size_t index) {
  std::ifstream in(test::fixture_path("tokenizer.json"));
  return nlohmann::json::parse(in)["cases"].at(index);
}

std::string joined(const std::vector<int64_t>& ids) {
  return fmt::format("{}", fmt::join(ids, " "));
}

// Case 4 ("A MAN is Cooking!!  In the   kitchen...") exercises case, runs of spaces and
// punctuation, and contains no shell-special characters.
TEST(TokenizeCli, PrintsPaddedOfficialIds) {
  auto c = fixture_case(4);
  std::string out;
  int rc = test::run_command(fmt::format("{} tokenize --max-words 32 '{}'",
                                         test::cli_binary().string(), c["text"].get<std::string>()),
                             &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(out, joined(c["ids32"].get<std::vector<int64_t>>()) + "\n");
}

TEST(TokenizeCli, ReadsCaptionsFromStdinAsUnpaddedIds) {
  auto c = fixture_case(4);
  auto bpe = c["bpe"].get<std::vector<int64_t>>();
  std::vector<int64_t> want{49406};
  want.insert(want.end(), bpe.begin(), bpe.end());
  want.push_back(49407);
  std::string out;
  int rc = test::run_command(fmt::format("printf '%s\\na\\n' '{}' | {} tokenize",
                                         c["text"].get<std::string>(), test::cli_binary().string()),
                             &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(out, joined(want) + "\n49406 320 49407\n");  // "a</w>" is 320
}

TEST(TokenizeCli, JsonHasTextIdsAndTokens) {
  std::string out;
  int rc = test::run_command(
      fmt::format("{} tokenize --json --max-words 5 'a dog'", test::cli_binary().string()), &out);
  ASSERT_EQ(rc, 0) << out;
  auto j = nlohmann::json::parse(out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["text"], "a dog");
  EXPECT_EQ(j[0]["ids"].get<std::vector<int64_t>>(),
            (std::vector<int64_t>{49406, 320, 1929, 49407, 0}));
  EXPECT_EQ(j[0]["tokens"].get<std::vector<std::string>>(),
            (std::vector<std::string>{"<|startoftext|>", "a</w>", "dog</w>", "<|endoftext|>"}));
}

TEST(TokenizeCli, BadVocabularyIsOneErrorLine) {
  std::string out;
  int rc = test::run_command(fmt::format("{} tokenize --vocab /nonexistent/vocab.txt.gz hello",
                                         test::cli_binary().string()),
                             &out);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("/nonexistent/vocab.txt.gz"), std::string::npos) << out;
}

}  // namespace
}  // namespace mva
