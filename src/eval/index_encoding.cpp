// The encoding half of embedding_index.h: embeddings from a model. The file half (validate, save,
// load, search) is embedding_index.cpp, which needs no model, so the fuzz target for load_index
// (tests/fuzz) compiles it alone instead of linking the model layers.
#include "mvadapter/eval/embedding_index.h"

#include <fmt/format.h>

#include "mvadapter/core/error.h"
#include "mvadapter/data/video_transform.h"

namespace mva {

EmbeddingIndex encode_video_index(RetrievalModelImpl& model, const Manifest& manifest,
                                  const EvaluatorOptions& options, std::vector<int64_t>* skipped) {
  if (manifest.videos.empty()) {
    throw Error(
        fmt::format("split '{}' of {} has no videos to encode", manifest.split, manifest.dataset));
  }
  LoaderOptions lo = options.loader;
  lo.mode = LoaderMode::kVideos;
  lo.shuffle = false;
  lo.drop_last = false;
  VideoLoader loader(manifest, lo);
  model.eval();
  const auto device = model.device();
  torch::NoGradGuard no_grad;
  loader.start_epoch(0);
  EmbeddingIndex index;
  index.kind = "videos";
  std::vector<torch::Tensor> parts;
  std::vector<bool> done(manifest.videos.size(), false);
  while (auto batch = loader.next()) {
    torch::Tensor emb;
    {
      AutocastGuard autocast(options.precision, device);
      emb = model.embed_videos(model_frames(*batch, device), batch->frame_mask.to(device));
    }
    parts.push_back(emb.to(torch::kCPU, torch::kFloat32));
    auto idx = batch->video_index.accessor<int64_t, 1>();
    for (int64_t i = 0; i < idx.size(0); ++i) {
      done[static_cast<size_t>(idx[i])] = true;
      index.ids.push_back(manifest.videos[static_cast<size_t>(idx[i])].id);
    }
  }
  if (parts.empty()) {
    throw Error(fmt::format("split '{}' of {}: none of its {} videos could be decoded",
                            manifest.split, manifest.dataset, manifest.videos.size()));
  }
  index.emb = torch::cat(parts);
  if (skipped) {
    skipped->clear();
    for (size_t v = 0; v < done.size(); ++v) {
      if (!done[v]) skipped->push_back(static_cast<int64_t>(v));
    }
  }
  return index;
}

EmbeddingIndex encode_caption_index(RetrievalModelImpl& model, const Manifest& manifest,
                                    const TokenizeFn& tokenize, int64_t batch_size,
                                    Precision precision) {
  if (manifest.captions.empty()) {
    throw Error(fmt::format("split '{}' of {} has no captions to encode", manifest.split,
                            manifest.dataset));
  }
  model.eval();
  EmbeddingIndex index;
  index.kind = "captions";
  std::vector<int64_t> seen(manifest.videos.size(), 0);
  for (const auto& c : manifest.captions) {
    const auto v = static_cast<size_t>(c.video);
    index.ids.push_back(fmt::format("{}#{}", manifest.videos.at(v).id, seen[v]++));
    index.texts.push_back(c.text);
  }
  index.emb = encode_captions(model, index.texts, tokenize, batch_size, precision);
  return index;
}

torch::Tensor embed_video_file(RetrievalModelImpl& model, const VideoEntry& video,
                               const ClipOptions& clip, Precision precision) {
  auto decoded = load_video_clip(video, clip);
  auto frames = normalize_clip(decoded.frames).unsqueeze(0);
  auto mask = decoded.mask.unsqueeze(0);
  // As the loader: the reference pads after normalising, with zeros.
  frames.masked_fill_((mask == 0).view({1, -1, 1, 1, 1}), 0.0);
  model.eval();
  const auto device = model.device();
  torch::NoGradGuard no_grad;
  AutocastGuard autocast(precision, device);
  return model.embed_videos(frames.to(device), mask.to(device))
      .to(torch::kCPU, torch::kFloat32)
      .squeeze(0);
}

}  // namespace mva
