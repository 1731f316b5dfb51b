#include "mvadapter/adapters/lora.h"

#include <cmath>
#include <set>

#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "test_support.h"

namespace mva {
namespace {

using P = AttentionProjection;

LoraConfig lora_config(int64_t rank, double alpha, std::vector<std::string> targets = {"q", "v"}) {
  LoraConfig c;
  c.rank = rank;
  c.alpha = alpha;
  c.targets.clear();
  for (const auto& t : targets) c.targets.push_back(parse_enum<AttentionProjection>(t, "targets"));
  return c;
}

/// rank 1, alpha 2 (scaling 2), A = [[1, 2]], B = [[3], [4]] on every target.
Lora hand_lora(std::vector<std::string> targets = {"q", "v"}) {
  Lora l(2, lora_config(1, 2.0, std::move(targets)));
  torch::NoGradGuard no_grad;
  for (auto p : {P::kQuery, P::kKey, P::kValue, P::kOutput}) {
    if (!l->adapts(p)) continue;
    l->a(p).copy_(torch::tensor({{1.0, 2.0}}));
    l->b(p).copy_(torch::tensor({{3.0}, {4.0}}));
  }
  return l;
}

/// Width 2, one head, identity projections, zero biases.
MultiheadAttention identity_attention() {
  MultiheadAttention m(2, 1);
  torch::NoGradGuard no_grad;
  m->in_proj_weight.copy_(torch::cat({torch::eye(2), torch::eye(2), torch::eye(2)}));
  m->in_proj_bias.zero_();
  m->out_proj->weight.copy_(torch::eye(2));
  m->out_proj->bias.zero_();
  return m;
}

TEST(Lora, DeltaIsScaledBTimesATimesX) {
  auto l = hand_lora();
  // A x: [1, 1] -> 3, [2, -1] -> 0; B (A x) -> [9, 12], [0, 0]; scaling 2.
  auto x = torch::tensor({{1.0, 1.0}, {2.0, -1.0}});
  auto want = torch::tensor({{18.0, 24.0}, {0.0, 0.0}});
  EXPECT_DOUBLE_EQ(l->scaling(), 2.0);
  EXPECT_TENSOR_NEAR(l->delta(P::kQuery, x), want, 0.0);
  EXPECT_TENSOR_NEAR(l->delta(P::kValue, x), want, 0.0);
  EXPECT_TRUE(l->adapts(P::kQuery) && l->adapts(P::kValue));
  EXPECT_FALSE(l->adapts(P::kKey) || l->adapts(P::kOutput));
  EXPECT_ERROR_CONTAINS(l->delta(P::kKey, x), "projection k has no update");
}

TEST(Lora, HasParametersOnlyForItsTargetsWithPeftShapes) {
  Lora l(6, lora_config(3, 8.0, {"q", "v"}));
  std::set<std::string> names;
  for (const auto& p : l->named_parameters()) names.insert(p.key());
  EXPECT_EQ(names, (std::set<std::string>{"q_a", "q_b", "v_a", "v_b"}));
  EXPECT_EQ(l->a(P::kQuery).sizes(), (std::vector<int64_t>{3, 6}));
  EXPECT_EQ(l->b(P::kValue).sizes(), (std::vector<int64_t>{6, 3}));
  EXPECT_DOUBLE_EQ(l->scaling(), 8.0 / 3.0);
  Lora all(6, lora_config(2, 2.0, {"q", "k", "v", "o"}));
  EXPECT_EQ(all->named_parameters().size(), 8u);
}

TEST(Lora, InitialisesAAsLinearAndBToZero) {
  torch::manual_seed(11);
  const int64_t width = 256;
  Lora l(width, lora_config(8, 8.0));
  // kaiming_uniform(a = sqrt 5) on [r, width]: U(-1/sqrt(width), 1/sqrt(width)), nn.Linear's init.
  const double bound = 1.0 / std::sqrt(static_cast<double>(width));
  for (auto p : {P::kQuery, P::kValue}) {
    const auto a = l->a(p);
    EXPECT_LE(a.abs().max().item<double>(), bound);
    EXPECT_GT(a.abs().max().item<double>(), 0.9 * bound);  // 2,048 draws reach the edge
    // Variance of U(-b, b) is b^2 / 3.
    EXPECT_NEAR(a.var().item<double>(), bound * bound / 3, 0.1 * bound * bound / 3);
    EXPECT_EQ(l->b(p).abs().sum().item<double>(), 0.0);
  }
}

TEST(Lora, AttentionAddsTheUpdateToQueryAndValueButNotKey) {
  auto m = identity_attention();
  m->set_lora(hand_lora().ptr());
  // Merged weights: Wq = Wv = I + 2 [[3], [4]] [[1, 2]] = [[7, 12], [8, 17]], Wk = I.
  // Tokens e1, e2 (one sequence): q_1 = [7, 8], q_2 = [12, 17]; k_i = e_i, so the scores of
  // token i are q_i / sqrt 2; v_1 = [7, 8], v_2 = [12, 17]; out_i = softmax(scores) . [v_1; v_2].
  auto x = torch::tensor({{{1.0, 0.0}}, {{0.0, 1.0}}});  // [L=2, N=1, 2]
  auto row = [](double s1, double s2) {
    const double e1 = std::exp(s1 / std::sqrt(2.0)), e2 = std::exp(s2 / std::sqrt(2.0));
    const double w1 = e1 / (e1 + e2), w2 = e2 / (e1 + e2);
    return std::vector<double>{7 * w1 + 12 * w2, 8 * w1 + 17 * w2};
  };
  const auto r1 = row(7, 8), r2 = row(12, 17);
  auto want = torch::tensor({{{r1[0], r1[1]}}, {{r2[0], r2[1]}}});
  EXPECT_TENSOR_NEAR(m->forward(x), want, 1e-6);

  // With k updated as well the scores change, so the test above would see a wrong target set.
  auto qkv = identity_attention();
  qkv->set_lora(hand_lora({"q", "k", "v"}).ptr());
  EXPECT_GT(test::relative_error(qkv->forward(x), want), 1e-2);
}

TEST(Lora, EqualsAttentionWithMergedWeights) {
  torch::manual_seed(5);
  const int64_t width = 8, heads = 2;
  MultiheadAttention base(width, heads);
  auto cfg = lora_config(3, 6.0, {"q", "v", "o"});
  auto lora = std::make_shared<LoraImpl>(width, cfg);
  {
    torch::NoGradGuard no_grad;
    for (auto p : {P::kQuery, P::kValue, P::kOutput}) lora->b(p).normal_();
  }
  MultiheadAttention merged(width, heads);
  {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < base->parameters().size(); ++i) {
      merged->parameters()[i].copy_(base->parameters()[i]);
    }
    auto update = [&](P p) { return 2.0 * torch::matmul(lora->b(p), lora->a(p)); };
    merged->in_proj_weight.slice(0, 0, width).add_(update(P::kQuery));
    merged->in_proj_weight.slice(0, 2 * width, 3 * width).add_(update(P::kValue));
    merged->out_proj->weight.add_(update(P::kOutput));
  }
  base->set_lora(lora);
  auto x = torch::randn({5, 3, width});
  auto mask = causal_mask(5);
  EXPECT_TENSOR_NEAR(base->forward(x, mask), merged->forward(x, mask), 1e-5);
}

TEST(Lora, GradientsReachAAndB) {
  torch::manual_seed(2);
  MultiheadAttention m(8, 2);
  for (auto& p : m->parameters()) p.set_requires_grad(false);
  auto lora = std::make_shared<LoraImpl>(8, lora_config(2, 4.0));
  m->set_lora(lora);
  auto x = torch::randn({4, 2, 8});
  m->forward(x).pow(2).sum().backward();
  for (auto p : {P::kQuery, P::kValue}) {
    ASSERT_TRUE(lora->b(p).grad().defined());
    EXPECT_GT(lora->b(p).grad().abs().sum().item<double>(), 0.0);
    // dL/dA = scaling · Bᵀ (dL/dy)ᵀ x is zero while B is zero, as in peft at step 0.
    ASSERT_TRUE(lora->a(p).grad().defined());
    EXPECT_EQ(lora->a(p).grad().abs().sum().item<double>(), 0.0);
  }
  EXPECT_FALSE(m->in_proj_weight.grad().defined());

  {
    torch::NoGradGuard no_grad;
    for (auto p : {P::kQuery, P::kValue}) lora->b(p).normal_();
  }
  for (auto& p : lora->parameters()) p.grad().zero_();
  m->forward(x).pow(2).sum().backward();
  for (auto p : {P::kQuery, P::kValue}) {
    EXPECT_GT(lora->a(p).grad().abs().sum().item<double>(), 0.0);
  }
}

TEST(Lora, DropoutActsOnlyWhileTraining) {
  torch::manual_seed(4);
  auto cfg = lora_config(2, 2.0);
  cfg.dropout = 0.5;
  Lora l(16, cfg);
  {
    torch::NoGradGuard no_grad;
    l->b(P::kQuery).normal_();
  }
  auto x = torch::randn({3, 16});
  auto plain = torch::matmul(torch::matmul(x, l->a(P::kQuery).t()), l->b(P::kQuery).t());
  l->eval();
  EXPECT_TENSOR_NEAR(l->delta(P::kQuery, x), plain, 1e-6);
  l->train();
  EXPECT_GT(test::relative_error(l->delta(P::kQuery, x), plain), 1e-3);
}

TEST(Lora, InstallsIntoEveryBlockOnce) {
  Transformer t(16, 3, 2);
  EXPECT_EQ(install_lora(*t, lora_config(0, 8.0)), 0);
  for (int64_t i = 0; i < 3; ++i) EXPECT_FALSE(t->block(i)->attn->lora());
  EXPECT_EQ(install_lora(*t, lora_config(4, 8.0)), 3);
  int64_t n = 0;
  for (const auto& p : t->named_parameters()) {
    if (p.key().find(".attn.lora.") != std::string::npos) n += p.value().numel();
  }
  EXPECT_EQ(n, 3 * 2 * 2 * 4 * 16);  // blocks x {q, v} x {A, B} x rank x width
  EXPECT_ERROR_CONTAINS(install_lora(*t, lora_config(4, 8.0)), "LoRA update is already installed");
}

TEST(LoraConfig, ValidationNamesTheKey) {
  auto check = [](const LoraConfig& l) {
    AdapterConfig a;
    a.tying.mode = TyingMode::kNone;
    a.lora = l;
    a.validate(64, 32, 2, 2);
  };
  EXPECT_NO_THROW(check(lora_config(8, 16.0, {"q", "k", "v", "o"})));
  EXPECT_ERROR_CONTAINS(check(lora_config(8, 16.0, {"q", "q"})),
                        "adapters.lora.targets: 'q' is listed twice");
  EXPECT_ERROR_CONTAINS(check(lora_config(8, 16.0, {})), "adapters.lora.targets: empty");
  EXPECT_ERROR_CONTAINS(check(lora_config(8, 0.0)), "adapters.lora.alpha");
  EXPECT_ERROR_CONTAINS(check(lora_config(-1, 8.0)), "adapters.lora.rank: -1 is negative");
  EXPECT_ERROR_CONTAINS(check(lora_config(48, 8.0)),
                        "adapters.lora.rank: 48 exceeds the text width 32");
  auto video_only = lora_config(48, 8.0);
  video_only.towers = LoraTowers::kVideo;
  EXPECT_NO_THROW(check(video_only));
}

TEST(LoraConfig, TowersAndTargets) {
  auto c = lora_config(4, 8.0);
  EXPECT_TRUE(c.on_tower(true) && c.on_tower(false));
  c.towers = LoraTowers::kText;
  EXPECT_FALSE(c.on_tower(true));
  EXPECT_TRUE(c.on_tower(false));
  c.rank = 0;
  EXPECT_FALSE(c.on_tower(false));
  EXPECT_TRUE(c.targets_projection(P::kQuery) && c.targets_projection(P::kValue));
  EXPECT_FALSE(c.targets_projection(P::kKey) || c.targets_projection(P::kOutput));
}

}  // namespace
}  // namespace mva
