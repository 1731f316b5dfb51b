#include "mvadapter/train/optimizer.h"

#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "mvadapter/clip/clip_loader.h"
#include "mvadapter/core/error.h"
#include "mvadapter/io/safetensors.h"
#include "mvadapter/model/precision.h"
#include "mvadapter/train/lr_schedule.h"
#include "test_support.h"

namespace mva {
namespace {

// ---- schedule ----------------------------------------------------------------------------------

TEST(LrSchedule, WarmupCosineOverGlobalProgress) {
  // 100 steps, 10 % warm-up. Hand-computed: cos(0.1π) = 0.951056516295, cos(0.99π) =
  // -0.999506560366.
  EXPECT_DOUBLE_EQ(lr_factor(0, 100, 0.1, ScheduleKind::kCosine), 0.0);
  EXPECT_DOUBLE_EQ(lr_factor(5, 100, 0.1, ScheduleKind::kCosine), 0.5);
  EXPECT_NEAR(lr_factor(10, 100, 0.1, ScheduleKind::kCosine), 0.975528258148, 1e-12);
  EXPECT_NEAR(lr_factor(50, 100, 0.1, ScheduleKind::kCosine), 0.5, 1e-15);
  EXPECT_NEAR(lr_factor(99, 100, 0.1, ScheduleKind::kCosine), 0.000246719817, 1e-12);
  EXPECT_NEAR(lr_factor(100, 100, 0.1, ScheduleKind::kCosine), 0.0, 1e-15);
  // No warm-up: the first update already has the full rate.
  EXPECT_DOUBLE_EQ(lr_factor(0, 100, 0.0, ScheduleKind::kCosine), 1.0);
}

TEST(LrSchedule, WarmupLinearAndConstant) {
  EXPECT_DOUBLE_EQ(lr_factor(5, 100, 0.1, ScheduleKind::kLinear), 0.5);
  EXPECT_NEAR(lr_factor(10, 100, 0.1, ScheduleKind::kLinear), 1.0, 1e-15);
  EXPECT_NEAR(lr_factor(55, 100, 0.1, ScheduleKind::kLinear), 0.5, 1e-15);  // (0.55-1)/(0.1-1)
  EXPECT_DOUBLE_EQ(lr_factor(100, 100, 0.1, ScheduleKind::kLinear), 0.0);
  EXPECT_DOUBLE_EQ(lr_factor(120, 100, 0.1, ScheduleKind::kLinear), 0.0);  // floored at 0
  EXPECT_DOUBLE_EQ(lr_factor(2, 100, 0.1, ScheduleKind::kConstant), 0.2);
  EXPECT_DOUBLE_EQ(lr_factor(60, 100, 0.1, ScheduleKind::kConstant), 1.0);
}

TEST(LrSchedule, RejectsBadArgumentsAndNames) {
  EXPECT_ERROR_CONTAINS(lr_factor(0, 0, 0.1, ScheduleKind::kCosine), "total_steps");
  EXPECT_ERROR_CONTAINS(lr_factor(-1, 10, 0.1, ScheduleKind::kCosine), "step");
  EXPECT_ERROR_CONTAINS(lr_factor(0, 10, 1.0, ScheduleKind::kCosine), "warmup");
  EXPECT_EQ(parse_schedule_kind("linear", "train.schedule"), ScheduleKind::kLinear);
  EXPECT_ERROR_CONTAINS(parse_schedule_kind("cosin", "train.schedule"), "train.schedule");
  EXPECT_EQ(parse_optimizer_kind("bert_adam", "train.optimizer"), OptimizerKind::kBertAdam);
  EXPECT_ERROR_CONTAINS(parse_optimizer_kind("adam", "train.optimizer"), "train.optimizer");
}

// ---- a toy parameter set, one tensor per official group -------------------------------------

torch::Tensor t64(std::vector<double> v, std::vector<int64_t> shape) {
  return torch::tensor(v, torch::kDouble).reshape(shape);
}

// Names chosen so that param_group_of puts one tensor in each group.
const char* const kNames[] = {"enc.adapter.weight", "enc.adapter.bias", "clip.proj.weight",
                              "clip.proj.bias"};

Optimizer::NamedParams toy_params(torch::ScalarType dtype = torch::kDouble) {
  Optimizer::NamedParams p = {
      {kNames[0], t64({0.5, -1.0, 0.25, 2.0, 0.0, -0.75}, {2, 3})},
      {kNames[1], t64({0.1, -0.2, 0.3}, {3})},
      {kNames[2], t64({1.0, -0.5, 0.25, 0.75}, {2, 2})},
      {kNames[3], t64({0.05, -0.15}, {2})},
  };
  for (auto& [n, t] : p) t = t.to(dtype).set_requires_grad(true);
  return p;
}

// Gradients of step k (0, 1, 2) for each toy tensor; the adapter bias (norm 2.55 and 3.32 at steps
// 0 and 2) and the clip bias (norm 1.5 at step 1) exceed BertAdam's per-tensor clip of 1.
void set_grads(const Optimizer::NamedParams& params, int k) {
  static const std::vector<std::vector<double>> g[4] = {
      {{0.3, -0.2, 0.1, 0.05, -0.4, 0.6},
       {-0.1, 0.5, 0.2, 0.3, 0.0, -0.2},
       {0.2, 0.2, -0.3, -0.6, 0.1, 0.4}},
      {{1.5, -2.0, 0.5}, {0.2, 0.1, -0.3}, {3.0, 1.0, -1.0}},
      {{0.4, -0.1, 0.2, 0.3}, {-0.2, 0.25, 0.1, -0.05}, {0.05, 0.05, -0.3, 0.2}},
      {{0.5, -0.5}, {1.2, 0.9}, {-0.1, 0.2}},
  };
  for (int i = 0; i < 4; ++i) {
    auto& p = params[i].second;
    p.mutable_grad() = t64(g[i][k], p.sizes().vec()).to(p.scalar_type());
  }
}

OptimizerOptions toy_options(OptimizerKind kind, double warmup) {
  OptimizerOptions o;
  o.kind = kind;
  o.lr = 1e-2;
  o.clip_lr = 1e-3;
  o.weight_decay = 0.2;  // adapter_decay, clip_decay and clip_no_decay (official); not adapter bias
  o.warmup = warmup;
  o.schedule = ScheduleKind::kCosine;
  return o;
}

void run_steps(Optimizer& opt, const Optimizer::NamedParams& params, int from, int to) {
  for (int k = from; k < to; ++k) {
    set_grads(params, k);
    opt.step();
    opt.zero_grad();
  }
}

// Reference values shared by the AdamW and BertAdam tests below, made by /usr/bin/python3
// (Debian's PyTorch 1.13) in float64 with:
//
//   import math, torch; torch.set_default_dtype(torch.float64)
//   init, grads = <the toy tensors above>, <set_grads above, per name and step>
//   lr = {adapter.*: 1e-2, clip.*: 1e-3}; wd = {enc.adapter.bias: 0.0, others: 0.2}
//   def cosine(x, warmup): return x / warmup if x < warmup else 0.5 * (1 + math.cos(math.pi * x))
//   # (a) PyTorch's own AdamW; group lr = base * cosine(k / 4, 0.0) before step k
//   opt = torch.optim.AdamW([{"params": [p_n], "lr": lr[n], "weight_decay": wd[n]} ...],
//                           betas=(0.9, 0.98), eps=1e-6)
//   for k in range(3): set lr and grads; opt.step()
//   # (b) BertAdam, re-implemented by hand from the formula of optimizer/bert_adam.py:
//   for k in range(3):
//     g = grads[n][k]; c = 1.0 / (g.norm() + 1e-6); g = g * c if c < 1 else g
//     m = 0.9 * m + 0.1 * g; v = 0.98 * v + 0.02 * g * g
//     u = m / (v.sqrt() + 1e-6) + (wd[n] * p if wd[n] > 0 else 0)
//     p = p - lr[n] * cosine(k / 4, 0.25) * u
const std::vector<double> kAdamW[4] = {
    {0.4812255246721613, -0.99179966294352, 0.23097687939015277, 1.9748263454256865,
     0.017465882319167007, -0.7628995205754407},
    {0.07930586905779627, -0.18381793936854307, 0.2907362753477493},
    {0.9981628051020865, -0.49936768712521723, 0.2481255806127112, 0.7478348321867174},
    {0.047833346528639346, -0.14939129940635013},
};
const std::vector<double> kBertAdam[4] = {
    {0.49199518481482674, -1.003916196557766, 0.2418585307352183, 1.9892726958582245,
     0.007439120924202308, -0.7546231348826513},
    {0.08779035078985313, -0.1942918531979367, 0.3052246138272116},
    {0.9993564722644555, -0.5004769908082234, 0.24921618564156647, 0.748964193308972},
    {0.048797686482412284, -0.15022465381003883},
};

void expect_params(const Optimizer::NamedParams& params, const std::vector<double> (&want)[4],
                   double tol) {
  for (int i = 0; i < 4; ++i) {
    SCOPED_TRACE(params[i].first);
    auto w = t64(want[i], params[i].second.sizes().vec());
    EXPECT_TENSOR_NEAR(params[i].second.detach().to(torch::kDouble), w, tol);
  }
}

TEST(Optimizer, PutsEachNameInItsOfficialGroup) {
  auto params = toy_params();
  Optimizer opt(params, toy_options(OptimizerKind::kAdamW, 0.0), 4);
  EXPECT_EQ(opt.names_in(ParamGroup::kAdapterDecay), std::vector<std::string>{kNames[0]});
  EXPECT_EQ(opt.names_in(ParamGroup::kAdapterNoDecay), std::vector<std::string>{kNames[1]});
  EXPECT_EQ(opt.names_in(ParamGroup::kClipDecay), std::vector<std::string>{kNames[2]});
  EXPECT_EQ(opt.names_in(ParamGroup::kClipNoDecay), std::vector<std::string>{kNames[3]});
}

TEST(Optimizer, AdamWMatchesPyTorchWithPerGroupLrAndCosine) {
  auto params = toy_params();
  Optimizer opt(params, toy_options(OptimizerKind::kAdamW, 0.0), 4);
  run_steps(opt, params, 0, 3);
  expect_params(params, kAdamW, 1e-13);
  EXPECT_EQ(opt.step_count(), 3);
}

TEST(Optimizer, AdamWOnFloat32ParametersKeepsFloat32Moments) {
  auto params = toy_params(torch::kFloat);
  Optimizer opt(params, toy_options(OptimizerKind::kAdamW, 0.0), 4);
  run_steps(opt, params, 0, 3);
  expect_params(params, kAdamW, 1e-6);
  EXPECT_EQ(opt.state().at("enc.adapter.weight.exp_avg").scalar_type(), torch::kFloat);
  EXPECT_EQ(params[0].second.scalar_type(), torch::kFloat);
}

TEST(Optimizer, BertAdamMatchesTheOfficialFormula) {
  auto params = toy_params();
  Optimizer opt(params, toy_options(OptimizerKind::kBertAdam, 0.25), 4);
  run_steps(opt, params, 0, 3);
  expect_params(params, kBertAdam, 1e-13);
}

TEST(Optimizer, BertAdamClipsEachGradientInPlace) {
  auto params = toy_params();
  Optimizer opt(params, toy_options(OptimizerKind::kBertAdam, 0.25), 4);
  set_grads(params, 0);
  opt.step();
  // the adapter bias gradient (1.5, -2, 0.5) has norm sqrt(6.5): scaled by 1 / (sqrt(6.5) + 1e-6)
  auto g = params[1].second.grad();
  EXPECT_NEAR(g.norm().item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(g[1].item<double>(), -2.0 / std::sqrt(6.5), 1e-6);
  // the adapter weight gradient has norm < 1 and is left as it was
  EXPECT_DOUBLE_EQ(params[0].second.grad()[0][0].item<double>(), 0.3);
}

TEST(Optimizer, BertAdamClipsEachOfTheFusedQkvPartsAlone) {
  // The official CLIP keeps q_proj, k_proj and v_proj apart and BertAdam clips each of them; our
  // fused in_proj_bias must be clipped per third, not by the norm of the whole.
  Optimizer::NamedParams params = {{"clip.visual.transformer.resblocks.0.attn.in_proj_bias",
                                    torch::zeros({6}, torch::kDouble).set_requires_grad(true)}};
  Optimizer opt(params, toy_options(OptimizerKind::kBertAdam, 0.25), 4);
  params[0].second.mutable_grad() = t64({3.0, 4.0, 0.0, 0.0, 0.3, 0.4}, {6});
  opt.step();
  auto g = params[0].second.grad();
  // q (norm 5) -> norm 1; k (0) stays 0; v (norm 0.5) is under the threshold and stays.
  EXPECT_NEAR(g[0].item<double>(), 3.0 / (5.0 + 1e-6), 1e-12);
  EXPECT_NEAR(g[1].item<double>(), 4.0 / (5.0 + 1e-6), 1e-12);
  EXPECT_DOUBLE_EQ(g[2].item<double>(), 0.0);
  EXPECT_DOUBLE_EQ(g[4].item<double>(), 0.3);
  EXPECT_DOUBLE_EQ(g[5].item<double>(), 0.4);
}

TEST(Optimizer, FirstBertAdamUpdateHasZeroLrUnderWarmup) {
  // Official quirk: progress is read before the update count moves, so update 0 has factor 0.
  auto params = toy_params();
  auto before = params[0].second.detach().clone();
  Optimizer opt(params, toy_options(OptimizerKind::kBertAdam, 0.25), 4);
  EXPECT_DOUBLE_EQ(opt.lr_of(ParamGroup::kAdapterDecay), 0.0);
  set_grads(params, 0);
  opt.step();
  EXPECT_TRUE(torch::equal(params[0].second.detach(), before));
  // step 1: x = 0.25, not < 0.25 -> 0.5·(1 + cos(π/4)) = 0.853553390593
  EXPECT_NEAR(opt.lr_of(ParamGroup::kAdapterDecay), 1e-2 * 0.853553390593, 1e-14);
  EXPECT_NEAR(opt.lr_of(ParamGroup::kClipNoDecay), 1e-3 * 0.853553390593, 1e-15);
}

TEST(Optimizer, WeightDecayOnlyInDecayGroups) {
  for (auto kind : {OptimizerKind::kAdamW, OptimizerKind::kBertAdam}) {
    for (bool decay_clip_biases : {true, false}) {
      SCOPED_TRACE(to_string(kind) + (decay_clip_biases ? " decay clip biases" : ""));
      auto params = toy_params();
      auto o = toy_options(kind, 0.0);
      o.lr = 0.1;
      o.clip_lr = 0.01;
      o.weight_decay = 0.5;
      o.schedule = ScheduleKind::kConstant;
      o.decay_clip_biases = decay_clip_biases;
      std::vector<torch::Tensor> before;
      for (auto& [n, p] : params) {
        before.push_back(p.detach().clone());
        p.mutable_grad() = torch::zeros_like(p);  // zero moments: the step is the decay alone
      }
      Optimizer opt(params, o, 10);
      opt.step();
      // shrink by lr·wd: 0.1·0.5 for adapters, 0.01·0.5 for clip; none for adapter biases
      EXPECT_TENSOR_NEAR(params[0].second.detach(), before[0] * 0.95, 1e-14);
      EXPECT_TRUE(torch::equal(params[1].second.detach(), before[1]));
      EXPECT_TENSOR_NEAR(params[2].second.detach(), before[2] * 0.995, 1e-14);
      EXPECT_TENSOR_NEAR(params[3].second.detach(), before[3] * (decay_clip_biases ? 0.995 : 1.0),
                         1e-14);
    }
  }
}

TEST(Optimizer, ZeroGradLeavesParametersWithoutGradientAlone) {
  auto params = toy_params();
  Optimizer opt(params, toy_options(OptimizerKind::kAdamW, 0.0), 4);
  set_grads(params, 0);
  opt.zero_grad();
  EXPECT_FALSE(params[0].second.grad().defined());
  auto before = params[0].second.detach().clone();
  opt.step();
  EXPECT_TRUE(torch::equal(params[0].second.detach(), before));
  EXPECT_EQ(opt.state().at("enc.adapter.weight.step").item<int64_t>(), 0);
  EXPECT_EQ(opt.step_count(), 1);
}

TEST(Optimizer, BertAdamStateRoundTripsThroughSafetensorsAndResumesExactly) {
  auto a_params = toy_params();
  Optimizer a(a_params, toy_options(OptimizerKind::kBertAdam, 0.25), 4);
  run_steps(a, a_params, 0, 2);

  // Through a safetensors file, as a checkpoint holds it.
  auto dir = test::temp_dir("optimizer_state");
  write_safetensors(dir / "opt.safetensors", a.state());
  auto loaded = read_safetensors(dir / "opt.safetensors").tensors;
  EXPECT_EQ(loaded.size(), 4u * 3u + 1u);
  EXPECT_EQ(loaded.at("step").item<int64_t>(), 2);
  EXPECT_EQ(loaded.at("clip.proj.bias.step").item<int64_t>(), 2);
  EXPECT_EQ(loaded.at("enc.adapter.weight.exp_avg_sq").sizes(), torch::IntArrayRef({2, 3}));

  auto b_params = toy_params();
  for (int i = 0; i < 4; ++i) {
    torch::NoGradGuard no_grad;
    b_params[i].second.copy_(a_params[i].second);
  }
  Optimizer b(b_params, toy_options(OptimizerKind::kBertAdam, 0.25), 4);
  b.load_state(loaded);
  EXPECT_EQ(b.step_count(), 2);
  EXPECT_EQ(b.lr_of(ParamGroup::kAdapterDecay), a.lr_of(ParamGroup::kAdapterDecay));

  run_steps(a, a_params, 2, 3);
  run_steps(b, b_params, 2, 3);
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(torch::equal(a_params[i].second, b_params[i].second)) << a_params[i].first;
  }
  // and both equal the uninterrupted reference
  expect_params(b_params, kBertAdam, 1e-13);
  std::filesystem::remove_all(dir);
}

TEST(Optimizer, AdamWResumeEqualsUninterruptedRun) {
  auto ref = toy_params();
  Optimizer r(ref, toy_options(OptimizerKind::kAdamW, 0.0), 4);
  run_steps(r, ref, 0, 3);

  auto a_params = toy_params();
  Optimizer a(a_params, toy_options(OptimizerKind::kAdamW, 0.0), 4);
  run_steps(a, a_params, 0, 2);
  auto saved = a.state();
  auto b_params = toy_params();
  for (int i = 0; i < 4; ++i) {
    torch::NoGradGuard no_grad;
    b_params[i].second.copy_(a_params[i].second);
  }
  Optimizer b(b_params, toy_options(OptimizerKind::kAdamW, 0.0), 4);
  b.load_state(saved);
  run_steps(b, b_params, 2, 3);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(torch::equal(ref[i].second, b_params[i].second));
  expect_params(b_params, kAdamW, 1e-13);
}

TEST(Optimizer, LoadStateRejectsMismatchesAndStaysUnchanged) {
  auto params = toy_params();
  Optimizer opt(params, toy_options(OptimizerKind::kAdamW, 0.0), 4);
  auto good = opt.state();

  auto missing = good;
  missing.erase("clip.proj.bias.exp_avg");
  EXPECT_ERROR_CONTAINS(opt.load_state(missing), "missing tensor 'clip.proj.bias.exp_avg'");

  auto wrong_shape = good;
  wrong_shape["enc.adapter.weight.exp_avg_sq"] = torch::zeros({3, 2});
  EXPECT_ERROR_CONTAINS(opt.load_state(wrong_shape), "'enc.adapter.weight.exp_avg_sq'");

  auto extra = good;
  extra["clip.other.weight.exp_avg"] = torch::zeros({1});
  EXPECT_ERROR_CONTAINS(opt.load_state(extra), "unexpected tensor 'clip.other.weight.exp_avg'");

  auto bad_step = good;
  bad_step["step"] = torch::tensor(7, torch::kLong);
  bad_step["enc.adapter.bias.step"] = torch::tensor(1.5);
  EXPECT_ERROR_CONTAINS(opt.load_state(bad_step), "int64 scalar");
  EXPECT_EQ(opt.step_count(), 0);  // the failed load changed nothing
}

TEST(Optimizer, RejectsOutOfRangeOptions) {
  auto o = toy_options(OptimizerKind::kAdamW, 0.0);
  o.betas[1] = 1.0;
  EXPECT_ERROR_CONTAINS(Optimizer(toy_params(), o, 4), "train.betas[1]");
  o = toy_options(OptimizerKind::kAdamW, 0.0);
  o.warmup = -0.1;
  EXPECT_ERROR_CONTAINS(Optimizer(toy_params(), o, 4), "train.warmup");
  EXPECT_ERROR_CONTAINS(Optimizer(toy_params(), toy_options(OptimizerKind::kAdamW, 0.0), 0),
                        "total_steps");
  auto dup = toy_params();
  dup.push_back(dup[0]);
  EXPECT_ERROR_CONTAINS(Optimizer(dup, toy_options(OptimizerKind::kAdamW, 0.0), 4), "twice");
}

// ---- global clip and logit_scale ------------------------------------------------------------

TEST(ClipGradNorm, ScalesAllGradientsToTheMaximumNorm) {
  auto a = torch::zeros({2}, torch::kDouble).set_requires_grad(true);
  auto b = torch::zeros({1}, torch::kDouble).set_requires_grad(true);
  auto c = torch::zeros({3}, torch::kDouble).set_requires_grad(true);  // no gradient: skipped
  a.mutable_grad() = t64({3, 4}, {2});
  b.mutable_grad() = t64({12}, {1});
  // total norm sqrt(9 + 16 + 144) = 13; coefficient 1 / (13 + 1e-6)
  EXPECT_DOUBLE_EQ(clip_grad_norm({a, b, c}, 1.0), 13.0);
  EXPECT_TENSOR_NEAR(a.grad(), t64({3.0 / 13, 4.0 / 13}, {2}), 1e-6);
  EXPECT_TENSOR_NEAR(b.grad(), t64({12.0 / 13}, {1}), 1e-6);
  EXPECT_NEAR(std::hypot(a.grad().norm().item<double>(), b.grad().norm().item<double>()), 1.0,
              1e-6);
  EXPECT_FALSE(c.grad().defined());
  // below the maximum nothing changes; max_norm 0 only measures
  EXPECT_NEAR(clip_grad_norm({a, b}, 5.0), 1.0, 1e-6);
  EXPECT_TENSOR_NEAR(a.grad(), t64({3.0 / 13, 4.0 / 13}, {2}), 1e-6);
  b.mutable_grad() = t64({12}, {1});
  EXPECT_NEAR(clip_grad_norm({b}, 0.0), 12.0, 1e-12);
  EXPECT_DOUBLE_EQ(b.grad().item<double>(), 12.0);
}

TEST(ClampLogitScale, CapsAtLn100WithoutLowerBound) {
  auto s = torch::tensor(5.0).set_requires_grad(true);
  clamp_logit_scale(s);
  EXPECT_NEAR(s.item<double>(), std::log(100.0), 1e-6);
  auto low = torch::tensor(-1.0).set_requires_grad(true);
  clamp_logit_scale(low);
  EXPECT_DOUBLE_EQ(low.item<double>(), -1.0);
  EXPECT_TRUE(s.requires_grad());
}

// ---- on a real (tiny) RetrievalModel ---------------------------------------------------------

RetrievalModel tiny_model(TrainableSet trainable) {
  auto fx = test::load_fixture("mv_adapter_tiny");
  RetrievalModelConfig cfg;
  cfg.adapters = AdapterConfig::mv_adapter(/*frames=*/4, /*words=*/8, /*layers=*/2);
  cfg.adapters.video.mid_dim = cfg.adapters.text.mid_dim = 16;
  cfg.adapters.tying.mode = TyingMode::kScale;
  cfg.adapters.tying.factor_dim = 8;
  cfg.trainable = trainable;
  return RetrievalModel(load_clip(fx.dir / "clip.safetensors"), cfg);
}

TEST(Optimizer, TakesTheRecipesTrainableParametersOfAModel) {
  auto model = tiny_model(TrainableSet::kAdapters);
  Optimizer opt(*model, OptimizerOptions{}, 100);
  int64_t trainable = 0;
  for (const auto& p : model->named_parameters()) trainable += p.value().requires_grad();
  EXPECT_EQ(static_cast<int64_t>(opt.parameters().size()), trainable);
  EXPECT_FALSE(opt.names_in(ParamGroup::kAdapterDecay).empty());
  EXPECT_FALSE(opt.names_in(ParamGroup::kAdapterNoDecay).empty());
  EXPECT_TRUE(opt.names_in(ParamGroup::kClipDecay).empty());  // CLIP weights stay frozen
  auto clip_biases = opt.names_in(ParamGroup::kClipNoDecay);
  ASSERT_FALSE(clip_biases.empty());
  for (const auto& n : clip_biases) EXPECT_NE(n.find("bias"), std::string::npos) << n;
  for (const auto& n : opt.names_in(ParamGroup::kAdapterNoDecay)) {
    EXPECT_NE(n.find("bias"), std::string::npos) << n;
  }
  // default options: the official rates
  EXPECT_DOUBLE_EQ(opt.options().lr_of(ParamGroup::kAdapterDecay), 5e-6);
  EXPECT_DOUBLE_EQ(opt.options().lr_of(ParamGroup::kClipNoDecay), 1e-7);
  EXPECT_DOUBLE_EQ(opt.options().weight_decay_of(ParamGroup::kClipNoDecay), 0.2);
  EXPECT_DOUBLE_EQ(opt.options().weight_decay_of(ParamGroup::kAdapterNoDecay), 0.0);

  {
    torch::NoGradGuard no_grad;
    model->clip->logit_scale.fill_(6.0);
  }
  clamp_logit_scale(*model);
  EXPECT_NEAR(model->clip->logit_scale.item<double>(), std::log(100.0), 1e-6);
}

TEST(Optimizer, RefusesAModelWithNothingToTrain) {
  auto model = tiny_model(TrainableSet::kNone);
  EXPECT_ERROR_CONTAINS(Optimizer(*model, OptimizerOptions{}, 10), "no trainable parameter");
}

// ---- train.master_weights: fp16 (the official code's fp16 weights and moments) ---------------

namespace fp16 {

// fp16 holds v exactly.
bool is_fp16_value(double v) {
  return static_cast<double>(static_cast<float>(c10::Half(static_cast<float>(v)))) == v;
}

// One "enc.adapter.weight" (adapter_decay) tensor in fp32, BertAdam without warm-up, decay or
// per-tensor clip, lr 1e-4: the first update of a weight with gradient g (same sign everywhere)
// is lr · m / sqrt(v) = lr · 0.1 g / sqrt(0.02 g²) = 7.0711e-5 · sign(g).
struct OneTensor {
  Optimizer::NamedParams params;
  std::unique_ptr<Optimizer> opt;

  OneTensor(MasterWeights master, std::vector<float> init, std::vector<float> grad) {
    params = {{"enc.adapter.weight", torch::tensor(init).set_requires_grad(true)}};
    OptimizerOptions o;
    o.kind = OptimizerKind::kBertAdam;
    o.lr = 1e-4;
    o.weight_decay = 0.0;
    o.warmup = 0.0;
    o.max_grad_norm = 0.0;
    o.master_weights = master;
    opt = std::make_unique<Optimizer>(params, o, 100, std::set<std::string>{"enc.adapter.weight"});
    params[0].second.mutable_grad() = torch::tensor(grad);
    opt->step();
  }
  double w(int i) const { return params[0].second[i].item<double>(); }
  torch::Tensor state(const std::string& key) const {
    return opt->state().at("enc.adapter.weight." + key);
  }
};

TEST(Fp16MasterWeights, AnUpdateBelowHalfAnUlpLeavesTheWeightUnchanged) {
  // Below 1.0 an fp16 ulp is 2^-11 = 4.9e-4: an update of 7.1e-5 rounds away there, while a
  // weight at 0 (zero-initialised W_up) moves; with fp32 master weights both move.
  OneTensor half(MasterWeights::kFp16, {1.0f, 0.0f}, {0.5f, 0.5f});
  EXPECT_EQ(half.w(0), 1.0);
  EXPECT_NEAR(half.w(1), -7.0711e-5, 2e-7);
  EXPECT_TRUE(is_fp16_value(half.w(1))) << half.w(1);
  EXPECT_EQ(half.state("exp_avg").scalar_type(), torch::kHalf);
  EXPECT_EQ(half.state("exp_avg_sq").scalar_type(), torch::kHalf);

  OneTensor full(MasterWeights::kFp32, {1.0f, 0.0f}, {0.5f, 0.5f});
  const double step = 1e-4 * 0.05 / (std::sqrt(0.005) + 1e-6);  // lr · m / (sqrt(v) + eps)
  EXPECT_NEAR(full.w(0), 1.0 - step, 1e-7);
  EXPECT_NEAR(full.w(1), -step, 1e-11);
  EXPECT_EQ(full.state("exp_avg_sq").scalar_type(), torch::kFloat);
}

TEST(Fp16MasterWeights, ASecondMomentBelowFp16sRangeBecomesZero) {
  // v = 0.02 · (1e-5)² = 2e-12, far below fp16's smallest subnormal (6e-8): 0 in fp16. The first
  // moment 1e-6 is a subnormal and survives, so the update is m / eps, about 1 (as officially).
  OneTensor half(MasterWeights::kFp16, {0.0f, 0.0f}, {1e-5f, 1.0f});
  EXPECT_EQ(half.state("exp_avg_sq")[0].item<double>(), 0.0);
  EXPECT_NEAR(half.state("exp_avg")[0].item<double>(), 1e-6, 3e-8);
  EXPECT_NEAR(half.w(0), -1e-4 * 1e-6 / 1e-6, 2e-6);
  EXPECT_NEAR(half.state("exp_avg_sq")[1].item<double>(), 0.02, 1e-5);

  OneTensor full(MasterWeights::kFp32, {0.0f, 0.0f}, {1e-5f, 1.0f});
  EXPECT_NEAR(full.state("exp_avg_sq")[0].item<double>(), 2e-12, 1e-17);
  EXPECT_NEAR(full.w(0), -1e-4 * 1e-6 / (std::sqrt(2e-12) + 1e-6), 1e-9);
}

TEST(Fp16MasterWeights, OnlyTheNamedTensorsAreFp16AndTheOthersStepAsInFp32) {
  auto run = [](MasterWeights master) {
    auto params = toy_params(torch::kFloat);
    auto o = toy_options(OptimizerKind::kBertAdam, 0.25);
    o.master_weights = master;
    Optimizer opt(params, o, 4, {kNames[0]});
    run_steps(opt, params, 0, 3);
    return std::make_pair(params, opt.state());
  };
  auto [half, half_state] = run(MasterWeights::kFp16);
  auto [full, full_state] = run(MasterWeights::kFp32);
  for (int i = 1; i < 4; ++i) {
    SCOPED_TRACE(kNames[i]);
    EXPECT_TRUE(torch::equal(half[i].second, full[i].second));
    EXPECT_EQ(half_state.at(std::string(kNames[i]) + ".exp_avg").scalar_type(), torch::kFloat);
  }
  EXPECT_EQ(half_state.at(std::string(kNames[0]) + ".exp_avg").scalar_type(), torch::kHalf);
  auto w = half[0].second.detach();
  EXPECT_TRUE(torch::equal(w, w.to(torch::kHalf).to(torch::kFloat)));
  EXPECT_FALSE(torch::equal(w, full[0].second.detach()));
  // ... and within fp16 rounding of the fp32 run.
  EXPECT_TENSOR_NEAR(w, full[0].second.detach(), 2e-3);
}

TEST(Fp16MasterWeights, Fp32IgnoresTheFp16ListEntirely) {
  auto params = toy_params();
  Optimizer opt(params, toy_options(OptimizerKind::kBertAdam, 0.25), 4,
                {kNames[0], kNames[1], kNames[2], kNames[3]});
  run_steps(opt, params, 0, 3);
  expect_params(params, kBertAdam, 1e-13);  // the fp64 reference of the official formula
}

TEST(Fp16MasterWeights, NeedBertAdam) {
  auto o = toy_options(OptimizerKind::kAdamW, 0.25);
  o.master_weights = MasterWeights::kFp16;
  EXPECT_ERROR_CONTAINS(Optimizer(toy_params(), o, 4), "train.master_weights");
}

TEST(Fp16MasterWeights, RoundTheModelsOfficialTensorsAndResumeExactly) {
  OptimizerOptions o;
  o.kind = OptimizerKind::kBertAdam;
  o.lr = 1e-3;
  o.master_weights = MasterWeights::kFp16;
  auto grads_for = [](RetrievalModel& m, int k) {
    torch::manual_seed(100 + k);
    for (auto& p : m->parameters()) {
      if (p.requires_grad()) p.mutable_grad() = torch::randn_like(p) * 0.1;
    }
  };
  auto model = tiny_model(TrainableSet::kAdapters);
  const auto fp16_names = official_fp16_parameters(*model);
  Optimizer opt(*model, o, 10);
  int64_t checked = 0;
  for (const auto& p : model->named_parameters()) {
    if (!p.value().requires_grad() || !fp16_names.count(p.key())) continue;
    auto v = p.value().detach();
    EXPECT_TRUE(torch::equal(v, v.to(torch::kHalf).to(v.scalar_type()))) << p.key();
    ++checked;
  }
  EXPECT_GT(checked, 10);
  for (int k = 0; k < 2; ++k) {
    grads_for(model, k);
    opt.step();
    opt.zero_grad();
  }
  const auto saved_state = opt.state();
  std::map<std::string, torch::Tensor> saved_weights;
  for (const auto& p : model->named_parameters()) {
    saved_weights[p.key()] = p.value().detach().clone();
  }
  grads_for(model, 2);
  opt.step();

  auto resumed = tiny_model(TrainableSet::kAdapters);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : resumed->named_parameters()) p.value().copy_(saved_weights.at(p.key()));
  }
  Optimizer again(*resumed, o, 10);
  again.load_state(saved_state);
  grads_for(resumed, 2);
  again.step();
  for (const auto& p : model->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), resumed->named_parameters()[p.key()])) << p.key();
  }
}

}  // namespace fp16

}  // namespace
}  // namespace mva
