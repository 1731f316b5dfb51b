// ftfy.fix_text for captions, following ftfy 6.x (rspeer/python-ftfy: ftfy/__init__.py, fixes.py,
// chardata.py) with its default TextFixerConfig.
//
// As ftfy, the text is cut into lines (each keeps its "\n") and every line is fixed on its own by
// running these steps in this order, again and again until a pass changes nothing:
//   unescape_html, fix_encoding, fix_c1_controls, fix_latin_ligatures, fix_character_width,
//   uncurl_quotes, fix_line_breaks, (fix_surrogates), remove_terminal_escapes,
//   remove_control_chars, NFC.
//
// Covered exactly as ftfy: unescape_html (with the "auto" rule), fix_c1_controls,
// fix_latin_ligatures, fix_character_width, uncurl_quotes, fix_line_breaks,
// remove_terminal_escapes, remove_control_chars, NFC normalisation, the per-line loop.
//
// fix_encoding is a conservative subset of ftfy's. Covered: UTF-8 that was decoded as Latin-1 or
// Windows-1252 (the five bytes Windows-1252 leaves undefined read as Latin-1, ftfy's "sloppy"
// codec), once or several times over, either in the whole line or in runs inside otherwise
// correct text (ftfy's decode_inconsistent_utf8). A decode is taken only when every byte forms
// strict UTF-8 and at least one sequence is telltale (see is_telltale), in place of ftfy's
// "badness" regex; C1 controls left over are read as Windows-1252, as ftfy does. Checked against
// ftfy 6.3.1 itself: all of its negative test cases are left alone, 96 of the 99 cases in its
// test data that need only these decodings pass (tests/fixtures/ftfy_cases.json), and on text
// with one or two Latin-1/Windows-1252 symbols between words we never change what ftfy keeps;
// we do repair some mojibake that ftfy's regex misses in isolation ("â„¢" -> "™"), and three
// or four adjacent symbols after a lower-case accented letter are taken for mojibake. Not
// covered: mojibake through the other code pages ftfy tries (Windows-1250/
// 1251/1253/1254/1257, ISO-8859-2, MacRoman, CP437), restore_byte_a0 (a no-break space turned
// into a space, "Ã la" -> "à la"), replace_lossy_sequences (mojibake with '?' or U+FFFD in it),
// and the CESU-8 / Java "utf-8-variants" decoding.
//
// fix_surrogates has nothing to do here: UTF-8 cannot carry lone surrogates, and the input's
// invalid bytes (CESU-8 surrogates included) become U+FFFD on decoding, as Python's
// errors="replace" would. In CLIP the caption is a str before ftfy sees it, so no decoding
// happens there; U+FFFD is what a str read from such bytes with errors="replace" would hold.
// max_decode_length (lines over a million characters are cut) is not reproduced.
#include "mvadapter/text/text_fix.h"

#include <cctype>
#include <unordered_map>
#include <vector>

#include <unicode/uchar.h>

#include "html_entities.h"
#include "mvadapter/text/clip_tokenizer.h"
#include "unicode.h"

namespace mva {
namespace {

using detail::u32_to_utf8;
using detail::utf8_to_u32;
using U32 = std::u32string;

bool is_ascii_alnum(char32_t c) {
  return (c >= U'0' && c <= U'9') || (c >= U'a' && c <= U'z') || (c >= U'A' && c <= U'Z');
}

// ---- unescape_html ---------------------------------------------------------------------------

// ftfy's entity table: every HTML5 name that ends in ';', plus the all-capitals spelling of an
// all-lower-case name when html.unescape would leave that spelling alone ("&EACUTE;" -> "É",
// "&SZLIG;" -> "SS"), mapped to the upper-cased value.
const std::unordered_map<std::string, std::string>& ftfy_entities() {
  static const std::unordered_map<std::string, std::string> table = [] {
    std::unordered_map<std::string, std::string> t;
    for (auto* e = detail::html5_entities_begin(); e != detail::html5_entities_end(); ++e) {
      if (e->name.empty() || e->name.back() != ';') continue;
      std::string key = "&" + std::string(e->name);
      t.emplace(key, std::string(e->value));
      bool has_upper = false;
      for (char c : e->name) has_upper = has_upper || (c >= 'A' && c <= 'Z');
      if (has_upper) continue;
      std::string upper = key;
      for (char& c : upper) {
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
      }
      if (html_unescape(upper) == upper) t.emplace(upper, detail::to_upper(e->value));
    }
    return t;
  }();
  return table;
}

// ftfy replaces each match of &#?[0-9A-Za-z]{1,24}; that it knows; a numeric one goes through
// html.unescape and is kept only when that consumed the ';' (so "&#59;" stays).
U32 unescape_html(const U32& s) {
  if (s.find(U'&') == U32::npos) return s;
  U32 out;
  out.reserve(s.size());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (s[i] != U'&') {
      out.push_back(s[i++]);
      continue;
    }
    size_t j = i + 1;
    if (j < n && s[j] == U'#') ++j;
    size_t k = j;
    while (k < n && k - j <= 24 && is_ascii_alnum(s[k])) ++k;
    if (k == j || k - j > 24 || k >= n || s[k] != U';') {
      out.push_back(s[i++]);
      continue;
    }
    std::string ref = u32_to_utf8(std::u32string_view(s.data() + i, k + 1 - i));
    const auto& table = ftfy_entities();
    if (auto it = table.find(ref); it != table.end()) {
      out += utf8_to_u32(it->second);
    } else if (j > i + 1) {
      std::string value = html_unescape(ref);
      out += utf8_to_u32(value.find(';') == std::string::npos ? value : ref);
    } else {
      out += utf8_to_u32(ref);
    }
    i = k + 1;
  }
  return out;
}

// ---- fix_encoding ----------------------------------------------------------------------------

// The byte a character came from if it was decoded as Latin-1 or sloppy Windows-1252, or -1.
int mojibake_byte(char32_t c) {
  return c <= 0xFF ? static_cast<int>(c) : detail::sloppy_cp1252_byte(c);
}

// How many characters from t[i] spell one multi-byte strict UTF-8 sequence when each is read as
// its byte (its code point in *cp), or 0.
size_t mojibake_sequence(const U32& t, size_t i, char32_t* cp) {
  int lead = mojibake_byte(t[i]);
  if (lead < 0xC2 || lead > 0xF4) return 0;
  size_t len = lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
  if (i + len > t.size()) return 0;
  std::string bytes(1, static_cast<char>(lead));
  for (size_t k = 1; k < len; ++k) {
    int b = mojibake_byte(t[i + k]);
    if (b < 0x80 || b > 0xBF) return 0;
    bytes.push_back(static_cast<char>(b));
  }
  size_t bad = 0;
  return detail::utf8_sequence(bytes, 0, cp, &bad) == len ? len : 0;
}

// Characters of continuation bytes that often follow a letter in correct text ("CAFÉ’S", "Fuß…",
// "BEYONCÉ®", "¿QUÉ¿"): a sequence whose continuations are all of these proves nothing.
bool follows_letters(char32_t c) {
  switch (c) {
    case 0x00A0: case 0x00A1: case 0x00A9: case 0x00AB: case 0x00AD: case 0x00AE: case 0x00B4:
    case 0x00B7: case 0x00BB: case 0x00BF: case 0x2013: case 0x2014: case 0x2018: case 0x2019:
    case 0x201A: case 0x201C: case 0x201D: case 0x201E: case 0x2022: case 0x2026: case 0x2039:
    case 0x203A: case 0x2122:
      return true;
    default:
      return false;
  }
}

bool is_c1(char32_t c) {
  return c >= 0x80 && c <= 0x9F;
}

// Latin-1 symbols that ftfy's badness regex counts as bad, numeric or legal: after an upper-case
// accented letter they are the tail of a two-byte sequence ("Ä°", "Î³", "Ì¶"), not text.
bool is_symbol_after_capital(char32_t c) {
  switch (c) {
    case 0x00A4: case 0x00A6: case 0x00A7: case 0x00A8: case 0x00AA: case 0x00AC: case 0x00AF:
    case 0x00B0: case 0x00B1: case 0x00B2: case 0x00B3: case 0x00B5: case 0x00B6: case 0x00B8:
    case 0x00B9: case 0x00BA: case 0x00BC: case 0x00BD: case 0x00BE:
      return true;
    default:
      return false;
  }
}

// Whether the sequence of n characters at t[i], in a run of run_len adjacent sequences, is one
// that practically only mojibake writes. ftfy decides with its "badness" regex instead; these
// rules keep to the cases where a false positive needs contrived text (ftfy's negative test
// cases among them):
// - a C1 control as a continuation (never meant: ftfy counts every C1 as bad);
// - three or four characters led by 'â' (U+2000..U+2FFF: "â€™", "â™«"), or with one
//   continuation that does not follow letters ("ðŸŽ¸", "æ—¥"), but not "Brontë…”";
// - a Latin-1 lead Â/Ã (mojibake of U+0080..U+00FF: "Ã©", "Ã\u00A0", "Â£", "Ã‘"), except
//   before the characters ftfy does not count as bad there ("Ã’s", "Ã…", "Ã¥" may be meant);
// - an upper-case accented lead before a Latin-1 symbol ("Ä°stanbul", "IL2RÎ³cKO", "Ì¶");
// - any other pair only inside a run of two or more ("Ð¿Ñ€Ð¸" is Cyrillic), and not before a
//   letter-friendly character: a lone "Ä£", "É¿" or "×£" is as likely to be meant.
bool is_telltale(const U32& t, size_t i, size_t n, size_t run_len) {
  bool any_c1 = false, any_odd = false;
  for (size_t k = 1; k < n; ++k) {
    any_c1 = any_c1 || is_c1(t[i + k]);
    any_odd = any_odd || !follows_letters(t[i + k]);
  }
  if (any_c1) return true;
  if (n >= 3) return t[i] == 0xE2 || any_odd;
  char32_t next = t[i + 1];
  if (t[i] == 0xC2 || t[i] == 0xC3) {
    return next != 0x2019 && next != 0x2026 && next != 0x00A5 && next != 0x0152 && next != 0x017D;
  }
  // ftfy's upper_accented among the Latin-1 leads: Ò..Ö and Ù..Û are left out, since they make
  // kaomoji faces next to symbols.
  bool capital = (t[i] >= 0xC4 && t[i] <= 0xD1) || t[i] == 0xD8 || t[i] == 0xDC || t[i] == 0xDD;
  if (capital && is_symbol_after_capital(next)) return true;
  return run_len >= 2 && any_odd;
}

// One run of adjacent sequences from t[i]: decoded into *decoded, returns its end (i if none).
size_t parse_run(const U32& t, size_t i, U32* decoded, bool* telltale) {
  struct Seq {
    size_t at, len;
  };
  std::vector<Seq> seqs;
  size_t j = i;
  char32_t cp = 0;
  decoded->clear();
  while (j < t.size()) {
    size_t n = mojibake_sequence(t, j, &cp);
    if (n == 0) break;
    seqs.push_back({j, n});
    decoded->push_back(cp);
    j += n;
  }
  *telltale = false;
  for (const auto& s : seqs) *telltale = *telltale || is_telltale(t, s.at, s.len, seqs.size());
  return j;
}

// ftfy's lookbehind for embedded mojibake: a run right after a continuation-byte character is
// the tail of a larger garble, and fixing part of it would make things worse. Dashes, quotes,
// bullet and ellipsis are exempt, since they stand for themselves next to mojibake.
bool is_strict_continuation(char32_t c) {
  int b = mojibake_byte(c);
  if (b < 0x80 || b > 0xBF) return false;
  switch (c) {
    case 0x2013: case 0x2014: case 0x2018: case 0x2019: case 0x201A: case 0x201C: case 0x201D:
    case 0x201E: case 0x2022: case 0x2026:
      return false;
    default:
      return true;
  }
}

// The whole line re-encoded (ftfy tries Latin-1, then sloppy Windows-1252): every non-ASCII
// character must be part of a sequence and one sequence must be telltale.
bool decode_whole(const U32& t, U32* out) {
  bool latin1 = true, cp1252 = true;
  for (char32_t c : t) {
    latin1 = latin1 && c <= 0xFF;
    cp1252 = cp1252 && detail::sloppy_cp1252_byte(c) >= 0;
  }
  if (!latin1 && !cp1252) return false;
  U32 decoded, run;
  bool telltale = false;
  for (size_t i = 0; i < t.size();) {
    if (t[i] < 0x80) {
      decoded.push_back(t[i++]);
      continue;
    }
    bool run_telltale = false;
    size_t end = parse_run(t, i, &run, &run_telltale);
    if (end == i) return false;
    telltale = telltale || run_telltale;
    decoded += run;
    i = end;
  }
  if (!telltale) return false;
  *out = std::move(decoded);
  return true;
}

// ftfy's decode_inconsistent_utf8: runs of adjacent sequences decoded in place, each on its own
// evidence, when the line as a whole does not decode ("café and itâ€™s").
U32 decode_runs(const U32& t) {
  U32 out, run;
  out.reserve(t.size());
  for (size_t i = 0; i < t.size();) {
    bool telltale = false;
    size_t end = parse_run(t, i, &run, &telltale);
    if (end == i || (i > 0 && is_strict_continuation(t[i - 1]))) {
      out.push_back(t[i++]);
      continue;
    }
    if (telltale) {
      out += run;
    } else {
      out.append(t, i, end - i);
    }
    i = end;
  }
  return out;
}

U32 fix_c1_controls_u32(U32 t) {
  for (char32_t& c : t) {
    if (is_c1(c)) c = detail::sloppy_cp1252_char(static_cast<uint8_t>(c));
  }
  return t;
}

U32 fix_encoding_u32(U32 t) {
  // As ftfy: decode when something decodes, else read C1 controls as Windows-1252 (what ftfy
  // does when Latin-1 fits and Windows-1252 does not, and in fix_c1_controls), and repeat:
  // every step shortens the text or removes a C1 control, so this stops.
  for (;;) {
    bool ascii = true;
    for (char32_t c : t) ascii = ascii && c < 0x80;
    if (ascii) return t;
    U32 fixed;
    if (!decode_whole(t, &fixed)) fixed = decode_runs(t);
    if (fixed == t) fixed = fix_c1_controls_u32(t);
    if (fixed == t) return t;
    t = std::move(fixed);
  }
}

// ---- the character-level fixes ----------------------------------------------------------------

// ftfy's LIGATURES: Latin typographic ligatures and the digraphs that exist only for legacy
// encodings; ligatures such as æ and œ, often meant, are kept.
const std::unordered_map<char32_t, U32>& ligatures() {
  static const std::unordered_map<char32_t, U32> table = {
      {0x0132, U"IJ"},      {0x0133, U"ij"},      {0x0149, U"\u02BCn"}, {0x01F1, U"DZ"},
      {0x01F2, U"Dz"},      {0x01F3, U"dz"},      {0x01C4, U"D\u017D"}, {0x01C5, U"D\u017E"},
      {0x01C6, U"d\u017E"}, {0x01C7, U"LJ"},      {0x01C8, U"Lj"},      {0x01C9, U"lj"},
      {0x01CA, U"NJ"},      {0x01CB, U"Nj"},      {0x01CC, U"nj"},      {0xFB00, U"ff"},
      {0xFB01, U"fi"},      {0xFB02, U"fl"},      {0xFB03, U"ffi"},     {0xFB04, U"ffl"},
      {0xFB05, U"\u017Ft"}, {0xFB06, U"st"}};
  return table;
}

// ftfy's WIDTH_MAP: U+3000 and every character of U+FF01..U+FFEF that NFKC changes.
const std::unordered_map<char32_t, U32>& width_map() {
  static const std::unordered_map<char32_t, U32> table = [] {
    std::unordered_map<char32_t, U32> t{{0x3000, U" "}};
    for (char32_t c = 0xFF01; c < 0xFFF0; ++c) {
      U32 alt = detail::normalize(U32(1, c), detail::NormalForm::kNfkc);
      if (alt != U32(1, c)) t.emplace(c, alt);
    }
    return t;
  }();
  return table;
}

U32 translate(const U32& t, const std::unordered_map<char32_t, U32>& table) {
  U32 out;
  out.reserve(t.size());
  for (char32_t c : t) {
    if (auto it = table.find(c); it != table.end()) {
      out += it->second;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

U32 uncurl_quotes_u32(U32 t) {
  for (char32_t& c : t) {
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) c = U'\'';
    if (c >= 0x201C && c <= 0x201F) c = U'"';
  }
  return t;
}

U32 fix_line_breaks_u32(const U32& t) {
  U32 out;
  out.reserve(t.size());
  for (size_t i = 0; i < t.size(); ++i) {
    char32_t c = t[i];
    if (c == U'\r' && i + 1 < t.size() && t[i + 1] == U'\n') continue;  // the LF follows
    bool line_break = c == U'\r' || c == 0x2028 || c == 0x2029 || c == 0x0085;
    out.push_back(line_break ? U'\n' : c);
  }
  return out;
}

// ESC '[' (digit | ';')* letter, where a digit is any Unicode decimal digit (Python's \d).
U32 remove_terminal_escapes_u32(const U32& t) {
  if (t.find(U'\x1B') == U32::npos) return t;
  U32 out;
  out.reserve(t.size());
  for (size_t i = 0; i < t.size();) {
    if (t[i] == U'\x1B' && i + 1 < t.size() && t[i + 1] == U'[') {
      size_t k = i + 2;
      while (k < t.size() &&
             (t[k] == U';' || u_charType(static_cast<UChar32>(t[k])) == U_DECIMAL_DIGIT_NUMBER)) {
        ++k;
      }
      if (k < t.size() && t[k] < 0x80 && std::isalpha(static_cast<int>(t[k]))) {
        i = k + 1;
        continue;
      }
    }
    out.push_back(t[i++]);
  }
  return out;
}

// ftfy keeps the controls that make whitespace, C1 controls (clues for fix_encoding), joiners
// and bidirectional marks, and tag characters (emoji flags).
bool is_unwanted_control(char32_t c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
         (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

U32 remove_control_chars_u32(const U32& t) {
  U32 out;
  out.reserve(t.size());
  for (char32_t c : t) {
    if (!is_unwanted_control(c)) out.push_back(c);
  }
  return out;
}

// ---- fix_text ------------------------------------------------------------------------------------

// ftfy's fix_and_explain on one line: every step, repeated until a pass changes nothing. Every
// step either shortens the text or maps it to something it leaves alone, so this settles in a
// few passes; the bound only guards against an interaction of the tables nobody foresaw.
U32 fix_segment(U32 t, bool unescape) {
  unescape = unescape && t.find(U'<') == U32::npos;
  for (int pass = 0; pass < 32; ++pass) {
    U32 before = t;
    if (unescape) t = unescape_html(t);
    t = fix_encoding_u32(std::move(t));
    t = fix_c1_controls_u32(std::move(t));
    t = translate(t, ligatures());
    t = translate(t, width_map());
    t = uncurl_quotes_u32(std::move(t));
    t = fix_line_breaks_u32(t);
    t = remove_terminal_escapes_u32(t);
    t = remove_control_chars_u32(t);
    t = detail::normalize(t, detail::NormalForm::kNfc);
    if (t == before) break;
  }
  return t;
}

// Printable ASCII, tab, LF and FF without '&': no fix applies (an early exit ftfy does not need
// to write down, since each of its steps is a no-op on such text).
bool nothing_to_fix(std::string_view s) {
  for (char ch : s) {
    auto b = static_cast<unsigned char>(ch);
    bool plain = (b >= 0x20 && b < 0x7F && b != '&') || b == '\t' || b == '\n' || b == '\f';
    if (!plain) return false;
  }
  return true;
}

template <typename Fn>
std::string on_utf8(std::string_view utf8, Fn fn) {
  return u32_to_utf8(fn(utf8_to_u32(utf8)));
}

}  // namespace

std::string fix_text(std::string_view utf8) {
  if (nothing_to_fix(utf8)) return std::string(utf8);
  const U32 text = utf8_to_u32(utf8);
  U32 out;
  out.reserve(text.size());
  // ftfy's unescape_html="auto": a line with '<' is taken for real HTML, whose entities are
  // meant, and unescaping stays off from there on. The html.unescape passes CLIP runs after
  // ftfy still decode what ftfy leaves; but ftfy's own pass comes first and feeds the other
  // fixes ("&rsquo;" -> "’" -> "'"), and it repeats to a fixed point ("&amp;amp;amp;" -> "&"),
  // so it is reproduced here rather than left to the tokenizer.
  bool unescape = true;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find(U'\n', pos);
    end = end == U32::npos ? text.size() : end + 1;
    U32 segment = text.substr(pos, end - pos);
    if (segment.find(U'<') != U32::npos) unescape = false;
    out += fix_segment(std::move(segment), unescape);
    pos = end;
  }
  return u32_to_utf8(out);
}

std::string ftfy_unescape_html(std::string_view utf8) {
  return on_utf8(utf8, [](const U32& t) { return unescape_html(t); });
}

std::string fix_encoding(std::string_view utf8) {
  return on_utf8(utf8, [](U32 t) { return fix_encoding_u32(std::move(t)); });
}

std::string fix_c1_controls(std::string_view utf8) {
  return on_utf8(utf8, [](U32 t) { return fix_c1_controls_u32(std::move(t)); });
}

std::string fix_latin_ligatures(std::string_view utf8) {
  return on_utf8(utf8, [](const U32& t) { return translate(t, ligatures()); });
}

std::string fix_character_width(std::string_view utf8) {
  return on_utf8(utf8, [](const U32& t) { return translate(t, width_map()); });
}

std::string uncurl_quotes(std::string_view utf8) {
  return on_utf8(utf8, [](U32 t) { return uncurl_quotes_u32(std::move(t)); });
}

std::string fix_line_breaks(std::string_view utf8) {
  return on_utf8(utf8, [](const U32& t) { return fix_line_breaks_u32(t); });
}

std::string remove_terminal_escapes(std::string_view utf8) {
  return on_utf8(utf8, [](const U32& t) { return remove_terminal_escapes_u32(t); });
}

std::string remove_control_chars(std::string_view utf8) {
  return on_utf8(utf8, [](const U32& t) { return remove_control_chars_u32(t); });
}

}  // namespace mva
