#pragma once
#include <torch/torch.h>

namespace mva {

/// Identity in the forward pass; multiplies the gradient flowing back through it by `factor`.
/// Data-parallel training on W ranks (the official AllGather, whose backward returns only the
/// local slice, then DDP's average) updates the embedding path with the global-batch gradient
/// divided by W, while logit_scale, used after the gather, keeps its full gradient: applied to
/// the video and text embeddings just before the logits with factor 1/W, this gives the same
/// update in one process. Dividing the loss instead would scale logit_scale's gradient too.
torch::Tensor scale_gradient(const torch::Tensor& x, double factor);

}  // namespace mva
