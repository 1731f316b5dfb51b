#include "mvadapter/train/trainer.h"

#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "mvadapter/core/clock.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/progress.h"
#include "mvadapter/io/atomic_file.h"
#include "mvadapter/io/safetensors.h"
#include "mvadapter/model/adapter_checkpoint.h"
#include "mvadapter/train/run_report.h"

namespace mva {

std::atomic<bool> Trainer::stop_requested_{false};

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
// good steps, x0.5 and skip the step on inf/NaN). LibTorch has no C++ GradScaler.
struct LossScaler {
  bool enabled = false;
  double scale = 65536.0;
  int64_t good_steps = 0;
};

}  // namespace

void Trainer::request_stop() {
  stop_requested_.store(true);
}
void Trainer::clear_stop() {
  stop_requested_.store(false);
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
  if (loader_.options().mode == LoaderMode::kVideos) {
    throw Error(
        "Trainer: the training loader must yield captions (mode captions or video_caption)");
  }
  check_precision(options_.precision, options_.device, "train.precision");
  model_->to(options_.device);
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

double Trainer::train_micro_batch(const VideoBatch& batch, double loss_scale) {
  const auto dev = options_.device;
  auto frames = batch.frames.to(dev);
  auto mask = batch.frame_mask.to(dev);
  auto ids = batch.token_ids.to(dev);
  torch::Tensor loss;
  {
    AutocastGuard autocast(options_.precision, dev);
    auto t = model_->embed_texts(ids);
    auto v = model_->embed_videos(frames, mask);
    loss = contrastive_loss(model_->logits(t, v).to(torch::kFloat));
  }
  (loss * (loss_scale / static_cast<double>(options_.grad_accum))).backward();
  return loss.item<double>();
}

void Trainer::save_state(const Position& pos, const nlohmann::json& best_metrics) {
  TensorMap tensors;
  for (const auto& [name, t] : trainable_state(*model_)) tensors["param." + name] = t.cpu();
  for (const auto& [k, v] : optimizer_->state()) tensors["optim." + k] = v.cpu();
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    tensors["rng.cpu"] = gen.get_state();
  }
  nlohmann::json meta = {{"epoch", pos.epoch},
                         {"sample", pos.sample},
                         {"step", pos.step},
                         {"best_epoch", pos.best_epoch},
                         {"best_score", pos.best_score},
                         {"elapsed_s", pos.elapsed_s},
                         {"total_steps", optimizer_->total_steps()},
                         {"epochs", options_.epochs},
                         {"best_metrics", best_metrics}};
  fs::create_directories(state_path(options_.run_dir).parent_path());
  write_safetensors(state_path(options_.run_dir), tensors,
                    {{"mvadapter.train_state", meta.dump()}, {"config", options_.config_yaml}});
}

Trainer::Position Trainer::load_state(nlohmann::json* best_metrics) {
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
  Position pos;
  pos.epoch = meta.at("epoch").get<int64_t>();
  pos.sample = meta.at("sample").get<int64_t>();
  pos.step = meta.at("step").get<int64_t>();
  pos.best_epoch = meta.value("best_epoch", int64_t{0});
  pos.best_score = meta.value("best_score", -1.0);
  pos.elapsed_s = meta.value("elapsed_s", 0.0);
  if (best_metrics) *best_metrics = meta.value("best_metrics", nlohmann::json());
  return pos;
}

void Trainer::write_results(const TrainSummary& s, const Position& pos, double wall_s) {
  const auto report = parameter_report(*model_);
  nlohmann::json j = options_.run_info;
  j["name"] = options_.name;
  j["trainable_params"] = report.trainable;
  j["adapter_params"] = report.adapter_params;
  j["clip_params"] = report.clip_params;
  j["percent_of_clip"] = report.percent_of_clip();
  j["epochs"] = options_.epochs;
  j["epochs_done"] = s.epochs_done;
  j["steps"] = pos.step;
  j["finished"] = !s.interrupted;
  j["best_epoch"] = s.best_epoch;
  j["best"] = best_json_;
  j["final"] = s.final_eval ? s.final_eval->metrics.to_json() : nlohmann::json();
  j["skipped_videos"] = loader_.stats().samples_skipped;
  j["eval_skipped_videos"] = s.final_eval ? s.final_eval->skipped_videos : 0;
  j["precision"] = to_string(options_.precision);
  j["wall_time_s"] = wall_s;
  j["date"] = utc_now();
  write_text_atomically(options_.run_dir / "results.json", j.dump(2) + "\n");
}

TrainSummary Trainer::run(bool resume) {
  const auto t0 = Clock::now();
  fs::create_directories(options_.run_dir / "checkpoints");
  const auto config_path = options_.run_dir / "config.yaml";
  if (!options_.config_yaml.empty() && (!resume || !fs::exists(config_path))) {
    write_text_atomically(config_path, options_.config_yaml);
  }

  Position pos;
  TrainSummary summary;
  if (resume && !optimizer_) {
    throw Error(fmt::format("--resume {}: train.epochs is 0, nothing to resume",
                            options_.run_dir.string()));
  }
  if (resume) {
    pos = load_state(&best_json_);
    spdlog::info("resuming {} at epoch {} sample {} (step {} of {})", options_.run_dir.string(),
                 pos.epoch + 1, pos.sample, pos.step, optimizer_->total_steps());
  } else {
    torch::manual_seed(options_.seed);
  }
  summary.best_epoch = pos.best_epoch;
  const double elapsed_before = pos.elapsed_s;

  MetricsLog log(options_.run_dir / "metrics.jsonl");
  LossScaler scaler;
  scaler.enabled = options_.precision == Precision::kFp16;
  const int64_t steps_epoch = steps_per_epoch();
  const int64_t samples_epoch = static_cast<int64_t>(loader_.epoch_order(0).size());

  auto finish_state = [&](const Position& p) {
    Position q = p;
    q.elapsed_s = elapsed_before + seconds_since(t0);
    save_state(q, best_json_);
    summary.state_path = state_path(options_.run_dir);
  };

  // One metrics.jsonl line per evaluation; results.json + report.html after each epoch and at
  // the end.
  auto log_eval = [&](int64_t epoch_done) {
    log.append({{"kind", "eval"},
                {"epoch", epoch_done},
                {"step", pos.step},
                {"time_s", elapsed_before + seconds_since(t0)},
                {"eval_seconds", summary.final_eval->seconds},
                {"skipped_videos", summary.final_eval->skipped_videos},
                {"metrics", summary.final_eval->metrics.to_json()}});
  };
  auto publish = [&] {
    write_results(summary, pos, elapsed_before + seconds_since(t0));
    try {
      write_run_report(options_.run_dir);
    } catch (const std::exception& e) {
      spdlog::warn("report.html not written: {}", e.what());
    }
  };

  for (int64_t epoch = pos.epoch; epoch < options_.epochs; ++epoch) {
    loader_.start_epoch(epoch, epoch == pos.epoch ? pos.sample : 0);
    model_->train();
    optimizer_->zero_grad();
    Progress progress(fmt::format("epoch {}/{}", epoch + 1, options_.epochs), samples_epoch,
                      options_.progress, epoch == pos.epoch ? pos.sample : 0);
    double epoch_loss = 0.0, window_loss = 0.0, grad_norm = 0.0;
    int64_t epoch_micro = 0, window_micro = 0, pending = 0, window_steps = 0;
    const auto window_start = Clock::now();
    auto window_t = window_start;

    auto take_step = [&] {
      const auto params = optimizer_->parameters();
      bool finite = true;
      if (scaler.enabled) {
        torch::NoGradGuard ng;
        for (const auto& p : params) {
          if (!p.grad().defined()) continue;
          p.grad().div_(scaler.scale);
          if (!torch::isfinite(p.grad()).all().item<bool>()) finite = false;
        }
      }
      if (finite) {
        grad_norm = clip_grad_norm(params, options_.grad_clip);
        optimizer_->step();
        clamp_logit_scale(*model_);
        if (scaler.enabled && ++scaler.good_steps % 2000 == 0) scaler.scale *= 2.0;
      } else {
        scaler.scale *= 0.5;
        scaler.good_steps = 0;
        spdlog::warn("fp16: non-finite gradients, step skipped, loss scale now {}", scaler.scale);
      }
      optimizer_->zero_grad();
      pending = 0;
      ++pos.step;
      ++window_steps;
      if (window_steps >= options_.log_every) {
        const double loss = window_loss / std::max<int64_t>(1, window_micro);
        nlohmann::json line = {
            {"kind", "train"},
            {"epoch", epoch + 1},
            {"step", pos.step},
            {"samples", loader_.position()},
            {"loss", loss},
            {"lr", optimizer_->lr_of(ParamGroup::kAdapterDecay)},
            {"clip_lr", optimizer_->lr_of(ParamGroup::kClipNoDecay)},
            {"logit_scale", model_->clip->logit_scale.exp().item<double>()},
            {"grad_norm", grad_norm},
            {"time_s", elapsed_before + seconds_since(t0)},
        };
        log.append(line);
        spdlog::debug("epoch {} step {}: loss {:.4f}, {:.1f} samples/s", epoch + 1, pos.step, loss,
                      static_cast<double>(window_micro * loader_.options().batch_size) /
                          std::max(1e-9, seconds_since(window_t)));
        window_loss = 0.0;
        window_micro = 0;
        window_steps = 0;
        window_t = Clock::now();
      }
    };

    while (auto batch = loader_.next()) {
      if (batch->frames.size(0) < 2) continue;  // a contrastive loss needs negatives
      const double loss = train_micro_batch(*batch, scaler.enabled ? scaler.scale : 1.0);
      if (!std::isfinite(loss)) {
        throw Error(
            fmt::format("epoch {} step {}: the training loss is {} (lower train.lr, or "
                        "use precision fp32)",
                        epoch + 1, pos.step + 1, loss));
      }
      epoch_loss += loss;
      window_loss += loss;
      ++epoch_micro;
      ++window_micro;
      progress.update(loader_.position());
      if (++pending == options_.grad_accum) {
        take_step();
        if (stop_requested_.load()) {
          progress.finish();
          pos.epoch = epoch;
          pos.sample = loader_.position();
          finish_state(pos);
          summary.interrupted = true;
          summary.epochs_done = epoch;
          summary.steps = pos.step;
          spdlog::warn("interrupted: training state saved to {} (resume with --resume {})",
                       summary.state_path.string(), options_.run_dir.string());
          write_results(summary, pos, elapsed_before + seconds_since(t0));
          return summary;
        }
      }
    }
    if (pending > 0) take_step();
    progress.finish();
    summary.epoch_loss.push_back(epoch_loss / std::max<int64_t>(1, epoch_micro));
    spdlog::info("epoch {}/{}: mean loss {:.4f} over {} batches ({} steps in all)", epoch + 1,
                 options_.epochs, summary.epoch_loss.back(), epoch_micro, pos.step);
    (void)steps_epoch;

    // End of epoch: evaluate, checkpoint, save the state to resume from the next epoch.
    std::map<std::string, std::string> meta = options_.checkpoint_metadata;
    meta["name"] = options_.name;
    meta["epoch"] = std::to_string(epoch + 1);
    meta["step"] = std::to_string(pos.step);
    const bool last_epoch = epoch + 1 == options_.epochs;
    if (evaluator_ && (options_.eval_every_epoch || last_epoch)) {
      summary.final_eval = evaluator_->evaluate(*model_);
      const auto& m = summary.final_eval->metrics;
      spdlog::info("epoch {} eval: {}", epoch + 1, m.summary());
      log_eval(epoch + 1);
      meta["metrics"] = m.to_json().dump();
      if (selection_score(m) > pos.best_score) {
        pos.best_score = selection_score(m);
        pos.best_epoch = epoch + 1;
        best_json_ = m.to_json();
        summary.best = m;
        summary.best_epoch = epoch + 1;
        save_adapter_weights(*model_, options_.run_dir / "checkpoints" / "best.safetensors", meta);
      }
    }
    if (options_.save_every_epoch) {
      save_adapter_weights(
          *model_,
          options_.run_dir / "checkpoints" / fmt::format("epoch_{}.safetensors", epoch + 1), meta);
    }
    save_adapter_weights(*model_, options_.run_dir / "checkpoints" / "last.safetensors", meta);
    pos.epoch = epoch + 1;
    pos.sample = 0;
    finish_state(pos);
    summary.epochs_done = epoch + 1;
    summary.steps = pos.step;
    publish();
    const bool stop_here =
        options_.stop_after_epochs > 0 && epoch + 1 >= options_.stop_after_epochs && !last_epoch;
    if (stop_requested_.load() || stop_here) {
      summary.interrupted = true;
      spdlog::warn("stopped after epoch {}: training state saved to {} (resume with --resume {})",
                   epoch + 1, summary.state_path.string(), options_.run_dir.string());
      write_results(summary, pos, elapsed_before + seconds_since(t0));
      return summary;
    }
  }

  // epochs == 0 (evaluate only) or a resumed run that had already finished its epochs.
  if (!summary.final_eval && evaluator_) {
    summary.final_eval = evaluator_->evaluate(*model_);
    log_eval(pos.epoch);
    if (best_json_.is_null()) {
      best_json_ = summary.final_eval->metrics.to_json();
      summary.best = summary.final_eval->metrics;
    }
  }
  summary.epochs_done = pos.epoch;
  summary.steps = pos.step;
  publish();
  return summary;
}

}  // namespace mva
