#pragma once
#include <torch/torch.h>

namespace mva {

/// The core of multi-head self-attention on a packed projection: qkv [L, N, 3·width] (q | k | v,
/// each split into `heads` heads of width/heads features) -> softmax(q kᵀ/√d + mask) v as
/// [L, N, width], heads concatenated. mask: additive, broadcastable to [N, heads, L, L], or
/// undefined; it never takes a gradient. Dispatches to fused_attention where it applies, else to
/// attention_reference: both compute the same function.
torch::Tensor packed_attention(const torch::Tensor& qkv, int64_t heads, const torch::Tensor& mask);

/// packed_attention through ATen operators (any device and dtype, autograd through each op).
torch::Tensor attention_reference(const torch::Tensor& qkv, int64_t heads,
                                  const torch::Tensor& mask);

/// True when fused_attention can take `qkv`: a CPU fp32 tensor with contiguous rows, in a build
/// with a CBLAS (MVA_WITH_CBLAS).
bool fused_attention_applies(const torch::Tensor& qkv);

/// packed_attention as one autograd node whose GEMMs go straight to CBLAS, reading q, k and v
/// where they lie in `qkv` (row strides, no copies) and writing the heads into their columns of
/// the output; 1/√d rides on the GEMM's alpha. LibTorch 1.13's CPU bmm (without MKL) loops over
/// the batch through select + addmm, ~5 µs a matrix, and threads each small GEMM: for the
/// N·heads matrices of a ViT block that cost more than the arithmetic (bench/RESULTS.md). Here
/// the heads go in blocks of 8 across the BLAS's threads (parallel_for_blas), scores and
/// probabilities of a block in a small scratch that stays in cache, softmax included. The
/// backward recomputes the probabilities from q and k instead of keeping them: one more q kᵀ
/// per block saves N·heads·L² floats per block, the largest activation of a ViT-B/16 block.
/// Throws unless fused_attention_applies(qkv).
torch::Tensor fused_attention(const torch::Tensor& qkv, int64_t heads, const torch::Tensor& mask);

}  // namespace mva
