#pragma once
#include <memory>
#include <string>

#include <torch/nn.h>

#include "mvadapter/core/enum_names.h"

namespace mva {

/// x * sigmoid(1.702 x): the activation of OpenAI CLIP and of every MV-Adapter block.
torch::Tensor quick_gelu(const torch::Tensor& x);

/// LayerNorm computed in at least fp32 (fp16/bf16 inputs are upcast, as OpenAI's fp16-safe
/// LayerNorm does).
torch::Tensor layer_norm_fp32(torch::nn::LayerNorm ln, const torch::Tensor& x);

/// The four projections of self-attention: query, key, value (rows of the fused in_proj) and out.
enum class AttentionProjection { kQuery, kKey, kValue, kOutput };
/// q, k, v, o: the words of `adapters.lora.targets` and of LoRA's parameter names (`q_a`, ...).
constexpr std::array<EnumName<AttentionProjection>, 4> enum_names(AttentionProjection) {
  return {{{AttentionProjection::kQuery, "q"},
           {AttentionProjection::kKey, "k"},
           {AttentionProjection::kValue, "v"},
           {AttentionProjection::kOutput, "o"}}};
}

/// Interface of a low-rank update of attention projections (LoRA); implemented in the adapters
/// layer, installed with MultiheadAttentionImpl::set_lora.
class AttentionLoraImpl : public torch::nn::Module {
 public:
  /// True when projection `p` has an update.
  virtual bool adapts(AttentionProjection p) const = 0;
  /// x: the input of projection `p` [..., width] -> the update to add to its output [..., width].
  virtual torch::Tensor delta(AttentionProjection p, const torch::Tensor& x) = 0;
};

/// Multi-head self-attention with PyTorch's parameter layout (fused
/// `in_proj_weight`/`in_proj_bias`, `out_proj`), so OpenAI checkpoints load by name.
class MultiheadAttentionImpl : public torch::nn::Module {
 public:
  MultiheadAttentionImpl(int64_t width, int64_t heads);
  /// x: [L, N, width]. mask: additive, broadcastable to [N, heads, L, L] (e.g. [L, L] causal or
  /// [N, 1, 1, L] per-key), or undefined. Returns [L, N, width].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask = {});
  /// Installs a low-rank update of the projections (registered as "lora", so its parameters are
  /// `attn.lora.*`); the stored weights stay as loaded.
  void set_lora(std::shared_ptr<AttentionLoraImpl> lora);
  const std::shared_ptr<AttentionLoraImpl>& lora() const { return lora_; }

  int64_t width() const { return width_; }
  int64_t heads() const { return heads_; }
  torch::Tensor in_proj_weight, in_proj_bias;
  torch::nn::Linear out_proj{nullptr};

 private:
  int64_t width_, heads_;
  std::shared_ptr<AttentionLoraImpl> lora_;
};
TORCH_MODULE(MultiheadAttention);

/// What an adapter may need besides the hidden states of its block.
struct AdapterContext {
  /// [B, F] frame mask of the videos whose frames form the batch (video branch only).
  torch::Tensor frame_mask;
};

/// Where an adapter reads its input (official `CLIPMlp` forward modes), for either sub-layer of a
/// block (h = the sub-layer's output, LN its LayerNorm).
enum class AdapterInsertion {
  kSeq,    ///< out = x + h + A(h), h = MLP(LN2 x): the adapter reads the MLP output
  kPar,    ///< out = x + h + A(x): reads the block input before LN (AdaptFormer parallel)
  kLnPar,  ///< out = x + h + A(LN2 x): reads the normalised MLP input (Convpass)
  kPre,    ///< x <- x + A(x) before the sub-layer, then x + h: in series (ST-Adapter)
};
/// seq, par, ln_par, pre (`adapters.*.insertion`, the official `forward`).
constexpr std::array<EnumName<AdapterInsertion>, 4> enum_names(AdapterInsertion) {
  return {{{AdapterInsertion::kSeq, "seq"},
           {AdapterInsertion::kPar, "par"},
           {AdapterInsertion::kLnPar, "ln_par"},
           {AdapterInsertion::kPre, "pre"}}};
}

/// "seq" | "par" | "ln_par" | "pre" -> AdapterInsertion; throws Error naming `field` otherwise.
AdapterInsertion parse_adapter_insertion(const std::string& name, const std::string& field);
std::string to_string(AdapterInsertion insertion);

/// Interface of a module plugged into a sub-layer of a block (after the MLP, or beside the
/// attention); implemented in the adapters layer.
class MlpAdapterImpl : public torch::nn::Module {
 public:
  /// x: [L, N, width] (sequence first). Returns the residual to add, same shape.
  virtual torch::Tensor forward(const torch::Tensor& x, const AdapterContext& ctx) = 0;
};

/// The MLP of a residual block: c_fc -> QuickGELU -> c_proj, with an optional adapter slot.
class ClipMlpImpl : public torch::nn::Module {
 public:
  explicit ClipMlpImpl(int64_t width);
  /// x: the LayerNorm'ed block input [L, N, width].
  torch::Tensor forward(const torch::Tensor& x);
  /// Installs `adapter` (registered as "adapter", so its parameters are `mlp.adapter.*`).
  void set_adapter(std::shared_ptr<MlpAdapterImpl> adapter, AdapterInsertion insertion);
  const std::shared_ptr<MlpAdapterImpl>& adapter() const { return adapter_; }
  AdapterInsertion insertion() const { return insertion_; }

  torch::nn::Linear c_fc{nullptr}, c_proj{nullptr};

 private:
  std::shared_ptr<MlpAdapterImpl> adapter_;
  AdapterInsertion insertion_ = AdapterInsertion::kSeq;
};
TORCH_MODULE(ClipMlp);

/// Pre-LN transformer block of CLIP: x + attn(ln_1 x), then x + mlp(ln_2 x), each sub-layer with
/// an optional adapter slot.
class ResidualAttentionBlockImpl : public torch::nn::Module {
 public:
  /// ln_eps: epsilon of both LayerNorms (CLIP 1e-5; CLIP4Clip's TF-style heads use 1e-12).
  ResidualAttentionBlockImpl(int64_t width, int64_t heads, double ln_eps = 1e-5);
  /// x: [L, N, width]; mask as MultiheadAttention; ctx goes to the adapters.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask,
                        const AdapterContext& ctx);
  /// Installs `adapter` on the attention sub-layer (registered as "attn_adapter", so its
  /// parameters are `attn_adapter.*`); `insertion` as for the MLP, with ln_1 and attn in place of
  /// ln_2 and mlp. The MLP's adapter is `mlp->set_adapter`.
  void set_attn_adapter(std::shared_ptr<MlpAdapterImpl> adapter, AdapterInsertion insertion);
  const std::shared_ptr<MlpAdapterImpl>& attn_adapter() const { return attn_adapter_; }

  MultiheadAttention attn{nullptr};
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  ClipMlp mlp{nullptr};

 private:
  std::shared_ptr<MlpAdapterImpl> attn_adapter_;
  AdapterInsertion attn_insertion_ = AdapterInsertion::kSeq;
};
TORCH_MODULE(ResidualAttentionBlock);

/// A stack of residual blocks (`resblocks.N.*`).
class TransformerImpl : public torch::nn::Module {
 public:
  TransformerImpl(int64_t width, int64_t layers, int64_t heads, double ln_eps = 1e-5);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask,
                        const AdapterContext& ctx);
  ResidualAttentionBlock block(int64_t i) const;
  int64_t layers() const { return static_cast<int64_t>(resblocks->size()); }

  torch::nn::ModuleList resblocks{nullptr};
  /// Activation checkpointing per block while training (`train.activation_checkpointing`): keep
  /// each block's input only and recompute the block in the backward.
  bool checkpoint_blocks = false;
};
TORCH_MODULE(Transformer);

/// [L, L] additive causal mask (-inf above the diagonal), as CLIP's text transformer uses.
torch::Tensor causal_mask(int64_t length, const torch::TensorOptions& options = {});

}  // namespace mva
