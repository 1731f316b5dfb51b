#include "mvadapter/text/clip_tokenizer.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <zlib.h>
#include <nlohmann/json.hpp>

#include "mvadapter/core/error.h"
#include "mvadapter/core/runtime.h"
#include "test_support.h"

namespace mva {
namespace {

using Ids = std::vector<int64_t>;

const ClipTokenizer& tokenizer() {
  static const ClipTokenizer tok;
  return tok;
}

nlohmann::json load_cases() {
  std::ifstream in(test::fixture_path("tokenizer.json"));
  return nlohmann::json::parse(in);
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::filesystem::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary);
  out << data;
}

void write_gz(const std::filesystem::path& p, const std::string& data) {
  gzFile f = gzopen(p.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, data.data(), static_cast<unsigned>(data.size())),
            static_cast<int>(data.size()));
  gzclose(f);
}

TEST(ClipTokenizer, MatchesOfficialIdsForEveryFixtureCaption) {
  auto fx = load_cases();
  ASSERT_EQ(fx["sot"].get<int64_t>(), ClipTokenizer::kSot);
  ASSERT_EQ(fx["eot"].get<int64_t>(), ClipTokenizer::kEot);
  const auto& cases = fx["cases"];
  ASSERT_EQ(cases.size(), 317u);
  int failures = 0;
  for (const auto& c : cases) {
    auto text = c["text"].get<std::string>();
    auto bpe = tokenizer().encode(text);
    auto ids32 = tokenizer().encode_padded(text, 32);
    auto ids64 = tokenizer().encode_padded(text, 64);
    bool ok = bpe == c["bpe"].get<Ids>() && ids32.ids == c["ids32"].get<Ids>() &&
              ids64.ids == c["ids64"].get<Ids>();
    EXPECT_EQ(bpe, c["bpe"].get<Ids>()) << "bpe of caption: " << text;
    EXPECT_EQ(ids32.ids, c["ids32"].get<Ids>()) << "ids32 of caption: " << text;
    EXPECT_EQ(ids64.ids, c["ids64"].get<Ids>()) << "ids64 of caption: " << text;
    failures += ok ? 0 : 1;
  }
  EXPECT_EQ(failures, 0) << "captions whose ids differ from the official tokenizer";
}

TEST(ClipTokenizer, MaskCoversSotThroughEot) {
  auto fx = load_cases();
  for (const auto& c : fx["cases"]) {
    auto want = c["ids32"].get<Ids>();
    auto got = tokenizer().encode_padded(c["text"].get<std::string>(), 32);
    // The appended EOT is the last one: a caption may itself contain "<|endoftext|>".
    size_t eot = want.size() - 1;
    while (want[eot] != ClipTokenizer::kEot) --eot;
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_EQ(got.mask[i], i <= eot ? 1 : 0) << "position " << i << " of " << c["text"];
    }
  }
}

TEST(ClipTokenizer, BatchStacksPaddedRows) {
  auto fx = load_cases();
  std::vector<std::string> texts;
  torch::Tensor want = torch::zeros({3, 64}, torch::kLong);
  for (int i = 0; i < 3; ++i) {
    texts.push_back(fx["cases"][i]["text"].get<std::string>());
    auto row = fx["cases"][i]["ids64"].get<Ids>();
    want[i] = torch::tensor(row, torch::kLong);
  }
  auto batch = tokenizer().encode_batch(texts, 64);
  ASSERT_EQ(batch.ids.scalar_type(), torch::kLong);
  ASSERT_EQ(batch.ids.sizes(), (std::vector<int64_t>{3, 64}));
  EXPECT_TRUE(torch::equal(batch.ids, want));
  EXPECT_TRUE(torch::equal(batch.mask, (want != 0).to(torch::kLong)));
}

TEST(ClipTokenizer, ConcurrentEncodesGiveTheSameIds) {
  auto fx = load_cases();
  const auto& cases = fx["cases"];
  ClipTokenizer tok;  // a fresh cache, so threads race to fill it
  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t k = 0; k < cases.size(); ++k) {
        const auto& c = cases[(k * 7 + static_cast<size_t>(t) * 31) % cases.size()];
        if (tok.encode(c["text"].get<std::string>()) != c["bpe"].get<Ids>()) ++failures[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

// ---- text clean-up, hand-computed from Python's html.unescape / str.split / str.lower ---------

TEST(HtmlUnescape, NamedNumericAndLegacyReferences) {
  EXPECT_EQ(html_unescape("&amp; &lt; &gt; &quot; &#39; &apos;"), "& < > \" ' '");
  EXPECT_EQ(html_unescape("&nbsp;"), "\xC2\xA0");
  EXPECT_EQ(html_unescape("&#65;&#x42;&#X43;&#68"), "ABCD");
  EXPECT_EQ(html_unescape("&eacute;&Eacute"), "\xC3\xA9\xC3\x89");
  EXPECT_EQ(html_unescape("&ampfoo &notit;"), "&foo \xC2\xACit;");  // longest legacy prefix
  EXPECT_EQ(html_unescape("&bogus; &; &# &#x; a&b"), "&bogus; &; &# &#x; a&b");
  EXPECT_EQ(html_unescape("&amp;lt;"), "&lt;");  // one level per call
}

TEST(HtmlUnescape, InvalidCharrefsFollowPython) {
  EXPECT_EQ(html_unescape("&#0;"), "\xEF\xBF\xBD");
  EXPECT_EQ(html_unescape("&#128;"), "\xE2\x82\xAC");  // Windows-1252 euro sign
  EXPECT_EQ(html_unescape("&#xD800;"), "\xEF\xBF\xBD");
  EXPECT_EQ(html_unescape("&#99999999999999999999;"), "\xEF\xBF\xBD");
  EXPECT_EQ(html_unescape("x&#1;y&#xFFFF;z"), "xyz");
  EXPECT_EQ(html_unescape("&#x1F3B8;"), "\xF0\x9F\x8E\xB8");
}

TEST(ClipCleanText, UnescapesTwiceCollapsesWhitespaceAndLowerCases) {
  EXPECT_EQ(clip_clean_text("&amp;lt;b&amp;gt;"), "<b>");
  EXPECT_EQ(clip_clean_text("  A\tB\n\r\nC  "), "a b c");
  EXPECT_EQ(clip_clean_text("a&nbsp;\xE3\x80\x80 b"), "a b");  // nbsp, ideographic space
  EXPECT_EQ(clip_clean_text(" \t\n "), "");
  EXPECT_EQ(clip_clean_text("\xC3\x80\xC3\x89\xC3\x8E \xD0\x96"),
            "\xC3\xA0\xC3\xA9\xC3\xAE \xD0\xB6");
  EXPECT_EQ(clip_clean_text("\xCE\xA3\xCE\x91\xCE\xA3"),
            "\xCF\x83\xCE\xB1\xCF\x82");                // final sigma
  EXPECT_EQ(clip_clean_text("\xC4\xB0"), "i\xCC\x87");  // U+0130 lowers to two code points
}

// ---- ids, hand-computed: "x</w>" = 256 + position of x in bytes_to_unicode ('!' is 0) ----------

TEST(ClipTokenizer, SingleLettersAndSpecialTokens) {
  EXPECT_EQ(tokenizer().encode("a"), (Ids{320}));         // 'a' is 64th, 256 + 64
  EXPECT_EQ(tokenizer().encode("A !"), (Ids{320, 256}));  // '!' is 0th
  EXPECT_EQ(tokenizer().encode("<|endoftext|>"), (Ids{ClipTokenizer::kEot}));
  EXPECT_EQ(tokenizer().token(320), "a</w>");
  EXPECT_EQ(tokenizer().token(ClipTokenizer::kSot), "<|startoftext|>");
  EXPECT_TRUE(tokenizer().encode("").empty());
  EXPECT_TRUE(tokenizer().encode(" \n\t").empty());
}

TEST(ClipTokenizer, TruncatesToMaxWordsKeepingEot) {
  // Official bpe of "models are walking down a short runway" (fixture case 0).
  const Ids bpe{6176, 631, 3941, 1136, 320, 3005, 13927};
  const std::string text = "models are walking down a short runway";
  auto four = tokenizer().encode_padded(text, 4);
  EXPECT_EQ(four.ids, (Ids{49406, 6176, 631, 49407}));
  EXPECT_EQ(four.mask, (Ids{1, 1, 1, 1}));
  auto exact = tokenizer().encode_padded(text, 9);
  EXPECT_EQ(exact.ids, (Ids{49406, 6176, 631, 3941, 1136, 320, 3005, 13927, 49407}));
  auto two = tokenizer().encode_padded(text, 2);
  EXPECT_EQ(two.ids, (Ids{49406, 49407}));
  auto empty = tokenizer().encode_padded("", 5);
  EXPECT_EQ(empty.ids, (Ids{49406, 49407, 0, 0, 0}));
  EXPECT_EQ(empty.mask, (Ids{1, 1, 0, 0, 0}));
  EXPECT_ERROR_CONTAINS(tokenizer().encode_padded(text, 1), "max_words");
}

// A 1 MB caption: only the words that are kept are encoded, and a 1 MB "word" is encoded in
// pieces (BPE is quadratic in a word's length; whole, this one would take hours).
TEST(ClipTokenizer, MegabyteCaptionKeepsTheFirstWordsInBoundedWork) {
  std::string word;
  uint32_t state = 12345;
  while (word.size() < (1u << 20)) {
    state = state * 1103515245u + 12345u;
    word += static_cast<char>('a' + (state >> 16) % 26);
  }
  auto padded = tokenizer().encode_padded("models are walking down a short runway " + word, 9);
  EXPECT_EQ(padded.ids, (Ids{49406, 6176, 631, 3941, 1136, 320, 3005, 13927, 49407}));
  auto alone = tokenizer().encode_padded(word, 32);
  EXPECT_EQ(alone.mask, Ids(32, 1));
  EXPECT_EQ(alone.ids.back(), ClipTokenizer::kEot);
  // A word of exactly kMaxWordBytes is one piece: the same ids as the whole word's prefix.
  const std::string piece = word.substr(0, ClipTokenizer::kMaxWordBytes);
  const Ids whole = tokenizer().encode(piece);
  const Ids two = tokenizer().encode(piece + piece);
  ASSERT_EQ(two.size(), 2 * whole.size());
  EXPECT_TRUE(std::equal(whole.begin(), whole.end(), two.begin()));
}

TEST(ClipTokenizer, DecodesBytesAndWordEnds) {
  EXPECT_EQ(tokenizer().decode({6176, 631, 3941, 1136, 320, 3005, 13927}),
            "models are walking down a short runway ");
  // Byte 0xC3 is token 127, byte 0xA9 + </w> is 256 + 102: together U+00E9.
  EXPECT_EQ(tokenizer().decode({127, 358}), "\xC3\xA9 ");
  EXPECT_EQ(tokenizer().decode({127}), "\xEF\xBF\xBD");  // a lone lead byte
  EXPECT_EQ(tokenizer().decode(tokenizer().encode("Hello,  World!")), "hello , world ! ");
  EXPECT_ERROR_CONTAINS(tokenizer().decode({49408}), "outside the vocabulary");
  EXPECT_ERROR_CONTAINS(tokenizer().decode({-1}), "outside the vocabulary");
}

// ---- the vocabulary file -----------------------------------------------------------------------

TEST(ClipTokenizer, MissingVocabularyNamesTheFile) {
  auto dir = test::temp_dir("tok_missing");
  auto path = (dir / "nope.txt.gz").string();
  EXPECT_ERROR_CONTAINS(ClipTokenizer{path}, path);
  std::filesystem::remove_all(dir);
}

TEST(ClipTokenizer, TruncatedGzipIsAnError) {
  auto dir = test::temp_dir("tok_truncated");
  std::string full = read_file(find_asset("bpe_simple_vocab_16e6.txt.gz"));
  ASSERT_GT(full.size(), 100000u);
  auto path = dir / "bpe_simple_vocab_16e6.txt.gz";
  write_file(path, full.substr(0, full.size() / 2));
  EXPECT_ERROR_CONTAINS(ClipTokenizer{path.string()}, "corrupt");
  EXPECT_ERROR_CONTAINS(ClipTokenizer{path.string()}, path.string());
  std::filesystem::remove_all(dir);
}

TEST(ClipTokenizer, ShortOrMalformedMergeListIsAnError) {
  auto dir = test::temp_dir("tok_short");
  auto short_path = dir / "short.txt.gz";
  write_gz(short_path, "#version: 0.2\ni n\nt h\n");
  EXPECT_ERROR_CONTAINS(ClipTokenizer{short_path.string()}, "has 2 merge lines, expected 48894");
  auto bad_path = dir / "bad.txt.gz";
  write_gz(bad_path, "#version: 0.2\ni n\nthree parts here\n");
  EXPECT_ERROR_CONTAINS(ClipTokenizer{bad_path.string()}, "line 3: expected a merge");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mva
