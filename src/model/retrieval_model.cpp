#include "mvadapter/model/retrieval_model.h"

#include <limits>

#include <cmath>
#include <map>
#include <regex>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "mvadapter/adapters/bottleneck_adapter.h"
#include "mvadapter/adapters/cm_adapter.h"
#include "mvadapter/adapters/convpass_adapter.h"
#include "mvadapter/adapters/cross_modal_tying.h"
#include "mvadapter/adapters/lora.h"
#include "mvadapter/adapters/st_adapter.h"
#include "mvadapter/adapters/text_adapter.h"
#include "mvadapter/adapters/video_adapter.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/tensor_format.h"
#include "mvadapter/model/adapter_checkpoint.h"

namespace mva {

VideoHead parse_video_head(const std::string& name, const std::string& field) {
  if (auto v = enum_from_name<VideoHead>(name)) return *v;
  throw Error(fmt::format("{}: '{}' (expected {})", field, name, enum_choices<VideoHead>(" or ")));
}

std::string to_string(VideoHead h) {
  return enum_name(h);
}

TrainableSet parse_trainable_set(const std::string& name, const std::string& field) {
  if (auto v = enum_from_name<TrainableSet>(name)) return *v;
  throw Error(
      fmt::format("{}: '{}' (expected {})", field, name, enum_choices<TrainableSet>(" or ")));
}

namespace {

bool contains(const std::string& s, const char* part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

namespace {

std::shared_ptr<MlpAdapterImpl> make_adapter(bool video, int64_t width,
                                             const BranchAdapterConfig& b, const TyingConfig& t,
                                             torch::Tensor shared) {
  if (b.type == AdapterType::kBottleneck)
    return std::make_shared<BottleneckAdapterImpl>(width, b, t, shared, video);
  if (b.type == AdapterType::kConvpass) return std::make_shared<ConvpassAdapterImpl>(width, b);
  if (b.type == AdapterType::kStAdapter) return std::make_shared<StAdapterImpl>(width, b);
  if (video) return std::make_shared<VideoAdapterImpl>(width, b, t, shared);
  return std::make_shared<TextAdapterImpl>(width, b, t, shared);
}

}  // namespace

ParamGroup param_group_of(const std::string& name) {
  const bool no_decay = contains(name, "bias");
  if (is_adapter_tensor(name))
    return no_decay ? ParamGroup::kAdapterNoDecay : ParamGroup::kAdapterDecay;
  return no_decay ? ParamGroup::kClipNoDecay : ParamGroup::kClipDecay;
}

std::vector<std::string> official_names(const std::string& name) {
  // Only CLIP's own blocks: an adapter's inner block keeps ln_1 and a fused in_proj officially.
  static const std::regex kBlock(R"(^(clip\.(?:visual\.)?transformer\.resblocks\.\d+\.)(.*)$)");
  std::smatch m;
  if (is_adapter_tensor(name) || !std::regex_match(name, m, kBlock)) return {name};
  const std::string prefix = m[1], rest = m[2];
  if (rest == "ln_1.weight" || rest == "ln_1.bias") return {prefix + "attn.ln." + rest.substr(5)};
  if (rest == "ln_2.weight" || rest == "ln_2.bias") return {prefix + "mlp.ln." + rest.substr(5)};
  if (rest == "attn.in_proj_weight" || rest == "attn.in_proj_bias") {
    const std::string kind = rest.substr(13);  // weight | bias
    return {prefix + "attn.q_proj." + kind, prefix + "attn.k_proj." + kind,
            prefix + "attn.v_proj." + kind};
  }
  return {name};
}

std::string to_string(ParamGroup g) {
  switch (g) {
    case ParamGroup::kAdapterDecay:
      return "adapter_decay";
    case ParamGroup::kAdapterNoDecay:
      return "adapter_no_decay";
    case ParamGroup::kClipDecay:
      return "clip_decay";
    case ParamGroup::kClipNoDecay:
      return "clip_no_decay";
  }
  return "?";
}

RetrievalModelImpl::RetrievalModelImpl(ClipModel clip_model, const RetrievalModelConfig& cfg)
    : cfg_(cfg) {
  clip = register_module("clip", std::move(clip_model));
  const auto& cc = clip->config();
  if (cfg_.use_adapters) {
    const auto& a = cfg_.adapters;
    a.validate(cc.vision_width, cc.transformer_width, cc.vision_layers, cc.transformer_layers);
    if (a.tying.mode != TyingMode::kNone) {
      for (size_t k = 0; k < a.tying.layers.size(); ++k) {
        clip->prompt->append(make_shared_tying_tensor(a.tying));
      }
    }
    auto shared_for = [&](int64_t layer) {
      const auto k = a.tying.tied_index(layer);
      return k < 0 ? torch::Tensor() : clip->prompt[static_cast<size_t>(k)];
    };
    if (a.uses_cm_adapter()) {
      // Registered on the CLIP, so the names are the authors' (`clip.visual_adapter_down_weight`).
      install_cm_adapters(*clip, *clip->visual->transformer, *clip->transformer,
                          CmAdapterSizes{cc.vision_width, cc.vision_layers, cc.transformer_width,
                                         cc.transformer_layers, a.video.mid_dim, a.cm_share_dim,
                                         a.video.activation == Activation::kRelu});
    }
    for (int64_t i = 0; i < cc.vision_layers && !a.uses_cm_adapter(); ++i) {
      if (!a.video.has_adapter(i)) continue;
      auto block = clip->visual->transformer->block(i);
      if (a.video.adapts_attention()) {
        block->set_attn_adapter(
            make_adapter(true, cc.vision_width, a.video, a.tying, shared_for(i)),
            a.video.insertion);
      }
      block->mlp->set_adapter(make_adapter(true, cc.vision_width, a.video, a.tying, shared_for(i)),
                              a.video.insertion);
    }
    for (int64_t i = 0; i < cc.transformer_layers && !a.uses_cm_adapter(); ++i) {
      if (!a.text.has_adapter(i)) continue;
      clip->transformer->block(i)->mlp->set_adapter(
          make_adapter(false, cc.transformer_width, a.text, a.tying, shared_for(i)),
          a.text.insertion);
    }
    if (a.lora.on_tower(true)) install_lora(*clip->visual->transformer, a.lora);
    if (a.lora.on_tower(false)) install_lora(*clip->transformer, a.lora);
  }
  if (cfg_.head == VideoHead::kSeqTransf) {
    head =
        register_module("head", SeqTransfHead(cc.embed_dim, cfg_.head_layers, cc.context_length));
    // CLIP4Clip's from_pretrained: the head starts as CLIP's text position embedding and first
    // text blocks. Only possible when the text width is the embedding width (every released
    // CLIP); small test models keep CLIP4Clip's constructor init.
    if (head->can_init_from_clip(*clip)) {
      head->init_from_clip(*clip);
    } else {
      spdlog::warn(
          "seqtransf head: CLIP's text tower (width {}, {} layers) cannot seed a {}-layer head of "
          "width {}; the head keeps CLIP4Clip's random init",
          cc.transformer_width, cc.transformer_layers, cfg_.head_layers, cc.embed_dim);
    }
  }
  for (auto& p : named_parameters(true)) {
    const auto& name = p.key();
    const bool adapter = is_adapter_tensor(name);
    const bool bias = contains(name, "bias");
    bool train = false;
    switch (cfg_.trainable) {
      case TrainableSet::kAdapters:
        train = adapter || (bias && cfg_.train_clip_biases);
        break;
      case TrainableSet::kFull:
        train = true;
        break;
      case TrainableSet::kBitFit:
        train = bias && !adapter;
        break;
      case TrainableSet::kNone:
        train = false;
        break;
    }
    // CLIP's temperature stays at its pre-trained value in every recipe but full fine-tuning.
    if (name == "clip.logit_scale" && cfg_.trainable != TrainableSet::kFull) train = false;
    p.value().set_requires_grad(train);
  }
}

torch::Tensor RetrievalModelImpl::encode_frames(const torch::Tensor& frames,
                                                const torch::Tensor& frame_mask) {
  const int64_t r = clip->config().image_resolution;
  check_shape(frames, {-1, -1, 3, r, r}, "frames");
  check_shape(frame_mask, {frames.size(0), frames.size(1)}, "frame mask");
  auto flat = frames.reshape({-1, 3, r, r});
  auto feats = clip->encode_image(flat, AdapterContext{frame_mask});
  return feats.reshape({frames.size(0), frames.size(1), -1});
}

torch::Tensor RetrievalModelImpl::encode_text(const torch::Tensor& ids) {
  return clip->encode_text(ids, AdapterContext{});
}

torch::Tensor RetrievalModelImpl::pool_frames(const torch::Tensor& frame_features,
                                              const torch::Tensor& frame_mask) {
  auto f = frame_features / frame_features.norm(2, -1, true);
  auto m = frame_mask.to(f.scalar_type()).unsqueeze(-1);
  auto count = m.sum(1).clamp_min(1.0);  // an all-padding video pools to zero, not NaN
  auto v = (f * m).sum(1) / count;
  return v / v.norm(2, -1, true);
}

torch::Tensor RetrievalModelImpl::pool_video(const torch::Tensor& frame_features,
                                             const torch::Tensor& frame_mask) {
  if (!head) return pool_frames(frame_features, frame_mask);
  return pool_frames(head->forward(frame_features, frame_mask), frame_mask);
}

torch::Tensor RetrievalModelImpl::embed_videos(const torch::Tensor& frames,
                                               const torch::Tensor& frame_mask) {
  return pool_video(encode_frames(frames, frame_mask), frame_mask);
}

torch::Tensor RetrievalModelImpl::embed_texts(const torch::Tensor& ids) {
  auto t = encode_text(ids);
  return t / t.norm(2, -1, true);
}

torch::Device RetrievalModelImpl::device() const {
  const auto params = parameters();
  return params.empty() ? torch::Device(torch::kCPU) : params.front().device();
}

torch::Tensor RetrievalModelImpl::logits(const torch::Tensor& text_emb,
                                         const torch::Tensor& video_emb) const {
  // No clamp here: the official runner clamps the parameter itself after each optimiser step
  // (Trainer does the same), so the forward uses the stored value as is.
  return clip->logit_scale.exp() * torch::matmul(text_emb, video_emb.t());
}

torch::Tensor contrastive_loss(const torch::Tensor& logits_t2v) {
  check_shape(logits_t2v, {logits_t2v.size(0), logits_t2v.size(0)}, "logits");
  auto t2v = -torch::log_softmax(logits_t2v, 1).diagonal().mean();
  auto v2t = -torch::log_softmax(logits_t2v.t(), 1).diagonal().mean();
  return (t2v + v2t) / 2;
}

torch::Tensor masked_contrastive_loss(const torch::Tensor& logits_t2v, const torch::Tensor& valid) {
  check_shape(logits_t2v, {logits_t2v.size(0), logits_t2v.size(0)}, "logits");
  check_shape(valid, {logits_t2v.size(0)}, "valid");
  const auto keep = valid.to(torch::kBool);
  const double neg_inf = -std::numeric_limits<double>::infinity();
  // Invalid pairs are neither queries nor candidates: -inf logits drop them from every softmax.
  auto t2v = torch::log_softmax(logits_t2v.masked_fill(~keep.unsqueeze(0), neg_inf), 1).diagonal();
  auto v2t =
      torch::log_softmax(logits_t2v.t().masked_fill(~keep.unsqueeze(0), neg_inf), 1).diagonal();
  auto zero = torch::zeros({}, logits_t2v.options());
  const auto n = keep.sum().clamp_min(1).to(logits_t2v.scalar_type());
  return -(torch::where(keep, t2v, zero).sum() + torch::where(keep, v2t, zero).sum()) / (2 * n);
}

torch::Tensor contrastive_loss(const torch::Tensor& logits_t2v, const torch::Tensor& labels) {
  check_shape(labels, {logits_t2v.size(0), logits_t2v.size(1)}, "contrastive labels");
  auto l = labels.to(logits_t2v.scalar_type());
  auto t2v_target = l / l.sum(1, true).clamp_min(1);
  auto v2t_target = l.t() / l.t().sum(1, true).clamp_min(1);
  auto t2v = -(t2v_target * torch::log_softmax(logits_t2v, 1)).sum(1).mean();
  auto v2t = -(v2t_target * torch::log_softmax(logits_t2v.t(), 1)).sum(1).mean();
  return (t2v + v2t) / 2;
}

double ParamReport::percent_of_clip() const {
  return clip_params == 0
             ? 0.0
             : 100.0 * static_cast<double>(trainable) / static_cast<double>(clip_params);
}

double ParamReport::storage_percent(int64_t tasks, bool adapters) const {
  if (clip_bytes == 0) return 0.0;
  const double per_task = static_cast<double>(adapters ? checkpoint_bytes : clip_bytes);
  const double shared = adapters ? static_cast<double>(clip_bytes) : 0.0;
  return 100.0 * (shared + static_cast<double>(tasks) * per_task) / static_cast<double>(clip_bytes);
}

std::string ParamReport::to_string() const {
  std::string s = fmt::format("{:<58} {:>12}\n", "module", "trainable");
  for (const auto& m : modules) s += fmt::format("{:<58} {:>12}\n", m.module, m.trainable);
  s += fmt::format("adapters (incl. tying): {} parameters\n", adapter_params);
  s += fmt::format("CLIP backbone: {} parameters, {} of them trainable\n", clip_params,
                   clip_trainable);
  s += fmt::format("trainable: {} = {:.2f} % of CLIP\n", trainable, percent_of_clip());
  constexpr double kMiB = 1024.0 * 1024.0;
  s += fmt::format(
      "storage: one task's adapter checkpoint {} bytes ({:.1f} MiB) = {:.2f} % of "
      "CLIP's {} bytes ({:.1f} MiB)\n",
      checkpoint_bytes, static_cast<double>(checkpoint_bytes) / kMiB,
      clip_bytes == 0 ? 0.0 : 100.0 * checkpoint_bytes / static_cast<double>(clip_bytes),
      clip_bytes, static_cast<double>(clip_bytes) / kMiB);
  constexpr int64_t kTasks = 5;
  s += fmt::format(
      "storage of {} tasks: one CLIP + {} checkpoints = {:.2f} % of one CLIP; {} "
      "fine-tuned CLIPs = {:.2f} %\n",
      kTasks, kTasks, storage_percent(kTasks, true), kTasks, storage_percent(kTasks, false));
  return s;
}

ParamReport parameter_report(const RetrievalModelImpl& model) {
  ParamReport r;
  std::map<std::string, int64_t> per_module;
  std::vector<std::string> order;
  for (const auto& p : model.named_parameters(true)) {
    const auto& name = p.key();
    const auto n = p.value().numel();
    const bool adapter = is_adapter_tensor(name);
    if (adapter) {
      r.adapter_params += n;
    } else {
      r.clip_params += n;
      r.clip_bytes += n * static_cast<int64_t>(p.value().element_size());
      if (p.value().requires_grad()) r.clip_trainable += n;
    }
    if (!p.value().requires_grad()) continue;
    r.trainable += n;
    std::string module;
    // One line per adapter module: the name up to and including its slot (".mlp.adapter.",
    // ".attn_adapter.", ".attn.lora.").
    std::string::size_type end = std::string::npos;
    for (const std::string slot : {".adapter.", ".attn_adapter.", ".lora."}) {
      if (auto pos = name.find(slot); pos != std::string::npos) {
        end = pos + slot.size();
        break;
      }
    }
    if (end != std::string::npos) {
      module = name.substr(0, end);
    } else if (contains(name, "prompt")) {
      module = "clip.prompt (shared tying factors)";
    } else if (name.rfind("head.", 0) == 0) {
      module = "head (seqTransf)";
    } else if (is_adapter_tensor(name)) {
      module = name;  // stacked per-slot tensors (Cross-Modal Adapter), one line each
    } else if (contains(name, "bias")) {
      module = name.rfind("clip.visual.", 0) == 0 ? "clip.visual biases" : "clip text biases";
    } else {
      module = name.rfind("clip.visual.", 0) == 0 ? "clip.visual weights" : "clip text weights";
    }
    if (!per_module.count(module)) order.push_back(module);
    per_module[module] += n;
  }
  for (const auto& m : order) r.modules.push_back({m, per_module[m]});
  for (const auto& [name, t] : trainable_state(model)) {
    r.checkpoint_bytes += t.numel() * static_cast<int64_t>(t.element_size());
  }
  return r;
}

}  // namespace mva
