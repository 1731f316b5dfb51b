#pragma once
#include <cstdint>

#include <torch/nn.h>

#include "mvadapter/clip/clip_model.h"
#include "mvadapter/clip/transformer.h"

namespace mva {

/// CLIP4Clip's seqTransf similarity head (ArrowLuo/CLIP4Clip, `sim_header='seqTransf'`): a
/// transformer over the frame features of a video, added back to them before pooling.
/// Parameters carry the authors' names (`frame_position_embeddings.weight`,
/// `transformerClip.resblocks.N.*`), so their checkpoints load by name.
class SeqTransfHeadImpl : public torch::nn::Module {
 public:
  /// width: the frame feature size (CLIP's embed_dim); positions: rows of the frame position
  /// table (CLIP4Clip: the CLIP context length, 77); heads = width / 64 as CLIP4Clip derives
  /// them (at least 1, for the small test models where CLIP4Clip would have none).
  SeqTransfHeadImpl(int64_t width, int64_t layers, int64_t positions);
  /// frames [B, T, width], frame_mask [B, T] (1 = real frame) -> [B, T, width]:
  /// transformer(frames + pos[0:T]) + frames. Padded frames are masked as keys (-1e6), so they
  /// change nothing for the real frames; their own rows are computed but pooling drops them.
  torch::Tensor forward(const torch::Tensor& frames, const torch::Tensor& frame_mask);

  /// True when `clip` can seed this head (CLIP4Clip's from_pretrained): the text width equals
  /// the head width, the text context equals the position rows and it has enough text blocks.
  bool can_init_from_clip(const ClipModelImpl& clip) const;
  /// Copies CLIP's text positional embedding into the frame positions and text blocks
  /// 0..layers-1 into the head's blocks (CLIP4Clip starts training from them). Throws Error when
  /// can_init_from_clip is false.
  void init_from_clip(const ClipModelImpl& clip);

  int64_t width() const { return width_; }
  int64_t layers() const { return transformer->layers(); }

  torch::nn::Embedding frame_position_embeddings{nullptr};
  Transformer transformer{nullptr};  ///< registered as "transformerClip" (the authors' name)

 private:
  int64_t width_;
};
TORCH_MODULE(SeqTransfHead);

}  // namespace mva
