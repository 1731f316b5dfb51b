#include "mvadapter/adapters/cm_adapter.h"

#include <algorithm>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"

namespace mva {

namespace {

// The authors' adapter_init_std default (their README warns that smaller slows convergence).
constexpr double kInitStd = 0.01;

torch::Tensor weight(torch::nn::Module& owner, const std::string& name, torch::IntArrayRef shape) {
  return owner.register_parameter(name, torch::empty(shape).normal_(0.0, kInitStd));
}

torch::Tensor bias(torch::nn::Module& owner, const std::string& name, torch::IntArrayRef shape) {
  return owner.register_parameter(name, torch::zeros(shape));
}

}  // namespace

CmAdapterTensors make_cm_adapter_tensors(torch::nn::Module& owner, const CmAdapterSizes& s) {
  const int64_t r = s.mid_dim, ds = s.share_dim;
  if (r <= 0 || ds < 0 || ds > std::min(s.vision_width, s.text_width)) {
    throw Error(fmt::format("cm_adapter: r = {} and d_s = {} do not fit widths {} and {}", r, ds,
                            s.vision_width, s.text_width));
  }
  torch::NoGradGuard no_grad;
  CmAdapterTensors t;
  const int64_t v = 2 * s.vision_layers, x = 2 * s.text_layers;
  t.visual_down_weight = weight(owner, "visual_adapter_down_weight", {v, r, s.vision_width});
  t.visual_down_bias = bias(owner, "visual_adapter_down_bias", {v, r});
  if (s.vision_width > ds) {
    t.visual_up_weight =
        weight(owner, "visual_adapter_up_unique_weight", {v, s.vision_width - ds, r});
    t.visual_up_bias = bias(owner, "visual_adapter_up_unique_bias", {v, s.vision_width - ds});
  }
  t.text_down_weight = weight(owner, "text_adapter_down_weight", {x, r, s.text_width});
  t.text_down_bias = bias(owner, "text_adapter_down_bias", {x, r});
  if (s.text_width > ds) {
    t.text_up_weight = weight(owner, "text_adapter_up_unique_weight", {x, s.text_width - ds, r});
    t.text_up_bias = bias(owner, "text_adapter_up_unique_bias", {x, s.text_width - ds});
  }
  if (ds > 0) {
    // Sized by the text tower as the authors do (validate requires Lv <= Lt).
    t.share_weight = weight(owner, "vt_adapter_up_share_weight", {x, ds, r});
    t.share_bias = bias(owner, "vt_adapter_up_share_bias", {x, ds});
  }
  return t;
}

CmAdapterImpl::CmAdapterImpl(const CmAdapterTensors& t, bool video, int64_t slot, bool relu)
    : down_w_(video ? t.visual_down_weight : t.text_down_weight),
      down_b_(video ? t.visual_down_bias : t.text_down_bias),
      up_w_(video ? t.visual_up_weight : t.text_up_weight),
      up_b_(video ? t.visual_up_bias : t.text_up_bias),
      share_w_(t.share_weight),
      share_b_(t.share_bias),
      slot_(slot),
      relu_(relu) {}

torch::Tensor CmAdapterImpl::forward(const torch::Tensor& h, const AdapterContext&) {
  // The slot is selected at every call (not once in the constructor), so the graph reaches the
  // stacked parameters themselves and dtype/device moves of the owner are seen.
  auto m = torch::matmul(h, down_w_[slot_].t()) + down_b_[slot_];
  m = relu_ ? torch::relu(m) : quick_gelu(m);
  std::vector<torch::Tensor> parts;
  if (up_w_.defined()) parts.push_back(torch::matmul(m, up_w_[slot_].t()) + up_b_[slot_]);
  // The shared projection makes the LAST d_s channels (the authors' cat order).
  if (share_w_.defined()) parts.push_back(torch::matmul(m, share_w_[slot_].t()) + share_b_[slot_]);
  return torch::cat(parts, -1);
}

CmAdapterTensors install_cm_adapters(torch::nn::Module& owner, TransformerImpl& visual,
                                     TransformerImpl& text, const CmAdapterSizes& sizes) {
  for (auto [tower, layers, width, name] :
       {std::tuple{&visual, sizes.vision_layers, sizes.vision_width, "vision"},
        std::tuple{&text, sizes.text_layers, sizes.text_width, "text"}}) {
    if (tower->layers() != layers || tower->block(0)->attn->width() != width) {
      throw Error(
          fmt::format("cm_adapter: the {} tower has {} blocks of width {}, the sizes say {} "
                      "of width {}",
                      name, tower->layers(), tower->block(0)->attn->width(), layers, width));
    }
  }
  auto t = make_cm_adapter_tensors(owner, sizes);
  for (auto* tower : {&visual, &text}) {
    const bool video = tower == &visual;
    for (int64_t i = 0; i < tower->layers(); ++i) {
      auto block = tower->block(i);
      block->set_attn_adapter(std::make_shared<CmAdapterImpl>(t, video, 2 * i, sizes.relu),
                              AdapterInsertion::kSeq);
      block->mlp->set_adapter(std::make_shared<CmAdapterImpl>(t, video, 2 * i + 1, sizes.relu),
                              AdapterInsertion::kSeq);
    }
  }
  return t;
}

}  // namespace mva
