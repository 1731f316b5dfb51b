// `mvadapter encode` and `mvadapter search` through the CLI, on a tiny CLIP and the real fixture
// clips: what search prints must be what the encoded embeddings and a matmul say.
#include <algorithm>
#include <fstream>
#include <numeric>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "cli_fixture.h"
#include "mvadapter/config/run_setup.h"
#include "mvadapter/eval/embedding_index.h"
#include "mvadapter/model/adapter_checkpoint.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace mva {
namespace {

std::string cli() {
  return test::cli_binary().string();
}

// Runs `args` (stdout only; stderr to a file) and expects exit 0.
std::string run_ok(const std::string& args) {
  std::string out;
  const int rc = test::run_command(cli() + args + " 2>/dev/null", &out);
  EXPECT_EQ(rc, 0) << args << "\n" << out;
  return out;
}

struct Hit {
  int rank;
  double score;
  std::string id, text;
};

// The result lines of `search` ("  1  0.1234  id[  text]").
std::vector<Hit> parse_hits(const std::string& out) {
  static const std::regex line(R"(^\s*(\d+)  (-?\d+\.\d{4})  (\S+)(?:  (.*))?$)");
  std::vector<Hit> hits;
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    if (std::regex_match(l, m, line)) {
      hits.push_back({std::stoi(m[1]), std::stod(m[2]), m[3], m[4]});
    }
  }
  return hits;
}

// Rows of `scores` best first (ties to the lower row).
std::vector<int64_t> order_of(const torch::Tensor& scores) {
  std::vector<int64_t> rows(static_cast<size_t>(scores.size(0)));
  std::iota(rows.begin(), rows.end(), 0);
  auto acc = scores.accessor<float, 1>();
  std::stable_sort(rows.begin(), rows.end(), [&](int64_t a, int64_t b) { return acc[a] > acc[b]; });
  return rows;
}

TEST(SearchCli, CaptionQueryRanksVideosAsTheEmbeddingsSay) {
  MVA_REQUIRE_VIDEO();
  auto s = test::make_index_setup("search_cli_text");
  const fs::path videos = s.dir / "videos.safetensors", captions = s.dir / "captions.safetensors";
  const std::string base = " " + s.config.string() + " --zero-shot";
  auto printed = run_ok(" encode" + base + " --videos --out " + videos.string());
  EXPECT_NE(printed.find("encoded 8 videos (D=32) -> " + videos.string()), std::string::npos)
      << printed;
  run_ok(" encode" + base + " --captions --out " + captions.string());

  auto v = load_index(videos);
  EXPECT_EQ(v.kind, "videos");
  EXPECT_EQ(v.ids, s.videos);
  EXPECT_EQ(v.info["adapter"], "zero-shot");
  EXPECT_EQ(v.info["dataset"], "jsonl");
  EXPECT_EQ(v.info["split"], "test.jsonl");
  EXPECT_EQ(v.info["config"], "tiny");
  auto c = load_index(captions);
  ASSERT_EQ(c.size(), 16);
  EXPECT_EQ(c.ids[5], s.videos[2] + "#1");
  EXPECT_EQ(c.texts[5], "the 2 th scene with a red car");

  // The query is caption row 6 of the split: its embedding against every video.
  const std::string query = c.texts[6];
  auto want = torch::matmul(v.emb, c.emb[6]);
  const auto want_order = order_of(want);

  auto out =
      run_ok(" search" + base + " --index " + videos.string() + " --top-k 3 \"" + query + "\"");
  EXPECT_NE(out.find("query: " + query), std::string::npos) << out;
  auto hits = parse_hits(out);
  ASSERT_EQ(hits.size(), 3u) << out;
  for (size_t i = 0; i < hits.size(); ++i) {
    EXPECT_EQ(hits[i].rank, static_cast<int>(i) + 1);
    if (i > 0) {
      EXPECT_LE(hits[i].score, hits[i - 1].score) << out;
    }
    EXPECT_EQ(hits[i].id, v.ids[static_cast<size_t>(want_order[i])]) << out;
    EXPECT_NEAR(hits[i].score, want[want_order[i]].item<double>(), 5.1e-5) << out;
  }

  // --json: the same hits, two queries, k above N gives all 8.
  auto json =
      nlohmann::json::parse(run_ok(" search" + base + " --index " + videos.string() +
                                   " --top-k 20 --json \"" + query + "\" \"" + c.texts[0] + "\""));
  ASSERT_EQ(json.size(), 2u);
  EXPECT_EQ(json[0]["query"], query);
  ASSERT_EQ(json[0]["hits"].size(), 8u);
  EXPECT_EQ(json[1]["hits"].size(), 8u);
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(json[0]["hits"][i]["rank"], i + 1);
    EXPECT_EQ(json[0]["hits"][i]["id"], v.ids[static_cast<size_t>(want_order[i])]);
    EXPECT_NEAR(json[0]["hits"][i]["score"].get<double>(), want[want_order[i]].item<double>(),
                1e-5);
  }
  EXPECT_EQ(json[1]["hits"][0]["id"],
            v.ids[static_cast<size_t>(order_of(torch::matmul(v.emb, c.emb[0]))[0])]);
}

TEST(SearchCli, VideoQueryRanksCaptionsAsTheEmbeddingsSay) {
  MVA_REQUIRE_VIDEO();
  auto s = test::make_index_setup("search_cli_video");
  const fs::path videos = s.dir / "videos.safetensors", captions = s.dir / "captions.safetensors";
  const std::string base = " " + s.config.string() + " --zero-shot";
  run_ok(" encode" + base + " --videos --out " + videos.string());
  run_ok(" encode" + base + " --captions --out " + captions.string());
  auto v = load_index(videos);
  auto c = load_index(captions);

  // The file decoded on its own must embed as the loader's batch did.
  const size_t which = 5;
  auto want = torch::matmul(c.emb, v.emb[static_cast<int64_t>(which)]);
  const auto want_order = order_of(want);
  const auto file = test::fixture_path("video/videos") / s.videos[which];
  auto out =
      run_ok(" search" + base + " --index " + captions.string() + " --video " + file.string());
  auto hits = parse_hits(out);
  ASSERT_EQ(hits.size(), 5u) << out;  // the default --top-k
  for (size_t i = 0; i < hits.size(); ++i) {
    const auto row = static_cast<size_t>(want_order[i]);
    EXPECT_EQ(hits[i].id, c.ids[row]) << out;
    EXPECT_EQ(hits[i].text, c.texts[row]) << out;
    EXPECT_NEAR(hits[i].score, want[want_order[i]].item<double>(), 5.1e-5) << out;
  }
}

TEST(EncodeCli, LeavesOutMissingVideosAndTheirCaptionsAsEvalDoes) {
  MVA_REQUIRE_VIDEO();
  auto s = test::make_index_setup("encode_cli_missing");
  // Two real clips with a missing one between them (so the captions after it are renumbered).
  const std::vector<std::string> ids = {s.videos[0], "gone/missing_clip.mp4", s.videos[1]};
  {
    std::ofstream test(s.dir / "test.jsonl");
    for (size_t i = 0; i < ids.size(); ++i) {
      std::vector<std::string> caps = {fmt::format("clip {} first", i),
                                       fmt::format("clip {} second", i)};
      if (i == 1) caps.push_back("clip 1 third");
      test << nlohmann::json({{"video", ids[i]}, {"captions", caps}}).dump() << "\n";
    }
  }
  const std::string base = " " + s.config.string() + " --zero-shot";
  const fs::path videos = s.dir / "videos.safetensors", captions = s.dir / "captions.safetensors";
  const std::string left_out = "left out 1 missing videos and their 3 captions";

  auto printed = run_ok(" encode" + base + " --captions --out " + captions.string());
  EXPECT_NE(printed.find(left_out), std::string::npos) << printed;
  EXPECT_NE(printed.find("encoded 4 captions"), std::string::npos) << printed;
  auto c = load_index(captions);
  EXPECT_EQ(c.ids,
            (std::vector<std::string>{ids[0] + "#0", ids[0] + "#1", ids[2] + "#0", ids[2] + "#1"}))
      << "the captions of the missing video should be left out, as eval leaves them out";
  EXPECT_EQ(c.texts[2], "clip 2 first");
  EXPECT_EQ(c.info["missing_videos"], 1);

  printed = run_ok(" encode" + base + " --videos --out " + videos.string());
  EXPECT_NE(printed.find(left_out), std::string::npos) << printed;
  EXPECT_EQ(load_index(videos).ids, (std::vector<std::string>{ids[0], ids[2]}));

  // eval: the same rule, counted in results.json.
  printed = run_ok(" eval" + base + " --quiet --out " + (s.dir / "eval").string());
  EXPECT_NE(printed.find(left_out), std::string::npos) << printed;
  std::ifstream results(s.dir / "eval" / "results.json");
  EXPECT_EQ(nlohmann::json::parse(results)["eval_skipped_videos"], 1);

  // data.on_error=fail refuses, for captions as for videos.
  std::string out;
  EXPECT_EQ(test::run_command(cli() + " encode" + base +
                                  " --set data.on_error=fail --captions --out " + captions.string(),
                              &out),
            1)
      << out;
  EXPECT_NE(out.find("1 of 3 videos are missing"), std::string::npos) << out;
  fs::remove_all(s.dir);
}

TEST(SearchCli, BadInputIsOneErrorLine) {
  MVA_REQUIRE_VIDEO();
  auto s = test::make_index_setup("search_cli_bad");
  const fs::path videos = s.dir / "videos.safetensors";
  const std::string base = " " + s.config.string() + " --zero-shot";
  run_ok(" encode" + base + " --videos --out " + videos.string());

  struct Case {
    std::string args, expect;
  };
  const fs::path missing = s.dir / "nowhere.safetensors";
  const std::vector<Case> cases = {
      {" search" + base + " --index " + missing.string() + " cat",
       missing.string() + ": index file does not exist"},
      {" search" + base + " --index " + videos.string() + " --video " +
           (test::fixture_path("video/videos") / s.videos[0]).string(),
       "--video searches a captions index, this one holds videos"},
      {" search " + s.config.string() + " --index " + videos.string() + " cat", "--adapter CKPT"},
      {" search" + base + " --index " + videos.string(), "give one or more QUERY"},
      {" encode" + base + " --out x.safetensors", "give --videos or --captions"},
  };
  for (const auto& c : cases) {
    std::string out;
    EXPECT_EQ(test::run_command(cli() + c.args, &out), 1) << c.args << "\n" << out;
    EXPECT_EQ(out.rfind("error: ", 0), 0u) << c.args << "\n" << out;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << c.args << "\n" << out;
    EXPECT_NE(out.find(c.expect), std::string::npos) << c.args << "\n" << out;
  }

  // An index of another D: refused, naming both dimensions.
  EmbeddingIndex other;
  other.kind = "videos";
  other.emb = torch::eye(5).narrow(0, 0, 2).contiguous();
  other.ids = {"a", "b"};
  save_index(s.dir / "d5.safetensors", other);
  std::string out;
  EXPECT_EQ(test::run_command(cli() + " search" + base + " --index " +
                                  (s.dir / "d5.safetensors").string() + " cat",
                              &out),
            1);
  EXPECT_NE(out.find("the index has D=5 but the model of tiny embeds to D=32"), std::string::npos)
      << out;

  // Other adapter weights than the index was made with: a warning, and the search still runs.
  auto model = build_model(load_run_config(s.config));
  const fs::path adapter = s.dir / "adapter.safetensors";
  save_adapter_weights(*model, adapter);
  EXPECT_EQ(test::run_command(cli() + " search " + s.config.string() + " --adapter " +
                                  adapter.string() + " --index " + videos.string() + " cat",
                              &out),
            0)
      << out;
  EXPECT_NE(out.find("encoded with adapter 'zero-shot'"), std::string::npos) << out;
  EXPECT_EQ(parse_hits(out).size(), 5u) << out;
}

}  // namespace
}  // namespace mva
