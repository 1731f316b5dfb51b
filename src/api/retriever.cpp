#include "mvadapter/api/retriever.h"

#include <utility>

#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/config/run_setup.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/tensor_format.h"
#include "mvadapter/data/video_loader.h"
#include "mvadapter/model/adapter_checkpoint.h"
#include "mvadapter/model/precision.h"

namespace mva {

Retriever::Retriever(RunConfig config, const std::filesystem::path& checkpoint)
    : config_(std::move(config)) {
  if (!checkpoint.empty() && !std::filesystem::exists(checkpoint)) {
    throw Error(fmt::format("Retriever: checkpoint '{}' does not exist", checkpoint.string()));
  }
  eval_ = evaluator_options(config_);  // validates device and precision before any weights
  eval_.progress = false;
  model_ = build_model(config_, checkpoint);
  model_->to(eval_.device);
  model_->eval();
  tokenize_ = make_tokenize_fn(std::make_shared<const ClipTokenizer>(), config_.data.words,
                               model_->clip->config().vocab_size);
}

Retriever Retriever::from_checkpoint(const std::filesystem::path& checkpoint,
                                     const std::vector<std::string>& overrides) {
  if (!std::filesystem::exists(checkpoint)) {
    throw Error(fmt::format("Retriever: checkpoint '{}' does not exist", checkpoint.string()));
  }
  auto config = config_from_checkpoint(checkpoint, overrides);
  if (!config) {
    throw Error(fmt::format(
        "{}: records no run config (an official or converted checkpoint, or one from before "
        "mvadapter 0.2): construct the Retriever with the config it was trained with",
        checkpoint.string()));
  }
  return Retriever(std::move(*config), checkpoint);
}

torch::Tensor Retriever::embed_video(const std::filesystem::path& path) {
  VideoEntry entry;
  entry.id = path.stem().string();
  entry.path = path;
  if (!std::filesystem::exists(path)) {
    throw Error(fmt::format("{}: video does not exist", path.string()));
  }
  return embed_video_file(*model_, entry, eval_.loader.clip, eval_.precision);
}

torch::Tensor Retriever::embed_frames(const torch::Tensor& frames, const torch::Tensor& mask) {
  if (frames.scalar_type() != torch::kUInt8 || (frames.dim() != 4 && frames.dim() != 5) ||
      frames.size(-3) != 3) {
    throw Error(fmt::format(
        "Retriever::embed_frames: expected uint8 RGB crops [F, 3, S, S] or [B, F, 3, S, S], got "
        "{} {}",
        c10::toString(frames.scalar_type()), shape_str(frames.sizes())));
  }
  const int64_t size = config_.data.size;
  if (frames.size(-1) != size || frames.size(-2) != size) {
    throw Error(fmt::format("Retriever::embed_frames: frames are {}x{}, the model takes {}x{}",
                            frames.size(-2), frames.size(-1), size, size));
  }
  VideoBatch batch;
  batch.frames = frames.dim() == 4 ? frames.unsqueeze(0) : frames;
  const auto bf = batch.frames.sizes().slice(0, 2);
  if (mask.defined()) {
    batch.frame_mask = (mask.dim() == 1 ? mask.unsqueeze(0) : mask).to(torch::kInt64);
    if (batch.frame_mask.sizes() != bf) {
      throw Error(fmt::format("Retriever::embed_frames: mask is {}, frames need {}",
                              shape_str(batch.frame_mask.sizes()), shape_str(bf)));
    }
  } else {
    batch.frame_mask = torch::ones(bf, torch::kInt64);
  }
  torch::NoGradGuard no_grad;
  AutocastGuard autocast(eval_.precision, eval_.device);
  // model_frames normalises as the loader does and zeroes padded frames after that.
  return model_->embed_videos(model_frames(batch, eval_.device), batch.frame_mask.to(eval_.device))
      .to(torch::kCPU, torch::kFloat32);
}

torch::Tensor Retriever::embed_captions(const std::vector<std::string>& captions) {
  if (captions.empty()) throw Error("Retriever::embed_captions: no captions");
  return encode_captions(*model_, captions, tokenize_, eval_.text_batch_size, eval_.precision);
}

EmbeddingIndex Retriever::index_videos(const std::vector<std::filesystem::path>& paths) {
  if (paths.empty()) throw Error("Retriever::index_videos: no videos");
  EmbeddingIndex index;
  index.kind = "videos";
  std::vector<torch::Tensor> rows;
  rows.reserve(paths.size());
  for (const auto& p : paths) {
    rows.push_back(embed_video(p));
    index.ids.push_back(p.stem().string());
  }
  index.emb = torch::stack(rows);
  index.info = {{"config", config_.name}, {"arch", config_.model.arch}};
  validate_index(index, "Retriever::index_videos");
  return index;
}

EmbeddingIndex Retriever::index_captions(const std::vector<std::string>& captions) {
  EmbeddingIndex index;
  index.kind = "captions";
  index.emb = embed_captions(captions);
  for (size_t i = 0; i < captions.size(); ++i) index.ids.push_back(fmt::format("caption#{}", i));
  index.texts = captions;
  index.info = {{"config", config_.name}, {"arch", config_.model.arch}};
  validate_index(index, "Retriever::index_captions");
  return index;
}

std::vector<SearchHit> Retriever::rank(const torch::Tensor& query, const EmbeddingIndex& index,
                                       int64_t k) const {
  return search(index, query, k);
}

int64_t Retriever::dim() const {
  return model_->clip->config().embed_dim;
}

}  // namespace mva
