// verify-reference for the Cross-Modal Adapter fixture (tests/fixtures/baselines/cm_adapter).
#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/adapters/cm_adapter.h"
#include "mvadapter/core/error.h"
#include "mvadapter/io/module_state.h"
#include "mvadapter/model/baseline_reference.h"

namespace mva {

ReferenceReport check_cm_adapter_reference(const BaselineFixture& fx, double tolerance,
                                           const std::string& precision) {
  const auto dtype = reference_dtype(precision);
  CmAdapterSizes sizes;
  sizes.vision_width = fx.size("Cv");
  sizes.text_width = fx.size("Ct");
  sizes.vision_layers = sizes.text_layers = fx.size("layers");
  sizes.mid_dim = fx.size("r");
  sizes.share_dim = fx.size("ds");
  const auto activation = fx.meta.at("sizes").value("non_linearity", "quick_gelu");
  if (activation != "quick_gelu") {
    throw Error(fmt::format("{}: sizes.non_linearity '{}' (only quick_gelu is checked)",
                            (fx.dir / "meta.json").string(), activation));
  }
  const int64_t layer = fx.size("exercised_layer");

  // A module whose parameter names are the authors' CLIP's: the stacked adapter tensors at the
  // top, the blocks under visual.transformer and transformer.
  auto root = std::make_shared<torch::nn::Module>();
  auto visual = root->register_module("visual", std::make_shared<torch::nn::Module>());
  auto vt = visual->register_module(
      "transformer", Transformer(sizes.vision_width, sizes.vision_layers, fx.size("vision_heads")));
  auto tt = root->register_module(
      "transformer", Transformer(sizes.text_width, sizes.text_layers, fx.size("heads_t")));
  install_cm_adapters(*root, *vt, *tt, sizes);
  StateLoadOptions opt;
  // The fixture stores the CLIP weights of the exercised block only.
  opt.may_be_missing = [](const std::string& name) {
    return name.find("resblocks.") != std::string::npos;
  };
  load_module_state(*root, fx.params(), (fx.dir / "io.safetensors").string(), opt);
  root->to(dtype);

  std::map<std::string, torch::Tensor> inputs;
  auto input = [&](const std::string& name) {
    auto t = fx.tensor("in." + name).to(dtype).requires_grad_(true);
    inputs[name] = t;
    return t;
  };
  auto vblock = vt->block(layer), tblock = tt->block(layer);
  // Module level: the authors' controller returns h + o(h); ours returns o(h).
  auto module_out = [](const std::shared_ptr<MlpAdapterImpl>& a, const torch::Tensor& h) {
    return h + a->forward(h, AdapterContext{});
  };
  std::map<std::string, torch::Tensor> outputs;
  outputs["h_video_attn"] = module_out(vblock->attn_adapter(), input("h_video_attn"));
  outputs["h_video_mlp"] = module_out(vblock->mlp->adapter(), input("h_video_mlp"));
  outputs["h_text_attn"] = module_out(tblock->attn_adapter(), input("h_text_attn"));
  outputs["h_text_mlp"] = module_out(tblock->mlp->adapter(), input("h_text_mlp"));
  // Block level: frames are independent batch items (no mask); text is causal.
  outputs["block_video"] = vblock->forward(input("block_video"), {}, AdapterContext{});
  auto text_in = input("block_text");
  outputs["block_text"] =
      tblock->forward(text_in, causal_mask(text_in.size(0), text_in.options()), AdapterContext{});

  auto loss = torch::zeros({}, torch::TensorOptions().dtype(dtype));
  for (const auto& [name, out] : outputs) {
    loss = loss + (out * fx.tensor("in.loss_weight." + name).to(dtype)).sum();
  }
  loss.backward();
  outputs["loss"] = loss;

  std::map<std::string, torch::Tensor> params;
  for (const auto& p : root->named_parameters()) params.emplace(p.key(), p.value());
  return compare_with_baseline(fx, outputs, inputs, params, tolerance, precision);
}

}  // namespace mva
