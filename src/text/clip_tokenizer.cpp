#include "mvadapter/text/clip_tokenizer.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <string_view>

#include <fmt/format.h>
#include <re2/re2.h>
#include <zlib.h>

#include "html_entities.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/runtime.h"
#include "mvadapter/text/text_fix.h"
#include "unicode.h"

namespace mva {
namespace {

using detail::append_utf8;
using detail::u32_to_utf8;
using detail::utf8_to_u32;
constexpr char32_t kReplacement = detail::kReplacementChar;

// ---- html.unescape ---------------------------------------------------------------------------

// Python's html._invalid_charrefs: C1 controls read as Windows-1252, NUL and CR special.
char32_t invalid_charref(uint64_t num) {
  if (num == 0x00) return kReplacement;
  if (num == 0x0D) return U'\r';
  if (num >= 0x80 && num <= 0x9F) return detail::sloppy_cp1252_char(static_cast<uint8_t>(num));
  return 0;
}

// Python's html._invalid_codepoints: references to these expand to nothing.
bool invalid_codepoint(uint64_t num) {
  return (num >= 0x1 && num <= 0x8) || num == 0xB || (num >= 0xE && num <= 0x1F) ||
         (num >= 0x7F && num <= 0x9F) || (num >= 0xFDD0 && num <= 0xFDEF) ||
         (num <= 0x10FFFF && (num & 0xFFFE) == 0xFFFE);
}

bool is_digit(char32_t c) {
  return c >= U'0' && c <= U'9';
}
bool is_hex_digit(char32_t c) {
  return is_digit(c) || (c >= U'a' && c <= U'f') || (c >= U'A' && c <= U'F');
}
int hex_value(char32_t c) {
  if (is_digit(c)) return static_cast<int>(c - U'0');
  if (c >= U'a' && c <= U'f') return static_cast<int>(c - U'a' + 10);
  return static_cast<int>(c - U'A' + 10);
}

// One pass of Python's html.unescape, which matches
// &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?) and replaces each match.
std::u32string unescape_u32(const std::u32string& s) {
  if (s.find(U'&') == std::u32string::npos) return s;
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    if (s[i] != U'&') {
      out.push_back(s[i++]);
      continue;
    }
    size_t j = i + 1;
    if (j < n && s[j] == U'#') {
      size_t k = j + 1;
      bool hex = false;
      if (k < n && is_digit(s[k])) {
      } else if (k + 1 < n && (s[k] == U'x' || s[k] == U'X') && is_hex_digit(s[k + 1])) {
        hex = true;
        ++k;
      } else {
        out.push_back(s[i++]);  // "&#" not followed by a number is left as it is
        continue;
      }
      // Saturate: any value above U+10FFFF maps to U+FFFD, however large.
      uint64_t num = 0;
      while (k < n && (hex ? is_hex_digit(s[k]) : is_digit(s[k]))) {
        num = num * (hex ? 16 : 10) + static_cast<uint64_t>(hex ? hex_value(s[k]) : s[k] - U'0');
        if (num > 0x10FFFF) num = 0x110000;
        ++k;
      }
      if (k < n && s[k] == U';') ++k;
      if (char32_t c = invalid_charref(num); c != 0) {
        out.push_back(c);
      } else if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) {
        out.push_back(kReplacement);
      } else if (!invalid_codepoint(num)) {
        out.push_back(static_cast<char32_t>(num));
      }
      i = k;
      continue;
    }
    size_t k = j;
    auto name_char = [](char32_t c) {
      return c != U'\t' && c != U'\n' && c != U'\f' && c != U' ' && c != U'<' && c != U'&' &&
             c != U'#' && c != U';';
    };
    while (k < n && k - j < 32 && name_char(s[k])) ++k;
    if (k == j) {
      out.push_back(s[i++]);
      continue;
    }
    if (k < n && s[k] == U';') ++k;
    std::u32string_view ref(s.data() + j, k - j);
    if (const auto* v = detail::find_html5_entity(u32_to_utf8(ref))) {
      auto cps = utf8_to_u32(*v);
      out += cps;
    } else {
      // The longest known prefix (at least 2 characters): legacy names such as "&ampx" -> "&x".
      bool found = false;
      for (size_t x = ref.size() - 1; x >= 2 && x < ref.size(); --x) {
        if (const auto* v = detail::find_html5_entity(u32_to_utf8(ref.substr(0, x)))) {
          out += utf8_to_u32(*v);
          out += ref.substr(x);
          found = true;
          break;
        }
      }
      if (!found) {
        out.push_back(U'&');
        out += ref;
      }
    }
    i = k;
  }
  return out;
}

// ---- whitespace and case ---------------------------------------------------------------------

// Python's str.isspace, which both re's \s and str.strip() use.
bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// strip() then re.sub(r"\s+", " ") then strip(): runs become one space, none at either end.
std::u32string collapse_whitespace(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  bool pending_space = false;
  for (char32_t c : s) {
    if (is_space(c)) {
      pending_space = !out.empty();
    } else {
      if (pending_space) out.push_back(U' ');
      pending_space = false;
      out.push_back(c);
    }
  }
  return out;
}

// ---- vocabulary ------------------------------------------------------------------------------

constexpr const char* kVocabFile = "bpe_simple_vocab_16e6.txt.gz";
// SimpleTokenizer keeps merges[1 : 49152 - 256 - 2 + 1]: line 0 is a version header.
constexpr size_t kNumMerges = 49152 - 256 - 2;

std::string read_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) throw Error(fmt::format("{}: cannot open the BPE vocabulary", path));
  std::string data;
  char buf[1 << 16];
  for (;;) {
    int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int errnum = 0;
      std::string msg = gzerror(f, &errnum);
      gzclose(f);
      throw Error(fmt::format("{}: corrupt gzip data in the BPE vocabulary ({})", path, msg));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  int errnum = 0;
  std::string msg = gzerror(f, &errnum);
  int rc = gzclose(f);
  // A truncated stream reads as a short file; zlib reports it only here.
  if ((errnum != Z_OK && errnum != Z_STREAM_END) || rc != Z_OK) {
    throw Error(fmt::format("{}: corrupt or truncated gzip data in the BPE vocabulary ({})", path,
                            errnum != Z_OK ? msg : "unexpected end of file"));
  }
  return data;
}

// GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes to
// U+0100.. in byte order. The vocabulary lists them in this order (printable ones first).
std::vector<std::pair<int, char32_t>> bytes_to_unicode() {
  std::vector<std::pair<int, char32_t>> table;
  std::vector<bool> printable(256, false);
  for (int b = '!'; b <= '~'; ++b) printable[b] = true;
  for (int b = 0xA1; b <= 0xAC; ++b) printable[b] = true;
  for (int b = 0xAE; b <= 0xFF; ++b) printable[b] = true;
  for (int b = 0; b < 256; ++b) {
    if (printable[b]) table.emplace_back(b, static_cast<char32_t>(b));
  }
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    if (!printable[b]) table.emplace_back(b, static_cast<char32_t>(256 + extra++));
  }
  return table;
}

const RE2& pretokenizer() {
  // The original compiles this with re.IGNORECASE; (?i) keeps its case-folding behaviour.
  static const RE2 re(
      R"((?i)(<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+))");
  if (!re.ok()) throw Error("ClipTokenizer: the pre-tokenisation pattern does not compile");
  return re;
}

constexpr size_t kMaxCacheEntries = 1 << 20;

}  // namespace

std::string html_unescape(std::string_view text) {
  return u32_to_utf8(unescape_u32(utf8_to_u32(text)));
}

std::string clip_clean_text(std::string_view text) {
  auto u = unescape_u32(unescape_u32(utf8_to_u32(fix_text(text))));
  return detail::to_lower(u32_to_utf8(collapse_whitespace(u)));
}

ClipTokenizer::ClipTokenizer(const std::string& vocab_path)
    : vocab_path_(vocab_path.empty() ? find_asset(kVocabFile) : vocab_path) {
  std::string data = read_gz(vocab_path_);

  const auto byte_table = bytes_to_unicode();
  std::fill(std::begin(byte_of_char_), std::end(byte_of_char_), 0);
  vocab_.reserve(kVocabSize);
  for (size_t k = 0; k < byte_table.size(); ++k) {
    byte_id_[byte_table[k].first] = static_cast<int32_t>(k);
    byte_of_char_[byte_table[k].second] = static_cast<uint8_t>(byte_table[k].first);
    std::string s;
    append_utf8(s, byte_table[k].second);
    vocab_.push_back(s);
  }
  for (size_t k = 0; k < 256; ++k) vocab_.push_back(vocab_[k] + "</w>");

  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(kNumMerges);
  size_t line_no = 0, pos = 0;
  while (merges.size() < kNumMerges) {
    if (pos >= data.size()) {
      throw Error(fmt::format("{}: has {} merge lines, expected {} (truncated vocabulary?)",
                              vocab_path_, merges.size(), kNumMerges));
    }
    size_t end = data.find('\n', pos);
    if (end == std::string::npos) end = data.size();
    std::string_view line(data.data() + pos, end - pos);
    pos = end + 1;
    if (line_no++ == 0) continue;  // "#version: ..." header
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos || sp == 0 || sp + 1 >= line.size() ||
        line.find(' ', sp + 1) != std::string_view::npos) {
      throw Error(fmt::format("{}: line {}: expected a merge 'A B', got '{}'", vocab_path_, line_no,
                              std::string(line.substr(0, 64))));
    }
    merges.emplace_back(std::string(line.substr(0, sp)), std::string(line.substr(sp + 1)));
  }
  for (const auto& m : merges) vocab_.push_back(m.first + m.second);
  vocab_.emplace_back("<|startoftext|>");
  vocab_.emplace_back("<|endoftext|>");

  // As Python's dict(zip(vocab, range(...))): a string listed twice keeps its last id.
  std::unordered_map<std::string, int32_t> encoder;
  encoder.reserve(vocab_.size());
  for (size_t id = 0; id < vocab_.size(); ++id) encoder[vocab_[id]] = static_cast<int32_t>(id);
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    auto a = encoder.find(merges[rank].first);
    auto b = encoder.find(merges[rank].second);
    // A merge whose halves are not tokens can never apply: no BPE step produces them.
    if (a == encoder.end() || b == encoder.end()) continue;
    uint64_t key = (static_cast<uint64_t>(a->second) << 32) | static_cast<uint32_t>(b->second);
    merges_[key] = {static_cast<int32_t>(rank),
                    encoder.at(merges[rank].first + merges[rank].second)};
  }
  pretokenizer();
}

std::vector<int64_t> ClipTokenizer::bpe(const std::string& word) const {
  if (word == "<|startoftext|>") return {kSot};
  if (word == "<|endoftext|>") return {kEot};
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (auto it = cache_.find(word); it != cache_.end()) return it->second;
  }
  std::vector<int32_t> parts;
  parts.reserve(word.size());
  for (unsigned char b : word) parts.push_back(byte_id_[b]);
  parts.back() += 256;  // the last symbol carries "</w>"

  std::vector<int32_t> next;
  while (parts.size() > 1) {
    int32_t best_rank = -1, first = 0, second = 0, merged = 0;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      uint64_t key = (static_cast<uint64_t>(parts[i]) << 32) | static_cast<uint32_t>(parts[i + 1]);
      auto it = merges_.find(key);
      if (it != merges_.end() && (best_rank < 0 || it->second.first < best_rank)) {
        best_rank = it->second.first;
        first = parts[i];
        second = parts[i + 1];
        merged = it->second.second;
      }
    }
    if (best_rank < 0) break;
    next.clear();
    for (size_t i = 0; i < parts.size();) {
      if (parts[i] == first && i + 1 < parts.size() && parts[i + 1] == second) {
        next.push_back(merged);
        i += 2;
      } else {
        next.push_back(parts[i]);
        i += 1;
      }
    }
    parts.swap(next);
  }
  std::vector<int64_t> ids(parts.begin(), parts.end());
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    // The original's cache is unbounded; a bound keeps long-running loaders flat.
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(word, ids);
  }
  return ids;
}

std::vector<int64_t> ClipTokenizer::encode(std::string_view text) const {
  return encode_prefix(text, std::numeric_limits<size_t>::max());
}

std::vector<int64_t> ClipTokenizer::encode_prefix(std::string_view text, size_t limit) const {
  std::string clean = clip_clean_text(text);
  std::vector<int64_t> ids;
  re2::StringPiece input(clean);
  std::string piece;
  // Words are encoded independently, so stopping once `limit` ids exist changes none of them.
  while (ids.size() < limit && RE2::FindAndConsume(&input, pretokenizer(), &piece)) {
    // BPE is quadratic in a word's length: a pathological "word" (a 1 MB run of letters) is
    // encoded in pieces of kMaxWordBytes, where the original would take hours.
    for (size_t at = 0; at < piece.size() && ids.size() < limit; at += kMaxWordBytes) {
      auto part = bpe(piece.substr(at, kMaxWordBytes));
      ids.insert(ids.end(), part.begin(), part.end());
    }
  }
  return ids;
}

PaddedIds ClipTokenizer::encode_padded(std::string_view text, int64_t max_words) const {
  if (max_words < 2) {
    throw Error(
        fmt::format("max_words: expected at least 2 (room for SOT and EOT), got {}", max_words));
  }
  auto bpe_ids = encode_prefix(text, static_cast<size_t>(max_words - 2));
  size_t keep = std::min(bpe_ids.size(), static_cast<size_t>(max_words - 2));
  PaddedIds out;
  out.ids.assign(static_cast<size_t>(max_words), 0);
  out.mask.assign(static_cast<size_t>(max_words), 0);
  out.ids[0] = kSot;
  std::copy(bpe_ids.begin(), bpe_ids.begin() + static_cast<std::ptrdiff_t>(keep),
            out.ids.begin() + 1);
  out.ids[keep + 1] = kEot;
  std::fill(out.mask.begin(), out.mask.begin() + static_cast<std::ptrdiff_t>(keep + 2), 1);
  return out;
}

TokenBatch ClipTokenizer::encode_batch(const std::vector<std::string>& texts,
                                       int64_t max_words) const {
  auto b = static_cast<int64_t>(texts.size());
  TokenBatch batch{torch::zeros({b, max_words}, torch::kLong),
                   torch::zeros({b, max_words}, torch::kLong)};
  auto ids = batch.ids.accessor<int64_t, 2>();
  auto mask = batch.mask.accessor<int64_t, 2>();
  for (int64_t i = 0; i < b; ++i) {
    auto row = encode_padded(texts[static_cast<size_t>(i)], max_words);
    for (int64_t j = 0; j < max_words; ++j) {
      ids[i][j] = row.ids[static_cast<size_t>(j)];
      mask[i][j] = row.mask[static_cast<size_t>(j)];
    }
  }
  return batch;
}

const std::string& ClipTokenizer::token(int64_t id) const {
  if (id < 0 || id >= static_cast<int64_t>(vocab_.size())) {
    throw Error(fmt::format("token id {}: outside the vocabulary [0, {})", id, vocab_.size()));
  }
  return vocab_[static_cast<size_t>(id)];
}

std::string ClipTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string bytes;
  for (int64_t id : ids) {
    for (char32_t cp : utf8_to_u32(token(id))) {
      if (cp >= std::size(byte_of_char_)) {
        throw Error(fmt::format("{}: token {} holds U+{:04X}, not a byte character", vocab_path_,
                                id, static_cast<uint32_t>(cp)));
      }
      bytes.push_back(static_cast<char>(byte_of_char_[cp]));
    }
  }
  std::string text = u32_to_utf8(utf8_to_u32(bytes));
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 4, "</w>") == 0) {
      out.push_back(' ');
      i += 4;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

}  // namespace mva
