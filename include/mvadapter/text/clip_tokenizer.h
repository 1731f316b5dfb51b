#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace mva {

/// Token ids of one caption in the model's fixed-length layout, and which positions are real.
struct PaddedIds {
  std::vector<int64_t> ids;   ///< [SOT] + bpe[:max_words-2] + [EOT], zero padded to max_words
  std::vector<int64_t> mask;  ///< 1 for SOT..EOT, 0 for the padding
};

/// A batch of captions as tensors, ready for the text encoder.
struct TokenBatch {
  torch::Tensor ids;   ///< int64 [B, max_words]
  torch::Tensor mask;  ///< int64 [B, max_words]
};

/// Python's html.unescape: named (HTML5), decimal and hexadecimal character references.
std::string html_unescape(std::string_view text);

/// The text clean-up CLIP applies before BPE: fix_text (ftfy.fix_text, text_fix.h), html_unescape
/// twice, strip, every run of whitespace -> one space, then Unicode lower case (str.lower).
std::string clip_clean_text(std::string_view text);

/// OpenAI CLIP's byte-level BPE tokenizer (SimpleTokenizer), id for id.
/// encode() may be called from several threads at once.
class ClipTokenizer {
 public:
  static constexpr int64_t kVocabSize = 49408;
  static constexpr int64_t kSot = 49406;  ///< <|startoftext|>
  static constexpr int64_t kEot = 49407;  ///< <|endoftext|>

  /// Reads the merges from bpe_simple_vocab_16e6.txt.gz; an empty path means
  /// find_asset("bpe_simple_vocab_16e6.txt.gz").
  explicit ClipTokenizer(const std::string& vocab_path = "");

  /// Words longer than this many bytes are encoded in pieces of this size: BPE is quadratic
  /// in a word's length. No real word comes near it (the original takes hours on such input).
  static constexpr size_t kMaxWordBytes = 4096;

  /// BPE ids of `text` without SOT/EOT (SimpleTokenizer.encode).
  std::vector<int64_t> encode(std::string_view text) const;

  /// The first ids of encode(text): stops once at least `limit` exist (so a 1 MB caption costs
  /// only the words that are kept), possibly returning a few more.
  std::vector<int64_t> encode_prefix(std::string_view text, size_t limit) const;

  /// [SOT] + encode(text)[:max_words-2] + [EOT], zero padded to max_words (max_words >= 2).
  PaddedIds encode_padded(std::string_view text, int64_t max_words) const;

  /// encode_padded for each caption, stacked into [B, max_words] int64 tensors.
  TokenBatch encode_batch(const std::vector<std::string>& texts, int64_t max_words) const;

  /// Text of `ids` as SimpleTokenizer.decode: bytes joined, invalid UTF-8 replaced by U+FFFD,
  /// "</w>" -> " ". Padding zeros and SOT/EOT are decoded like any id; strip them first if
  /// unwanted.
  std::string decode(const std::vector<int64_t>& ids) const;

  /// The vocabulary entry of one id (byte-level unicode, e.g. "dog</w>").
  const std::string& token(int64_t id) const;

  /// The file the merges were read from.
  const std::string& vocab_path() const { return vocab_path_; }

 private:
  std::vector<int64_t> bpe(const std::string& word) const;

  std::string vocab_path_;
  std::vector<std::string> vocab_;  // id -> byte-level unicode string
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (a,b) -> (rank, merged id)
  int32_t byte_id_[256];       // byte -> id of its unicode char
  uint8_t byte_of_char_[324];  // code point of a byte char -> byte

  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache_;
};

}  // namespace mva
