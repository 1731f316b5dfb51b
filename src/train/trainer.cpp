#include "mvadapter/train/trainer.h"

#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <limits>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "mvadapter/core/clock.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/progress.h"
#include "mvadapter/dist/gather.h"
#include "mvadapter/eval/query_ranks.h"
#include "mvadapter/io/atomic_file.h"
#include "mvadapter/io/fault_inject.h"
#include "mvadapter/io/safetensors.h"
#include "mvadapter/model/adapter_checkpoint.h"
#include "mvadapter/train/run_report.h"
#include "mvadapter/train/run_results.h"

namespace mva {

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Best epoch: highest T2V R@1, ties broken by T2V RSum (R@1 + R@5 + R@10 <= 300).
double selection_score(const RetrievalMetrics& m) {
  return m.t2v.r1 * 1000.0 + m.t2v.rsum;
}

// fp16 on CUDA: dynamic loss scaling as torch.cuda.amp.GradScaler (init 2^16, x2 after 2000
// good steps, x0.5 and skip the step on inf/NaN), with its fused kernels so that checking the
// gradients costs one host-device synchronisation per step. LibTorch has no C++ GradScaler.
constexpr double kAmpInitScale = 65536.0;
constexpr int64_t kAmpGrowthInterval = 2000;

// "name shape" of every trainable tensor: what the ranks must agree on.
std::string trainable_description(const std::vector<std::pair<std::string, torch::Tensor>>& ps) {
  std::string out;
  for (const auto& [name, t] : ps) out += fmt::format("{} {}\n", name, c10::str(t.sizes()));
  return out;
}

}  // namespace

void update_best_by_metric(nlohmann::json& best, int64_t epoch, const RetrievalMetrics& m) {
  const std::pair<const char*, double> criteria[] = {{"t2v_r1", m.t2v.r1},
                                                     {"v2t_r1", m.v2t.r1},
                                                     {"t2v_sum", m.t2v.rsum},
                                                     {"v2t_sum", m.v2t.rsum},
                                                     {"sum", m.t2v.rsum + m.v2t.rsum}};
  if (!best.is_object()) best = nlohmann::json::object();
  for (const auto& [name, value] : criteria) {
    const auto it = best.find(name);
    if (it == best.end() || value > it->at("value").get<double>()) {
      best[name] = {{"epoch", epoch}, {"value", value}};
    }
  }
}

std::string to_string(NonfiniteAction action) {
  return enum_name(action);
}

int64_t auto_save_interval(int64_t steps_per_epoch) {
  // A state save costs about as much as a few steps (the adapters and two Adam moments), so four
  // per epoch cost little; under 100 steps the epoch-end save alone is frequent enough.
  constexpr int64_t kMinSteps = 100;
  constexpr int64_t kSavesPerEpoch = 4;
  if (steps_per_epoch < kMinSteps) return 0;
  return (steps_per_epoch + kSavesPerEpoch - 1) / kSavesPerEpoch;
}

fs::path Trainer::state_path(const fs::path& run_dir) {
  return run_dir / "state" / "train_state.safetensors";
}

Trainer::Trainer(RetrievalModel model, VideoLoader& train_loader, Evaluator* evaluator,
                 TrainerOptions options)
    : model_(std::move(model)),
      loader_(train_loader),
      evaluator_(evaluator),
      options_(std::move(options)) {
  if (options_.run_dir.empty()) throw Error("Trainer: run_dir is empty");
  if (options_.grad_accum < 1) throw Error("train.grad_accum: must be >= 1");
  if (options_.epochs < 0) throw Error("train.epochs: must be >= 0");
  if (options_.save_every_steps < kAutoSaveInterval) {
    throw Error("train.save_every_steps: must be auto or >= 0");
  }
  if (loader_.options().mode == LoaderMode::kVideos) {
    throw Error(
        "Trainer: the training loader must yield captions (mode captions or video_caption)");
  }
  check_precision(options_.precision, options_.device, "train.precision");
  if (options_.emulate_world_size < 0) throw Error("train.emulate_world_size: must be >= 0");
  if (options_.emulate_world_size > 0)
    grad_scale_ = 1.0 / static_cast<double>(options_.emulate_world_size);
  if (options_.group != nullptr && (loader_.options().world_size != world() ||
                                    loader_.options().rank != options_.group->rank())) {
    throw Error(fmt::format("Trainer: the loader is rank {} of {}, the process group rank {} of {}",
                            loader_.options().rank, loader_.options().world_size,
                            options_.group->rank(), world()));
  }
  if (options_.deterministic) at::globalContext().setDeterministicAlgorithms(true, false);
  model_->to(options_.device);
  model_->clip->visual->transformer->checkpoint_blocks = options_.activation_checkpointing;
  model_->clip->transformer->checkpoint_blocks = options_.activation_checkpointing;
  // The official fp16 training casts frozen weights too (convert_weights): the same model then.
  if (options_.optimizer.master_weights == MasterWeights::kFp16) round_to_official_fp16(*model_);
  if (options_.group != nullptr) {
    // Same code and config on every rank, then the same starting weights (rank 0's).
    torch::NoGradGuard no_grad;
    std::vector<std::pair<std::string, torch::Tensor>> shared;
    for (auto& p : model_->named_parameters()) {
      if (p.value().requires_grad() || p.key() == "clip.logit_scale") {
        shared.emplace_back(p.key(), p.value());
      }
    }
    options_.group->check_identical(trainable_description(shared), "the trainable parameters");
    for (auto& [name, t] : shared) options_.group->broadcast(t, 0, "broadcast " + name);
  }
  // epochs 0 only evaluates (zero-shot): nothing may train, so there is no optimiser.
  if (options_.epochs > 0) {
    const int64_t total = std::max<int64_t>(1, steps_per_epoch() * options_.epochs);
    optimizer_ = std::make_unique<Optimizer>(*model_, options_.optimizer, total);
  }
}

int64_t Trainer::steps_per_epoch() const {
  const auto samples = static_cast<int64_t>(loader_.epoch_order(0).size());
  const int64_t bs = loader_.options().batch_size;
  const int64_t micro = loader_.options().drop_last ? samples / bs : (samples + bs - 1) / bs;
  return (micro + options_.grad_accum - 1) / options_.grad_accum;
}

int64_t Trainer::save_interval() const {
  return options_.save_every_steps == kAutoSaveInterval ? auto_save_interval(steps_per_epoch())
                                                        : options_.save_every_steps;
}

bool Trainer::is_main() const {
  return options_.group == nullptr || options_.group->is_main();
}

int Trainer::world() const {
  return options_.group == nullptr ? 1 : options_.group->world_size();
}

std::pair<torch::Tensor, torch::Tensor> Trainer::embed(const std::optional<VideoBatch>& batch,
                                                       torch::Tensor* valid) {
  const auto dev = options_.device;
  torch::Tensor t, v;
  if (batch) {
    AutocastGuard autocast(options_.precision, dev);
    t = model_->embed_texts(batch->token_ids.to(dev)).to(torch::kFloat);
    v = model_->embed_videos(model_frames(*batch, dev), batch->frame_mask.to(dev))
            .to(torch::kFloat);
  }
  if (options_.group == nullptr) return {t, v};
  // Ranks gather equal shapes: pad to the loader's batch size. Zero rows that require grad keep
  // a rank without data in the backward's collectives.
  const int64_t b = loader_.options().batch_size;
  const int64_t n = batch ? t.size(0) : 0;
  const int64_t dim = model_->clip->config().embed_dim;
  auto pad = [&](const torch::Tensor& x) {
    auto zeros = torch::zeros({b - n, dim}, torch::TensorOptions().device(dev));
    if (n == 0) return zeros.requires_grad_();
    return n == b ? x : torch::cat({x, zeros});
  };
  *valid = torch::cat({torch::ones({n}), torch::zeros({b - n})}).to(dev);
  return {pad(t), pad(v)};
}

torch::Tensor Trainer::global_loss(const torch::Tensor& t, const torch::Tensor& v,
                                   const torch::Tensor& valid) {
  ProcessGroup* group = options_.group;
  if (group == nullptr) {
    auto texts = gather_rows(t, nullptr, grad_scale_),
         videos = gather_rows(v, nullptr, grad_scale_);
    return contrastive_loss(model_->logits(texts, videos).to(torch::kFloat));
  }
  // The validity flag travels as one more column of the texts: one collective, not two.
  auto all = gather_rows(torch::cat({t, valid.unsqueeze(1).to(t.dtype())}, 1), group, grad_scale_);
  auto texts = all.narrow(1, 0, t.size(1));
  auto videos = gather_rows(v, group, grad_scale_);
  return masked_contrastive_loss(model_->logits(texts, videos).to(torch::kFloat),
                                 all.select(1, t.size(1)).detach());
}

torch::Tensor Trainer::accumulate(const std::vector<std::optional<VideoBatch>>& micro) {
  auto total = torch::zeros({}, torch::TensorOptions().device(options_.device));
  for (const auto& batch : micro) {
    torch::Tensor valid;
    auto [t, v] = embed(batch, &valid);
    auto loss = global_loss(t, v, valid);
    auto scaled = loss / static_cast<double>(options_.grad_accum);
    (amp_scale_.defined() ? scaled * amp_scale_ : scaled).backward();
    total += loss.detach();
  }
  return total;
}

torch::Tensor Trainer::accumulate_cached(const std::vector<std::optional<VideoBatch>>& micro) {
  // GradCache (Gao et al. 2021): embeddings of every micro-batch without a graph, the loss of the
  // whole batch and its gradient with respect to those embeddings, then each micro-batch encoded
  // again with a graph and back-propagated from its cached gradient. Exactly the full-batch step.
  std::vector<torch::Tensor> ts, vs, valids;
  {
    torch::NoGradGuard no_grad;
    for (const auto& batch : micro) {
      torch::Tensor valid;
      auto [t, v] = embed(batch, &valid);
      if (options_.group == nullptr && !batch) continue;
      ts.push_back(t.detach());
      vs.push_back(v.detach());
      if (valid.defined()) valids.push_back(valid);
    }
  }
  auto t_all = torch::cat(ts), v_all = torch::cat(vs);
  const int64_t local_rows = t_all.size(0);
  torch::Tensor texts = t_all, videos = v_all;
  if (options_.group != nullptr) {
    auto valid = torch::cat(valids);
    auto all = options_.group->all_gather_cat(
        torch::cat({t_all, valid.unsqueeze(1).to(t_all.dtype())}, 1), "gather cached embeddings");
    texts = all.narrow(1, 0, t_all.size(1)).contiguous();
    videos = options_.group->all_gather_cat(v_all, "gather cached embeddings");
    auto keep = all.select(1, t_all.size(1)) > 0.5;
    valids = {keep};
  }
  texts.requires_grad_(true);
  videos.requires_grad_(true);
  auto logits = model_->logits(texts, videos).to(torch::kFloat);
  auto loss = options_.group == nullptr ? contrastive_loss(logits)
                                        : masked_contrastive_loss(logits, valids[0]);
  (amp_scale_.defined() ? loss * amp_scale_ : loss).backward();
  // Every rank computed the same loss: the sum over ranks of the gradient of this rank's rows is
  // W times its own (the averaging of the parameter gradients divides by W again).
  const double factor = grad_scale_ * static_cast<double>(world());
  const int64_t first = options_.group == nullptr ? 0 : options_.group->rank() * local_rows;
  auto g_t = texts.grad().narrow(0, first, local_rows) * factor;
  auto g_v = videos.grad().narrow(0, first, local_rows) * factor;
  int64_t row = 0;
  for (const auto& batch : micro) {
    const int64_t rows = options_.group == nullptr ? (batch ? batch->token_ids.size(0) : 0)
                                                   : loader_.options().batch_size;
    if (batch) {
      torch::Tensor valid;
      auto [t, v] = embed(batch, &valid);
      torch::autograd::backward({t, v}, {g_t.narrow(0, row, rows), g_v.narrow(0, row, rows)});
    }
    row += rows;
  }
  return loss.detach();
}

bool Trainer::reduce_gradients(bool stop) {
  ProcessGroup* group = options_.group;
  if (group == nullptr) return stop;
  const auto params = optimizer_->parameters();
  // [gradients..., one "has a gradient" count per tensor, the stop requests]
  int64_t numel = 0;
  for (const auto& p : params) numel += p.numel();
  const auto dtype = params.front().scalar_type();
  auto flat = torch::zeros({numel + static_cast<int64_t>(params.size()) + 1},
                           torch::TensorOptions().dtype(dtype).device(options_.device));
  int64_t at = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& g = params[i].grad();
    if (g.defined()) {
      flat.narrow(0, at, g.numel()).copy_(g.reshape({-1}));
      flat[numel + static_cast<int64_t>(i)] = 1;
    }
    at += params[i].numel();
  }
  flat[numel + static_cast<int64_t>(params.size())] = stop ? 1 : 0;
  {
    torch::NoGradGuard no_grad;
    group->all_reduce_sum(flat, "all-reduce gradients");
  }
  auto cpu_tail = flat.narrow(0, numel, static_cast<int64_t>(params.size()) + 1).cpu();
  auto tail = cpu_tail.to(torch::kDouble);
  auto acc = tail.accessor<double, 1>();
  flat.narrow(0, 0, numel).div_(static_cast<double>(world()));
  at = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    auto p = params[i];
    const int64_t n = p.numel();
    if (acc[static_cast<int64_t>(i)] > 0) {
      auto g = flat.narrow(0, at, n).view(p.sizes()).to(p.scalar_type());
      if (p.grad().defined()) {
        p.mutable_grad().copy_(g);
      } else {
        p.mutable_grad() = g.clone();
      }
    }
    at += n;
  }
  return acc[static_cast<int64_t>(params.size())] > 0;
}

void Trainer::save_state(const Position& pos) {
  TensorMap tensors;
  for (const auto& [name, t] : trainable_state(*model_)) tensors["param." + name] = t.cpu();
  for (const auto& [k, v] : optimizer_->state()) tensors["optim." + k] = v.cpu();
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    tensors["rng.cpu"] = gen.get_state();
  }
  if (options_.device.is_cuda()) {
    auto gen = at::globalContext().defaultGenerator(options_.device);
    std::lock_guard<std::mutex> lock(gen.mutex());
    tensors["rng.cuda"] = gen.get_state();
  }
  if (amp_scale_.defined()) {
    tensors["amp.scale"] = amp_scale_.cpu();
    tensors["amp.growth"] = amp_growth_.cpu();
  }
  nlohmann::json meta = {{"epoch", pos.epoch},
                         {"sample", pos.sample},
                         {"step", pos.step},
                         {"best_epoch", pos.best_epoch},
                         {"best_score", pos.best_score},
                         {"elapsed_s", pos.elapsed_s},
                         {"skipped_steps", pos.skipped_steps},
                         {"metrics_bytes", pos.metrics_bytes},
                         {"total_steps", optimizer_->total_steps()},
                         {"epochs", options_.epochs},
                         {"best_results", best_json_},
                         {"best_by_metric", best_by_metric_}};
  // A new folder's own entry must be durable too, or a power cut could lose the whole folder.
  if (fs::create_directories(state_path(options_.run_dir).parent_path())) {
    sync_directory(options_.run_dir);
  }
  write_safetensors(state_path(options_.run_dir), tensors,
                    {{"mvadapter.train_state", meta.dump()}, {"config", options_.config_yaml}});
  saved_step_ = pos.step;
}

Trainer::Position Trainer::load_state() {
  const auto path = state_path(options_.run_dir);
  if (!fs::exists(path)) {
    throw Error(
        fmt::format("{}: no training state to resume from (is {} a run directory of "
                    "`mvadapter train`?)",
                    path.string(), options_.run_dir.string()));
  }
  auto file = read_safetensors(path);
  auto it = file.metadata.find("mvadapter.train_state");
  if (it == file.metadata.end()) {
    throw Error(
        fmt::format("{}: not a training state (no mvadapter.train_state metadata)", path.string()));
  }
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(it->second);
  } catch (const std::exception& e) {
    throw Error(fmt::format("{}: malformed training-state metadata: {}", path.string(), e.what()));
  }
  if (meta.value("total_steps", int64_t{-1}) != optimizer_->total_steps()) {
    throw Error(fmt::format(
        "{}: the run was planned for {} optimiser steps, this configuration gives {}; resume with "
        "the run's own config (train.epochs, batch size and data must not change)",
        path.string(), meta.value("total_steps", int64_t{-1}), optimizer_->total_steps()));
  }
  // Weights first: every trainable tensor must be there with its shape.
  torch::NoGradGuard no_grad;
  for (auto& p : model_->named_parameters()) {
    if (!p.value().requires_grad() && p.key() != "clip.logit_scale") continue;
    auto t = file.tensors.find("param." + p.key());
    if (t == file.tensors.end()) {
      throw Error(
          fmt::format("{}: trainable tensor '{}' is missing (was the state written by "
                      "another configuration?)",
                      path.string(), p.key()));
    }
    if (t->second.sizes() != p.value().sizes()) {
      throw Error(fmt::format("{}: '{}' has shape {} in the file, the model needs {}",
                              path.string(), p.key(), c10::str(t->second.sizes()),
                              c10::str(p.value().sizes())));
    }
    p.value().copy_(t->second);
  }
  TensorMap optim;
  for (const auto& [k, v] : file.tensors) {
    if (k.rfind("optim.", 0) == 0) optim[k.substr(6)] = v.to(options_.device);
  }
  optimizer_->load_state(optim);
  if (auto r = file.tensors.find("rng.cpu"); r != file.tensors.end()) {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(r->second);
  }
  if (auto r = file.tensors.find("rng.cuda");
      r != file.tensors.end() && options_.device.is_cuda()) {
    auto gen = at::globalContext().defaultGenerator(options_.device);
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(r->second);
  }
  // The fp16 loss scale and its growth counter: a resumed run scales as the uninterrupted one.
  auto scale = file.tensors.find("amp.scale");
  auto growth = file.tensors.find("amp.growth");
  if (scale != file.tensors.end() && growth != file.tensors.end() &&
      options_.precision == Precision::kFp16) {
    amp_scale_ = scale->second.to(options_.device, torch::kFloat).clone();
    amp_growth_ = growth->second.to(options_.device, torch::kInt32).clone();
  }
  Position pos;
  pos.epoch = meta.at("epoch").get<int64_t>();
  pos.sample = meta.at("sample").get<int64_t>();
  pos.step = meta.at("step").get<int64_t>();
  pos.best_epoch = meta.value("best_epoch", int64_t{0});
  pos.best_score = meta.value("best_score", -1.0);
  pos.elapsed_s = meta.value("elapsed_s", 0.0);
  best_json_ = meta.value("best_results", nlohmann::json());
  // A state written before the official numbers were kept has the best metrics alone.
  if (best_json_.is_null() && meta.contains("best_metrics") && !meta["best_metrics"].is_null()) {
    best_json_ = {{"best", meta["best_metrics"]}};
  }
  best_by_metric_ = meta.value("best_by_metric", nlohmann::json::object());
  pos.skipped_steps = meta.value("skipped_steps", int64_t{0});
  pos.metrics_bytes = meta.value("metrics_bytes", int64_t{-1});
  saved_step_ = pos.step;
  return pos;
}

void Trainer::write_results(const TrainSummary& s, const Position& pos, double wall_s) {
  const auto report = parameter_report(*model_);
  RunResults r = options_.run_info;
  r.name = options_.name;
  r.trainable_params = report.trainable;
  r.adapter_params = report.adapter_params;
  r.clip_params = report.clip_params;
  r.percent_of_clip = report.percent_of_clip();
  r.epochs = options_.epochs;
  r.epochs_done = s.epochs_done;
  r.steps = pos.step;
  r.skipped_steps = pos.skipped_steps;
  r.finished = !s.interrupted;
  r.best_epoch = s.best_epoch;
  // The best epoch's metrics survive a resume in the training state, as labelled JSON.
  if (best_json_.is_object()) {
    r.best = RetrievalMetrics::from_json(best_json_.at("best"), "best");
    r.best_official = RetrievalMetrics::from_json(best_json_.at("best_official"), "best_official");
  }
  r.best_by_metric = best_by_metric_;
  if (s.final_eval) {
    r.final = s.final_eval->metrics;
    r.final_official = s.final_eval->official;
    r.final_epoch = s.final_epoch;
  }
  r.skipped_videos = loader_.stats().samples_skipped;
  r.eval_skipped_videos = s.final_eval ? s.final_eval->skipped_videos : 0;
  r.precision = to_string(options_.precision);
  r.wall_time_s = wall_s;
  r.date = utc_now();
  write_run_results(options_.run_dir, r);
  // Per-query ranks of the final evaluation, so `serve` can compare runs query by query.
  if (s.final_eval) write_query_ranks(options_.run_dir / "ranks.jsonl", s.final_eval->t2v_ranks);
}

/// What one call of run() carries from step to step and epoch to epoch.
struct Trainer::RunState {
  Clock::time_point t0 = Clock::now();
  bool main = true;
  bool distributed = false;
  bool amp = false;  // fp16 with a loss scale
  Position pos;
  TrainSummary summary;
  double elapsed_before = 0.0;      // seconds of the sessions before a resume
  std::unique_ptr<MetricsLog> log;  // rank 0 only
  int64_t samples_epoch = 0;        // samples of one epoch, all ranks
  int64_t micro_size = 0;           // the loader's batch size
  int64_t save_every = 0;           // mid-epoch state saves; 0 none

  double elapsed() const { return elapsed_before + seconds_since(t0); }
};

/// What one epoch carries from step to step: the micro-batches of the step being collected and
/// the loss sums of the epoch and of the current log window.
struct Trainer::EpochState {
  int64_t epoch = 0;  // 0-based
  torch::Tensor epoch_loss, window_loss;
  double grad_norm = 0.0;
  int64_t epoch_micro = 0, window_micro = 0, window_steps = 0;
  // Losses summed into epoch_loss / window_loss: one per micro-batch, or one per step when the
  // whole batch has one loss (grad_cache).
  int64_t epoch_terms = 0, window_terms = 0;
  Clock::time_point window_t = Clock::now();
  std::vector<std::optional<VideoBatch>> micro;
};

void Trainer::finish_state(RunState& st) {
  Position q = st.pos;
  q.elapsed_s = st.elapsed();
  if (st.log) q.metrics_bytes = static_cast<int64_t>(st.log->sync());
  if (st.main) save_state(q);
  st.summary.state_path = state_path(options_.run_dir);
}

void Trainer::log_eval(RunState& st, int64_t epoch_done) {
  const auto& r = *st.summary.final_eval;
  if (st.log) {
    nlohmann::json line = {{"kind", "eval"},
                           {"epoch", epoch_done},
                           {"step", st.pos.step},
                           {"time_s", st.elapsed()},
                           {"eval_seconds", r.seconds},
                           {"skipped_videos", r.skipped_videos}};
    line.update(r.labelled("metrics"));
    st.log->append(line);
  }
  if (st.main && options_.callbacks.on_eval) options_.callbacks.on_eval(epoch_done, r);
}

void Trainer::publish(RunState& st) {
  if (!st.main) return;
  write_results(st.summary, st.pos, st.elapsed());
  if (options_.callbacks.on_results) options_.callbacks.on_results(options_.run_dir);
}

bool Trainer::take_step(RunState& st, EpochState& ep) {
  auto& pos = st.pos;
  const int64_t epoch = ep.epoch;
  auto loss = options_.grad_cache ? accumulate_cached(ep.micro) : accumulate(ep.micro);
  const bool stop = reduce_gradients(options_.stop.requested());
  const auto params = optimizer_->parameters();
  if (detail::nonfinite_loss_injected(pos.step + 1)) {
    torch::NoGradGuard no_grad;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    loss = loss * nan;
    for (const auto& p : params) {
      if (p.grad().defined()) p.grad().fill_(nan);
    }
  }
  bool finite = true;
  double step_loss = std::numeric_limits<double>::quiet_NaN();
  if (st.amp) {
    std::vector<torch::Tensor> grads;
    for (const auto& p : params) {
      if (p.grad().defined()) grads.push_back(p.grad());
    }
    auto found_inf = torch::zeros({1}, torch::TensorOptions().device(options_.device));
    at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf, amp_scale_.reciprocal());
    finite = found_inf.item<float>() == 0.0f;
    at::_amp_update_scale_(amp_scale_, amp_growth_, found_inf, 2.0, 0.5, kAmpGrowthInterval);
  }
  if (finite) {
    ep.grad_norm = clip_grad_norm(params, options_.grad_clip);
    // After the gradient norm's synchronisation the loss is ready: reading it costs no wait.
    const double loss_value = loss.item<double>();
    if (!std::isfinite(ep.grad_norm) || !std::isfinite(loss_value)) {
      // The gradients are all-reduced and the loss is the global batch's, so every rank
      // takes this branch at the same step.
      if (options_.on_nonfinite == NonfiniteAction::kStop) {
        throw Error(fmt::format(
            "epoch {} step {}: non-finite training loss {} / gradient norm {}; the update was "
            "not applied and the run stops. {} Lower train.lr, or set train.on_nonfinite: "
            "skip to drop such steps.",
            epoch + 1, pos.step + 1, loss_value, ep.grad_norm,
            saved_step_ < 0 ? std::string("No training state was saved yet.")
                            : fmt::format("The last good training state is {} (step {}); continue "
                                          "it with --resume {}.",
                                          state_path(options_.run_dir).string(), saved_step_,
                                          options_.run_dir.string())));
      }
      spdlog::warn(
          "epoch {} step {}: non-finite training loss {} / gradient norm {}, update "
          "dropped (train.on_nonfinite: skip)",
          epoch + 1, pos.step + 1, loss_value, ep.grad_norm);
      finite = false;
    } else {
      optimizer_->step();
      clamp_logit_scale(*model_);
      step_loss = loss_value;
    }
  } else {
    spdlog::warn("fp16: non-finite gradients, step skipped, loss scale now {}",
                 amp_scale_.item<double>());
  }
  optimizer_->zero_grad();
  // Logged losses are those of the steps that updated the weights.
  if (finite) {
    ep.epoch_loss += loss;
    ep.window_loss += loss;
    const int64_t terms = options_.grad_cache ? 1 : static_cast<int64_t>(ep.micro.size());
    ep.epoch_terms += terms;
    ep.window_terms += terms;
  } else {
    ++pos.skipped_steps;
  }
  ep.micro.clear();
  ++pos.step;
  ++ep.window_steps;
  if (st.main && options_.callbacks.on_step) {
    options_.callbacks.on_step({epoch + 1, pos.step, step_loss, finite ? ep.grad_norm : 0.0,
                                optimizer_->lr_of(ParamGroup::kAdapterDecay), finite});
  }
  if (ep.window_steps >= options_.log_every) {
    // The only host-device synchronisation for the loss: once per log window.
    const double mean = ep.window_loss.item<double>() / std::max<int64_t>(1, ep.window_terms);
    nlohmann::json line = {
        {"kind", "train"},
        {"epoch", epoch + 1},
        {"step", pos.step},
        {"samples", loader_.position() * world()},
        {"loss", mean},
        {"lr", optimizer_->lr_of(ParamGroup::kAdapterDecay)},
        {"clip_lr", optimizer_->lr_of(ParamGroup::kClipNoDecay)},
        {"logit_scale", model_->clip->logit_scale.exp().item<double>()},
        {"grad_norm", ep.grad_norm},
        {"skipped_steps", pos.skipped_steps},
        {"time_s", st.elapsed()},
    };
    // A window of skipped steps only has no loss (JSON null).
    if (ep.window_terms == 0) line["loss"] = nullptr;
    if (st.log) st.log->append(line);
    spdlog::debug("epoch {} step {}: loss {:.4f}, {:.1f} samples/s", epoch + 1, pos.step, mean,
                  static_cast<double>(ep.window_micro * st.micro_size * world()) /
                      std::max(1e-9, seconds_since(ep.window_t)));
    ep.window_loss.zero_();
    ep.window_terms = 0;
    ep.window_micro = 0;
    ep.window_steps = 0;
    ep.window_t = Clock::now();
  }
  return stop;
}

bool Trainer::run_epoch(RunState& st, int64_t epoch) {
  auto& pos = st.pos;
  auto& summary = st.summary;
  // The state holds the position in the global order: this rank's share starts at 1/W of it.
  const int64_t start = epoch == pos.epoch ? pos.sample / world() : 0;
  loader_.start_epoch(epoch, start);
  model_->train();
  optimizer_->zero_grad();
  Progress progress(fmt::format("epoch {}/{}", epoch + 1, options_.epochs), st.samples_epoch,
                    options_.progress && st.main, start);
  const auto on = torch::TensorOptions().device(options_.device);
  EpochState ep;
  ep.epoch = epoch;
  ep.epoch_loss = torch::zeros({}, on);
  ep.window_loss = torch::zeros({}, on);
  // Ranks step in lockstep: each runs exactly its share's micro-batches, a missing one (videos
  // that failed to decode) as zero rows.
  int64_t micro_left = (st.samples_epoch - start + st.micro_size - 1) / st.micro_size;

  while (true) {
    std::optional<VideoBatch> batch;
    if (st.distributed) {
      if (micro_left == 0) break;
      --micro_left;
      batch = loader_.next();
    } else {
      batch = loader_.next();
      if (!batch) break;
      // A loss per micro-batch needs negatives in it; gradient caching has one loss for all.
      if (!options_.grad_cache && batch->frames.size(0) < 2) continue;
    }
    ep.micro.push_back(std::move(batch));
    ++ep.epoch_micro;
    ++ep.window_micro;
    progress.update(loader_.position());
    if (static_cast<int64_t>(ep.micro.size()) != options_.grad_accum) continue;
    if (take_step(st, ep)) {
      progress.finish();
      pos.epoch = epoch;
      pos.sample = loader_.position() * world();
      finish_state(st);
      summary.interrupted = true;
      summary.epochs_done = epoch;
      summary.steps = pos.step;
      summary.skipped_steps = pos.skipped_steps;
      if (st.main) {
        spdlog::warn("interrupted: training state saved to {} (resume with --resume {})",
                     summary.state_path.string(), options_.run_dir.string());
        write_results(summary, pos, st.elapsed());
      }
      return true;
    }
    // Mid-epoch state, unless this was the epoch's last step (the epoch end saves it anyway).
    const int64_t left = st.samples_epoch - loader_.position();
    if (st.save_every > 0 && pos.step % st.save_every == 0 &&
        left >= (loader_.options().drop_last ? st.micro_size : 1)) {
      pos.epoch = epoch;
      pos.sample = loader_.position() * world();
      finish_state(st);
    }
  }
  if (!ep.micro.empty()) take_step(st, ep);
  progress.finish();
  summary.epoch_loss.push_back(ep.epoch_loss.item<double>() / std::max<int64_t>(1, ep.epoch_terms));
  spdlog::info("epoch {}/{}: mean loss {:.4f} over {} batches ({} steps in all)", epoch + 1,
               options_.epochs, summary.epoch_loss.back(), ep.epoch_micro, pos.step);
  if (st.main && options_.callbacks.on_epoch_end) {
    options_.callbacks.on_epoch_end(epoch + 1, summary.epoch_loss.back());
  }
  return end_epoch(st, epoch);
}

bool Trainer::end_epoch(RunState& st, int64_t epoch) {
  auto& pos = st.pos;
  auto& summary = st.summary;
  // Evaluate, checkpoint, save the state to resume from the next epoch.
  std::map<std::string, std::string> meta = options_.checkpoint_metadata;
  meta["name"] = options_.name;
  meta["epoch"] = std::to_string(epoch + 1);
  meta["step"] = std::to_string(pos.step);
  const bool last_epoch = epoch + 1 == options_.epochs;
  const auto checkpoints = options_.run_dir / "checkpoints";
  if (evaluator_ && (options_.eval_every_epoch || last_epoch)) {
    summary.final_eval = evaluator_->evaluate(*model_);
    summary.final_epoch = epoch + 1;
    const auto& r = *summary.final_eval;
    const auto& m = r.metrics;
    spdlog::info("epoch {} eval: {}", epoch + 1, m.summary());
    if (m.convention != r.official.convention) {
      spdlog::info("epoch {} eval: {}", epoch + 1, r.official.summary());
    }
    log_eval(st, epoch + 1);
    meta["metrics"] = m.to_json().dump();
    meta["metrics_official"] = r.official.to_json().dump();
    update_best_by_metric(best_by_metric_, epoch + 1, r.official);
    if (selection_score(m) > pos.best_score) {
      pos.best_score = selection_score(m);
      pos.best_epoch = epoch + 1;
      best_json_ = r.labelled("best");
      summary.best = m;
      summary.best_official = r.official;
      summary.best_epoch = epoch + 1;
      if (st.main) save_adapter_weights(*model_, checkpoints / "best.safetensors", meta);
    }
  }
  if (st.main && options_.save_every_epoch) {
    save_adapter_weights(*model_, checkpoints / fmt::format("epoch_{}.safetensors", epoch + 1),
                         meta);
  }
  if (st.main) save_adapter_weights(*model_, checkpoints / "last.safetensors", meta);
  pos.epoch = epoch + 1;
  pos.sample = 0;
  finish_state(st);
  summary.epochs_done = epoch + 1;
  summary.steps = pos.step;
  summary.skipped_steps = pos.skipped_steps;
  publish(st);
  // Every rank must take the same decision: on one process the flag, on several the ranks agree
  // through a collective.
  bool stop_now = options_.stop.requested();
  if (st.distributed) {
    auto flag = torch::full({1}, stop_now ? 1.0 : 0.0);
    options_.group->all_reduce_sum(flag, "agree on stopping");
    stop_now = flag.item<double>() > 0;
  }
  const bool stop_here =
      options_.stop_after_epochs > 0 && epoch + 1 >= options_.stop_after_epochs && !last_epoch;
  if (!stop_now && !stop_here) return false;
  summary.interrupted = true;
  if (st.main) {
    spdlog::warn("stopped after epoch {}: training state saved to {} (resume with --resume {})",
                 epoch + 1, summary.state_path.string(), options_.run_dir.string());
    write_results(summary, pos, st.elapsed());
  }
  return true;
}

TrainSummary Trainer::run(bool resume) {
  RunState st;
  st.main = is_main();
  st.distributed = options_.group != nullptr;
  prepare_run_dir(resume);
  if (resume && !optimizer_) {
    throw Error(fmt::format("--resume {}: train.epochs is 0, nothing to resume",
                            options_.run_dir.string()));
  }
  auto& pos = st.pos;
  auto& summary = st.summary;
  if (resume) {
    // Every rank reads the state (the run directory is on storage all ranks see); the weights
    // are then rank 0's, as at a fresh start.
    pos = load_state();
    if (st.distributed) {
      torch::NoGradGuard no_grad;
      for (auto& p : model_->named_parameters()) {
        if (p.value().requires_grad() || p.key() == "clip.logit_scale") {
          options_.group->broadcast(p.value(), 0, "broadcast " + p.key());
        }
      }
    }
    spdlog::info("resuming {} at epoch {} sample {} (step {} of {})", options_.run_dir.string(),
                 pos.epoch + 1, pos.sample, pos.step, optimizer_->total_steps());
  } else {
    torch::manual_seed(options_.seed);
  }
  summary.best_epoch = pos.best_epoch;
  st.elapsed_before = pos.elapsed_s;

  if (st.main) {
    // The log holds exactly the records up to the state resumed from: the steps redone after it
    // are logged once, and a fresh run does not continue an earlier attempt's log.
    const auto file = options_.run_dir / "metrics.jsonl";
    rewind_metrics_log(file, !resume                  ? std::optional<uint64_t>(0)
                             : pos.metrics_bytes >= 0 ? std::optional<uint64_t>(pos.metrics_bytes)
                                                      : std::nullopt);
    st.log = std::make_unique<MetricsLog>(file);
  }
  st.amp = options_.precision == Precision::kFp16;
  if (st.amp && !amp_scale_.defined()) {
    const auto on = torch::TensorOptions().device(options_.device);
    amp_scale_ = torch::full({1}, kAmpInitScale, on.dtype(torch::kFloat));
    amp_growth_ = torch::zeros({1}, on.dtype(torch::kInt32));
  }
  st.samples_epoch = static_cast<int64_t>(loader_.epoch_order(0).size());
  st.micro_size = loader_.options().batch_size;
  st.save_every = optimizer_ ? save_interval() : 0;
  if (st.main && st.save_every > 0) {
    spdlog::info("training state saved every {} steps and at the end of each epoch", st.save_every);
  }

  for (int64_t epoch = pos.epoch; epoch < options_.epochs; ++epoch) {
    if (run_epoch(st, epoch)) return summary;
  }

  // epochs == 0 (evaluate only) or a resumed run that had already finished its epochs.
  if (!summary.final_eval && evaluator_) {
    summary.final_eval = evaluator_->evaluate(*model_);
    summary.final_epoch = pos.epoch;
    spdlog::info("eval after epoch {}: {}", pos.epoch, summary.final_eval->metrics.summary());
    log_eval(st, pos.epoch);
    if (best_json_.is_null()) {
      best_json_ = summary.final_eval->labelled("best");
      summary.best = summary.final_eval->metrics;
      summary.best_official = summary.final_eval->official;
    }
    // Zero-shot: this evaluation is every criterion's best. A resumed finished run keeps its
    // record.
    if (best_by_metric_.empty()) {
      update_best_by_metric(best_by_metric_, pos.epoch, summary.final_eval->official);
    }
  }
  summary.epochs_done = pos.epoch;
  summary.steps = pos.step;
  summary.skipped_steps = pos.skipped_steps;
  publish(st);
  return summary;
}

void Trainer::prepare_run_dir(bool resume) {
  if (!is_main()) return;
  if (fs::create_directories(options_.run_dir / "checkpoints")) sync_directory(options_.run_dir);
  // What writers killed mid-write left behind (their targets are intact).
  for (const auto& dir : {options_.run_dir, options_.run_dir / "checkpoints",
                          state_path(options_.run_dir).parent_path()}) {
    remove_stale_temp_files(dir);
  }
  const auto config_path = options_.run_dir / "config.yaml";
  if (!options_.config_yaml.empty() && (!resume || !fs::exists(config_path))) {
    write_text_atomically(config_path, options_.config_yaml);
  }
}

}  // namespace mva
