#include "mvadapter/text/text_fix.h"

#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mvadapter/text/clip_tokenizer.h"
#include "test_support.h"

// Expected values are ftfy 6.3.1's documented behaviour: the docstrings of ftfy/fixes.py and
// ftfy/__init__.py (quoted where used), the tables in ftfy/chardata.py, and the maintainers' test
// cases in tests/test-cases/*.json (tests/fixtures/ftfy_cases.json); code points are written out
// so that no editor can normalise them.

namespace mva {
namespace {

// ---- the single fixes ----------------------------------------------------------------------------

TEST(UncurlQuotes, StraightensEveryQuoteFtfyLists) {
  // fixes.py doctest: uncurl_quotes('\u201chere\u2019s a test\u201d') -> "here's a test" quoted.
  EXPECT_EQ(uncurl_quotes("\u201Chere\u2019s a test\u201D"), "\"here's a test\"");
  // chardata.py: SINGLE_QUOTE_RE = [\u02bc\u2018-\u201b], DOUBLE_QUOTE_RE = [\u201c-\u201f].
  EXPECT_EQ(uncurl_quotes("\u02BC\u2018\u2019\u201A\u201B"), "'''''");
  EXPECT_EQ(uncurl_quotes("\u201C\u201D\u201E\u201F"), "\"\"\"\"");
}

TEST(UncurlQuotes, LeavesAngleQuotesAndPrimesAlone) {
  const std::string text = "\u2039x\u203A \u00ABy\u00BB 5\u2032 6\u2033 \u0060z\u00B4";
  EXPECT_EQ(uncurl_quotes(text), text);
}

TEST(FixLatinLigatures, SplitsTypographicLigaturesAndLegacyDigraphs) {
  // fixes.py doctest: fix_latin_ligatures("ﬂuﬃeﬆ") -> "fluffiest".
  EXPECT_EQ(fix_latin_ligatures("\uFB02u\uFB03e\uFB06"), "fluffiest");
  EXPECT_EQ(fix_latin_ligatures("\uFB00 \uFB01 \uFB04 \uFB05"), "ff fi ffl \u017Ft");
  EXPECT_EQ(fix_latin_ligatures("\u0132\u0133"), "IJij");
  EXPECT_EQ(fix_latin_ligatures("\u01F1\u01F2\u01F3"), "DZDzdz");
  EXPECT_EQ(fix_latin_ligatures("\u01C4\u01C5\u01C6"), "D\u017DD\u017Ed\u017E");
  EXPECT_EQ(fix_latin_ligatures("\u01C7\u01C8\u01C9\u01CA\u01CB\u01CC"), "LJLjljNJNjnj");
  EXPECT_EQ(fix_latin_ligatures("\u0149"), "\u02BCn");  // Afrikaans 'n
}

TEST(FixLatinLigatures, KeepsLigaturesThatAreMeant) {
  // "It omits ligatures such as æ that are frequently used intentionally."
  const std::string text = "\u00E6\u00C6\u0153\u0152 \u00DF \uFB13";  // æÆœŒ ß, Armenian ﬓ
  EXPECT_EQ(fix_latin_ligatures(text), text);
}

TEST(FixCharacterWidth, NarrowsFullWidthAndWidensHalfWidthForms) {
  // fixes.py doctests: "ＬＯＵＤ　ＮＯＩＳＥＳ" -> "LOUD NOISES", "Ｕﾀｰﾝ" -> "Uターン".
  EXPECT_EQ(fix_character_width("\uFF2C\uFF2F\uFF35\uFF24\u3000\uFF2E\uFF2F\uFF29\uFF33\uFF25\uFF33"),
            "LOUD NOISES");
  EXPECT_EQ(fix_character_width("\uFF35\uFF80\uFF70\uFF9D"), "U\u30BF\u30FC\u30F3");
  // The ends of U+FF01..U+FF5E and the full-width signs after it (NFKC, UnicodeData.txt).
  EXPECT_EQ(fix_character_width("\uFF01\uFF5E\uFFE0\uFFE5"), "!~\u00A2\u00A5");
  // Half-width voiced sound mark: its NFKC form is the combining U+3099.
  EXPECT_EQ(fix_character_width("\uFF76\uFF9E"), "\u30AB\u3099");
}

TEST(FixCharacterWidth, LeavesOtherSpacesAndFormsAlone) {
  const std::string text = "a\u2003b\u00A0c \u30AB \uFE35 \u3001";  // em space, nbsp, kana, ︵, 、
  EXPECT_EQ(fix_character_width(text), text);
}

TEST(RemoveControlChars, RemovesFtfysList) {
  // fixes.py: U+00..U+08, U+0B, U+0E..U+1F, U+7F, U+206A..U+206F, U+FEFF, U+FFF9..U+FFFC.
  EXPECT_EQ(remove_control_chars(std::string("a\x00" "b\x08" "c\x0B" "d\x0E" "e\x1F" "f\x7F" "g", 13)),
            "abcdefg");
  EXPECT_EQ(remove_control_chars("x\u206Ay\u206Fz"), "xyz");
  EXPECT_EQ(remove_control_chars("\uFEFFx\uFEFFy"), "xy");
  EXPECT_EQ(remove_control_chars("a\uFFF9b\uFFFAc\uFFFBd\uFFFCe"), "abcde");
}

TEST(RemoveControlChars, KeepsWhitespaceJoinersBidiMarksC1AndTags) {
  // "these similar characters are left alone": \t \n \f \r, U+2028/9, joiners and RTL marks
  // (U+200C..U+200F, U+202A..U+202E), C1 controls, tag characters (flag of Wales).
  const std::string text =
      "\t\n\x0C\r\u2028\u2029|\u200B\u200C\u200D\u200E\u200F\u202A\u202E|\u0085\u009F|\uFFFD|"
      "\U0001F3F4\U000E0067\U000E0062\U000E0077\U000E006C\U000E0073\U000E007F";
  EXPECT_EQ(remove_control_chars(text), text);
}

TEST(FixLineBreaks, MakesEveryLineBreakALineFeed) {
  // fixes.py doctests.
  EXPECT_EQ(fix_line_breaks("Content-type: text/plain\r\n\r\nHi."), "Content-type: text/plain\n\nHi.");
  EXPECT_EQ(fix_line_breaks("This is how Microsoft \r trolls Mac users"),
            "This is how Microsoft \n trolls Mac users");
  EXPECT_EQ(fix_line_breaks("What is this \u0085 I don't even"), "What is this \n I don't even");
  EXPECT_EQ(fix_line_breaks("This string is made of two things:\u20291. Unicode\u20282. Spite"),
            "This string is made of two things:\n1. Unicode\n2. Spite");
  EXPECT_EQ(fix_line_breaks("\r\r\n\n"), "\n\n\n");
}

TEST(RemoveTerminalEscapes, StripsAnsiSequences) {
  // fixes.py doctest.
  EXPECT_EQ(remove_terminal_escapes("\x1B[36;44mI'm blue, da ba dee da ba doo...\x1B[0m"),
            "I'm blue, da ba dee da ba doo...");
  EXPECT_EQ(remove_terminal_escapes("\x1B[1K"), "");
  EXPECT_EQ(remove_terminal_escapes("\x1B[12"), "\x1B[12");  // no final letter: not an escape
  EXPECT_EQ(remove_terminal_escapes("\x1B(B"), "\x1B(B");
}

TEST(FixC1Controls, ReadsThemAsWindows1252) {
  // Windows-1252 (WHATWG index): 0x80 €, 0x85 …, 0x92 ’, 0x9F Ÿ; 0x81 is undefined and stays.
  EXPECT_EQ(fix_c1_controls("\u0080\u0085\u0092\u009F"), "\u20AC\u2026\u2019\u0178");
  EXPECT_EQ(fix_c1_controls("\u0081\u008D\u008F\u0090\u009D"), "\u0081\u008D\u008F\u0090\u009D");
  EXPECT_EQ(fix_c1_controls("\u00A0\u00FF"), "\u00A0\u00FF");
}

TEST(FtfyUnescapeHtml, DecodesTerminatedReferencesAndCapitalisedNames) {
  // fixes.py doctests.
  EXPECT_EQ(ftfy_unescape_html("&lt;tag&gt;"), "<tag>");
  EXPECT_EQ(ftfy_unescape_html("&Jscr;ohn &HilbertSpace;ancock"), "\U0001D4A5ohn \u210Bancock");
  EXPECT_EQ(ftfy_unescape_html("&checkmark;"), "\u2713");
  EXPECT_EQ(ftfy_unescape_html("P&eacute;rez"), "P\u00E9rez");
  EXPECT_EQ(ftfy_unescape_html("P&EACUTE;REZ"), "P\u00C9REZ");
  EXPECT_EQ(ftfy_unescape_html("BUNDESSTRA&SZLIG;E"), "BUNDESSTRASSE");
  EXPECT_EQ(ftfy_unescape_html("&ntilde; &Ntilde; &NTILDE; &nTILDE;"), "\u00F1 \u00D1 \u00D1 &nTILDE;");
}

TEST(FtfyUnescapeHtml, NeedsTheSemicolonAndDoesOneLevel) {
  // "the informally written text 'this&not that' should not automatically be decoded".
  EXPECT_EQ(ftfy_unescape_html("this&not that &amp"), "this&not that &amp");
  EXPECT_EQ(ftfy_unescape_html("it&#x2019;s &#8217; &#X2019;"), "it\u2019s \u2019 \u2019");
  // A numeric reference is kept unless html.unescape consumed its ';' (';' itself included).
  EXPECT_EQ(ftfy_unescape_html("&#59; &#12ab;"), "&#59; &#12ab;");
  EXPECT_EQ(ftfy_unescape_html("&amp;amp;"), "&amp;");
  // HTML_ENTITY_RE allows 1..24 name characters.
  EXPECT_EQ(ftfy_unescape_html("&CounterClockwiseContourIntegral;"),
            "&CounterClockwiseContourIntegral;");
  EXPECT_EQ(ftfy_unescape_html("&;"), "&;");
}

// ---- fix_encoding ----------------------------------------------------------------------------

TEST(FixEncoding, RepairsUtf8ReadAsLatin1OrWindows1252) {
  EXPECT_EQ(fix_encoding("caf\u00C3\u00A9"), "caf\u00E9");           // cafÃ© -> café
  EXPECT_EQ(fix_encoding("\u00C3\u00BCber"), "\u00FCber");             // Ã¼ber -> über
  EXPECT_EQ(fix_encoding("it\u00E2\u20AC\u2122s"), "it\u2019s");       // itâ€™s -> it’s
  // __init__.py doctests: fix_encoding("Ã³") -> "ó", fix_encoding_and_explain("sÃ³") -> "só",
  // apply_plan: "schÃ¶n" -> "schön"; fix_text('âœ” No problems') -> '✔ No problems'.
  EXPECT_EQ(fix_encoding("\u00C3\u00B3"), "\u00F3");
  EXPECT_EQ(fix_encoding("s\u00C3\u00B3"), "s\u00F3");
  EXPECT_EQ(fix_encoding("sch\u00C3\u00B6n"), "sch\u00F6n");
  EXPECT_EQ(fix_encoding("\u00E2\u0153\u201D No problems"), "\u2714 No problems");
  // Four bytes (an emoji) and Cyrillic, both through Windows-1252.
  EXPECT_EQ(fix_encoding("\u00F0\u0178\u017D\u00B8 guitar"), "\U0001F3B8 guitar");
  EXPECT_EQ(fix_encoding("\u00D0\u00BF\u00D1\u20AC\u00D0\u00B8\u00D0\u00B2\u00D0\u00B5\u00D1\u201A"),
            "\u043F\u0440\u0438\u0432\u0435\u0442");
}

TEST(FixEncoding, RepairsMojibakeOfMojibake) {
  // "Ã©" itself read as Windows-1252 and encoded again: "ÃƒÂ©".
  EXPECT_EQ(fix_encoding("\u00C3\u0192\u00C2\u00A9t\u00C3\u0192\u00C2\u00A9"), "\u00E9t\u00E9");
}

TEST(FixEncoding, RepairsMojibakeInsideCorrectText) {
  // decode_inconsistent_utf8: "café" cannot be re-encoded as UTF-8, "â€™" still is fixed.
  EXPECT_EQ(fix_encoding("caf\u00E9 and it\u00E2\u20AC\u2122s"), "caf\u00E9 and it\u2019s");
  // fix_text doctest: "&macr;\\_(ã\x83\x84)_/&macr;" -> "¯\_(ツ)_/¯".
  EXPECT_EQ(fix_text("&macr;\\_(\u00E3\u0083\u0084)_/&macr;"), "\u00AF\\_(\u30C4)_/\u00AF");
}

TEST(FixEncoding, LeavesCorrectTextAlone) {
  const std::vector<std::string> correct = {
      "caf\u00E9", "na\u00EFve", "\u00C6r\u00F8", "\u00FCber stra\u00DFe", "r\u00E9sum\u00E9",
      "S\u00C3O PAULO",                       // SÃO: Ã followed by a letter
      "CAF\u00C9\u2019S",                     // É then ’: UTF-8 of U+0252 if misread
      "Fu\u00DF\u2026",                       // ß then …: UTF-8 of U+07C5 if misread
      "PARCE QUE SUR LEURS PLAQUES IL Y MARQU\u00C9\u2026",  // ftfy negative.json
      "RETWEET SE VOC\u00CA\u2026", "HUHLL \u00D5\u2026", "4288\u00D7\u2026",
      "Con il corpo e lo spirito ammaccato,\u00A0\u00E8 come se",
      "\u0397 \u00A8\u03B1\u03BD\u03B1\u03C4\u03C1\u03BF\u03C6\u03AE\u00A8",
      "\u65E5\u672C\u8A9E\u306E\u30C6\u30AD\u30B9\u30C8", "\U0001F3B8\U0001F436",
      "\u0440\u0443\u0441\u0441\u043A\u0438\u0439", "\u00BF\u00A1Hola!? \u00A9 2024 \u00AB\u00BB"};
  for (const auto& text : correct) EXPECT_EQ(fix_encoding(text), text) << text;
}

// ---- fix_text ------------------------------------------------------------------------------------

TEST(FixText, RunsEveryDefaultFix) {
  // __init__.py doctests (the ellipsis of "&hellip;" is kept: no ftfy 6 fix changes U+2026).
  EXPECT_EQ(fix_text("it&#x2019;s \uFB02ubberi\uFB01c!"), "it's flubberific!");
  EXPECT_EQ(fix_text("\uFF2C\uFF2F\uFF35\uFF24\u3000\uFF2E\uFF2F\uFF29\uFF33\uFF25\uFF33"), "LOUD NOISES");
  EXPECT_EQ(fix_text("\u00E2\u0153\u201D No problems"), "\u2714 No problems");
  // Mojibake of a curly quote is repaired, then uncurled.
  EXPECT_EQ(fix_text("it\u00E2\u20AC\u2122s"), "it's");
  // fix_c1_controls comes before fix_line_breaks, so U+0085 ends as an ellipsis.
  EXPECT_EQ(fix_text("What is this \u0085 I don't even"), "What is this \u2026 I don't even");
  EXPECT_EQ(fix_text("\u0092quoted\u0092"), "'quoted'");
  // Width, then NFC composes kana and voiced mark: U+30AB U+3099 -> U+30AC.
  EXPECT_EQ(fix_text("\uFF76\uFF9E"), "\u30AC");
  EXPECT_EQ(fix_text("e\u0301 \u212B"), "\u00E9 \u00C5");  // NFC (U+212B ANGSTROM SIGN -> Å)
  EXPECT_EQ(fix_text("\u0149"), "'n");  // ligature, then its U+02BC uncurled
  EXPECT_EQ(fix_text("\x1B[1mbold\x1B[0m\uFEFF\r\n"), "bold\n");
}

TEST(FixText, UnescapesToAFixedPointUnlessTheLineLooksLikeHtml) {
  EXPECT_EQ(fix_text("it&rsquo;s"), "it's");
  EXPECT_EQ(fix_text("&amp;amp;amp;"), "&");
  // unescape_html="auto": off for a line with '<', and for every line after it.
  EXPECT_EQ(fix_text("<b>it&rsquo;s</b>"), "<b>it&rsquo;s</b>");
  EXPECT_EQ(fix_text("a&amp;amp;b\n<p>&amp;\nc&amp;"), "a&b\n<p>&amp;\nc&amp;");
  // The '<' from decoding "&lt;" does not switch it off for that line.
  EXPECT_EQ(fix_text("&amp;lt;i&amp;gt; &amp;"), "<i> &");
}

TEST(FixText, LeavesCorrectTextUnchanged) {
  const std::vector<std::string> correct = {
      "models are walking down a short runway", "caf\u00E9 na\u00EFve r\u00E9sum\u00E9 \u2014 \u00FCber",
      "\u00C6r\u00F8 \u00C5ngstr\u00F6m \u0141\u00F3d\u017A \u010Cesk\u00FD",
      "\u4E2D\u6587\u5B57\u7B26 \u65E5\u672C\u8A9E \uD55C\uAD6D\uC5B4",
      "\u0440\u0443\u0441\u0441\u043A\u0438\u0439 \u03B5\u03BB\u03BB\u03B7\u03BD\u03B9\u03BA\u03AC",
      "\u0627\u0644\u0639\u0631\u0628\u064A\u0629 \u05E2\u05D1\u05E8\u05D9\u05EA \u0939\u093F\u0928\u094D\u0926\u0940",
      "emoji \U0001F3B8 guitar \U0001F436 dog \U0001F44D\U0001F3FD \U0001F468\u200D\U0001F469\u200D\U0001F467",
      "tabs\tand\nnewlines", "5 \u00D7 3 \u2264 20 \u00B0C \u20AC10 \u00A3 \u00A5", "\u2039a\u203A \u00ABb\u00BB \u2026"};
  for (const auto& text : correct) EXPECT_EQ(fix_text(text), text) << text;
}

TEST(FixText, IsIdempotent) {
  const std::vector<std::string> inputs = {
      "caf\u00C3\u00A9 it\u00E2\u20AC\u2122s", "\u00C3\u0192\u00C2\u00A9", "&amp;amp;lt;",
      "\uFB01sh \uFF21\uFF22\uFF23", "\u0085\u0092\r\n\r", "<b>&rsquo;</b>\n&rsquo;",
      "\x1B[31m\u2018x\u201F\x1B[0m", "\uFF76\uFF9E e\u0301", "caf\u00E9 and it\u00E2\u20AC\u2122s",
      "a\xFF\xFE b"};
  for (const auto& text : inputs) {
    std::string once = fix_text(text);
    EXPECT_EQ(fix_text(once), once) << text;
  }
}

TEST(FixText, ReplacesInvalidUtf8AsPythonsDecodeWithReplace) {
  // bytes.decode("utf-8", "replace"): one U+FFFD per maximal invalid prefix.
  EXPECT_EQ(fix_text("a\xFF" "b\xC3"), "a\uFFFDb\uFFFD");
  EXPECT_EQ(fix_text("\xE2\x80 x"), "\uFFFD x");
  EXPECT_EQ(fix_text("\xED\xA0\x80"), "\uFFFD\uFFFD\uFFFD");  // a CESU-8 surrogate
  EXPECT_EQ(fix_text(""), "");
}

// The maintainers' cases (ftfy tests/test-cases/*.json, expect "pass") whose fix needs only what
// fix_text covers: fix_text(original) == fixed, fix_encoding(original) == fixed-encoding.
TEST(FixText, MatchesFtfysOwnTestCases) {
  std::ifstream in(test::fixture_path("ftfy_cases.json"));
  auto cases = nlohmann::json::parse(in).at("cases");
  ASSERT_EQ(cases.size(), 96u);
  int failures = 0;
  for (const auto& c : cases) {
    auto original = c["original"].get<std::string>();
    auto fixed = c["fixed"].get<std::string>();
    auto fixed_encoding = c.value("fixed-encoding", fixed);
    bool ok = fix_text(original) == fixed && fix_encoding(original) == fixed_encoding;
    EXPECT_EQ(fix_text(original), fixed) << c["label"];
    EXPECT_EQ(fix_encoding(original), fixed_encoding) << c["label"];
    failures += ok ? 0 : 1;
  }
  EXPECT_EQ(failures, 0) << "ftfy test cases that differ";
}

// ---- through the tokenizer -----------------------------------------------------------------------

const ClipTokenizer& tokenizer() {
  static const ClipTokenizer tok;
  return tok;
}

TEST(ClipTokenizerFtfy, CurlyAndStraightQuotesGiveTheSameIds) {
  auto straight = tokenizer().encode("it's a dog's toy");
  EXPECT_EQ(tokenizer().encode("it\u2019s a dog\u2019s toy"), straight);
  EXPECT_EQ(tokenizer().encode("it&rsquo;s a dog&#x2019;s toy"), straight);
  EXPECT_EQ(tokenizer().encode("it\u00E2\u20AC\u2122s a dog\u00E2\u20AC\u2122s toy"), straight);
  // "'s" is one pre-token, and one token in the vocabulary.
  EXPECT_EQ(tokenizer().token(straight[1]), "'s</w>");
}

TEST(ClipTokenizerFtfy, LigaturesFullWidthAndMojibakeGiveThePlainIds) {
  EXPECT_EQ(tokenizer().encode("\uFB01sh"), tokenizer().encode("fish"));
  EXPECT_EQ(tokenizer().encode("\uFF21\uFF22\uFF23"), tokenizer().encode("abc"));
  EXPECT_EQ(tokenizer().encode("caf\u00C3\u00A9"), tokenizer().encode("caf\u00E9"));
  EXPECT_EQ(tokenizer().encode("caf\u0065\u0301"), tokenizer().encode("caf\u00E9"));  // NFC
}

TEST(ClipTokenizerFtfy, EntitiesInsideHtmlStayForHtmlUnescape) {
  // ftfy skips a line with '<'; CLIP's html.unescape then yields a curly quote that stays.
  auto ids = tokenizer().encode("<b>it&rsquo;s</b>");
  EXPECT_NE(ids, tokenizer().encode("<b>it's</b>"));
  EXPECT_NE(tokenizer().decode(ids).find("\u2019"), std::string::npos) << tokenizer().decode(ids);
  // A curly quote typed as such is uncurled like any other.
  EXPECT_EQ(tokenizer().encode("<b>it\u2019s</b>"), tokenizer().encode("<b>it's</b>"));
}

}  // namespace
}  // namespace mva
