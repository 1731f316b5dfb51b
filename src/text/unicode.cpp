#include "unicode.h"

#include <memory>
#include <vector>

#include <fmt/format.h>
#include <unicode/ucasemap.h>
#include <unicode/unorm2.h>

#include "mvadapter/core/error.h"

namespace mva::detail {

size_t utf8_sequence(std::string_view s, size_t i, char32_t* cp, size_t* bad_len) {
  auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) {
    *cp = b;
    return 1;
  }
  size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  char32_t value = 0;
  if (b >= 0xC2 && b <= 0xDF) {
    need = 1;
    value = b & 0x1F;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 2;
    value = b & 0x0F;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;  // no surrogates
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 3;
    value = b & 0x07;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    *bad_len = 1;
    return 0;
  }
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= s.size()) {
      *bad_len = k;
      return 0;
    }
    auto c = static_cast<unsigned char>(s[i + k]);
    if (c < lo || c > hi) {
      *bad_len = k;
      return 0;
    }
    lo = 0x80;
    hi = 0xBF;
    value = (value << 6) | (c & 0x3F);
  }
  *cp = value;
  return need + 1;
}

std::u32string utf8_to_u32(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    char32_t cp = 0;
    size_t bad = 0;
    size_t n = utf8_sequence(s, i, &cp, &bad);
    if (n == 0) {
      out.push_back(kReplacementChar);
      i += bad;
    } else {
      out.push_back(cp);
      i += n;
    }
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string u32_to_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t cp : s) append_utf8(out, cp);
  return out;
}

namespace {

// Windows-1252 bytes 0x80..0x9F; the undefined ones keep their C1 code point.
constexpr char32_t kCp1252High[32] = {
    0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x8D,   0x017D, 0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};

}  // namespace

char32_t sloppy_cp1252_char(uint8_t b) {
  return b >= 0x80 && b <= 0x9F ? kCp1252High[b - 0x80] : static_cast<char32_t>(b);
}

int sloppy_cp1252_byte(char32_t c) {
  if (c < 0x80 || (c >= 0xA0 && c <= 0xFF)) return static_cast<int>(c);
  for (int k = 0; k < 32; ++k) {
    if (kCp1252High[k] == c) return 0x80 + k;
  }
  return -1;
}

namespace {

struct CaseMapCloser {
  void operator()(UCaseMap* m) const { ucasemap_close(m); }
};

UCaseMap* root_case_map() {
  static const std::unique_ptr<UCaseMap, CaseMapCloser> map = [] {
    UErrorCode status = U_ZERO_ERROR;
    std::unique_ptr<UCaseMap, CaseMapCloser> m(ucasemap_open("", 0, &status));
    if (U_FAILURE(status)) {
      throw Error(fmt::format("ICU: cannot open the root case map ({})", u_errorName(status)));
    }
    return m;
  }();
  return map.get();
}

using CaseFn = int32_t (*)(const UCaseMap*, char*, int32_t, const char*, int32_t, UErrorCode*);

std::string change_case(std::string_view utf8, CaseFn fn, const char* what) {
  std::string out(utf8.size() + 16, '\0');
  for (int attempt = 0; attempt < 2; ++attempt) {
    UErrorCode status = U_ZERO_ERROR;
    int32_t len = fn(root_case_map(), out.data(), static_cast<int32_t>(out.size()), utf8.data(),
                     static_cast<int32_t>(utf8.size()), &status);
    if (status == U_BUFFER_OVERFLOW_ERROR) {
      out.assign(static_cast<size_t>(len), '\0');
      continue;
    }
    if (U_FAILURE(status)) throw Error(fmt::format("ICU: {} failed ({})", what, u_errorName(status)));
    out.resize(static_cast<size_t>(len));
    return out;
  }
  throw Error(fmt::format("ICU: {} failed (buffer size)", what));
}

}  // namespace

std::string to_lower(std::string_view utf8) {
  return change_case(utf8, ucasemap_utf8ToLower, "lower-casing");
}

std::string to_upper(std::string_view utf8) {
  return change_case(utf8, ucasemap_utf8ToUpper, "upper-casing");
}

std::u32string normalize(std::u32string_view s, NormalForm form) {
  UErrorCode status = U_ZERO_ERROR;
  const UNormalizer2* norm = form == NormalForm::kNfc ? unorm2_getNFCInstance(&status)
                                                      : unorm2_getNFKCInstance(&status);
  if (U_FAILURE(status)) {
    throw Error(fmt::format("ICU: cannot open the normaliser ({})", u_errorName(status)));
  }
  std::vector<UChar> in;
  in.reserve(s.size() + 8);
  for (char32_t cp : s) {
    if (cp >= 0x10000) {
      in.push_back(static_cast<UChar>(0xD800 + ((cp - 0x10000) >> 10)));
      in.push_back(static_cast<UChar>(0xDC00 + ((cp - 0x10000) & 0x3FF)));
    } else {
      in.push_back(static_cast<UChar>(cp));
    }
  }
  std::vector<UChar> out(in.size() + 16);
  for (int attempt = 0; attempt < 2; ++attempt) {
    status = U_ZERO_ERROR;
    int32_t len = unorm2_normalize(norm, in.data(), static_cast<int32_t>(in.size()), out.data(),
                                   static_cast<int32_t>(out.size()), &status);
    if (status == U_BUFFER_OVERFLOW_ERROR) {
      out.assign(static_cast<size_t>(len), 0);
      continue;
    }
    if (U_FAILURE(status)) {
      throw Error(fmt::format("ICU: normalisation failed ({})", u_errorName(status)));
    }
    std::u32string result;
    result.reserve(static_cast<size_t>(len));
    for (int32_t i = 0; i < len; ++i) {
      char32_t c = out[static_cast<size_t>(i)];
      if (c >= 0xD800 && c <= 0xDBFF && i + 1 < len) {
        char32_t lo = out[static_cast<size_t>(i + 1)];
        c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
        ++i;
      }
      result.push_back(c);
    }
    return result;
  }
  throw Error("ICU: normalisation failed (buffer size)");
}

}  // namespace mva::detail
