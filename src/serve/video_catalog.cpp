#include "mvadapter/serve/video_catalog.h"

#include <algorithm>

#include <fmt/format.h>

#include "mvadapter/core/error.h"

namespace mva {
namespace {

// Captions are matched with surrounding white space ignored.
std::string caption_key(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// "<video id>#<n>" -> "<video id>" (ids may themselves hold '#', so the last one counts).
std::string video_of_caption_id(const std::string& id) {
  const auto hash = id.rfind('#');
  return hash == std::string::npos ? id : id.substr(0, hash);
}

}  // namespace

VideoCatalog::VideoCatalog(EmbeddingIndex videos, std::optional<EmbeddingIndex> captions,
                           Manifest dataset)
    : videos_(std::move(videos)), captions_(std::move(captions)), dataset_(std::move(dataset)) {
  if (videos_.kind != "videos") {
    throw Error(
        fmt::format("--index: this index holds {}, expected videos (encode it with "
                    "--videos)",
                    videos_.kind));
  }
  if (captions_) {
    if (captions_->kind != "captions") {
      throw Error(
          fmt::format("--captions: this index holds {}, expected captions (encode it "
                      "with --captions)",
                      captions_->kind));
    }
    if (captions_->dim() != videos_.dim()) {
      throw Error(
          fmt::format("--captions: D={} but the videos index has D={} (encode both with "
                      "the same model)",
                      captions_->dim(), videos_.dim()));
    }
  }
  const auto n = static_cast<size_t>(videos_.size());
  for (size_t r = 0; r < n; ++r) row_of_id_.emplace(videos_.ids[r], static_cast<int64_t>(r));
  entry_of_row_.assign(n, -1);
  captions_of_row_.assign(n, {});
  for (size_t v = 0; v < dataset_.videos.size(); ++v) {
    auto it = row_of_id_.find(dataset_.videos[v].id);
    if (it != row_of_id_.end()) entry_of_row_[static_cast<size_t>(it->second)] = v;
  }
  auto add_caption = [&](int64_t row, const std::string& text) {
    captions_of_row_[static_cast<size_t>(row)].push_back(text);
    auto& rows = rows_of_caption_[caption_key(text)];
    if (std::find(rows.begin(), rows.end(), row) == rows.end()) rows.push_back(row);
  };
  if (!dataset_.videos.empty()) {
    for (const auto& c : dataset_.captions) {
      auto it = row_of_id_.find(dataset_.videos.at(static_cast<size_t>(c.video)).id);
      if (it != row_of_id_.end()) add_caption(it->second, c.text);
    }
  } else if (captions_) {
    for (size_t i = 0; i < captions_->ids.size(); ++i) {
      auto it = row_of_id_.find(video_of_caption_id(captions_->ids[i]));
      if (it != row_of_id_.end()) add_caption(it->second, captions_->texts[i]);
    }
  }
}

int64_t VideoCatalog::row_of(const std::string& id) const {
  auto it = row_of_id_.find(id);
  return it == row_of_id_.end() ? -1 : it->second;
}

const VideoEntry* VideoCatalog::entry(int64_t row) const {
  const int64_t v = entry_of_row_.at(static_cast<size_t>(row));
  return v < 0 ? nullptr : &dataset_.videos[static_cast<size_t>(v)];
}

const std::vector<std::string>& VideoCatalog::captions_of(int64_t row) const {
  return captions_of_row_.at(static_cast<size_t>(row));
}

std::vector<int64_t> VideoCatalog::ground_truth(const std::string& text) const {
  auto it = rows_of_caption_.find(caption_key(text));
  return it == rows_of_caption_.end() ? std::vector<int64_t>{} : it->second;
}

nlohmann::json VideoCatalog::rank_videos(const torch::Tensor& query, int64_t k,
                                         const std::vector<int64_t>& truth) const {
  nlohmann::json hits = nlohmann::json::array();
  for (const auto& h : ivf_ ? ivf_->search(query, k) : search(videos_, query, k)) {
    hits.push_back({{"rank", h.rank},
                    {"id", videos_.ids[static_cast<size_t>(h.row)]},
                    {"score", h.score},
                    {"captions", captions_of(h.row)},
                    {"ground_truth", std::find(truth.begin(), truth.end(), h.row) != truth.end()}});
  }
  return hits;
}

nlohmann::json VideoCatalog::top_captions(int64_t row, int64_t k) const {
  nlohmann::json out = nlohmann::json::array();
  if (!captions_) return out;
  const std::string& id = videos_.ids.at(static_cast<size_t>(row));
  for (const auto& h : search(*captions_, videos_.emb[row], k)) {
    const auto& cid = captions_->ids[static_cast<size_t>(h.row)];
    out.push_back({{"rank", h.rank},
                   {"id", cid},
                   {"text", captions_->texts[static_cast<size_t>(h.row)]},
                   {"score", h.score},
                   {"own", video_of_caption_id(cid) == id}});
  }
  return out;
}

}  // namespace mva
