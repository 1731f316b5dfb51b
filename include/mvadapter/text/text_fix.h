#pragma once
#include <string>
#include <string_view>

namespace mva {

/// ftfy.fix_text(text) with ftfy's default configuration (ftfy 6.x), the first step of CLIP's
/// basic_clean. Input and output are UTF-8; invalid input bytes become U+FFFD first, as
/// bytes.decode("utf-8", "replace"). What is covered, and what is not, is listed in
/// src/text/text_fix.cpp.
std::string fix_text(std::string_view utf8);

// The single fixes that fix_text chains, each as ftfy.fixes has it, on its own.

/// ftfy's unescape_html: "&name;" (HTML5 names, and upper-cased "&EACUTE;" forms) and "&#...;"
/// references that end in ';'. One pass; fix_text repeats it until nothing changes.
std::string ftfy_unescape_html(std::string_view utf8);

/// UTF-8 that was decoded as Latin-1 or Windows-1252 ("cafÃ©", "itâ€™s") decoded again, when the
/// text shows mojibake's telltale sequences; correct text ("café", "Ærø") is left alone.
std::string fix_encoding(std::string_view utf8);

/// C1 controls U+0080..U+009F read as the Windows-1252 characters of those bytes.
std::string fix_c1_controls(std::string_view utf8);

/// Latin ligatures and digraphs ("ﬁ", "ĳ", "ǆ") as the letters they are made of.
std::string fix_latin_ligatures(std::string_view utf8);

/// Full-width and half-width forms (U+FF01..U+FFEF) as their NFKC forms, U+3000 as a space.
std::string fix_character_width(std::string_view utf8);

/// U+02BC, U+2018..U+201B -> ' and U+201C..U+201F -> ".
std::string uncurl_quotes(std::string_view utf8);

/// CRLF, CR, U+2028, U+2029 and U+0085 -> LF.
std::string fix_line_breaks(std::string_view utf8);

/// ANSI terminal escapes (ESC '[' digits-and-semicolons letter) removed.
std::string remove_terminal_escapes(std::string_view utf8);

/// ftfy's list of unintended control characters removed (C0 but tab, LF, FF, CR; DEL; U+206A..
/// U+206F; U+FEFF; U+FFF9..U+FFFC).
std::string remove_control_chars(std::string_view utf8);

}  // namespace mva
