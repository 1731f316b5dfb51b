// The model subcommands run as a user runs them: exit codes and the lines people read.
#include <cmath>
#include <string>

#include "mvadapter/io/safetensors.h"
#include "test_support.h"

namespace mva {
namespace {

std::string cli() {
  return test::cli_binary().string();
}

TEST(VerifyReferenceCli, PassesOnTheOfficialFixtureAndExitsZero) {
  std::string out;
  int rc = test::run_command(
      cli() + " verify-reference --threads 1 " + test::fixture_path("mv_adapter_tiny").string(),
      &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("out.loss"), std::string::npos) << out;
  EXPECT_NE(out.find("PASS"), std::string::npos) << out;
  // The folder has the training-loop fixtures too: both are replayed and pass.
  EXPECT_NE(out.find("replay of train_steps: 6 steps, 1 rank emulated, fp64"), std::string::npos)
      << out;
  EXPECT_NE(out.find("replay of dist_steps: 6 steps, 2 ranks emulated, fp64"), std::string::npos)
      << out;
  EXPECT_EQ(out.find("FAIL"), std::string::npos) << out;
}

TEST(VerifyReferenceCli, WrongTrainingStepIsAFailLineAndExitOne) {
  auto src = test::fixture_path("mv_adapter_tiny");
  auto dir = test::temp_dir("verify_cli_steps");
  for (const char* f : {"config.json", "clip.safetensors", "adapter.safetensors", "io.safetensors",
                        "train_steps.json"}) {
    std::filesystem::copy_file(src / f, dir / f);
  }
  auto steps = read_safetensors(src / "train_steps.safetensors").tensors;
  auto& loss = steps.at("step.loss");
  loss = loss.clone();
  loss[3] += 0.01;  // a step whose loss the official run did not have
  write_safetensors(dir / "train_steps.safetensors", steps);
  std::string out;
  int rc = test::run_command(cli() + " verify-reference --threads 1 " + dir.string(), &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("step.loss"), std::string::npos) << out;
  EXPECT_NE(out.find("(fp64 replay of train_steps): FAIL"), std::string::npos) << out;
}

TEST(VerifyReferenceCli, MissingFolderIsOneErrorLineAndExitOne) {
  std::string out;
  int rc = test::run_command(cli() + " verify-reference /no/such/dir", &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_EQ(out.rfind("error: /no/such/dir/config.json: cannot open", 0), 0u) << out;
}

TEST(ParamsCli, PrintsThePaperRatioForTheMsrVttRecipe) {
  std::string out;
  int rc = test::run_command(cli() + " params --arch ViT-B/16 --frames 12 --words 32", &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("adapters (incl. tying): 3401728 parameters"), std::string::npos) << out;
  EXPECT_NE(out.find("2.39 % of CLIP"), std::string::npos) << out;
}

// TorchScript goes through LibTorch's deserializer: an archive that is not an OpenAI release
// (the fixture is one we made) loads, with a warning that recommends converting it; the same
// weights as safetensors load silently.
TEST(ParamsCli, WarnsOnATorchScriptArchiveThatIsNotAnOpenAiRelease) {
  std::string out;
  const auto pt = test::fixture_path("mv_adapter_tiny/clip_openai.pt");
  int rc = test::run_command(cli() + " params --clip " + pt.string(), &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("a TorchScript archive that is not one of OpenAI's CLIP releases"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("mvadapter convert " + pt.string() + " -o OUT.safetensors"), std::string::npos)
      << out;
  const auto st = test::fixture_path("mv_adapter_tiny/clip.safetensors");
  rc = test::run_command(cli() + " params --clip " + st.string(), &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out.find("TorchScript"), std::string::npos) << out;
}

TEST(ParamsCli, PrintsTheStorageOfFiveTasksBothWays) {
  // By hand, ViT-B/16 MSR-VTT recipe, fp32 (4 bytes): the checkpoint holds the 3,572,736
  // trainable tensors' values and logit_scale, 4 x 3,572,737 = 14,290,948 bytes; CLIP has
  // 149,620,737 parameters, 598,482,948 bytes. 14,290,948 / 598,482,948 = 2.39 %; five tasks:
  // (598,482,948 + 5 x 14,290,948) / 598,482,948 = 111.94 % (the paper's 112 %) vs 500 %.
  std::string out;
  int rc = test::run_command(cli() + " params --arch ViT-B/16 --frames 12 --words 32", &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("storage: one task's adapter checkpoint 14290948 bytes (13.6 MiB) = 2.39 % "
                     "of CLIP's 598482948 bytes (570.8 MiB)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("storage of 5 tasks: one CLIP + 5 checkpoints = 111.94 % of one CLIP; 5 "
                     "fine-tuned CLIPs = 500.00 %"),
            std::string::npos)
      << out;
  // Full fine-tuning: the "checkpoint" is the whole CLIP (every parameter trains).
  rc = test::run_command(cli() + " params --arch ViT-B/16 --trainable full", &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("checkpoint 598482948 bytes (570.8 MiB) = 100.00 % of CLIP's"),
            std::string::npos)
      << out;
}

TEST(ParamsCli, ReadsTheShippedMsrVttConfig) {
  std::string out;
  auto cfg = std::filesystem::path(MVA_SOURCE_DIR) / "configs/msrvtt/mv_adapter_vit_b16.yaml";
  int rc = test::run_command(cli() + " params " + cfg.string() + " --arch ViT-B/16", &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("adapters (incl. tying): 3401728 parameters"), std::string::npos) << out;
  EXPECT_NE(out.find("2.39 % of CLIP"), std::string::npos) << out;
  rc = test::run_command(
      cli() + " params " + cfg.string() + " --arch ViT-B/16 --set adapters.tying.mod=none", &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("did you mean adapters.tying.mode"), std::string::npos) << out;
}

TEST(ParamsCli, OfficialCodeMsrVttConfigHasTheOfficialCount) {
  // CMT at down_out projects the factor to d' = 64 instead of d: the official code's 3,325,696
  // adapter parameters on ViT-B/16, against the paper's 3,401,728 (down_in).
  std::string out;
  auto cfg = std::filesystem::path(MVA_SOURCE_DIR) /
             "configs/msrvtt/mv_adapter_official_code_vit_b16.yaml";
  int rc = test::run_command(cli() + " params " + cfg.string() + " --arch ViT-B/16", &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("adapters (incl. tying): 3325696 parameters"), std::string::npos) << out;
  // ActivityNet's input LayerNorms add 2 x (768 + 512) per block pair: 12 x 2560 = 30,720.
  auto anet = std::filesystem::path(MVA_SOURCE_DIR) /
              "configs/activitynet/mv_adapter_official_code_vit_b16.yaml";
  auto paper =
      std::filesystem::path(MVA_SOURCE_DIR) / "configs/activitynet/mv_adapter_vit_b16.yaml";
  std::string with_ln, without_ln;
  ASSERT_EQ(test::run_command(cli() + " params " + anet.string() + " --arch ViT-B/16", &with_ln), 0)
      << with_ln;
  ASSERT_EQ(
      test::run_command(cli() + " params " + paper.string() + " --arch ViT-B/16", &without_ln), 0)
      << without_ln;
  auto count = [](const std::string& text) {
    const std::string key = "adapters (incl. tying): ";
    auto at = text.find(key);
    return at == std::string::npos ? -1 : std::stoll(text.substr(at + key.size()));
  };
  EXPECT_EQ(count(with_ln) - count(without_ln), 30720) << with_ln << without_ln;
}

// The baselines' shipped MSR-VTT configs against the paper's "Params %" (paper-notes.md §3,
// Table 1, ViT-B/16, CLIP biases trained as MV-Adapter's): within 10 % relative, and the exact
// counts their config headers explain where they give one.
TEST(ParamsCli, BaselineConfigsPrintThePapersShare) {
  struct Case {
    const char* config;
    double paper;
    const char* line;  // nullptr: the share alone is checked
  };
  for (const auto& c : {Case{"bottleneck_seq", 2.78, "trainable: 4121600 = 2.75 % of CLIP"},
                        Case{"bottleneck_par", 2.78, "trainable: 4121600 = 2.75 % of CLIP"},
                        Case{"convpass", 2.80, nullptr}, Case{"st_adapter", 5.93, nullptr},
                        Case{"cm_adapter", 2.76, "trainable: 4124480 = 2.76 % of CLIP"},
                        Case{"seqtransf", 8.45, "trainable: 12648960 = 8.45 % of CLIP"}}) {
    SCOPED_TRACE(c.config);
    auto cfg = std::filesystem::path(MVA_SOURCE_DIR) /
               (std::string("configs/msrvtt/") + c.config + "_vit_b16.yaml");
    std::string out;
    int rc = test::run_command(cli() + " params " + cfg.string() + " --arch ViT-B/16", &out);
    ASSERT_EQ(rc, 0) << out;
    const auto at = out.find("trainable: ");
    ASSERT_NE(at, std::string::npos) << out;
    const auto eq = out.find("= ", at);
    const double percent = std::stod(out.substr(eq + 2));
    EXPECT_LE(std::abs(percent - c.paper) / c.paper, 0.10) << "printed " << percent << " %\n"
                                                           << out;
    if (c.line) {
      EXPECT_NE(out.find(c.line), std::string::npos) << out;
    }
  }
}

TEST(VerifyReferenceCli, PassesOnTheBaselineFixturesInBothPrecisions) {
  // seqtransf: 1e-4, for its loss and logit_scale gradient: one sum cancelling ~100x, that the
  // fixture itself rounds at 6e-6 (tests/model/seqtransf_reference_test.cpp, where every other
  // tensor is held to the tight tolerance); the command takes one tolerance for all.
  struct Case {
    const char* method;
    const char* tolerance;
    const char* input_grad;
  };
  for (const auto& c :
       {Case{"convpass", "1e-5", "grad.in.x"}, Case{"st_adapter", "1e-5", "grad.in.x"},
        Case{"cm_adapter", "1e-5", "grad.in."}, Case{"seqtransf", "1e-4", "grad.in."}}) {
    for (const char* precision : {"fp64", "fp32"}) {
      SCOPED_TRACE(std::string(c.method) + " " + precision);
      std::string out;
      int rc = test::run_command(
          cli() + " verify-reference --threads 1 --tolerance " + c.tolerance + " --precision " +
              precision + " " + test::fixture_path(std::string("baselines/") + c.method).string(),
          &out);
      EXPECT_EQ(rc, 0) << out;
      EXPECT_NE(out.find(c.input_grad), std::string::npos) << out;
      EXPECT_NE(out.find("PASS"), std::string::npos) << out;
      EXPECT_EQ(out.find("FAIL"), std::string::npos) << out;
    }
  }
}

TEST(ConvertCli, WritesSafetensorsFromTheOfficialPth) {
  auto dir = test::temp_dir("convert_cli");
  std::string out;
  int rc = test::run_command(
      cli() + " convert " + test::fixture_path("mv_adapter_tiny/adapter_official.pth").string() +
          " -o " + (dir / "a.safetensors").string(),
      &out);
  EXPECT_EQ(rc, 0) << out;
  auto t = read_safetensors(dir / "a.safetensors").tensors;
  EXPECT_TRUE(t.count("clip.prompt.0"));
  EXPECT_TRUE(t.count("clip.visual.transformer.resblocks.0.mlp.adapter.conv_rf_c.b.weight"));
}

// The TorchScript warning's advice works: the archive becomes safetensors with the same tensors
// as the fixture's own safetensors copy of that CLIP, which then loads without the warning.
TEST(ConvertCli, TurnsACLipTorchScriptArchiveIntoSafetensors) {
  auto dir = test::temp_dir("convert_clip");
  const auto converted = dir / "clip.safetensors";
  std::string out;
  int rc = test::run_command(cli() + " convert " +
                                 test::fixture_path("mv_adapter_tiny/clip_openai.pt").string() +
                                 " -o " + converted.string(),
                             &out);
  ASSERT_EQ(rc, 0) << out;
  const auto got = read_safetensors(converted).tensors;
  const auto want =
      read_safetensors(test::fixture_path("mv_adapter_tiny/clip.safetensors")).tensors;
  size_t compared = 0;
  for (const auto& [name, t] : want) {
    SCOPED_TRACE(name);
    ASSERT_EQ(got.count(name), 1u);
    EXPECT_TRUE(got.at(name).to(torch::kFloat32).allclose(t.to(torch::kFloat32), 0.0, 1e-6));
    ++compared;
  }
  EXPECT_GT(compared, 10u);
  rc = test::run_command(cli() + " params --clip " + converted.string(), &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out.find("TorchScript"), std::string::npos) << out;
}

}  // namespace
}  // namespace mva
