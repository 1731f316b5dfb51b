#include "mvadapter/eval/query_ranks.h"

#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "mvadapter/core/error.h"
#include "mvadapter/io/atomic_file.h"

namespace mva {

std::vector<QueryRank> query_ranks(const Manifest& manifest,
                                   const std::vector<int64_t>& caption_index,
                                   const torch::Tensor& t2v) {
  if (!t2v.defined() || t2v.dim() != 1 ||
      t2v.size(0) != static_cast<int64_t>(caption_index.size())) {
    throw Error(fmt::format("query_ranks: {} ranks for {} caption rows",
                            t2v.defined() ? t2v.numel() : 0, caption_index.size()));
  }
  auto ranks = t2v.to(torch::kCPU, torch::kLong).contiguous();
  const int64_t* r = ranks.data_ptr<int64_t>();
  std::vector<QueryRank> out;
  out.reserve(caption_index.size());
  for (size_t i = 0; i < caption_index.size(); ++i) {
    const auto c = static_cast<size_t>(caption_index[i]);
    if (c >= manifest.captions.size()) {
      throw Error(fmt::format("query_ranks: caption row {} names caption {} of {}", i, c,
                              manifest.captions.size()));
    }
    const auto& caption = manifest.captions[c];
    out.push_back({static_cast<int64_t>(c), caption.text,
                   manifest.videos.at(static_cast<size_t>(caption.video)).id, r[i] + 1});
  }
  return out;
}

void write_query_ranks(const std::filesystem::path& path, const std::vector<QueryRank>& ranks) {
  std::string text;
  for (const auto& q : ranks) {
    text += nlohmann::json(
                {{"query", q.query}, {"caption", q.caption}, {"video", q.video}, {"rank", q.rank}})
                .dump();
    text += '\n';
  }
  write_text_atomically(path, text);
}

std::vector<QueryRank> read_query_ranks(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw Error(fmt::format("{}: cannot be read", path.string()));
  std::vector<QueryRank> out;
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("{}:{}", path.string(), line_no);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      throw Error(where + ": not a JSON object");
    }
    if (!j.is_object()) throw Error(where + ": not a JSON object");
    auto integer = [&](const char* field) {
      if (!j.contains(field) || !j[field].is_number_integer()) {
        throw Error(fmt::format("{}: field '{}' must be an integer", where, field));
      }
      return j[field].get<int64_t>();
    };
    auto text = [&](const char* field) {
      if (!j.contains(field) || !j[field].is_string()) {
        throw Error(fmt::format("{}: field '{}' must be a string", where, field));
      }
      return j[field].get<std::string>();
    };
    QueryRank q{integer("query"), text("caption"), text("video"), integer("rank")};
    if (q.rank < 1) {
      throw Error(fmt::format("{}: field 'rank' must be at least 1, got {}", where, q.rank));
    }
    out.push_back(std::move(q));
  }
  return out;
}

}  // namespace mva
