#pragma once
#include <functional>

#include <torch/types.h>

namespace mva {

/// Activation checkpointing of one function of one tensor (torch.utils.checkpoint, reentrant):
/// the forward runs `fn` without keeping its activations; the backward runs it again with a graph
/// and back-propagates through that, so the parameters `fn` uses get their gradients as without
/// checkpointing. Memory: the input instead of every intermediate; cost: one more forward. The
/// autocast state of the forward is restored for the recomputation. `fn` must be deterministic
/// (CLIP has no dropout) and must capture what it needs by value.
torch::Tensor checkpoint(std::function<torch::Tensor(const torch::Tensor&)> fn,
                         const torch::Tensor& x);

}  // namespace mva
