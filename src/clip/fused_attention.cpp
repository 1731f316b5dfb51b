#include "mvadapter/clip/fused_attention.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "mvadapter/core/runtime.h"

#if MVA_WITH_CBLAS
#include <cblas.h>
#endif

namespace mva {

namespace {

/// Where the heads of a packed qkv [L, N, 3W] lie: head h of sample n of q starts at
/// n·3W + h·d and its rows (positions) are 3NW apart; k and v follow q at W and 2W.
struct PackedGeometry {
  int64_t L = 0, N = 0, heads = 0, d = 0, W = 0;
  double scale = 0;

  PackedGeometry(const torch::Tensor& qkv, int64_t heads_in) : heads(heads_in) {
    if (qkv.dim() != 3 || heads <= 0 || qkv.size(2) % (3 * heads) != 0) {
      throw Error(
          fmt::format("attention: expected qkv [L, N, 3·width] with width divisible by {} "
                      "heads, got {}",
                      heads, fmt::join(qkv.sizes(), "x")));
    }
    L = qkv.size(0);
    N = qkv.size(1);
    W = qkv.size(2) / 3;
    d = W / heads;
    scale = 1.0 / std::sqrt(static_cast<double>(d));
  }
  int64_t qkv_row() const { return 3 * N * W; }
  int64_t out_row() const { return N * W; }
  /// Offset of head h of sample n in a packed qkv (add W for k, 2W for v).
  int64_t qkv_head(int64_t n, int64_t h) const { return n * 3 * W + h * d; }
  /// Offset of head h of sample n in an output [L, N, W].
  int64_t out_head(int64_t n, int64_t h) const { return n * W + h * d; }
};

#if MVA_WITH_CBLAS
/// C = alpha · op(A) op(B), row-major, C [m, n] (every element written: beta = 0).
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), 0.0f,
              c, static_cast<int>(ldc));
}

/// Heads handled together by one thread: their scores and probabilities ([kBlock, L, L] each,
/// 1.2 MB at ViT-B/16's 197 tokens) stay in cache between the GEMMs and the softmax, and no
/// [N, heads, L, L] tensor is ever allocated.
constexpr int64_t kBlock = 8;

/// One thread's scratch for a block of heads.
struct BlockScratch {
  torch::Tensor s, p, dp;
  BlockScratch(const PackedGeometry& g, const torch::TensorOptions& options, bool backward)
      : s(torch::empty({kBlock, g.L, g.L}, options)), p(torch::empty_like(s)) {
    if (backward) dp = torch::empty_like(s);
  }
};

/// softmax(scale · q kᵀ + mask) of heads [b0, b0 + len) (b = n·heads + h) into scratch.p;
/// mask_nhll: the mask expanded to [N, heads, L, L] (a view), or undefined.
void block_probabilities(const float* qkv, const PackedGeometry& g, const torch::Tensor& mask_nhll,
                         int64_t b0, int64_t len, BlockScratch& scratch) {
  float* s = scratch.s.data_ptr<float>();
  const int64_t LL = g.L * g.L;
  for (int64_t i = 0; i < len; ++i) {
    const int64_t n = (b0 + i) / g.heads, h = (b0 + i) % g.heads;
    const float* q = qkv + g.qkv_head(n, h);
    gemm(false, true, g.L, g.L, g.d, static_cast<float>(g.scale), q, g.qkv_row(), q + g.W,
         g.qkv_row(), s + i * LL, g.L);
    if (mask_nhll.defined()) scratch.s[i].add_(mask_nhll[n][h]);
  }
  auto p = scratch.p.narrow(0, 0, len);
  at::_softmax_out(p, scratch.s.narrow(0, 0, len), -1, false);
}

torch::Tensor expanded_mask(const torch::Tensor& mask, const PackedGeometry& g) {
  if (!mask.defined()) return {};
  return mask.to(torch::kFloat32).expand({g.N, g.heads, g.L, g.L});
}

/// One autograd node for the whole attention core (see fused_attention in the header). Both
/// passes run the heads in blocks across the BLAS's threads (parallel_for_blas), each GEMM
/// single-threaded: ~1 ms of work each, too small for OpenBLAS's own threading to pay.
class FusedAttentionFunction : public torch::autograd::Function<FusedAttentionFunction> {
 public:
  // The mask comes as an optional: an undefined Tensor is not a valid autograd input.
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& qkv,
                               int64_t heads, const c10::optional<torch::Tensor>& mask_in) {
    const auto mask = mask_in.value_or(torch::Tensor());
    const PackedGeometry g(qkv, heads);
    const auto mask_nhll = expanded_mask(mask, g);
    auto out = torch::empty({g.L, g.N, g.W}, qkv.options());
    const float* base = qkv.data_ptr<float>();
    float* o = out.data_ptr<float>();
    parallel_for_blas(g.N * g.heads, [&](int64_t b_begin, int64_t b_end) {
      BlockScratch scratch(g, qkv.options(), false);
      const float* p = scratch.p.data_ptr<float>();
      for (int64_t b0 = b_begin; b0 < b_end; b0 += kBlock) {
        const int64_t len = std::min(kBlock, b_end - b0);
        block_probabilities(base, g, mask_nhll, b0, len, scratch);
        for (int64_t i = 0; i < len; ++i) {
          const int64_t n = (b0 + i) / g.heads, h = (b0 + i) % g.heads;
          gemm(false, false, g.L, g.d, g.L, 1.0f, p + i * g.L * g.L, g.L,
               base + g.qkv_head(n, h) + 2 * g.W, g.qkv_row(), o + g.out_head(n, h), g.out_row());
        }
      }
    });
    // Only qkv is kept: the probabilities are recomputed in the backward.
    ctx->save_for_backward({qkv});
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["mask"] = mask;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto qkv = ctx->get_saved_variables()[0];
    const PackedGeometry g(qkv, ctx->saved_data["heads"].toInt());
    const auto mask_nhll = expanded_mask(ctx->saved_data["mask"].toTensor(), g);
    const auto grad_out = grads[0].contiguous();
    auto grad_qkv = torch::empty_like(qkv);
    const float* base = qkv.data_ptr<float>();
    const float* go = grad_out.data_ptr<float>();
    float* dqkv = grad_qkv.data_ptr<float>();
    const int64_t LL = g.L * g.L;
    const float alpha = static_cast<float>(g.scale);
    parallel_for_blas(g.N * g.heads, [&](int64_t b_begin, int64_t b_end) {
      BlockScratch scratch(g, qkv.options(), true);
      const float* p = scratch.p.data_ptr<float>();
      float* dp = scratch.dp.data_ptr<float>();
      const float* ds = scratch.s.data_ptr<float>();  // dS overwrites S, no longer needed
      for (int64_t b0 = b_begin; b0 < b_end; b0 += kBlock) {
        const int64_t len = std::min(kBlock, b_end - b0);
        block_probabilities(base, g, mask_nhll, b0, len, scratch);
        for (int64_t i = 0; i < len; ++i) {
          const int64_t n = (b0 + i) / g.heads, h = (b0 + i) % g.heads;
          const int64_t v = g.qkv_head(n, h) + 2 * g.W;
          // dV = Pᵀ dO; dP = dO Vᵀ.
          gemm(true, false, g.L, g.d, g.L, 1.0f, p + i * LL, g.L, go + g.out_head(n, h),
               g.out_row(), dqkv + v, g.qkv_row());
          gemm(false, true, g.L, g.L, g.d, 1.0f, go + g.out_head(n, h), g.out_row(), base + v,
               g.qkv_row(), dp + i * LL, g.L);
        }
        auto ds_block = scratch.s.narrow(0, 0, len);
        at::_softmax_backward_data_out(ds_block, scratch.dp.narrow(0, 0, len),
                                       scratch.p.narrow(0, 0, len), -1, torch::kFloat32);
        for (int64_t i = 0; i < len; ++i) {
          const int64_t n = (b0 + i) / g.heads, h = (b0 + i) % g.heads;
          const int64_t q = g.qkv_head(n, h);
          // dQ = scale · dS K; dK = scale · dSᵀ Q.
          gemm(false, false, g.L, g.d, g.L, alpha, ds + i * LL, g.L, base + q + g.W, g.qkv_row(),
               dqkv + q, g.qkv_row());
          gemm(true, false, g.L, g.d, g.L, alpha, ds + i * LL, g.L, base + q, g.qkv_row(),
               dqkv + q + g.W, g.qkv_row());
        }
      }
    });
    return {grad_qkv, torch::Tensor(), torch::Tensor()};
  }
};
#endif

}  // namespace

bool fused_attention_applies(const torch::Tensor& qkv) {
  return MVA_WITH_CBLAS && qkv.device().is_cpu() && qkv.scalar_type() == torch::kFloat32 &&
         qkv.dim() == 3 && qkv.is_contiguous() && qkv.numel() > 0;
}

torch::Tensor fused_attention(const torch::Tensor& qkv, int64_t heads, const torch::Tensor& mask) {
  if (!fused_attention_applies(qkv)) {
    throw Error(fmt::format(
        "fused_attention: needs a non-empty contiguous CPU fp32 qkv [L, N, "
        "3·width] and a build with a CBLAS (MVA_WITH_CBLAS); got {} {} {}",
        qkv.device().str(), c10::toString(qkv.scalar_type()), fmt::join(qkv.sizes(), "x")));
  }
  if (mask.defined() && mask.requires_grad()) {
    throw Error("fused_attention: the mask takes no gradient here; use attention_reference");
  }
#if MVA_WITH_CBLAS
  return FusedAttentionFunction::apply(
      qkv, heads, mask.defined() ? c10::optional<torch::Tensor>(mask) : c10::nullopt);
#else
  return {};
#endif
}

torch::Tensor attention_reference(const torch::Tensor& qkv, int64_t heads,
                                  const torch::Tensor& mask) {
  const PackedGeometry g(qkv, heads);
  const auto parts = qkv.chunk(3, -1);
  // The scale multiplies q after its bias, as PyTorch's MHA and the official CLIPAttention do.
  auto q = (parts[0] * g.scale).contiguous().view({g.L, g.N * heads, g.d}).transpose(0, 1);
  auto k = parts[1].contiguous().view({g.L, g.N * heads, g.d}).transpose(0, 1);
  auto v = parts[2].contiguous().view({g.L, g.N * heads, g.d}).transpose(0, 1);
  auto attn = torch::bmm(q, k.transpose(1, 2));  // [N*H, L, L]
  if (mask.defined()) {
    attn = (attn.view({g.N, heads, g.L, g.L}) + mask.to(attn.scalar_type()))
               .view({g.N * heads, g.L, g.L});
  }
  attn = torch::softmax(attn, -1);
  return torch::bmm(attn, v).transpose(0, 1).contiguous().view({g.L, g.N, g.W});
}

torch::Tensor packed_attention(const torch::Tensor& qkv, int64_t heads, const torch::Tensor& mask) {
  if (fused_attention_applies(qkv) && !(mask.defined() && mask.requires_grad())) {
    return fused_attention(qkv, heads, mask);
  }
  return attention_reference(qkv, heads, mask);
}

}  // namespace mva
