// verify-reference for CLIP4Clip's seqTransf head (tests/fixtures/baselines/seqtransf).
#include <cmath>

#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "mvadapter/io/module_state.h"
#include "mvadapter/model/baseline_reference.h"
#include "mvadapter/model/retrieval_model.h"
#include "mvadapter/model/seq_transf_head.h"

namespace mva {

ReferenceReport check_seqtransf_reference(const BaselineFixture& fx, double tolerance,
                                          const std::string& precision) {
  const auto dtype = reference_dtype(precision);
  const auto meta_path = (fx.dir / "meta.json").string();
  const int64_t width = fx.size("width");
  SeqTransfHead head(width, fx.size("layers"), fx.size("frame_pos_table_rows"));
  const int64_t heads = head->transformer->block(0)->attn->heads();
  if (fx.size("heads") != heads) {
    throw Error(fmt::format("{}: sizes.heads {} but CLIP4Clip derives width / 64 = {} for width {}",
                            meta_path, fx.size("heads"), heads, width));
  }
  const double eps = fx.meta.at("sizes").value("layernorm_eps", 1e-12);
  if (std::abs(eps - 1e-12) > 1e-15) {
    throw Error(fmt::format("{}: sizes.layernorm_eps {} (the head's is CLIP4Clip's 1e-12)",
                            meta_path, eps));
  }
  // The head's names are the authors' CLIP4Clip names; logit_scale lives in its CLIP.
  StateLoadOptions opt;
  opt.may_be_unexpected = [](const std::string& name) { return name == "clip.logit_scale"; };
  load_module_state(*head, fx.params(), (fx.dir / "io.safetensors").string(), opt);
  head->to(dtype);
  auto logit_scale = fx.tensor("param.clip.logit_scale").to(dtype).requires_grad_(true);

  auto visual = fx.tensor("in.visual_output").to(dtype).requires_grad_(true);
  auto sequence = fx.tensor("in.sequence_output").to(dtype).requires_grad_(true);
  const auto& mask = fx.tensor("in.video_mask");

  auto frames = head->forward(visual, mask);
  auto video = RetrievalModelImpl::pool_frames(frames, mask);
  auto text = sequence.squeeze(1);
  text = text / text.norm(2, -1, true);
  auto logits = logit_scale.exp() * torch::matmul(text, video.t());
  auto loss = (logits * fx.tensor("in.loss_weight").to(dtype)).sum();
  loss.backward();

  // The authors' intermediates, recomputed from ours (pool_frames keeps them inside).
  auto normalized = frames / frames.norm(2, -1, true);
  auto m = mask.to(dtype).unsqueeze(-1);
  std::map<std::string, torch::Tensor> outputs = {
      {"frames_residual", frames},
      {"transf_out_lnd", (frames - visual).permute({1, 0, 2})},
      {"pool_in_normalized", normalized},
      {"video_pooled", (normalized * m).sum(1) / m.sum(1).clamp_min(1.0)},
      {"logits", logits},
      {"loss", loss}};
  std::map<std::string, torch::Tensor> inputs = {{"visual_output", visual},
                                                 {"sequence_output", sequence}};
  std::map<std::string, torch::Tensor> params = {{"clip.logit_scale", logit_scale}};
  for (const auto& p : head->named_parameters()) params.emplace(p.key(), p.value());
  return compare_with_baseline(fx, outputs, inputs, params, tolerance, precision);
}

}  // namespace mva
