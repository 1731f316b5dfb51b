#pragma once
// Unicode helpers shared by the text layer (not installed): UTF-8 <-> code points with Python's
// error handling, and the ICU calls that stand in for Python's str methods.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mva::detail {

inline constexpr char32_t kReplacementChar = 0xFFFD;

/// Length of the valid UTF-8 sequence at s[i] (its code point in *cp), or 0 when it is invalid;
/// then *bad_len is how many bytes Python's errors="replace" turns into one U+FFFD.
size_t utf8_sequence(std::string_view s, size_t i, char32_t* cp, size_t* bad_len);

/// Code points of `s`; invalid sequences become U+FFFD, as bytes.decode("utf-8", "replace").
std::u32string utf8_to_u32(std::string_view s);

void append_utf8(std::string& out, char32_t cp);
std::string u32_to_utf8(std::u32string_view s);

/// The character of byte b in Windows-1252, where the five bytes it leaves undefined (0x81, 0x8D,
/// 0x8F, 0x90, 0x9D) stand for the C1 controls of the same number, as in Latin-1: ftfy's
/// "sloppy-windows-1252", and the table of Python's html._invalid_charrefs.
char32_t sloppy_cp1252_char(uint8_t b);

/// The byte that sloppy_cp1252_char maps to c, or -1 when c has none.
int sloppy_cp1252_byte(char32_t c);

/// Python's str.lower / str.upper: full case mappings in the root locale (ICU).
std::string to_lower(std::string_view utf8);
std::string to_upper(std::string_view utf8);

enum class NormalForm { kNfc, kNfkc };
/// unicodedata.normalize("NFC" / "NFKC", s), through ICU.
std::u32string normalize(std::u32string_view s, NormalForm form);

}  // namespace mva::detail
