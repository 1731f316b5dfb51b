#include "mvadapter/eval/evaluator.h"

#include <chrono>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "mvadapter/core/error.h"
#include "mvadapter/core/progress.h"

namespace mva {

nlohmann::json EvalResult::labelled(const std::string& key) const {
  return {{key, metrics.to_json()}, {key + "_official", official.to_json()}};
}

std::string EvalResult::tables() const {
  if (metrics.convention == official.convention) return metrics.table();
  return metrics.table() + "\n" + official.table();
}

torch::Tensor encode_captions(RetrievalModelImpl& model, const std::vector<std::string>& captions,
                              const TokenizeFn& tokenize, int64_t batch_size, Precision precision) {
  if (batch_size <= 0) throw Error("encode_captions: batch_size must be > 0");
  const auto device = model.device();
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (size_t begin = 0; begin < captions.size(); begin += static_cast<size_t>(batch_size)) {
    const size_t end = std::min(captions.size(), begin + static_cast<size_t>(batch_size));
    std::vector<torch::Tensor> rows;
    for (size_t i = begin; i < end; ++i) {
      auto ids = tokenize(captions[i]);
      rows.push_back(torch::tensor(ids, torch::kInt64));
    }
    auto ids = torch::stack(rows).to(device);
    AutocastGuard autocast(precision, device);
    parts.push_back(model.embed_texts(ids).to(torch::kCPU, torch::kFloat));
  }
  if (parts.empty()) return torch::zeros({0, 0});
  return torch::cat(parts);
}

Evaluator::Evaluator(Manifest manifest, EvaluatorOptions options, TokenizeFn tokenize,
                     ProcessGroup* group)
    : options_(std::move(options)), tokenize_(std::move(tokenize)), group_(group) {
  if (!tokenize_) throw Error("Evaluator: a tokenizer function is required");
  if (manifest.videos.empty()) {
    throw Error(
        fmt::format("evaluation split '{}' of {} has no videos", manifest.split, manifest.dataset));
  }
  if (manifest.captions.empty()) {
    throw Error(fmt::format("evaluation split '{}' of {} has no captions", manifest.split,
                            manifest.dataset));
  }
  options_.loader.mode = LoaderMode::kVideos;
  options_.loader.shuffle = false;
  options_.loader.drop_last = false;
  options_.loader.rank = group_ ? group_->rank() : 0;
  options_.loader.world_size = group_ ? group_->world_size() : 1;
  loader_ = std::make_unique<VideoLoader>(std::move(manifest), options_.loader);
}

EncodedSplit Evaluator::encode(RetrievalModelImpl& model) {
  model.eval();
  const auto device = model.device();
  const Manifest& m = loader_->manifest();
  EncodedSplit out;

  torch::NoGradGuard no_grad;
  loader_->start_epoch(0);
  const int64_t skipped_before = loader_->stats().samples_skipped;
  std::vector<torch::Tensor> video_parts;
  std::vector<int64_t> row_of_video(m.videos.size(), -1);
  Progress progress("encode videos", static_cast<int64_t>(m.videos.size()), options_.progress);
  while (auto batch = loader_->next()) {
    progress.update(loader_->position());
    auto frames = model_frames(*batch, device);
    auto mask = batch->frame_mask.to(device);
    torch::Tensor emb;
    {
      AutocastGuard autocast(options_.precision, device);
      emb = model.embed_videos(frames, mask);
    }
    video_parts.push_back(emb.to(torch::kCPU, torch::kFloat));
    auto idx = batch->video_index.accessor<int64_t, 1>();
    for (int64_t i = 0; i < idx.size(0); ++i) {
      row_of_video[static_cast<size_t>(idx[i])] = static_cast<int64_t>(out.video_index.size());
      out.video_index.push_back(idx[i]);
    }
  }
  progress.finish();
  const int64_t dim = model.clip->config().embed_dim;
  if (group_ != nullptr) {
    // This rank's videos only; the captions are sharded after the gather, once every rank knows
    // which videos could not be decoded.
    out.video_emb = video_parts.empty() ? torch::zeros({0, dim}) : torch::cat(video_parts);
    return gather(model, std::move(out));
  }
  if (video_parts.empty()) {
    throw Error(fmt::format("evaluation split '{}' of {}: none of its {} videos could be decoded",
                            m.split, m.dataset, m.videos.size()));
  }
  out.video_emb = torch::cat(video_parts);
  for (size_t v = 0; v < m.videos.size(); ++v) {
    if (row_of_video[v] < 0) out.skipped_videos.push_back(static_cast<int64_t>(v));
  }
  if (loader_->stats().samples_skipped - skipped_before !=
      static_cast<int64_t>(out.skipped_videos.size())) {
    throw Error("Evaluator: the loader's skip count disagrees with the videos it returned");
  }

  std::vector<std::string> texts;
  for (size_t c = 0; c < m.captions.size(); ++c) {
    const int64_t row = row_of_video[static_cast<size_t>(m.captions[c].video)];
    if (row < 0) continue;  // its video failed: the caption has no right answer left
    texts.push_back(m.captions[c].text);
    out.caption_index.push_back(static_cast<int64_t>(c));
    out.caption_video.push_back(row);
  }
  out.text_emb =
      encode_captions(model, texts, tokenize_, options_.text_batch_size, options_.precision);
  return out;
}

namespace {

// Rows [rank·per, (rank+1)·per) of n, per = ceil(n / world): contiguous shards, the last short.
std::pair<int64_t, int64_t> shard_of(int64_t n, int rank, int world) {
  const int64_t per = (n + world - 1) / world;
  return {std::min(n, rank * per), std::min(n, (rank + 1) * per)};
}

// Every rank's rows of `local` ([k, D] with k <= per), padded to `per` rows so the ranks send
// equal shapes, gathered in rank order; `keep` (gathered the same way) marks the real rows.
torch::Tensor gather_padded(ProcessGroup& group, const torch::Tensor& local, int64_t per,
                            const std::string& what) {
  auto padded = torch::zeros({per, local.size(1)}, local.options());
  padded.narrow(0, 0, local.size(0)).copy_(local);
  return group.all_gather_cat(padded, what);
}

}  // namespace

EncodedSplit Evaluator::gather(RetrievalModelImpl& model, EncodedSplit local) {
  ProcessGroup& group = *group_;
  const int64_t dim = local.video_emb.size(1);
  const Manifest& m = loader_->manifest();
  const auto n_videos = static_cast<int64_t>(m.videos.size());
  const int64_t per = (n_videos + group.world_size() - 1) / group.world_size();
  // Manifest index of each row, -1 for padding: shards are contiguous and in order, so the
  // gathered real rows are already in manifest order, as one process has them.
  auto index = torch::full({per, 1}, -1.0, torch::kFloat64);
  for (size_t i = 0; i < local.video_index.size(); ++i) {
    index[static_cast<int64_t>(i)][0] = static_cast<double>(local.video_index[i]);
  }
  auto all_emb = gather_padded(group, local.video_emb.to(torch::kFloat), per, "gather videos");
  auto all_idx = gather_padded(group, index, per, "gather video ids").view({-1});
  EncodedSplit out;
  std::vector<int64_t> row_of_video(m.videos.size(), -1);
  std::vector<int64_t> rows;
  auto idx = all_idx.accessor<double, 1>();
  for (int64_t i = 0; i < idx.size(0); ++i) {
    if (idx[i] < 0) continue;
    const auto v = static_cast<int64_t>(idx[i]);
    row_of_video[static_cast<size_t>(v)] = static_cast<int64_t>(out.video_index.size());
    out.video_index.push_back(v);
    rows.push_back(i);
  }
  if (out.video_index.empty()) {
    throw Error(fmt::format("evaluation split '{}' of {}: none of its {} videos could be decoded",
                            m.split, m.dataset, m.videos.size()));
  }
  out.video_emb = all_emb.index_select(0, torch::tensor(rows, torch::kInt64));
  for (size_t v = 0; v < m.videos.size(); ++v) {
    if (row_of_video[v] < 0) out.skipped_videos.push_back(static_cast<int64_t>(v));
  }

  std::vector<std::string> texts;
  for (size_t c = 0; c < m.captions.size(); ++c) {
    const int64_t row = row_of_video[static_cast<size_t>(m.captions[c].video)];
    if (row < 0) continue;
    texts.push_back(m.captions[c].text);
    out.caption_index.push_back(static_cast<int64_t>(c));
    out.caption_video.push_back(row);
  }
  const auto n_texts = static_cast<int64_t>(texts.size());
  const auto [begin, end] = shard_of(n_texts, group.rank(), group.world_size());
  std::vector<std::string> mine(texts.begin() + begin, texts.begin() + end);
  auto mine_emb = mine.empty() ? torch::zeros({0, dim})
                               : encode_captions(model, mine, tokenize_, options_.text_batch_size,
                                                 options_.precision);
  const int64_t per_text = (n_texts + group.world_size() - 1) / group.world_size();
  auto all_text = gather_padded(group, mine_emb, per_text, "gather captions");
  // Shards are contiguous and only the last ones are short: rank r's rows sit at r·per_text.
  std::vector<int64_t> text_rows;
  for (int r = 0; r < group.world_size(); ++r) {
    const auto [b, e] = shard_of(n_texts, r, group.world_size());
    for (int64_t i = b; i < e; ++i) text_rows.push_back(r * per_text + (i - b));
  }
  out.text_emb = all_text.index_select(0, torch::tensor(text_rows, torch::kInt64));
  return out;
}

EvalResult Evaluator::evaluate(RetrievalModelImpl& model) {
  const auto start = std::chrono::steady_clock::now();
  EncodedSplit enc = encode(model);
  auto sim = similarity_matrix(enc.text_emb, enc.video_emb, options_.metrics.chunk_size);
  EvalResult r;
  const auto both = compute_retrieval_metrics_each(
      sim, enc.caption_video, {options_.metrics.convention, RankConvention::kOfficial},
      options_.metrics);
  r.metrics = both[0];
  r.official = both[1];
  // T2V ranks are the same under every convention; ranked again for the per-query file, a small
  // cost next to encoding the split.
  r.t2v_ranks = query_ranks(loader_->manifest(), enc.caption_index,
                            compute_retrieval_ranks(sim, enc.caption_video, options_.metrics).t2v);
  r.skipped_videos = static_cast<int64_t>(enc.skipped_videos.size());
  if (r.skipped_videos > 0) {
    spdlog::warn(
        "evaluation: {} of {} videos could not be decoded and were left out with their "
        "captions; the metrics are over the rest",
        r.skipped_videos, loader_->manifest().videos.size());
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace mva
