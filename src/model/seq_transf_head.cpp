#include "mvadapter/model/seq_transf_head.h"

#include <algorithm>

#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "mvadapter/core/tensor_format.h"

namespace mva {

namespace {

// CLIP4Clip's LayerNorm (until_module.LayerNorm, TF style) uses eps 1e-12, not CLIP's 1e-5.
constexpr double kLayerNormEps = 1e-12;
// CLIP4Clip's additive key mask for padded frames.
constexpr double kMaskedKey = -1e6;

}  // namespace

SeqTransfHeadImpl::SeqTransfHeadImpl(int64_t width, int64_t layers, int64_t positions)
    : width_(width) {
  if (width <= 0 || layers <= 0 || positions <= 0) {
    throw Error(fmt::format("seqtransf head: width {}, {} layers and {} positions must be positive",
                            width, layers, positions));
  }
  frame_position_embeddings =
      register_module("frame_position_embeddings", torch::nn::Embedding(positions, width));
  transformer =
      register_module("transformerClip",
                      Transformer(width, layers, std::max<int64_t>(1, width / 64), kLayerNormEps));
  // CLIP4Clip's init_weights before from_pretrained: Linear/Embedding N(0, 0.02), zero biases,
  // LayerNorm 1/0; the fused in_proj keeps nn.MultiheadAttention's xavier init.
  torch::NoGradGuard no_grad;
  frame_position_embeddings->weight.normal_(0.0, 0.02);
  for (const auto& p : transformer->named_parameters()) {
    const auto& name = p.key();
    auto t = p.value();
    if (name.find("in_proj_weight") != std::string::npos) continue;
    if (name.find("ln_") != std::string::npos) {
      name.find("weight") != std::string::npos ? t.fill_(1.0) : t.zero_();
    } else if (name.find("bias") != std::string::npos) {
      t.zero_();
    } else {
      t.normal_(0.0, 0.02);
    }
  }
}

torch::Tensor SeqTransfHeadImpl::forward(const torch::Tensor& frames,
                                         const torch::Tensor& frame_mask) {
  check_shape(frames, {-1, -1, width_}, "seqtransf frame features");
  const int64_t B = frames.size(0), T = frames.size(1);
  check_shape(frame_mask, {B, T}, "seqtransf frame mask");
  const auto& table = frame_position_embeddings->weight;
  if (T > table.size(0)) {
    throw Error(fmt::format("seqtransf head: {} frames, but the frame position table has {} rows",
                            T, table.size(0)));
  }
  auto x = (frames + table.narrow(0, 0, T)).permute({1, 0, 2});
  auto mask = ((1.0 - frame_mask.to(frames.scalar_type())) * kMaskedKey).view({B, 1, 1, T});
  x = transformer->forward(x, mask, AdapterContext{}).permute({1, 0, 2});
  // The residual adds the ORIGINAL features, without the position embedding.
  return x + frames;
}

bool SeqTransfHeadImpl::can_init_from_clip(const ClipModelImpl& clip) const {
  const auto& c = clip.config();
  return c.transformer_width == width_ &&
         clip.positional_embedding.sizes() == frame_position_embeddings->weight.sizes() &&
         c.transformer_layers >= layers();
}

void SeqTransfHeadImpl::init_from_clip(const ClipModelImpl& clip) {
  if (!can_init_from_clip(clip)) {
    const auto& c = clip.config();
    throw Error(fmt::format(
        "seqtransf head (width {}, {} positions, {} layers) cannot start from a CLIP with text "
        "width {}, context {} and {} text layers",
        width_, frame_position_embeddings->weight.size(0), layers(), c.transformer_width,
        c.context_length, c.transformer_layers));
  }
  torch::NoGradGuard no_grad;
  frame_position_embeddings->weight.copy_(clip.positional_embedding);
  for (int64_t i = 0; i < layers(); ++i) {
    // By the head block's names: the CLIP block may hold adapters or LoRA the head has not.
    auto src = clip.transformer->block(i)->named_parameters();
    for (auto& p : transformer->block(i)->named_parameters()) {
      const auto* from = src.find(p.key());
      if (from == nullptr) {
        throw Error(fmt::format("seqtransf head: CLIP text block {} has no '{}'", i, p.key()));
      }
      p.value().copy_(*from);
    }
  }
}

}  // namespace mva
