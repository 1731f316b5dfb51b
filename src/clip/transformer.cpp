#include "mvadapter/clip/transformer.h"

#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/clip/checkpoint.h"
#include "mvadapter/clip/fused_attention.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/runtime.h"

namespace mva {

namespace {

constexpr double kQuickGeluAlpha = 1.702;

/// Elements per thread below which QuickGELU's kernels stay on one thread: a thread costs more
/// than it saves under that.
constexpr int64_t kElementwiseGrain = int64_t{1} << 15;

/// x·σ(1.702x) = silu(1.702x)/1.702 as one autograd node. Its derivative is silu'(1.702x) (the
/// two scalings cancel), so the backward is one silu_backward on the one tensor kept (1.702x),
/// where the product form keeps x and σ and runs sigmoid_backward and three products: ~5 % of a
/// ViT-B/32 adapter step, and 4·width floats per token per block less (bench/RESULTS.md). On
/// the CPU both passes split across the cores (memory-bound kernels on [tokens, 4·width]).
class QuickGeluFunction : public torch::autograd::Function<QuickGeluFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
    torch::Tensor t, y;
    if (x.device().is_cpu()) {
      const auto xc = x.contiguous();
      t = torch::empty_like(xc);
      y = torch::empty_like(xc);
      parallel_for_blas(
          xc.numel(),
          [&](int64_t begin, int64_t end) {
            auto ts = t.view(-1).narrow(0, begin, end - begin);
            auto ys = y.view(-1).narrow(0, begin, end - begin);
            at::mul_out(ts, xc.view(-1).narrow(0, begin, end - begin), kQuickGeluAlpha);
            at::silu_out(ys, ts).div_(kQuickGeluAlpha);
          },
          kElementwiseGrain);
    } else {
      t = x * kQuickGeluAlpha;
      y = torch::silu(t).div_(kQuickGeluAlpha);
    }
    ctx->save_for_backward({t});
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto t = ctx->get_saved_variables()[0];
    if (!t.device().is_cpu()) return {torch::silu_backward(grads[0], t)};
    const auto g = grads[0].contiguous();
    auto grad_x = torch::empty_like(t);
    parallel_for_blas(
        t.numel(),
        [&](int64_t begin, int64_t end) {
          auto out = grad_x.view(-1).narrow(0, begin, end - begin);
          at::silu_backward_out(out, g.view(-1).narrow(0, begin, end - begin),
                                t.view(-1).narrow(0, begin, end - begin));
        },
        kElementwiseGrain);
    return {grad_x};
  }
};

/// F::linear with the bias inside the GEMM (addmm) for a contiguous [L, N, in] input as well:
/// LibTorch 1.13's linear runs matmul and then a separate add for inputs of more than two
/// dimensions (LibTorch 2.x fuses it itself).
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight,
                     const torch::Tensor& bias) {
  if (x.dim() != 3 || !bias.defined() || !x.is_contiguous()) {
    return torch::nn::functional::linear(x, weight, bias);
  }
  return torch::addmm(bias, x.view({-1, x.size(2)}), weight.t())
      .view({x.size(0), x.size(1), weight.size(0)});
}

}  // namespace

torch::Tensor quick_gelu(const torch::Tensor& x) {
  return QuickGeluFunction::apply(x);
}

torch::Tensor layer_norm_fp32(torch::nn::LayerNorm ln, const torch::Tensor& x) {
  const auto t = x.scalar_type();
  if (t != torch::kHalf && t != torch::kBFloat16) return ln->forward(x);
  return ln->forward(x.to(torch::kFloat32)).to(t);
}

MultiheadAttentionImpl::MultiheadAttentionImpl(int64_t width, int64_t heads)
    : width_(width), heads_(heads) {
  if (heads <= 0 || width % heads != 0) {
    throw Error(fmt::format("attention: width {} is not divisible by {} heads", width, heads));
  }
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * width, width}));
  in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * width}));
  out_proj = register_module("out_proj", torch::nn::Linear(width, width));
  // PyTorch's nn.MultiheadAttention init: xavier_uniform in_proj, zero biases.
  torch::nn::init::xavier_uniform_(in_proj_weight);
  torch::NoGradGuard no_grad;
  out_proj->bias.zero_();
}

torch::Tensor MultiheadAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  auto qkv = linear(x, in_proj_weight, in_proj_bias);
  if (lora_) {
    auto parts = qkv.chunk(3, -1);
    const AttentionProjection in_proj[] = {AttentionProjection::kQuery, AttentionProjection::kKey,
                                           AttentionProjection::kValue};
    for (size_t i = 0; i < 3; ++i) {
      if (lora_->adapts(in_proj[i])) parts[i] = parts[i] + lora_->delta(in_proj[i], x);
    }
    qkv = torch::cat(parts, -1);
  }
  auto out = packed_attention(qkv, heads_, mask);
  auto projected = linear(out, out_proj->weight, out_proj->bias);
  if (lora_ && lora_->adapts(AttentionProjection::kOutput)) {
    return projected + lora_->delta(AttentionProjection::kOutput, out);
  }
  return projected;
}

void MultiheadAttentionImpl::set_lora(std::shared_ptr<AttentionLoraImpl> lora) {
  if (lora_) throw Error("attention: a LoRA update is already installed in this block");
  lora_ = register_module("lora", std::move(lora));
}

AdapterInsertion parse_adapter_insertion(const std::string& name, const std::string& field) {
  if (auto v = enum_from_name<AdapterInsertion>(name)) return *v;
  throw Error(fmt::format("{}: '{}' is not an adapter insertion (expected {})", field, name,
                          enum_choices<AdapterInsertion>(" or ")));
}

std::string to_string(AdapterInsertion insertion) {
  return enum_name(insertion);
}

ClipMlpImpl::ClipMlpImpl(int64_t width) {
  c_fc = register_module("c_fc", torch::nn::Linear(width, 4 * width));
  c_proj = register_module("c_proj", torch::nn::Linear(4 * width, width));
}

torch::Tensor ClipMlpImpl::forward(const torch::Tensor& x) {
  return linear(quick_gelu(linear(x, c_fc->weight, c_fc->bias)), c_proj->weight, c_proj->bias);
}

void ClipMlpImpl::set_adapter(std::shared_ptr<MlpAdapterImpl> adapter, AdapterInsertion insertion) {
  if (adapter_) throw Error("mlp: an adapter is already installed in this block");
  adapter_ = register_module("adapter", std::move(adapter));
  insertion_ = insertion;
}

ResidualAttentionBlockImpl::ResidualAttentionBlockImpl(int64_t width, int64_t heads,
                                                       double ln_eps) {
  attn = register_module("attn", MultiheadAttention(width, heads));
  ln_1 = register_module("ln_1",
                         torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).eps(ln_eps)));
  mlp = register_module("mlp", ClipMlp(width));
  ln_2 = register_module("ln_2",
                         torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).eps(ln_eps)));
}

namespace {

/// One pre-LN sub-layer with its adapter slot: x + f(ln x) (+ the adapter where `insertion` puts
/// it). Official CLIPMlp order for the parallel forms: f(ln x) + x + A(...).
template <typename SubLayer>
torch::Tensor sublayer_with_adapter(const torch::Tensor& x_in, torch::nn::LayerNorm ln,
                                    SubLayer&& f, MlpAdapterImpl* adapter,
                                    AdapterInsertion insertion, const AdapterContext& ctx) {
  auto x = x_in;
  if (adapter && insertion == AdapterInsertion::kPre) x = x + adapter->forward(x, ctx);
  auto y = layer_norm_fp32(ln, x);
  auto h = f(y);
  if (!adapter) return x + h;
  switch (insertion) {
    case AdapterInsertion::kSeq:
      return h + x + adapter->forward(h, ctx);
    case AdapterInsertion::kPar:
      return h + x + adapter->forward(x, ctx);
    case AdapterInsertion::kLnPar:
      return h + x + adapter->forward(y, ctx);
    case AdapterInsertion::kPre:
      return x + h;
  }
  return x + h;
}

}  // namespace

void ResidualAttentionBlockImpl::set_attn_adapter(std::shared_ptr<MlpAdapterImpl> adapter,
                                                  AdapterInsertion insertion) {
  if (attn_adapter_) throw Error("attention: an adapter is already installed in this block");
  attn_adapter_ = register_module("attn_adapter", std::move(adapter));
  attn_insertion_ = insertion;
}

torch::Tensor ResidualAttentionBlockImpl::forward(const torch::Tensor& x_in,
                                                  const torch::Tensor& mask,
                                                  const AdapterContext& ctx) {
  auto x = sublayer_with_adapter(
      x_in, ln_1, [&](const torch::Tensor& y) { return attn(y, mask); }, attn_adapter_.get(),
      attn_insertion_, ctx);
  return sublayer_with_adapter(
      x, ln_2, [&](const torch::Tensor& y) { return mlp(y); }, mlp->adapter().get(),
      mlp->insertion(), ctx);
}

TransformerImpl::TransformerImpl(int64_t width, int64_t layers, int64_t heads, double ln_eps) {
  resblocks = register_module("resblocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < layers; ++i) {
    resblocks->push_back(ResidualAttentionBlock(width, heads, ln_eps));
  }
}

ResidualAttentionBlock TransformerImpl::block(int64_t i) const {
  return ResidualAttentionBlock(resblocks->ptr<ResidualAttentionBlockImpl>(static_cast<size_t>(i)));
}

torch::Tensor TransformerImpl::forward(const torch::Tensor& x, const torch::Tensor& mask,
                                       const AdapterContext& ctx) {
  auto h = x;
  const bool save_memory = checkpoint_blocks && torch::GradMode::is_enabled();
  for (const auto& m : *resblocks) {
    auto block = std::dynamic_pointer_cast<ResidualAttentionBlockImpl>(m);
    if (save_memory) {
      // By value: the recomputation runs in the backward, after this frame is gone.
      h = checkpoint(
          [block, mask, ctx](const torch::Tensor& in) { return block->forward(in, mask, ctx); }, h);
    } else {
      h = block->forward(h, mask, ctx);
    }
  }
  return h;
}

torch::Tensor causal_mask(int64_t length, const torch::TensorOptions& options) {
  return torch::full({length, length}, -std::numeric_limits<float>::infinity(), options).triu(1);
}

}  // namespace mva
