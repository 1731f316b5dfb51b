#include "mvadapter/config/config_tree.h"

#include <cstdlib>
#include <fstream>

#include "mvadapter/core/error.h"
#include "test_support.h"

namespace mva {
namespace {

void write_file(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

TEST(MergeYaml, MapsMergeKeyByKeyListsAndScalarsAreReplaced) {
  auto base = YAML::Load("a: {x: 1, y: [1, 2, 3], z: {p: 1}}\nb: 2");
  auto over = YAML::Load("a: {y: [9], z: {q: 2}}\nc: 3");
  auto m = merge_yaml(base, over);
  EXPECT_EQ(m["a"]["x"].as<int>(), 1);
  ASSERT_EQ(m["a"]["y"].size(), 1u);
  EXPECT_EQ(m["a"]["y"][0].as<int>(), 9);
  EXPECT_EQ(m["a"]["z"]["p"].as<int>(), 1);
  EXPECT_EQ(m["a"]["z"]["q"].as<int>(), 2);
  EXPECT_EQ(m["b"].as<int>(), 2);
  EXPECT_EQ(m["c"].as<int>(), 3);
  // The inputs are untouched.
  EXPECT_EQ(base["a"]["y"].size(), 3u);
  EXPECT_FALSE(base["a"]["z"]["q"].IsDefined());
}

TEST(MergeYaml, NullOverAMapKeepsTheMap) {
  auto m = merge_yaml(YAML::Load("eval: {dsl: true}"), YAML::Load("eval:"));
  EXPECT_TRUE(m["eval"]["dsl"].as<bool>());
}

TEST(ExpandEnv, ReplacesVariablesDefaultsAndEscapes) {
  ::setenv("MVA_CT_SET", "/data", 1);
  ::setenv("MVA_CT_EMPTY", "", 1);
  ::unsetenv("MVA_CT_UNSET");
  EXPECT_EQ(expand_env("${MVA_CT_SET}/msrvtt", "k"), "/data/msrvtt");
  EXPECT_EQ(expand_env("${MVA_CT_UNSET}/msrvtt", "k"), "/msrvtt");
  EXPECT_EQ(expand_env("${MVA_CT_UNSET:-data}/x", "k"), "data/x");
  EXPECT_EQ(expand_env("${MVA_CT_EMPTY:-data}/x", "k"), "data/x");
  EXPECT_EQ(expand_env("${MVA_CT_SET:-data}/x", "k"), "/data/x");
  EXPECT_EQ(expand_env("cost $5 and $${MVA_CT_SET}", "k"), "cost $5 and ${MVA_CT_SET}");
  EXPECT_ERROR_CONTAINS(expand_env("${MVA_CT_SET/x", "cfg.yaml:3: data.root"),
                        "cfg.yaml:3: data.root: unterminated");
  EXPECT_ERROR_CONTAINS(expand_env("${1BAD}", "data.root"), "data.root");
}

TEST(ExpandEnv, EscapeEnvIsItsInverse) {
  for (std::string s : {"plain", "${HOME}", "$${x", "a$b${c}$", "$$", "${"}) {
    EXPECT_EQ(expand_env(escape_env(s), "k"), s) << s;
  }
}

TEST(EditDistance, CountsInsertionsDeletionsAndSubstitutions) {
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("train.lrr", "train.lr"), 1u);
  EXPECT_EQ(edit_distance("same", "same"), 0u);
  EXPECT_EQ(closest_match("train.lrr", {"train.epochs", "train.lr", "train.clip_lr"}), "train.lr");
  EXPECT_EQ(closest_match("x", {}), "");
}

TEST(ConfigTree, RecordsFileAndLineOfEveryKey) {
  auto dir = test::temp_dir("config_tree_lines");
  write_file(dir / "a.yaml", "train:\n  lr: 1\n  epochs: 2\n");
  auto t = load_config_tree(dir / "a.yaml");
  EXPECT_EQ(t.origin_of("train.epochs"), (dir / "a.yaml").string() + ":3");
  EXPECT_EQ(t.origin_of("train"), (dir / "a.yaml").string() + ":1");
  // A key never written falls back to its section, then to the file.
  EXPECT_EQ(t.origin_of("train.seed"), (dir / "a.yaml").string() + ":1");
  EXPECT_EQ(t.origin_of("eval.dsl"), (dir / "a.yaml").string());
}

TEST(ConfigTree, RejectsDuplicateKeysNonMapDocumentsAndBadYaml) {
  auto dir = test::temp_dir("config_tree_bad");
  write_file(dir / "dup.yaml", "train:\n  lr: 1\n  lr: 2\n");
  EXPECT_ERROR_CONTAINS(load_config_tree(dir / "dup.yaml"),
                        "dup.yaml:3: train.lr: the key appears twice");
  write_file(dir / "list.yaml", "- 1\n- 2\n");
  EXPECT_ERROR_CONTAINS(load_config_tree(dir / "list.yaml"), "list.yaml: expected a map");
  write_file(dir / "bad.yaml", "train:\n  lr: [1, 2\n");
  EXPECT_ERROR_CONTAINS(load_config_tree(dir / "bad.yaml"), "bad.yaml:");
  EXPECT_ERROR_CONTAINS(load_config_tree(dir / "bad.yaml"), "invalid YAML");
  EXPECT_ERROR_CONTAINS(load_config_tree(dir / "missing.yaml"), "missing.yaml: cannot read");
  write_file(dir / "base_map.yaml", "base: {a: 1}\n");
  EXPECT_ERROR_CONTAINS(load_config_tree(dir / "base_map.yaml"),
                        "base_map.yaml:1: base: expected a path or a list of paths");
}

// Binary garbage (NULs, invalid UTF-8, control bytes) as a config: one error naming the file.
TEST(ConfigTree, BinaryGarbageIsOneErrorNamingTheFile) {
  auto dir = test::temp_dir("config_tree_garbage");
  for (uint32_t seed : {1u, 2u, 3u}) {
    std::string garbage;
    uint32_t state = seed;
    for (int i = 0; i < 2048; ++i) {
      state = state * 1103515245u + 12345u;
      garbage += static_cast<char>(state >> 24);
    }
    write_file(dir / "garbage.yaml", garbage);
    EXPECT_ERROR_CONTAINS(load_config_tree(dir / "garbage.yaml"), "garbage.yaml");
  }
}

TEST(ConfigTree, OverridesParseYamlValuesAndAreBlamedOnSet) {
  ConfigTree t = parse_config_tree("train: {lr: 1, epochs: 3}\n", "text");
  apply_override(t, "train.lr=1e-5");
  apply_override(t, "adapters.tying.layers=[9, 10, 11]");
  apply_override(t, "model.clip=");
  apply_override(t, "train={seed: 7}");
  EXPECT_EQ(t.root["train"]["lr"].Scalar(), "1e-5");
  EXPECT_EQ(t.root["train"]["epochs"].as<int>(), 3);
  EXPECT_EQ(t.root["train"]["seed"].as<int>(), 7);
  ASSERT_TRUE(t.root["adapters"]["tying"]["layers"].IsSequence());
  EXPECT_EQ(t.root["adapters"]["tying"]["layers"][2].as<int>(), 11);
  EXPECT_EQ(t.root["model"]["clip"].Scalar(), "");
  EXPECT_EQ(t.origin_of("train.lr"), "--set");
  EXPECT_EQ(t.origin_of("train.seed"), "--set");
  EXPECT_EQ(t.origin_of("adapters"), "--set");
  EXPECT_EQ(t.origin_of("train.epochs"), "text:1");
  EXPECT_ERROR_CONTAINS(apply_override(t, "train.lr"), "--set train.lr: expected key.path=value");
  EXPECT_ERROR_CONTAINS(apply_override(t, "train..lr=1"), "is not a dotted key");
  EXPECT_ERROR_CONTAINS(apply_override(t, "train.lr=[1"), "invalid YAML");
}

}  // namespace
}  // namespace mva
