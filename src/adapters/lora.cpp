#include "mvadapter/adapters/lora.h"

#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"

namespace mva {

LoraImpl::LoraImpl(int64_t width, const LoraConfig& cfg)
    : scaling_(cfg.alpha / static_cast<double>(cfg.rank)), dropout_(cfg.dropout) {
  if (cfg.rank <= 0) throw Error(fmt::format("adapters.lora.rank: {} is not positive", cfg.rank));
  for (auto p : {AttentionProjection::kQuery, AttentionProjection::kKey,
                 AttentionProjection::kValue, AttentionProjection::kOutput}) {
    if (!cfg.targets_projection(p)) continue;
    const std::string n = enum_name(p);
    a_[index(p)] = register_parameter(n + "_a", torch::empty({cfg.rank, width}));
    b_[index(p)] = register_parameter(n + "_b", torch::zeros({width, cfg.rank}));
    // peft: A as nn.Linear's default weight init, B zero, so an untrained model is the backbone.
    torch::nn::init::kaiming_uniform_(a_[index(p)], std::sqrt(5.0));
  }
}

bool LoraImpl::adapts(AttentionProjection p) const {
  return a_[index(p)].defined();
}

torch::Tensor LoraImpl::delta(AttentionProjection p, const torch::Tensor& x) {
  if (!adapts(p)) {
    throw Error(fmt::format("lora: projection {} has no update (not in adapters.lora.targets)",
                            enum_name(p)));
  }
  auto h = dropout_ > 0 ? torch::dropout(x, dropout_, is_training()) : x;
  const auto& a = a_[index(p)];
  const auto& b = b_[index(p)];
  return scaling_ * torch::matmul(torch::matmul(h, a.t()), b.t());
}

int64_t install_lora(TransformerImpl& transformer, const LoraConfig& cfg) {
  if (!cfg.enabled()) return 0;
  for (int64_t i = 0; i < transformer.layers(); ++i) {
    auto attn = transformer.block(i)->attn;
    attn->set_lora(std::make_shared<LoraImpl>(attn->width(), cfg));
  }
  return transformer.layers();
}

}  // namespace mva
