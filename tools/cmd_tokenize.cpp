#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mvadapter/core/error.h"
#include "mvadapter/text/clip_tokenizer.h"

namespace mva::cli {
namespace {

struct TokenizeOptions {
  int64_t max_words = 0;  // 0: no padding, just [SOT] + bpe + [EOT]
  bool json = false;
  bool decode = false;
  std::string vocab;
  std::vector<std::string> texts;
};

std::vector<int64_t> parse_ids(const std::string& line, size_t line_no) {
  std::vector<int64_t> ids;
  std::istringstream in(line);
  std::string word;
  while (in >> word) {
    size_t used = 0;
    int64_t id = 0;
    try {
      id = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size()) {
      throw Error(
          fmt::format("tokenize --decode: input {}: '{}' is not a token id", line_no, word));
    }
    ids.push_back(id);
  }
  return ids;
}

void run_tokenize(const TokenizeOptions& opt) {
  if (opt.max_words != 0 && opt.max_words < 2) {
    throw Error(fmt::format("--max-words: expected at least 2, got {}", opt.max_words));
  }
  ClipTokenizer tok(opt.vocab);
  std::vector<std::string> texts = opt.texts;
  if (texts.empty()) {
    for (std::string line; std::getline(std::cin, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      texts.push_back(line);
    }
  }

  auto json = nlohmann::ordered_json::array();  // keys in the documented order
  for (size_t n = 0; n < texts.size(); ++n) {
    const std::string& text = texts[n];
    if (opt.decode) {
      auto ids = parse_ids(text, n + 1);
      std::string decoded = tok.decode(ids);
      if (opt.json) {
        json.push_back({{"ids", ids}, {"text", decoded}});
      } else {
        std::printf("%s\n", decoded.c_str());
      }
      continue;
    }
    std::vector<int64_t> ids;
    if (opt.max_words > 0) {
      ids = tok.encode_padded(text, opt.max_words).ids;
    } else {
      ids.push_back(ClipTokenizer::kSot);
      auto bpe = tok.encode(text);
      ids.insert(ids.end(), bpe.begin(), bpe.end());
      ids.push_back(ClipTokenizer::kEot);
    }
    if (opt.json) {
      // Tokens of the real positions only: padding zeros would read as "!".
      std::vector<std::string> tokens;
      for (size_t i = 0; i < ids.size(); ++i) {
        tokens.push_back(tok.token(ids[i]));
        if (ids[i] == ClipTokenizer::kEot) break;
      }
      json.push_back({{"text", text}, {"ids", ids}, {"tokens", tokens}});
    } else {
      std::printf("%s\n", fmt::format("{}", fmt::join(ids, " ")).c_str());
    }
  }
  if (opt.json) std::printf("%s\n", json.dump(2).c_str());
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto opt = std::make_shared<TokenizeOptions>();
  auto* cmd = app.add_subcommand(
      "tokenize",
      "CLIP BPE token ids of captions (one line each); with no TEXT, one caption per stdin line");
  cmd->add_option("--max-words", opt->max_words,
                  "Truncate and zero-pad to this length, as the model sees it (>= 2)");
  cmd->add_flag("--json", opt->json, "Print a JSON array of {text, ids, tokens}");
  cmd->add_flag("--decode", opt->decode, "Inputs are space-separated ids; print their text");
  cmd->add_option("--vocab", opt->vocab,
                  "BPE merges file (default: the installed bpe_simple_vocab_16e6.txt.gz)");
  cmd->add_option("text", opt->texts, "Captions (each argument is one caption)");
  cmd->callback([opt] { run_tokenize(*opt); });
}

}  // namespace mva::cli
