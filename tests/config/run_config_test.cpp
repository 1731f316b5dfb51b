#include "mvadapter/config/run_config.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "mvadapter/core/error.h"
#include "test_support.h"

namespace mva {
namespace {

namespace fs = std::filesystem;

fs::path write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
  return p;
}

/// adapters.lora.targets as the names the config file uses.
std::vector<std::string> target_names(const std::vector<AttentionProjection>& targets) {
  std::vector<std::string> out;
  for (auto t : targets) out.push_back(enum_name(t));
  return out;
}

TEST(RunConfig, EmptyFileGivesThePaperRecipeDefaults) {
  auto dir = test::temp_dir("run_config_defaults");
  auto c = load_run_config(write_file(dir / "my_run.yaml", ""));
  EXPECT_EQ(c.name, "my_run");
  EXPECT_EQ(c.model.clip, fs::path());
  EXPECT_EQ(c.model.arch, "ViT-B/16");
  EXPECT_EQ(c.model.trainable, TrainableSet::kAdapters);
  EXPECT_TRUE(c.model.train_clip_biases);
  EXPECT_TRUE(c.model.use_adapters);

  const auto& v = c.adapters.video;
  EXPECT_TRUE(v.enabled);
  EXPECT_EQ(enum_name(v.type), "mv");
  EXPECT_TRUE(v.layers.empty());
  EXPECT_EQ(v.insertion, AdapterInsertion::kSeq);
  EXPECT_EQ(v.mid_dim, 64);
  EXPECT_EQ(v.heads, 2);
  EXPECT_DOUBLE_EQ(v.scale, 0.1);
  EXPECT_EQ(enum_name(v.temporal), "c");
  EXPECT_EQ(v.calibration_dim, 16);
  EXPECT_EQ(enum_name(v.activation), "quick_gelu");
  EXPECT_EQ(v.kernel, (std::vector<int64_t>{3, 1, 1}));
  EXPECT_EQ(v.seq_len, 12);
  EXPECT_EQ(enum_name(c.adapters.text.type), "mv");
  EXPECT_EQ(c.adapters.text.seq_len, 32);
  EXPECT_EQ(c.adapters.tying.mode, TyingMode::kScale);
  EXPECT_EQ(c.adapters.tying.layers, (std::vector<int64_t>{10, 11}));
  EXPECT_EQ(c.adapters.tying.factor_dim, 32);
  EXPECT_EQ(c.adapters.tying.position, TyingPosition::kDownIn);
  EXPECT_EQ(c.adapters.tying.kron_k, 4);
  EXPECT_EQ(c.adapters.lora.rank, 0);  // LoRA off
  EXPECT_DOUBLE_EQ(c.adapters.lora.alpha, 8.0);
  EXPECT_DOUBLE_EQ(c.adapters.lora.dropout, 0.0);
  EXPECT_EQ(target_names(c.adapters.lora.targets), (std::vector<std::string>{"q", "v"}));
  EXPECT_EQ(enum_name(c.adapters.lora.towers), "both");

  EXPECT_EQ(c.data.dataset, "msrvtt");
  EXPECT_EQ(c.data.train_split, "train");
  EXPECT_EQ(c.data.test_split, "test");
  EXPECT_EQ(c.data.frames, 12);
  EXPECT_EQ(c.data.words, 32);
  EXPECT_EQ(c.data.sampling, FrameSampling::kOfficial);
  EXPECT_EQ(c.data.size, 224);
  EXPECT_DOUBLE_EQ(c.data.fps, 1.0);
  EXPECT_EQ(c.data.caption_sampling, CaptionSampling::kEveryCaption);
  EXPECT_EQ(c.data.workers, 2);
  EXPECT_EQ(c.data.prefetch, 4);
  EXPECT_EQ(c.data.on_error, OnError::kSkip);

  EXPECT_EQ(c.train.epochs, 5);
  EXPECT_EQ(c.train.batch_size, 128);
  EXPECT_DOUBLE_EQ(c.train.lr, 5e-6);
  EXPECT_DOUBLE_EQ(c.train.clip_lr, 1e-7);
  EXPECT_DOUBLE_EQ(c.train.weight_decay, 0.2);
  EXPECT_DOUBLE_EQ(c.train.betas[0], 0.9);
  EXPECT_DOUBLE_EQ(c.train.betas[1], 0.98);
  EXPECT_DOUBLE_EQ(c.train.eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.train.warmup, 0.1);
  EXPECT_EQ(enum_name(c.train.schedule), "cosine");
  EXPECT_DOUBLE_EQ(c.train.grad_clip, 1.0);
  EXPECT_DOUBLE_EQ(c.train.max_grad_norm, 1.0);
  EXPECT_EQ(enum_name(c.train.optimizer), "adamw");
  EXPECT_EQ(c.train.grad_accum, 1);
  EXPECT_EQ(enum_name(c.train.precision), "fp32");
  EXPECT_EQ(c.train.seed, 42);
  EXPECT_EQ(c.train.threads, 0);
  EXPECT_EQ(c.train.device, "cpu");
  EXPECT_EQ(c.train.output_dir, fs::path("runs/my_run"));
  EXPECT_EQ(c.train.log_every, 10);
  EXPECT_TRUE(c.train.save_every_epoch);

  EXPECT_EQ(c.eval.batch_size, 64);
  EXPECT_EQ(c.eval.convention, RankConvention::kStandard);
  EXPECT_FALSE(c.eval.dsl);
  EXPECT_EQ(c.eval.chunk, 1024);
  EXPECT_TRUE(c.eval.every_epoch);
}

TEST(RunConfig, BasesMergeMapsKeyByKeyAndReplaceLists) {
  auto dir = test::temp_dir("run_config_bases");
  write_file(dir / "grand.yaml",
             "train: {lr: 1.0e-5, epochs: 7, betas: [0.8, 0.9]}\n"
             "adapters: {video: {layers: [0, 1, 2], mid_dim: 32}}\n"
             "data: {frames: 8}\n");
  write_file(dir / "parent.yaml",
             "base: grand.yaml\n"
             "train: {epochs: 3}\n"
             "adapters: {tying: {mode: none}}\n");
  // In a sub-folder: its base path is relative to its own folder.
  auto child = write_file(dir / "sub" / "child.yaml",
                          "base: ../parent.yaml\n"
                          "train:\n  batch_size: 16\n"
                          "adapters:\n  video:\n    layers: [5]\n");
  auto c = load_run_config(child);
  EXPECT_DOUBLE_EQ(c.train.lr, 1e-5);  // from the grandparent, through the parent
  EXPECT_EQ(c.train.epochs, 3);        // the parent overrides the grandparent
  EXPECT_EQ(c.train.batch_size, 16);   // the child's own
  EXPECT_DOUBLE_EQ(c.train.betas[0], 0.8);
  EXPECT_EQ(c.adapters.video.mid_dim, 32);  // sibling key of a replaced list survives
  EXPECT_EQ(c.adapters.video.layers, (std::vector<int64_t>{5}));  // replaced, not merged
  EXPECT_EQ(c.adapters.tying.mode, TyingMode::kNone);
  EXPECT_EQ(c.data.frames, 8);
  EXPECT_EQ(c.adapters.video.seq_len, 8);
  EXPECT_EQ(c.name, "child");  // a base's file name never names the run
}

TEST(RunConfig, ListOfBasesAppliesInOrderThenTheFile) {
  auto dir = test::temp_dir("run_config_base_list");
  write_file(dir / "a.yaml", "train: {lr: 1.0e-3, epochs: 1, seed: 1}\n");
  write_file(dir / "b.yaml", "train: {epochs: 2, seed: 2}\n");
  auto top = write_file(dir / "top.yaml", "base: [a.yaml, b.yaml]\ntrain: {seed: 3}\n");
  auto c = load_run_config(top);
  EXPECT_DOUBLE_EQ(c.train.lr, 1e-3);
  EXPECT_EQ(c.train.epochs, 2);
  EXPECT_EQ(c.train.seed, 3);
}

TEST(RunConfig, CyclesAndMissingBasesAreErrors) {
  auto dir = test::temp_dir("run_config_cycle");
  write_file(dir / "a.yaml", "base: b.yaml\n");
  write_file(dir / "b.yaml", "base: c.yaml\n");
  write_file(dir / "c.yaml", "base: a.yaml\n");
  EXPECT_ERROR_CONTAINS(load_run_config(dir / "a.yaml"),
                        "cycle of bases a.yaml -> b.yaml -> c.yaml -> a.yaml");
  write_file(dir / "self.yaml", "base: [self.yaml]\n");
  EXPECT_ERROR_CONTAINS(load_run_config(dir / "self.yaml"), "cycle");
  write_file(dir / "m.yaml", "train: {epochs: 1}\nbase: nowhere.yaml\n");
  EXPECT_ERROR_CONTAINS(load_run_config(dir / "m.yaml"),
                        (dir / "m.yaml").string() + ":2: base: 'nowhere.yaml' does not exist");
}

TEST(RunConfig, DiamondOfBasesIsNotACycle) {
  auto dir = test::temp_dir("run_config_diamond");
  write_file(dir / "root.yaml", "train: {epochs: 9}\n");
  write_file(dir / "l.yaml", "base: root.yaml\n");
  write_file(dir / "r.yaml", "base: root.yaml\n");
  auto c = load_run_config(write_file(dir / "top.yaml", "base: [l.yaml, r.yaml]\n"));
  EXPECT_EQ(c.train.epochs, 9);
}

TEST(RunConfig, SetOverridesScalarsListsAndNestedKeysAfterTheFile) {
  auto dir = test::temp_dir("run_config_set");
  auto f = write_file(dir / "x.yaml", "train: {lr: 1.0e-3, epochs: 2}\n");
  auto c = load_run_config(
      f, {"train.lr=1e-5", "adapters.tying.layers=[9,10,11]", "adapters.video.mid_dim=32",
          "adapters.video.heads=4", "model.clip=/w/ViT-B-32.pt", "eval.dsl=true", "train.epochs=4",
          "train.epochs=6", "adapters.video.temporal=cp", "data.words=64"});
  EXPECT_DOUBLE_EQ(c.train.lr, 1e-5);
  EXPECT_EQ(c.adapters.tying.layers, (std::vector<int64_t>{9, 10, 11}));
  EXPECT_EQ(c.adapters.video.mid_dim, 32);
  EXPECT_EQ(c.adapters.video.heads, 4);
  EXPECT_EQ(c.model.clip, fs::path("/w/ViT-B-32.pt"));
  EXPECT_TRUE(c.eval.dsl);
  EXPECT_EQ(c.train.epochs, 6);  // the last override wins
  EXPECT_EQ(enum_name(c.adapters.video.temporal), "cp");
  EXPECT_EQ(c.adapters.text.seq_len, 64);
  // A single integer is a one-element list.
  auto one = load_run_config(
      f, {"adapters.tying.layers=11", "adapters.text.layers=[11]", "adapters.video.layers=[11]"});
  EXPECT_EQ(one.adapters.tying.layers, (std::vector<int64_t>{11}));
}

TEST(RunConfig, UnknownSetKeyNamesSetAndTheClosestKey) {
  auto dir = test::temp_dir("run_config_set_unknown");
  auto f = write_file(dir / "x.yaml", "");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"train.lrr=1e-5"}),
                        "--set: train.lrr: unknown key (did you mean train.lr?)");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"adapter.video.mid_dim=3"}),
                        "--set: adapter: unknown key (did you mean adapters?)");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"train.epochs=five"}),
                        "--set: train.epochs: expected an integer, got 'five'");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"train.lr"}), "expected key.path=value");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"base=other.yaml"}),
                        "--set: base: only a config file can name bases");
}

TEST(RunConfig, UnknownKeyInAFileNamesFileLineKeyAndSuggestion) {
  auto dir = test::temp_dir("run_config_unknown");
  auto f = write_file(dir / "x.yaml", "train:\n  epochs: 2\n  lrr: 1.0e-5\n");
  EXPECT_ERROR_CONTAINS(
      load_run_config(f),
      (dir / "x.yaml").string() + ":3: train.lrr: unknown key (did you mean train.lr?)");
  auto g = write_file(dir / "y.yaml", "adapters:\n  video:\n    mid_dims: 32\n");
  EXPECT_ERROR_CONTAINS(load_run_config(g),
                        "y.yaml:3: adapters.video.mid_dims: unknown key (did "
                        "you mean adapters.video.mid_dim?)");
  // Far from every key: the valid keys of the section are listed instead.
  auto h = write_file(dir / "z.yaml", "eval:\n  something_else_entirely: 1\n");
  EXPECT_ERROR_CONTAINS(load_run_config(h),
                        "eval.something_else_entirely: unknown key (valid keys "
                        "under eval: batch_size, convention, dsl, chunk, "
                        "every_epoch)");
  // seq_len is derived from data.frames / data.words, never a key.
  auto s = write_file(dir / "s.yaml", "adapters:\n  video:\n    seq_len: 12\n");
  EXPECT_ERROR_CONTAINS(load_run_config(s), "adapters.video.seq_len: unknown key");
  // The text branch has no temporal key.
  auto t = write_file(dir / "t.yaml", "adapters:\n  text:\n    temporal: c\n");
  EXPECT_ERROR_CONTAINS(load_run_config(t), "adapters.text.temporal: unknown key");
}

TEST(RunConfig, UnknownKeyInABaseIsBlamedOnTheBase) {
  auto dir = test::temp_dir("run_config_unknown_base");
  write_file(dir / "base.yaml", "train:\n  epochs: 2\n\n  warmpu: 0.1\n");
  auto f = write_file(dir / "top.yaml", "base: base.yaml\ntrain: {epochs: 3}\n");
  EXPECT_ERROR_CONTAINS(
      load_run_config(f),
      (dir / "base.yaml").string() + ":4: train.warmpu: unknown key (did you mean train.warmup?)");
}

TEST(RunConfig, WrongTypesNameKeyFileAndExpectedType) {
  auto dir = test::temp_dir("run_config_types");
  auto check = [&](const std::string& yaml, const std::string& want) {
    auto f = write_file(dir / "t.yaml", yaml);
    EXPECT_ERROR_CONTAINS(load_run_config(f), want);
    EXPECT_ERROR_CONTAINS(load_run_config(f), (dir / "t.yaml").string() + ":");
  };
  check("train:\n  epochs: five\n", "t.yaml:2: train.epochs: expected an integer, got 'five'");
  check("train:\n  epochs: 2.5\n", "train.epochs: expected an integer, got '2.5'");
  check("train:\n  lr: [1]\n", "train.lr: expected a number, got a list");
  check("train:\n  lr: fast\n", "train.lr: expected a number, got 'fast'");
  check("eval:\n  dsl: maybe\n", "eval.dsl: expected true or false, got 'maybe'");
  check("train: 5\n", "train: expected a section with keys epochs, batch_size, lr");
  check("model:\n  clip: {a: 1}\n", "model.clip: expected a string, got a map");
  check("adapters:\n  tying:\n    layers: [a, 1]\n",
        "adapters.tying.layers: expected an integer, got 'a'");
  check("train:\n  betas: [0.9]\n", "train.betas: expected a list of two numbers");
}

TEST(RunConfig, OutOfRangeValuesAreErrors) {
  auto dir = test::temp_dir("run_config_range");
  auto f = write_file(dir / "x.yaml", "");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"train.lr=-1e-5"}),
                        "--set: train.lr: -1e-05 is out of range (expected >= 0.0)");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"data.frames=0"}),
                        "data.frames: 0 is out of range (expected >= 1)");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"data.words=78"}),
                        "data.words: 78 is out of range (expected 3 to 77)");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"train.warmup=1.5"}),
                        "train.warmup: 1.5 is out of range");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"train.eps=0"}),
                        "train.eps: 0.0 is out of range (expected > 0.0)");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"train.betas=[0.9, 1.0]"}),
                        "train.betas: 1.0 is out of range");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"adapters.tying.layers=[-1]"}),
                        "adapters.tying.layers: -1 is out of range");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"data.fps=0"}), "data.fps: 0.0 is out of range");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"train.device=gpu"}),
                        "train.device: 'gpu' is not a device (expected cpu, cuda or cuda:N)");
  EXPECT_EQ(load_run_config(f, {"train.device=cuda:1"}).train.device, "cuda:1");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"train.save_every_steps=-1"}),
                        "train.save_every_steps: -1 is out of range (expected auto or >= 0)");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"train.save_every_steps=often"}),
                        "train.save_every_steps: expected auto or an integer, got 'often'");
  EXPECT_EQ(load_run_config(f).train.save_every_steps, kAutoSaveInterval);
  EXPECT_EQ(load_run_config(f, {"train.save_every_steps=0"}).train.save_every_steps, 0);
  EXPECT_EQ(load_run_config(f, {"train.save_every_steps=AUTO"}).train.save_every_steps,
            kAutoSaveInterval);
}

/// The ConfigError `call` throws; a failure if it throws nothing or another type.
template <typename F>
std::optional<ConfigError> config_error_of(F call) {
  try {
    call();
  } catch (const ConfigError& e) {
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a ConfigError: " << e.what();
    return std::nullopt;
  }
  ADD_FAILURE() << "no error";
  return std::nullopt;
}

TEST(RunConfig, ErrorsCarryTheKeyAndWhereItWasSetAsData) {
  auto dir = test::temp_dir("run_config_error_data");
  const auto f = write_file(dir / "x.yaml", "train:\n  schedule: cosin\n");
  auto e = config_error_of([&] { load_run_config(f); });
  ASSERT_TRUE(e);
  EXPECT_EQ(e->key(), "train.schedule");
  EXPECT_EQ(e->source(), f.string() + ":2");
  EXPECT_EQ(e->problem(), "'cosin' is not one of: cosine, linear, constant");
  EXPECT_EQ(std::string(e->what()), f.string() + ":2: train.schedule: " + e->problem());

  e = config_error_of([&] { load_run_config(f, {"train.schedule=linear", "train.lrr=1"}); });
  ASSERT_TRUE(e);
  EXPECT_EQ(e->key(), "train.lrr");
  EXPECT_EQ(e->source(), "--set");

  // A check of the adapters layer (which knows no file) gets the key's origin from the config.
  const auto k =
      write_file(dir / "k.yaml", "adapters:\n  tying:\n    mode: kronecker\n    kron_k: 5\n");
  e = config_error_of([&] { load_run_config(k); });
  ASSERT_TRUE(e);
  EXPECT_EQ(e->key(), "adapters.tying.kron_k");
  EXPECT_EQ(e->source(), k.string() + ":4");
  EXPECT_EQ(e->problem(), "5 must divide the video widths 768 and 64 (model.arch ViT-B/16)");

  // Loader settings checked after loading name the key; where it was set is not known there.
  auto c = load_run_config(f, {"train.schedule=linear", "train.batch_size=6"});
  e = config_error_of([&] { train_loader_options(c, 0, 4); });
  ASSERT_TRUE(e);
  EXPECT_EQ(e->key(), "train.batch_size");
  EXPECT_EQ(e->source(), "");
}

TEST(RunConfig, EnumErrorsListTheChoices) {
  auto dir = test::temp_dir("run_config_enum");
  auto f = write_file(dir / "x.yaml", "train:\n  schedule: cosin\n");
  EXPECT_ERROR_CONTAINS(
      load_run_config(f),
      "x.yaml:2: train.schedule: 'cosin' is not one of: cosine, linear, constant");
  auto g = write_file(dir / "y.yaml", "");
  EXPECT_ERROR_CONTAINS(load_run_config(g, {"adapters.tying.position=down"}),
                        "'down' is not one of: down_in, down_out, up_in, up_out");
  EXPECT_ERROR_CONTAINS(load_run_config(g, {"model.trainable=lora"}),
                        "'lora' is not one of: adapters, full, bitfit, none");
  EXPECT_ERROR_CONTAINS(
      load_run_config(g, {"data.dataset=kinetics"}),
      "'kinetics' is not one of: msrvtt, msvd, lsmdc, didemo, activitynet, unified, jsonl, csv");
  EXPECT_ERROR_CONTAINS(load_run_config(g, {"adapters.video.insertion=serial"}),
                        "'serial' is not one of: seq, par, ln_par");
  EXPECT_ERROR_CONTAINS(load_run_config(g, {"data.sampling=random"}),
                        "'random' is not one of: official, linspace, head, tail");
  EXPECT_ERROR_CONTAINS(load_run_config(g, {"adapters.video.temporal=x"}),
                        "'x' is not one of: c, p, cp");
  EXPECT_ERROR_CONTAINS(load_run_config(g, {"train.optimizer=sgd"}),
                        "'sgd' is not one of: adamw, bert_adam");
  EXPECT_ERROR_CONTAINS(load_run_config(g, {"train.on_nonfinite=ignore"}),
                        "train.on_nonfinite: 'ignore' is not one of: stop, skip");
  EXPECT_ERROR_CONTAINS(load_run_config(g, {"model.arch=ViT-H/14"}),
                        "model.arch: 'ViT-H/14' is not one of: ViT-B/32, ViT-B/16, ViT-L/14");
  EXPECT_ERROR_CONTAINS(load_run_config(g, {"data.test_split=dev"}),
                        "data.test_split: 'dev' is not a split of msrvtt (expected one of: train, "
                        "9k, 7k, val, test, jsfusion)");
  EXPECT_ERROR_CONTAINS(load_run_config(g, {"data.dataset=msvd", "data.train_split=9k"}),
                        "data.train_split: '9k' is not a split of msvd");
}

TEST(RunConfig, SettingsThatContradictEachOtherAreErrors) {
  auto dir = test::temp_dir("run_config_cross");
  auto f = write_file(dir / "x.yaml", "adapters:\n  video:\n    layers: [0, 1]\n");
  EXPECT_ERROR_CONTAINS(load_run_config(f),
                        "adapters.tying.layers: block 10 has no adapter in both branches");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"adapters.video.enabled=false"}),
                        "adapters.tying.mode: scale tying needs adapters in both branches");
  // Without tying the same layers are fine.
  EXPECT_EQ(load_run_config(f, {"adapters.tying.mode=none"}).adapters.video.layers.size(), 2u);
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"model.use_adapters=false"}),
                        "model.trainable: adapters needs model.use_adapters: true");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"adapters.tying.mode=none", "adapters.video.heads=3"}),
                        "adapters.video.heads: 3 heads do not divide mid_dim 64");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"adapters.tying.mode=none", "train.precision=fp16"}),
                        "train.precision: fp16 needs a CUDA device");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"adapters.tying.mode=none", "train.grad_accum=3"}),
                        "train.grad_accum: 3 does not divide train.batch_size 128");
  // With random weights the geometry is known: block 12 does not exist in ViT-B.
  EXPECT_ERROR_CONTAINS(
      load_run_config(f, {"adapters.tying.mode=none", "adapters.video.layers=[12]"}),
      "adapters.video.layers: block 12 does not exist");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"name=my run"}),
                        "name: 'my run' must hold only letters");
}

TEST(RunConfig, LoraKeysAreCheckedAndReachTheModel) {
  auto dir = test::temp_dir("run_config_lora");
  auto f = write_file(dir / "l.yaml",
                      "adapters:\n  tying: {mode: none}\n  lora:\n    rank: 4\n    targets: v\n");
  auto c = load_run_config(f);
  EXPECT_EQ(target_names(c.adapters.lora.targets),
            (std::vector<std::string>{"v"}));  // one name = a list
  auto m = to_retrieval_model_config(c);
  EXPECT_EQ(m.adapters.lora.rank, 4);
  EXPECT_EQ(target_names(m.adapters.lora.targets), (std::vector<std::string>{"v"}));

  EXPECT_ERROR_CONTAINS(load_run_config(f, {"adapters.lora.targets=[q, x]"}),
                        "--set: adapters.lora.targets: 'x' is not one of: q, k, v, o");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"adapters.lora.targets=[v, v]"}),
                        "adapters.lora.targets: 'v' is listed twice");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"adapters.lora.targets=[]"}),
                        "adapters.lora.targets: LoRA needs at least one of q, k, v, o");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"adapters.lora.towers=audio"}),
                        "adapters.lora.towers: 'audio' is not one of: both, video, text");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"adapters.lora.rank=-1"}),
                        "adapters.lora.rank: -1 is out of range (expected >= 0)");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"adapters.lora.alpha=0"}),
                        "adapters.lora.alpha: 0.0 is out of range (expected > 0.0)");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"adapters.lora.dropout=1"}),
                        "adapters.lora.dropout: 1.0 is out of range (expected >= 0.0 and < 1.0)");
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"adapters.lora.rnak=2"}),
                        "adapters.lora.rnak: unknown key (did you mean adapters.lora.rank?)");
  // LoRA is part of the adapters section: without it, it would silently not be installed.
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"model.use_adapters=false", "model.trainable=bitfit"}),
                        "l.yaml:4: adapters.lora.rank: LoRA needs model.use_adapters: true");
  // Random ViT-B/16 weights: the text width is 512.
  EXPECT_ERROR_CONTAINS(load_run_config(f, {"adapters.lora.rank=600"}),
                        "adapters.lora.rank: 600 exceeds the text width 512");
  EXPECT_EQ(load_run_config(f, {"adapters.lora.rank=600", "adapters.lora.towers=video"})
                .adapters.lora.rank,
            600);
}

TEST(RunConfig, ExpandsEnvironmentVariablesInStrings) {
  auto dir = test::temp_dir("run_config_env");
  ::setenv("MVA_RC_DATA", "/datasets", 1);
  ::unsetenv("MVA_RC_UNSET");
  auto f =
      write_file(dir / "x.yaml",
                 "model:\n  clip: ${MVA_RC_UNSET}\n"
                 "data:\n  root: ${MVA_RC_DATA}/msrvtt\n  videos: ${MVA_RC_UNSET:-data}/videos\n");
  auto c = load_run_config(f);
  EXPECT_EQ(c.model.clip, fs::path());
  EXPECT_EQ(c.data.root, fs::path("/datasets/msrvtt"));
  EXPECT_EQ(c.data.videos, fs::path("data/videos"));
  auto g = write_file(dir / "y.yaml", "data:\n  root: ${MVA_RC_DATA\n");
  EXPECT_ERROR_CONTAINS(load_run_config(g), "y.yaml:2: data.root: unterminated '${'");
}

TEST(RunConfig, ToYamlRoundTripsEveryFieldAndIsStable) {
  auto dir = test::temp_dir("run_config_yaml");
  auto f = write_file(dir / "x.yaml", "");
  auto c = load_run_config(f, {"name=round.trip-1",
                               "model.clip=/w/we ird$${x}.pt",
                               "model.arch=ViT-B/32",
                               "model.trainable=adapters",
                               "model.train_clip_biases=false",
                               "adapters.video.type=bottleneck",
                               "adapters.video.layers=[3, 1, 2, 10, 11]",
                               "adapters.video.insertion=ln_par",
                               "adapters.video.mid_dim=48",
                               "adapters.video.heads=3",
                               "adapters.video.scale=0.30000000000000004",
                               "adapters.video.temporal=''",
                               "adapters.video.calibration_dim=7",
                               "adapters.video.activation=relu",
                               "adapters.video.kernel=[5, 3, 1]",
                               "adapters.text.enabled=true",
                               "adapters.text.insertion=par",
                               "adapters.text.layers=[10, 11]",
                               "adapters.tying.mode=kronecker",
                               "adapters.tying.layers=[10]",
                               "adapters.tying.factor_dim=8",
                               "adapters.tying.position=up_out",
                               "adapters.tying.kron_k=8",
                               "adapters.lora.rank=4",
                               "adapters.lora.alpha=12.5",
                               "adapters.lora.dropout=0.1",
                               "adapters.lora.targets=[o, q]",
                               "adapters.lora.towers=video",
                               "data.dataset=jsonl",
                               "data.root=ann",
                               "data.videos=vid",
                               "data.train_split=tr.jsonl",
                               "data.test_split=te.jsonl",
                               "data.frames=7",
                               "data.words=20",
                               "data.sampling=tail",
                               "data.size=96",
                               "data.fps=2.5",
                               "data.caption_sampling=one_per_video",
                               "data.workers=3",
                               "data.prefetch=0",
                               "data.on_error=fail",
                               "data.shuffle_seed=7",
                               "train.epochs=0",
                               "train.batch_size=12",
                               "train.lr=1.2345678901234567e-5",
                               "train.clip_lr=0",
                               "train.weight_decay=0.05",
                               "train.betas=[0.5, 0.999]",
                               "train.eps=1e-8",
                               "train.warmup=0",
                               "train.schedule=linear",
                               "train.grad_clip=0",
                               "train.max_grad_norm=2.5",
                               "train.optimizer=bert_adam",
                               "train.grad_accum=4",
                               "train.precision=bf16",
                               "train.seed=123",
                               "train.threads=2",
                               "train.device=cuda:0",
                               "train.output_dir=out/x",
                               "train.log_every=1",
                               "train.save_every_epoch=no",
                               "train.save_every_steps=250",
                               "train.on_nonfinite=skip",
                               "eval.batch_size=5",
                               "eval.convention=official",
                               "eval.dsl=yes",
                               "eval.chunk=17",
                               "eval.every_epoch=false"});
  const auto text = to_yaml(c);
  auto back_file = write_file(dir / "resolved.yaml", text);
  auto b = load_run_config(back_file);
  EXPECT_EQ(to_yaml(b), text);  // byte-identical: a hash of it is stable

  EXPECT_EQ(b.name, "round.trip-1");
  EXPECT_EQ(b.model.clip, fs::path("/w/we ird${x}.pt"));  // no second expansion
  EXPECT_EQ(b.model.arch, "ViT-B/32");
  EXPECT_FALSE(b.model.train_clip_biases);
  EXPECT_EQ(enum_name(b.adapters.video.type), "bottleneck");
  EXPECT_EQ(b.adapters.video.layers, (std::vector<int64_t>{3, 1, 2, 10, 11}));
  EXPECT_EQ(b.adapters.video.insertion, AdapterInsertion::kLnPar);
  EXPECT_EQ(b.adapters.video.heads, 3);
  EXPECT_EQ(b.adapters.video.scale, 0.30000000000000004);
  EXPECT_EQ(enum_name(b.adapters.video.temporal), "");
  EXPECT_EQ(b.adapters.video.calibration_dim, 7);
  EXPECT_EQ(enum_name(b.adapters.video.activation), "relu");
  EXPECT_EQ(b.adapters.video.kernel, (std::vector<int64_t>{5, 3, 1}));
  EXPECT_EQ(b.adapters.text.insertion, AdapterInsertion::kPar);
  EXPECT_EQ(b.adapters.tying.mode, TyingMode::kKronecker);
  EXPECT_EQ(b.adapters.tying.position, TyingPosition::kUpOut);
  EXPECT_EQ(b.adapters.tying.kron_k, 8);
  EXPECT_EQ(b.adapters.lora.rank, 4);
  EXPECT_EQ(b.adapters.lora.alpha, 12.5);
  EXPECT_EQ(b.adapters.lora.dropout, 0.1);
  EXPECT_EQ(target_names(b.adapters.lora.targets), (std::vector<std::string>{"o", "q"}));
  EXPECT_EQ(enum_name(b.adapters.lora.towers), "video");
  EXPECT_EQ(b.data.dataset, "jsonl");
  EXPECT_EQ(b.data.train_split, "tr.jsonl");
  EXPECT_EQ(b.data.sampling, FrameSampling::kTail);
  EXPECT_EQ(b.data.fps, 2.5);
  EXPECT_EQ(b.data.caption_sampling, CaptionSampling::kOneCaptionPerVideo);
  EXPECT_EQ(b.data.on_error, OnError::kFail);
  EXPECT_EQ(b.adapters.video.seq_len, 7);
  EXPECT_EQ(b.adapters.text.seq_len, 20);
  EXPECT_EQ(b.train.epochs, 0);
  EXPECT_EQ(b.train.lr, 1.2345678901234567e-5);  // exact: shortest round-trip text
  EXPECT_EQ(b.train.clip_lr, 0.0);
  EXPECT_EQ(b.train.betas[1], 0.999);
  EXPECT_EQ(b.train.eps, 1e-8);
  EXPECT_EQ(enum_name(b.train.schedule), "linear");
  EXPECT_EQ(enum_name(b.train.optimizer), "bert_adam");
  EXPECT_EQ(b.train.max_grad_norm, 2.5);
  EXPECT_EQ(b.train.grad_accum, 4);
  EXPECT_EQ(b.data.shuffle_seed, std::optional<int64_t>(7));
  EXPECT_EQ(enum_name(b.train.precision), "bf16");
  EXPECT_EQ(b.train.device, "cuda:0");
  EXPECT_EQ(b.train.output_dir, fs::path("out/x"));
  EXPECT_FALSE(b.train.save_every_epoch);
  EXPECT_EQ(b.train.save_every_steps, 250);
  EXPECT_EQ(b.train.on_nonfinite, NonfiniteAction::kSkip);
  EXPECT_EQ(b.eval.convention, RankConvention::kOfficial);
  EXPECT_TRUE(b.eval.dsl);
  EXPECT_EQ(b.eval.chunk, 17);
  EXPECT_FALSE(b.eval.every_epoch);

  // Every key is written, once, at its dotted place.
  auto doc = YAML::Load(text);
  for (const auto& key : run_config_keys()) {
    YAML::Node n = YAML::Clone(doc);
    std::stringstream ss(key);
    for (std::string part; std::getline(ss, part, '.');) {
      const YAML::Node& lookup = n;  // a const lookup never inserts
      n.reset(lookup[part]);
    }
    EXPECT_TRUE(n.IsDefined() && !n.IsNull()) << key << " missing from\n" << text;
  }
  EXPECT_EQ(run_config_keys().size(), 90u);
}

TEST(RunConfig, ShuffleSeedIsOptionalAndRoundTripsUnset) {
  auto c = parse_run_config("train: {seed: 3}\n", "unset.yaml");
  EXPECT_FALSE(c.data.shuffle_seed.has_value());
  const auto text = to_yaml(c);
  EXPECT_NE(text.find("shuffle_seed: ~"), std::string::npos) << text;
  auto back = parse_run_config(text, "resolved.yaml");
  EXPECT_FALSE(back.data.shuffle_seed.has_value());
  EXPECT_EQ(to_yaml(back), text);
  // --set can unset what a file sets.
  EXPECT_FALSE(parse_run_config("data: {shuffle_seed: 4}\n", "x.yaml", {"data.shuffle_seed=~"})
                   .data.shuffle_seed.has_value());
  EXPECT_EQ(parse_run_config("data: {shuffle_seed: 0}\n", "x.yaml").data.shuffle_seed,
            std::optional<int64_t>(0));
  EXPECT_ERROR_CONTAINS(parse_run_config("data: {shuffle_seed: -1}\n", "x.yaml"),
                        "data.shuffle_seed: -1 is out of range (expected >= 0 or ~)");
}

TEST(RunConfig, ShuffleSeedFixesTheDataOrderWhateverTheTrainSeed) {
  // 20 videos, 2 captions each; the files are never opened (only the order is asked for).
  Manifest m;
  for (int v = 0; v < 20; ++v) {
    VideoEntry video;
    video.id = "video" + std::to_string(v);
    video.path = "/nonexistent/v.mp4";
    m.videos.push_back(video);
    for (int k = 0; k < 2; ++k) m.captions.push_back({v, "caption"});
  }
  const auto tokenize = [](const std::string&) { return std::vector<int64_t>{49406, 49407}; };
  auto order = [&](const std::vector<std::string>& overrides, int64_t epoch) {
    auto c = parse_run_config("train: {batch_size: 4}\n", "order.yaml", overrides);
    return VideoLoader(m, train_loader_options(c), tokenize).epoch_order(epoch);
  };
  for (int64_t epoch : {0, 1}) {
    SCOPED_TRACE(epoch);
    const auto a = order({"train.seed=1", "data.shuffle_seed=0"}, epoch);
    EXPECT_EQ(order({"train.seed=2", "data.shuffle_seed=0"}, epoch), a)
        << "the same data.shuffle_seed should give the same order whatever train.seed";
    EXPECT_NE(order({"train.seed=1", "data.shuffle_seed=5"}, epoch), a)
        << "another data.shuffle_seed should give another order";
    // Unset: train.seed drives the order, as before the key existed.
    EXPECT_EQ(order({"train.seed=0"}, epoch), a);
    EXPECT_NE(order({"train.seed=1"}, epoch), order({"train.seed=2"}, epoch));
  }
}

TEST(RunConfig, ParseFromTextUsesTheSourceName) {
  auto c = parse_run_config("train: {epochs: 2}\n", "inline.yaml", {"train.seed=5"});
  EXPECT_EQ(c.name, "inline");
  EXPECT_EQ(c.train.epochs, 2);
  EXPECT_EQ(c.train.seed, 5);
  EXPECT_ERROR_CONTAINS(parse_run_config("train: {epoch: 2}\n", "inline.yaml"),
                        "inline.yaml:1: train.epoch: unknown key (did you mean train.epochs?)");
}

TEST(RunConfig, ConvertsToModelDatasetLoaderAndMetricsSettings) {
  auto f = write_file(test::temp_dir("run_config_convert") / "x.yaml",
                      "data: {frames: 32, words: 64, train_split: 7k, test_split: jsfusion, "
                      "root: ann, videos: vids, caption_sampling: one_per_video, prefetch: 2, "
                      "size: 112, fps: 0.5, sampling: linspace, workers: 3, on_error: fail}\n"
                      "train: {batch_size: 64, grad_accum: 2, seed: 9}\n"
                      "eval: {batch_size: 10, convention: official, dsl: true, chunk: 33}\n"
                      "model: {trainable: adapters, train_clip_biases: false}\n");
  auto c = load_run_config(f);
  auto m = to_retrieval_model_config(c);
  EXPECT_EQ(m.adapters.video.seq_len, 32);
  EXPECT_EQ(m.adapters.text.seq_len, 64);
  EXPECT_EQ(m.adapters.tying.layers, (std::vector<int64_t>{10, 11}));
  EXPECT_TRUE(m.use_adapters);
  EXPECT_EQ(m.trainable, TrainableSet::kAdapters);
  EXPECT_FALSE(m.train_clip_biases);

  auto tr = train_dataset_spec(c);
  EXPECT_EQ(tr.format, "msrvtt");
  EXPECT_EQ(tr.split, "train");
  EXPECT_EQ(tr.msrvtt_train_csv, "MSRVTT_train.7k.csv");
  EXPECT_EQ(tr.annotations, fs::path("ann"));
  EXPECT_EQ(tr.videos, fs::path("vids"));
  EXPECT_EQ(tr.sampling, CaptionSampling::kOneCaptionPerVideo);
  auto te = test_dataset_spec(c);
  EXPECT_EQ(te.split, "test");

  auto tl = train_loader_options(c);
  EXPECT_EQ(tl.mode, LoaderMode::kVideoCaption);
  EXPECT_EQ(tl.batch_size, 32);  // 64 per step over 2 micro-batches
  EXPECT_EQ(tl.prefetch, 64);    // 2 batches
  EXPECT_EQ(tl.clip.frames, 32);
  EXPECT_EQ(tl.clip.sampling, FrameSampling::kLinspace);
  EXPECT_EQ(tl.clip.transform.size, 112);
  EXPECT_DOUBLE_EQ(tl.clip.decode.sample_fps, 0.5);
  EXPECT_EQ(tl.max_words, 64);
  EXPECT_EQ(tl.threads, 3);
  EXPECT_EQ(tl.seed, 9u);
  EXPECT_TRUE(tl.shuffle);
  EXPECT_EQ(tl.on_error, OnError::kFail);
  auto el = eval_loader_options(c);
  EXPECT_EQ(el.mode, LoaderMode::kVideos);
  EXPECT_EQ(el.batch_size, 10);
  EXPECT_FALSE(el.shuffle);

  auto mo = metrics_options(c);
  EXPECT_EQ(mo.convention, RankConvention::kOfficial);
  EXPECT_TRUE(mo.dsl);
  EXPECT_EQ(mo.chunk_size, 33);

  auto j = load_run_config(
      f, {"data.dataset=jsonl", "data.train_split=train.jsonl", "data.test_split=sub/test.jsonl"});
  EXPECT_EQ(train_dataset_spec(j).annotations, fs::path("ann/train.jsonl"));
  EXPECT_EQ(train_dataset_spec(j).split, "train");
  EXPECT_EQ(test_dataset_spec(j).annotations, fs::path("ann/sub/test.jsonl"));
  EXPECT_EQ(test_dataset_spec(j).split, "test");
}

std::vector<fs::path> shipped_configs() {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(MVA_SOURCE_DIR) / "configs")) {
    if (e.is_regular_file() && e.path().extension() == ".yaml") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ShippedConfigs, EveryConfigLoadsValidatesAndRoundTrips) {
  ::unsetenv("CLIP_DIR");
  ::unsetenv("DATA_ROOT");
  const auto files = shipped_configs();
  // 5 datasets x 10 variants + the shared bases.
  EXPECT_GE(files.size(), 5u * 10u + 12u);
  std::set<std::string> names;
  auto dir = test::temp_dir("shipped_configs");
  for (const auto& f : files) {
    SCOPED_TRACE(f.string());
    RunConfig c;
    try {
      c = load_run_config(f);
    } catch (const Error& e) {
      ADD_FAILURE() << e.what();
      continue;
    }
    const auto folder = f.parent_path().filename().string();
    if (folder != "base" && f.stem() != "base") {
      EXPECT_TRUE(names.insert(c.name).second) << "two configs name the run " << c.name;
      EXPECT_EQ(c.name, folder + "_" + f.stem().string());
      // The synthetic Shapes demo writes MSR-VTT-format annotations (and JSONL for pre-training).
      if (folder != "synthetic") {
        EXPECT_EQ(c.data.dataset, folder);
      }
    }
    const auto text = to_yaml(c);
    EXPECT_EQ(to_yaml(load_run_config(write_file(dir / "r.yaml", text))), text);
  }
}

RunConfig shipped(const std::string& rel) {
  ::unsetenv("CLIP_DIR");
  ::unsetenv("DATA_ROOT");
  return load_run_config(fs::path(MVA_SOURCE_DIR) / "configs" / rel);
}

TEST(ShippedConfigs, MvAdapterConfigsFollowThePaperRecipe) {
  // paper-notes.md §2 and §1.8.
  auto m = shipped("msrvtt/mv_adapter_vit_b16.yaml");
  EXPECT_EQ(m.model.clip, fs::path("weights/ViT-B-16.pt"));
  EXPECT_EQ(m.model.arch, "ViT-B/16");
  EXPECT_EQ(m.data.root, fs::path("data/msrvtt/annotations"));
  EXPECT_EQ(m.data.train_split, "9k");
  EXPECT_EQ(m.data.test_split, "jsfusion");
  EXPECT_EQ(m.data.frames, 12);
  EXPECT_EQ(m.data.words, 32);
  EXPECT_EQ(m.train.batch_size, 128);
  EXPECT_EQ(m.train.epochs, 5);
  EXPECT_DOUBLE_EQ(m.train.lr, 5e-6);
  EXPECT_DOUBLE_EQ(m.train.clip_lr, 1e-7);
  EXPECT_DOUBLE_EQ(m.train.weight_decay, 0.2);
  EXPECT_DOUBLE_EQ(m.train.warmup, 0.1);
  EXPECT_EQ(enum_name(m.train.schedule), "cosine");
  EXPECT_DOUBLE_EQ(m.train.grad_clip, 1.0);
  EXPECT_EQ(enum_name(m.train.precision), "fp32");
  EXPECT_EQ(m.adapters.video.mid_dim, 64);
  EXPECT_EQ(m.adapters.video.heads, 2);
  EXPECT_DOUBLE_EQ(m.adapters.video.scale, 0.1);
  EXPECT_EQ(enum_name(m.adapters.video.temporal), "c");
  EXPECT_EQ(m.adapters.tying.mode, TyingMode::kScale);
  EXPECT_EQ(m.adapters.tying.position, TyingPosition::kDownIn);
  EXPECT_EQ(m.adapters.tying.factor_dim, 32);
  EXPECT_EQ(m.adapters.tying.layers, (std::vector<int64_t>{10, 11}));

  EXPECT_EQ(shipped("msvd/mv_adapter_vit_b16.yaml").adapters.tying.layers,
            (std::vector<int64_t>{10, 11}));
  EXPECT_EQ(shipped("lsmdc/mv_adapter_vit_b16.yaml").adapters.tying.layers,
            (std::vector<int64_t>{9, 10, 11}));
  EXPECT_EQ(shipped("didemo/mv_adapter_vit_b16.yaml").adapters.tying.layers,
            (std::vector<int64_t>{10, 11}));
  for (const auto* long_ds : {"didemo", "activitynet"}) {
    auto l = shipped(std::string(long_ds) + "/mv_adapter_vit_b16.yaml");
    EXPECT_EQ(l.data.frames, 32) << long_ds;
    EXPECT_EQ(l.data.words, 64) << long_ds;
    EXPECT_EQ(l.adapters.video.seq_len, 32) << long_ds;
    EXPECT_EQ(l.train.batch_size, 64) << long_ds;
    EXPECT_EQ(l.train.epochs, 15) << long_ds;
  }
  EXPECT_EQ(shipped("activitynet/mv_adapter_vit_b16.yaml").adapters.tying.layers,
            (std::vector<int64_t>{11}));

  auto b32 = shipped("lsmdc/mv_adapter_vit_b32.yaml");
  EXPECT_EQ(b32.model.arch, "ViT-B/32");
  EXPECT_EQ(b32.model.clip, fs::path("weights/ViT-B-32.pt"));
  EXPECT_EQ(b32.adapters.tying.layers, (std::vector<int64_t>{9, 10, 11}));
}

TEST(ShippedConfigs, OfficialCodeConfigsFollowTheOfficialCode) {
  // configs/<dataset>/*.py of the official repository (paper-notes.md §1.8 and §2).
  struct Want {
    const char* dataset;
    TyingPosition position;
    std::vector<int64_t> layers;
    bool input_norm;
  };
  const Want wants[] = {
      {"msrvtt", TyingPosition::kDownOut, {10, 11}, false},
      {"msvd", TyingPosition::kDownIn, {10, 11}, false},
      {"lsmdc", TyingPosition::kDownIn, {9, 10, 11}, false},
      {"didemo", TyingPosition::kDownOut, {10, 11}, false},
      {"activitynet", TyingPosition::kDownIn, {11}, true},
  };
  for (const auto& w : wants) {
    SCOPED_TRACE(w.dataset);
    auto c = shipped(std::string(w.dataset) + "/mv_adapter_official_code_vit_b16.yaml");
    auto paper = shipped(std::string(w.dataset) + "/mv_adapter_vit_b16.yaml");
    EXPECT_EQ(enum_name(c.train.optimizer), "bert_adam");
    EXPECT_EQ(enum_name(c.train.master_weights), "fp16");
    EXPECT_EQ(c.train.seed, 0);
    EXPECT_EQ(c.data.shuffle_seed, std::optional<int64_t>(0));
    EXPECT_EQ(c.train.emulate_world_size, 8);
    EXPECT_DOUBLE_EQ(c.train.grad_clip, 1.0);
    EXPECT_DOUBLE_EQ(c.train.max_grad_norm, 1.0);
    EXPECT_EQ(c.eval.convention, RankConvention::kOfficial);
    EXPECT_EQ(c.adapters.tying.position, w.position);
    EXPECT_EQ(c.adapters.tying.layers, w.layers);
    EXPECT_EQ(c.adapters.video.input_norm, w.input_norm);
    EXPECT_EQ(c.adapters.text.input_norm, w.input_norm);
    // The paper configs stay the default recipe.
    EXPECT_EQ(enum_name(paper.train.optimizer), "adamw");
    EXPECT_EQ(enum_name(paper.train.master_weights), "fp32");
    EXPECT_EQ(paper.adapters.tying.position, TyingPosition::kDownIn);
    EXPECT_FALSE(paper.adapters.video.input_norm);
    // Data and schedule are the dataset's, whichever recipe.
    EXPECT_EQ(c.data.frames, paper.data.frames);
    EXPECT_EQ(c.train.batch_size, paper.train.batch_size);
    EXPECT_EQ(c.train.epochs, paper.train.epochs);
  }
}

TEST(ShippedConfigs, BaselinesAndAblationsChangeOnlyWhatTheyName) {
  auto zs = shipped("msvd/zero_shot_vit_b16.yaml");
  EXPECT_EQ(zs.model.trainable, TrainableSet::kNone);
  EXPECT_FALSE(zs.model.use_adapters);
  EXPECT_EQ(zs.train.epochs, 0);
  EXPECT_EQ(zs.data.dataset, "msvd");

  auto ft = shipped("didemo/full_finetune_vit_b16.yaml");
  EXPECT_EQ(ft.model.trainable, TrainableSet::kFull);
  EXPECT_FALSE(ft.model.use_adapters);
  EXPECT_EQ(ft.train.epochs, 15);

  auto no_ta = shipped("msrvtt/no_ta_vit_b16.yaml");
  EXPECT_EQ(enum_name(no_ta.adapters.video.type), "bottleneck");
  EXPECT_EQ(enum_name(no_ta.adapters.text.type), "mv");
  EXPECT_EQ(no_ta.adapters.tying.mode, TyingMode::kScale);

  auto no_cmt = shipped("lsmdc/no_cmt_vit_b16.yaml");
  EXPECT_EQ(no_cmt.adapters.tying.mode, TyingMode::kNone);
  EXPECT_EQ(enum_name(no_cmt.adapters.video.type), "mv");

  for (const auto* v : {"seq", "par"}) {
    auto b = shipped(std::string("activitynet/bottleneck_") + v + "_vit_b16.yaml");
    const auto want = std::string(v) == "seq" ? AdapterInsertion::kSeq : AdapterInsertion::kPar;
    for (const auto* br : {&b.adapters.video, &b.adapters.text}) {
      EXPECT_EQ(enum_name(br->type), "bottleneck") << v;
      EXPECT_EQ(enum_name(br->activation), "relu") << v;
      EXPECT_EQ(br->insertion, want) << v;
    }
    EXPECT_EQ(b.adapters.tying.mode, TyingMode::kNone) << v;
    EXPECT_EQ(b.data.frames, 32) << v;
  }

  for (const auto* ds : {"msrvtt", "msvd", "lsmdc", "didemo", "activitynet"}) {
    auto bitfit = shipped(std::string(ds) + "/bitfit_vit_b16.yaml");
    EXPECT_EQ(bitfit.model.trainable, TrainableSet::kBitFit) << ds;
    EXPECT_FALSE(bitfit.model.use_adapters) << ds;
    EXPECT_EQ(bitfit.adapters.lora.rank, 0) << ds;
    EXPECT_EQ(bitfit.data.dataset, ds);

    auto lora = shipped(std::string(ds) + "/lora_vit_b16.yaml");
    EXPECT_EQ(lora.name, std::string(ds) + "_lora_vit_b16");
    EXPECT_EQ(lora.data.dataset, ds);
    EXPECT_EQ(lora.model.trainable, TrainableSet::kAdapters) << ds;
    EXPECT_TRUE(lora.model.use_adapters) << ds;
    EXPECT_FALSE(lora.model.train_clip_biases) << ds;
    EXPECT_FALSE(lora.adapters.video.enabled) << ds;
    EXPECT_FALSE(lora.adapters.text.enabled) << ds;
    EXPECT_EQ(lora.adapters.tying.mode, TyingMode::kNone) << ds;
    EXPECT_EQ(lora.adapters.lora.rank, 8) << ds;
    EXPECT_DOUBLE_EQ(lora.adapters.lora.alpha, 8.0) << ds;
    EXPECT_DOUBLE_EQ(lora.adapters.lora.dropout, 0.0) << ds;
    EXPECT_EQ(target_names(lora.adapters.lora.targets), (std::vector<std::string>{"q", "v"})) << ds;
    EXPECT_EQ(enum_name(lora.adapters.lora.towers), "both") << ds;
    EXPECT_DOUBLE_EQ(lora.train.lr, 1e-4) << ds;
    EXPECT_EQ(lora.model.arch, "ViT-B/16") << ds;
  }
  EXPECT_EQ(shipped("activitynet/lora_vit_b16.yaml").data.frames, 32);

  // The video-adapter baselines of the paper's comparison: the authors' placement in the video
  // branch and a sequential AdaptMLP in the text branch (paper-notes.md §3).
  for (const auto* ds : {"msrvtt", "msvd", "lsmdc", "didemo", "activitynet"}) {
    for (const auto* method : {"convpass", "st_adapter"}) {
      SCOPED_TRACE(std::string(ds) + "/" + method);
      auto b = shipped(std::string(ds) + "/" + method + "_vit_b16.yaml");
      EXPECT_EQ(b.data.dataset, ds);
      EXPECT_EQ(enum_name(b.adapters.video.type), method);
      EXPECT_EQ(b.adapters.video.insertion, std::string(method) == "convpass"
                                                ? AdapterInsertion::kLnPar
                                                : AdapterInsertion::kPre);
      EXPECT_EQ(enum_name(b.adapters.text.type), "bottleneck");
      EXPECT_EQ(enum_name(b.adapters.text.activation), "relu");
      EXPECT_EQ(b.adapters.text.insertion, AdapterInsertion::kSeq);
      EXPECT_EQ(b.adapters.tying.mode, TyingMode::kNone);
      EXPECT_TRUE(b.model.train_clip_biases);
    }
  }
  EXPECT_EQ(shipped("didemo/st_adapter_vit_b16.yaml").data.frames, 32);
  EXPECT_EQ(shipped("msvd/lora_vit_b16.yaml").train.epochs, 5);
}

TEST(ShippedConfigs, CmAdapterAndSeqTransfOnEveryDataset) {
  for (const auto* ds : {"msrvtt", "msvd", "lsmdc", "didemo", "activitynet"}) {
    auto cm = shipped(std::string(ds) + "/cm_adapter_vit_b16.yaml");
    EXPECT_EQ(cm.data.dataset, ds);
    EXPECT_EQ(cm.model.head, VideoHead::kMean) << ds;
    EXPECT_TRUE(cm.model.train_clip_biases) << ds;  // as MV-Adapter's recipe
    for (const auto* br : {&cm.adapters.video, &cm.adapters.text}) {
      EXPECT_EQ(enum_name(br->type), "cm_adapter") << ds;
      EXPECT_EQ(br->mid_dim, 64) << ds;
      EXPECT_TRUE(br->layers.empty()) << ds;
    }
    EXPECT_EQ(cm.adapters.cm_share_dim, 8) << ds;
    EXPECT_EQ(cm.adapters.tying.mode, TyingMode::kNone) << ds;

    auto st = shipped(std::string(ds) + "/seqtransf_vit_b16.yaml");
    EXPECT_EQ(st.data.dataset, ds);
    EXPECT_EQ(st.model.head, VideoHead::kSeqTransf) << ds;
    EXPECT_EQ(st.model.head_layers, 4) << ds;
    EXPECT_EQ(st.model.trainable, TrainableSet::kAdapters) << ds;
    EXPECT_FALSE(st.model.train_clip_biases) << ds;  // frozen CLIP, as the paper's row
    EXPECT_FALSE(st.adapters.video.enabled) << ds;
    EXPECT_FALSE(st.adapters.text.enabled) << ds;
    const auto m = to_retrieval_model_config(st);
    EXPECT_EQ(m.head, VideoHead::kSeqTransf) << ds;
    EXPECT_EQ(m.head_layers, 4) << ds;
  }
  EXPECT_EQ(shipped("didemo/seqtransf_vit_b16.yaml").data.frames, 32);
}

TEST(RunConfig, CmAdapterSettingsAreCheckedWithTheirKeys) {
  const std::string cm =
      "model: {clip: '', arch: ViT-B/16}\n"
      "adapters:\n"
      "  video: {type: cm_adapter}\n"
      "  tying: {mode: none}\n";
  EXPECT_ERROR_CONTAINS(parse_run_config(cm, "cm.yaml"), "adapters.text.type");
  auto c = parse_run_config(cm, "cm.yaml", {"adapters.text.type=cm_adapter"});
  EXPECT_EQ(c.adapters.cm_share_dim, 16);
  EXPECT_ERROR_CONTAINS(
      parse_run_config(cm, "cm.yaml",
                       {"adapters.text.type=cm_adapter", "adapters.cm_share_dim=600"}),
      "adapters.cm_share_dim: 600");
  EXPECT_ERROR_CONTAINS(parse_run_config("model: {head: attention}\n", "h.yaml"),
                        "'attention' is not one of: mean, seqtransf");
}

}  // namespace
}  // namespace mva
