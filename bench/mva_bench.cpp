// mva_bench: one training step and one no-grad video encoding of the real ViT-B/32 or ViT-B/16
// geometry with random weights, timed with plain clocks; prints one JSON line (bench/README.md).
// What is timed is what `train` runs: the model from the msrvtt config (config/run_setup), the
// trainer's optimiser and precision, the library's contrastive loss and clips.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "mvadapter/clip/fused_attention.h"
#include "mvadapter/config/run_setup.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/runtime.h"
#include "mvadapter/model/precision.h"
#include "mvadapter/train/optimizer.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string arch = "b32";
  std::string mode = "adapter";
  std::string precision = "fp32";
  int64_t batch = 2, frames = 12, words = 32, steps = 3;
  int threads = 2;
  std::string config;                  // default: the msrvtt config of the arch and mode
  std::string profile;                 // write the op table of one profiled step here
  std::vector<std::string> overrides;  // --set, after the bench's own
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// Peak resident set of the process so far, MiB (Linux reports ru_maxrss in KiB).
double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

/// GFLOP of the matrix products of one step, counted from the shapes (2 per multiply-add):
/// patch embedding, q/k/v/out and MLP projections, QKᵀ and AV, the output projections, and the
/// adapters as if each adapter weight met every token of its branch (an upper bound, ~2 %).
/// The backward of a frozen weight needs only dX (1x its forward), of a trained one dX and dW
/// (2x); QKᵀ and AV need both operands' gradients (2x); the frozen patch embedding, whose input
/// needs no gradient, has no backward. `train` false: the video tower's forward only.
double step_gflop(const mva::ClipConfig& c, const mva::RetrievalModelImpl& model, int64_t batch,
                  int64_t frames, int64_t words, bool train, bool full) {
  const double n = static_cast<double>(batch * frames), b = static_cast<double>(batch);
  const double grid2 = static_cast<double>(c.grid() * c.grid()), tv = grid2 + 1.0;
  const double d = static_cast<double>(c.vision_width),
               w = static_cast<double>(c.transformer_width);
  const double e = static_cast<double>(c.embed_dim), l = static_cast<double>(words);
  const double p = static_cast<double>(c.vision_patch_size);
  const double patch = 2.0 * n * grid2 * 3.0 * p * p * d;
  const double v_linear =
      static_cast<double>(c.vision_layers) * 2.0 * n * tv * 12.0 * d * d + 2.0 * n * d * e;
  const double v_attn = static_cast<double>(c.vision_layers) * 2.0 * n * 2.0 * tv * tv * d;
  const double t_linear =
      static_cast<double>(c.transformer_layers) * 2.0 * b * l * 12.0 * w * w + 2.0 * b * w * e;
  const double t_attn = static_cast<double>(c.transformer_layers) * 2.0 * b * 2.0 * l * l * w;
  double v_adapter = 0.0, t_adapter = 0.0;
  for (const auto& item : model.named_parameters()) {
    if (!mva::is_adapter_tensor(item.key())) continue;
    const bool visual = item.key().find("visual") != std::string::npos;
    (visual ? v_adapter : t_adapter) +=
        2.0 * (visual ? n * tv : b * l) * static_cast<double>(item.value().numel());
  }
  if (!train) return (patch + v_linear + v_attn + v_adapter) / 1e9;
  const double fwd = patch + v_linear + v_attn + v_adapter + t_linear + t_attn + t_adapter;
  const double bwd = (full ? 2.0 : 1.0) * (v_linear + t_linear) + 2.0 * (v_attn + t_attn) +
                     2.0 * (v_adapter + t_adapter) + (full ? patch : 0.0);
  return (fwd + bwd) / 1e9;
}

/// The default config of a run: the msrvtt MV-Adapter one of the arch, or full fine-tuning.
std::string default_config(const Args& a) {
  const std::string dir = std::string(MVA_SOURCE_DIR) + "/configs/msrvtt/";
  if (a.mode == "full") return dir + "full_finetune_vit_b16.yaml";
  return dir + (a.arch == "b32" ? "mv_adapter_vit_b32.yaml" : "mv_adapter_vit_b16.yaml");
}

/// Random inputs of the shapes a batch has: normalised frames, every frame real, captions of
/// `words` tokens whose highest id (EOT) is the last.
struct Inputs {
  torch::Tensor frames, mask, ids;
};
Inputs random_inputs(const mva::ClipConfig& c, int64_t batch, int64_t frames, int64_t words) {
  Inputs in;
  in.frames = torch::randn({batch, frames, 3, c.image_resolution, c.image_resolution});
  in.mask = torch::ones({batch, frames}, torch::kLong);
  in.ids = torch::randint(1, c.vocab_size - 2, {batch, words}, torch::kLong);
  in.ids.select(1, 0).fill_(c.vocab_size - 2);  // SOT
  in.ids.select(1, words - 1).fill_(c.vocab_size - 1);
  return in;
}

/// Self and total CPU time per op of the events of one profiled region, written as a table.
void write_profile(const torch::autograd::profiler::thread_event_lists& lists,
                   const std::string& path) {
  struct Row {
    double total_us = 0, self_us = 0;
    int64_t calls = 0;
  };
  std::map<std::string, Row> rows;
  double all_us = 0;
  for (const auto& events : lists) {
    struct Open {
      const torch::autograd::profiler::LegacyEvent* event;
      double child_us;
    };
    std::vector<Open> stack;
    for (const auto& ev : events) {
      if (ev.kindStr() == "push") {
        stack.push_back({&ev, 0.0});
      } else if (ev.kindStr() == "pop" && !stack.empty()) {
        const auto open = stack.back();
        stack.pop_back();
        const double us = open.event->cpuElapsedUs(ev);
        auto& row = rows[open.event->name()];
        row.total_us += us;
        row.self_us += us - open.child_us;
        ++row.calls;
        if (stack.empty()) {
          all_us += us;
        } else {
          stack.back().child_us += us;
        }
      }
    }
  }
  std::vector<std::pair<std::string, Row>> sorted(rows.begin(), rows.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& x, const auto& y) { return x.second.self_us > y.second.self_us; });
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) throw mva::Error(fmt::format("--profile: cannot write '{}'", path));
  std::fprintf(f, "# top-level op time %.1f ms; rows by self time\n", all_us / 1e3);
  std::fprintf(f, "%-48s %10s %10s %7s %8s\n", "op", "self_ms", "total_ms", "self%", "calls");
  for (const auto& [name, row] : sorted) {
    std::fprintf(f, "%-48s %10.1f %10.1f %6.1f%% %8lld\n", name.c_str(), row.self_us / 1e3,
                 row.total_us / 1e3, 100.0 * row.self_us / std::max(all_us, 1.0),
                 static_cast<long long>(row.calls));
  }
  std::fclose(f);
}

/// GFLOP/s of a 2048³ matmul in `dtype` (median of 5 after one warm-up).
double matmul_gflops(torch::ScalarType dtype) {
  const int64_t s = 2048;
  auto a = torch::randn({s, s}).to(dtype), b = torch::randn({s, s}).to(dtype);
  std::vector<double> times;
  for (int i = 0; i < 6; ++i) {
    const auto t0 = Clock::now();
    auto c = torch::mm(a, b);
    if (i > 0) times.push_back(seconds_since(t0));
  }
  return 2.0 * s * s * s / median(times) / 1e9;
}

/// Forward + backward of one ViT block's attention core at the arch's geometry (batch x frames
/// samples of 50 or 197 tokens, 12 heads of 64), fused and through the ATen reference: ms each,
/// median of `steps` after one warm-up.
nlohmann::json attention_times(const Args& a) {
  const int64_t L = a.arch == "b32" ? 50 : 197, N = a.batch * a.frames, heads = 12, width = 768;
  auto qkv = torch::randn({L, N, 3 * width});
  auto grad_out = torch::randn({L, N, width});
  auto time = [&](auto&& attention) {
    std::vector<double> times;
    for (int64_t i = 0; i <= a.steps; ++i) {
      auto x = qkv.clone().requires_grad_(true);
      const auto t0 = Clock::now();
      attention(x).backward(grad_out);
      if (i > 0) times.push_back(seconds_since(t0) * 1e3);
    }
    return median(times);
  };
  nlohmann::json out;
  out["attention_shape"] = fmt::format("L={} N={} heads={} d=64", L, N, heads);
  out["attention_reference_ms"] =
      time([&](const torch::Tensor& x) { return mva::attention_reference(x, heads, {}); });
  out["attention_fused_ms"] = mva::fused_attention_applies(qkv)
                                  ? nlohmann::json(time([&](const torch::Tensor& x) {
                                      return mva::fused_attention(x, heads, {});
                                    }))
                                  : nlohmann::json(nullptr);
  return out;
}

nlohmann::json run(const Args& a) {
  nlohmann::json out;
  out["mode"] = a.mode;
  out["threads"] = mva::set_threads(a.threads);
  if (a.mode == "matmul") {
    out["matmul_fp32_gflops"] = matmul_gflops(torch::kFloat);
    out["matmul_bf16_gflops"] = matmul_gflops(torch::kBFloat16);
    return out;
  }
  out["arch"] = a.arch == "b32" ? "ViT-B/32" : "ViT-B/16";
  if (a.mode == "attention") {
    out.update(attention_times(a));
    return out;
  }
  out["precision"] = a.precision;
  const std::string config = a.config.empty() ? default_config(a) : a.config;
  std::vector<std::string> overrides = {"model.clip=",
                                        "model.arch=" + out["arch"].get<std::string>(),
                                        fmt::format("data.frames={}", a.frames),
                                        fmt::format("data.words={}", a.words),
                                        fmt::format("train.batch_size={}", a.batch),
                                        "train.precision=" + a.precision,
                                        fmt::format("train.threads={}", a.threads)};
  overrides.insert(overrides.end(), a.overrides.begin(), a.overrides.end());
  mva::RunConfig cfg = mva::load_run_config(config, overrides);
  mva::RetrievalModel model = mva::build_model(cfg);
  const auto& cc = model->clip->config();
  const auto options = mva::trainer_options(cfg, "");
  const auto precision = options.precision;
  const torch::Device cpu(torch::kCPU);
  int64_t trainable = 0, total = 0;
  for (const auto& p : model->parameters()) {
    total += p.numel();
    if (p.requires_grad()) trainable += p.numel();
  }
  out["config"] = config;
  out["batch"] = a.batch;
  out["frames"] = a.frames;
  out["words"] = a.words;
  out["trainable_params"] = trainable;
  out["total_params"] = total;
  const Inputs in = random_inputs(cc, a.batch, a.frames, a.words);

  out["train_step_s"] = nullptr;
  if (a.mode != "eval") {
    model->train();
    // As the Trainer's constructor sets them.
    model->clip->visual->transformer->checkpoint_blocks = options.activation_checkpointing;
    model->clip->transformer->checkpoint_blocks = options.activation_checkpointing;
    mva::Optimizer opt(*model, options.optimizer, a.steps + 1);
    // The trainer's step (Trainer::accumulate and take_step) for one process, one micro-batch.
    auto step = [&] {
      opt.zero_grad();
      torch::Tensor t, v;
      {
        mva::AutocastGuard autocast(precision, cpu);
        t = model->embed_texts(in.ids).to(torch::kFloat);
        v = model->embed_videos(in.frames, in.mask).to(torch::kFloat);
      }
      auto loss = mva::contrastive_loss(model->logits(t, v).to(torch::kFloat));
      loss.backward();
      mva::clip_grad_norm(opt.parameters(), options.grad_clip);
      opt.step();
      mva::clamp_logit_scale(*model);
    };
    step();  // warm-up: allocations, oneDNN primitives, optimiser moments
    std::vector<double> times;
    for (int64_t i = 0; i < a.steps; ++i) {
      const auto t0 = Clock::now();
      step();
      times.push_back(seconds_since(t0));
    }
    out["train_step_s"] = median(times);
    if (!a.profile.empty()) {
      torch::autograd::profiler::enableProfilerLegacy(
          torch::autograd::profiler::ProfilerConfig(torch::autograd::profiler::ProfilerState::CPU));
      step();
      write_profile(torch::autograd::profiler::disableProfilerLegacy(), a.profile);
    }
    opt.zero_grad();
  }

  model->eval();
  auto encode = [&] {
    torch::NoGradGuard no_grad;
    mva::AutocastGuard autocast(precision, cpu);
    return model->embed_videos(in.frames, in.mask);
  };
  encode();
  std::vector<double> times;
  for (int64_t i = 0; i < a.steps; ++i) {
    const auto t0 = Clock::now();
    encode();
    times.push_back(seconds_since(t0));
  }
  const double encode_s = median(times);
  out["eval_videos_per_s"] = static_cast<double>(a.batch) / encode_s;
  out["peak_rss_mib"] = peak_rss_mib();
  const bool train = a.mode != "eval";
  const double gflop = step_gflop(cc, *model, a.batch, a.frames, a.words, train, a.mode == "full");
  out["gflop_per_step"] = gflop;
  out["achieved_gflops"] = gflop / (train ? out["train_step_s"].get<double>() : encode_s);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "mva_bench: train step and no-grad encoding of MV-Adapter on random ViT-B weights; one "
      "JSON line (bench/README.md)"};
  Args a;
  app.add_option("--arch", a.arch, "b32 or b16")
      ->check(CLI::IsMember({"b32", "b16"}))
      ->capture_default_str();
  app.add_option("--mode", a.mode,
                 "adapter (MV-Adapter training), full (full fine-tuning), eval (encoding only), "
                 "matmul (2048^3 fp32/bf16 peak), attention (one block's attention core, fused vs "
                 "ATen reference, forward + backward)")
      ->check(CLI::IsMember({"adapter", "full", "eval", "matmul", "attention"}))
      ->capture_default_str();
  app.add_option("--precision", a.precision, "fp32 or bf16")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  app.add_option("--batch", a.batch, "videos (and captions) per step")->capture_default_str();
  app.add_option("--frames", a.frames, "frames per video")->capture_default_str();
  app.add_option("--words", a.words, "tokens per caption")->capture_default_str();
  app.add_option("--steps", a.steps, "timed steps after one warm-up (the median is reported)")
      ->capture_default_str();
  app.add_option("--threads", a.threads, "threads (set_threads; MVA_THREADS wins)")
      ->capture_default_str();
  app.add_option("--config", a.config, "run config (default: configs/msrvtt of arch and mode)");
  app.add_option("--set", a.overrides,
                 "override a config key: --set train.activation_checkpointing=true");
  app.add_option("--profile", a.profile,
                 "after timing, profile one more train step and write its op table here");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  try {
    std::printf("%s\n", run(a).dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mva_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
