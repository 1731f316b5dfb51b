// `mvadapter serve` through HTTP, on a tiny CLIP and the real fixture clips: every endpoint's
// answers against the index maths and the files, its refusals, Range, and concurrent clients.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <numeric>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "cli_fixture.h"
#include "mvadapter/config/run_setup.h"
#include "mvadapter/core/error.h"
#include "mvadapter/data/contact_sheet.h"
#include "mvadapter/eval/embedding_index.h"
#include "mvadapter/eval/query_ranks.h"
#include "mvadapter/serve/run_catalog.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace mva {
namespace {

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// `mvadapter serve ... --port 0` in the background: the port from the line it prints, SIGTERM at
// the end.
class ServeProcess {
 public:
  explicit ServeProcess(const std::vector<std::string>& args) {
    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      ::close(out[0]);
      ::close(out[1]);
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    fd_ = out[0];
    // Loading LibTorch and the model on a busy 2-core machine can take a while.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
    std::string seen;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 500) <= 0) continue;
      char buf[256];
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) break;
      seen.append(buf, static_cast<size_t>(n));
      const std::string mark = "serving on http://127.0.0.1:";
      auto at = seen.find(mark);
      if (at != std::string::npos && seen.find('\n', at) != std::string::npos) {
        port_ = std::stoi(seen.substr(at + mark.size()));
        return;
      }
    }
    throw std::runtime_error("serve did not print its URL; it printed: " + seen);
  }
  ~ServeProcess() { stop(); }

  /// SIGTERM, then the exit status (0: stopped cleanly).
  int stop() {
    if (pid_ <= 0) return status_;
    ::kill(pid_, SIGTERM);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
    char buf[256];
    for (ssize_t n; (n = ::read(fd_, buf, sizeof buf)) > 0;)
      rest_.append(buf, static_cast<size_t>(n));
    ::close(fd_);
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return status_;
  }
  int port() const { return port_; }
  /// What it printed after its URL (known once stopped).
  const std::string& rest() const { return rest_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  int port_ = 0;
  int status_ = -1;
  std::string rest_;
};

// One server for the suite: the index, two real evaluations' worth of runs and the process are
// made once.
class ServeApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
#if MVA_WITH_VIDEO
    auto setup = test::make_index_setup("serve_api");
    dir_ = new fs::path(setup.dir);
    const fs::path& d = *dir_;
    videos_ = new std::vector<std::string>(setup.videos);
    config_ = new fs::path(setup.config);
    const std::string base = " " + config_->string() + " --zero-shot";
    for (const std::string& args :
         {" encode" + base + " --videos --out " + (d / "videos.safetensors").string(),
          " encode" + base + " --captions --out " + (d / "captions.safetensors").string(),
          " eval" + base + " --quiet --out " + (d / "runs" / "zero_shot").string()}) {
      std::string out;
      if (test::run_command(test::cli_binary().string() + args, &out) != 0) {
        throw std::runtime_error(args + " failed: " + out);
      }
    }
    // Run "other": the same queries with some ranks changed; "no_ranks": results.json only;
    // "other_split": different queries.
    const auto ranks = read_query_ranks(d / "runs/zero_shot/ranks.jsonl");
    auto other = ranks;
    for (size_t i = 0; i < other.size(); i += 3) other[i].rank = other[i].rank == 1 ? 4 : 1;
    auto split = ranks;
    split[2].caption = "another caption";
    const std::string results = read_file(d / "runs/zero_shot/results.json");
    for (const char* name : {"other", "no_ranks", "other_split"}) {
      fs::create_directories(d / "runs" / name);
      std::ofstream(d / "runs" / name / "results.json") << results;
    }
    write_query_ranks(d / "runs/other/ranks.jsonl", other);
    write_query_ranks(d / "runs/other_split/ranks.jsonl", split);

    server_ = new ServeProcess(
        {test::cli_binary().string(), "serve", config_->string(), "--zero-shot", "--index",
         (d / "videos.safetensors").string(), "--captions", (d / "captions.safetensors").string(),
         "--port", "0", "--runs", (d / "runs/zero_shot").string(), (d / "runs/other").string(),
         (d / "runs/no_ranks").string(), (d / "runs/other_split").string()});
#endif
  }

  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    MVA_REQUIRE_VIDEO();
    ASSERT_NE(server_, nullptr);
  }

  static httplib::Client client() {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_url_encode(false);  // the tests encode (or deliberately do not encode) paths themselves
    c.set_read_timeout(60, 0);
    return c;
  }

  // GET `path`; expects `status` and a JSON body, which it returns.
  static nlohmann::json get_json(const std::string& path, int status = 200) {
    auto c = client();
    auto res = c.Get(path.c_str());
    if (!res) {
      ADD_FAILURE() << path << ": no answer (" << static_cast<int>(res.error()) << ")";
      return {};
    }
    EXPECT_EQ(res->status, status) << path << "\n" << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json") << path;
    return nlohmann::json::parse(res->body);
  }

  static EmbeddingIndex index(const char* name) {
    return load_index(*dir_ / name);
  }

  static fs::path* dir_;
  static fs::path* config_;
  static std::vector<std::string>* videos_;
  static ServeProcess* server_;
};

fs::path* ServeApi::dir_ = nullptr;
fs::path* ServeApi::config_ = nullptr;
std::vector<std::string>* ServeApi::videos_ = nullptr;
ServeProcess* ServeApi::server_ = nullptr;

// Rows of `scores` best first, ties to the lower row.
std::vector<int64_t> order_of(const torch::Tensor& scores) {
  std::vector<int64_t> rows(static_cast<size_t>(scores.size(0)));
  std::iota(rows.begin(), rows.end(), 0);
  auto acc = scores.accessor<float, 1>();
  std::stable_sort(rows.begin(), rows.end(), [&](int64_t a, int64_t b) { return acc[a] > acc[b]; });
  return rows;
}

TEST_F(ServeApi, SearchRanksVideosAsTheEmbeddingsSayAndMarksTheGroundTruth) {
  const auto v = index("videos.safetensors");
  const auto c = index("captions.safetensors");
  const int64_t q = 6;  // a dataset caption: video 3's second
  const auto want = torch::matmul(v.emb, c.emb[q]);
  const auto order = order_of(want);
  auto j = get_json("/api/search?q=" + url_encode(c.texts[q]) + "&k=3");
  EXPECT_EQ(j["query"], c.texts[q]);
  EXPECT_EQ(j["k"], 3);
  EXPECT_EQ(j["ground_truth"], nlohmann::json::array({(*videos_)[3]}));
  ASSERT_EQ(j["hits"].size(), 3u) << j.dump(2);
  for (size_t i = 0; i < 3; ++i) {
    const auto& h = j["hits"][i];
    const auto row = static_cast<size_t>(order[i]);
    EXPECT_EQ(h["rank"], i + 1);
    EXPECT_EQ(h["id"], v.ids[row]);
    EXPECT_NEAR(h["score"].get<double>(), want[order[i]].item<double>(), 1e-4);
    EXPECT_EQ(h["ground_truth"], v.ids[row] == (*videos_)[3]);
    EXPECT_EQ(h["captions"],
              nlohmann::json::array({fmt::format("a person in clip number {}", row),
                                     fmt::format("the {} th scene with a red car", row)}));
  }
  // k defaults to 10, here all 8; a query that is no dataset caption has no ground truth.
  j = get_json("/api/search?q=" + url_encode("  something else entirely "));
  EXPECT_EQ(j["query"], "something else entirely");
  EXPECT_EQ(j["hits"].size(), 8u);
  EXPECT_TRUE(j["ground_truth"].empty());
}

TEST_F(ServeApi, SearchRefusesBadParametersWithOneJsonError) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/api/search", "q: missing"},
      {"/api/search?q=", "q: the query is empty"},
      {"/api/search?q=%20%20", "q: the query is empty"},
      {"/api/search?q=" + std::string(501, 'a'), "at most 500"},
      {"/api/search?q=cat&k=0", "k: expected an integer from 1 to 100, got '0'"},
      {"/api/search?q=cat&k=101", "got '101'"},
      {"/api/search?q=cat&k=-1", "got '-1'"},
      {"/api/search?q=cat&k=abc", "got 'abc'"},
      {"/api/search?q=cat&k=99999999999999999999", "k: expected"},
  };
  for (const auto& [path, needle] : cases) {
    auto j = get_json(path, 400);
    ASSERT_TRUE(j.contains("error")) << path;
    EXPECT_NE(j["error"].get<std::string>().find(needle), std::string::npos)
        << path << ": " << j.dump();
  }
  auto j = get_json("/api/nowhere", 404);
  EXPECT_EQ(j["error"], "not found: /api/nowhere");
  // Invalid UTF-8 is answered, not crashed on.
  auto res = client().Get("/api/search?q=%FF%FEcat");
  ASSERT_TRUE(res);
  EXPECT_TRUE(res->status == 200 || res->status == 400) << res->status << " " << res->body;
  EXPECT_TRUE(nlohmann::json::accept(res->body)) << res->body;
}

TEST_F(ServeApi, VideoGivesItsCaptionsFileAndClosestCaptions) {
  const auto v = index("videos.safetensors");
  const auto c = index("captions.safetensors");
  const int64_t row = 2;
  const std::string id = v.ids[row];
  auto j = get_json("/api/video/" + url_encode(id));
  EXPECT_EQ(j["id"], id);
  EXPECT_EQ(j["row"], row);
  EXPECT_EQ(j["captions"][1], "the 2 th scene with a red car");
  const auto file = test::fixture_path("video/videos") / id;
  EXPECT_EQ(j["file"]["name"], id);
  EXPECT_EQ(j["file"]["available"], true);
  EXPECT_EQ(j["file"]["bytes"], fs::file_size(file));
  const auto want = torch::matmul(c.emb, v.emb[row]);
  const auto order = order_of(want);
  ASSERT_EQ(j["top_captions"].size(), 10u);  // 16 captions, 10 listed
  for (size_t i = 0; i < 10; ++i) {
    const auto& t = j["top_captions"][i];
    EXPECT_EQ(t["rank"], i + 1);
    EXPECT_EQ(t["id"], c.ids[static_cast<size_t>(order[i])]);
    EXPECT_EQ(t["text"], c.texts[static_cast<size_t>(order[i])]);
    EXPECT_EQ(t["own"], c.ids[static_cast<size_t>(order[i])].rfind(id + "#", 0) == 0);
  }
  j = get_json("/api/video/no_such_video.mp4", 404);
  EXPECT_EQ(j["error"], "no video 'no_such_video.mp4' in the index");
}

TEST_F(ServeApi, SheetIsTheContactSheetOfTheFramesTheModelSees) {
  const std::string id = (*videos_)[1];
  auto c = client();
  auto res = c.Get(("/api/video/" + url_encode(id) + "/sheet.png").c_str());
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "image/png");
  // What `frames --sheet` draws from the config's own frame settings.
  const RunConfig cfg = load_run_config(*config_, {});
  const auto clip_opts = evaluator_options(cfg).loader.clip;
  VideoEntry e;
  e.id = id;
  e.path = test::fixture_path("video/videos") / id;
  const auto png = contact_sheet_png(load_video_clip(e, clip_opts), 4, clip_opts.decode.sample_fps);
  EXPECT_EQ(res->body, std::string(png.begin(), png.end()));
  auto again = c.Get(("/api/video/" + url_encode(id) + "/sheet.png").c_str());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body, res->body);
  get_json("/api/video/nope/sheet.png", 404);
}

TEST_F(ServeApi, FileHonoursRangeRequests) {
  const std::string id = (*videos_)[0];
  const std::string bytes = read_file(test::fixture_path("video/videos") / id);
  const auto size = bytes.size();
  const std::string path = "/api/video/" + url_encode(id) + "/file";
  auto c = client();
  auto whole = c.Get(path.c_str());
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->status, 200);
  EXPECT_EQ(whole->get_header_value("Content-Type"), "video/mp4");
  EXPECT_EQ(whole->get_header_value("Accept-Ranges"), "bytes");
  EXPECT_TRUE(whole->body == bytes) << "the whole file should come back byte for byte";

  struct Case {
    std::string range;
    size_t first, last;
  };
  for (const Case& k : {Case{"bytes=10-19", 10, 19}, Case{"bytes=-5", size - 5, size - 1},
                        Case{"bytes=100000-", 100000, size - 1},
                        Case{"bytes=0-" + std::to_string(size + 50), 0, size - 1}}) {
    auto res = c.Get(path.c_str(), {{"Range", k.range}});
    ASSERT_TRUE(res) << k.range;
    EXPECT_EQ(res->status, 206) << k.range;
    EXPECT_EQ(res->get_header_value("Content-Range"),
              fmt::format("bytes {}-{}/{}", k.first, k.last, size))
        << k.range;
    EXPECT_TRUE(res->body == bytes.substr(k.first, k.last - k.first + 1))
        << k.range << ": " << res->body.size() << " bytes";
  }
  auto res = c.Get(path.c_str(), {{"Range", fmt::format("bytes={}-", size)}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 416);
  EXPECT_EQ(res->get_header_value("Content-Range"), fmt::format("bytes */{}", size));
  EXPECT_NE(nlohmann::json::parse(res->body)["error"].get<std::string>().find("outside"),
            std::string::npos);
}

TEST_F(ServeApi, PathsOutsideTheIndexAreRefused) {
  const std::string real = (test::fixture_path("video/videos") / (*videos_)[0]).string();
  const std::vector<std::string> paths = {
      "/api/video/..%2f..%2fetc%2fpasswd/file",
      "/api/video/..%2F..%2F..%2F..%2Fetc%2Fpasswd/file",
      "/api/video/../../etc/passwd/file",
      "/api/video/%2e%2e%2f%2e%2e%2fetc%2fpasswd/file",
      "/api/video/%2Fetc%2Fpasswd/file",
      "/api/video//etc/passwd/file",
      "/api/video/" + url_encode(real) + "/file",
      "/api/video/" + url_encode((*videos_)[0]) + "/..%2f..%2f..%2fetc%2fpasswd",
      "/api/video/..%2f..%2fetc%2fpasswd/sheet.png",
      "/..%2f..%2fetc%2fpasswd",
      "/../../etc/passwd",
      "/index.html%2f..%2f..%2fetc%2fpasswd",
  };
  auto c = client();
  for (const auto& p : paths) {
    auto res = c.Get(p.c_str());
    ASSERT_TRUE(res) << p;
    EXPECT_TRUE(res->status == 404 || res->status == 400) << p << ": " << res->status;
    EXPECT_EQ(res->body.find("root:"), std::string::npos) << p;
    EXPECT_TRUE(nlohmann::json::accept(res->body)) << p << ": " << res->body;
  }
}

TEST_F(ServeApi, RunsAreListedAndComparedQueryByQuery) {
  auto runs = get_json("/api/runs");
  ASSERT_EQ(runs.size(), 4u) << runs.dump(2);
  EXPECT_EQ(runs[0]["name"], "zero_shot");
  EXPECT_EQ(runs[0]["ranks"], true);
  EXPECT_EQ(runs[0]["num_queries"], 16);
  EXPECT_EQ(runs[0]["command"], "eval");
  EXPECT_TRUE(runs[0]["t2v"].contains("R1"));
  EXPECT_EQ(runs[2]["name"], "no_ranks");
  EXPECT_EQ(runs[2]["ranks"], false);

  const auto a = read_query_ranks(*dir_ / "runs/zero_shot/ranks.jsonl");
  const auto b = read_query_ranks(*dir_ / "runs/other/ranks.jsonl");
  auto j = get_json("/api/runs/compare?a=zero_shot&b=other");
  ASSERT_EQ(j["queries"].size(), a.size());
  int64_t disagree = 0, a_better = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(j["queries"][i]["caption"], a[i].caption);
    EXPECT_EQ(j["queries"][i]["video"], a[i].video);
    EXPECT_EQ(j["queries"][i]["rank_a"], a[i].rank);
    EXPECT_EQ(j["queries"][i]["rank_b"], b[i].rank);
    disagree += a[i].rank != b[i].rank;
    a_better += a[i].rank < b[i].rank;
  }
  EXPECT_GT(disagree, 0);
  EXPECT_EQ(j["summary"]["disagree"], disagree);
  EXPECT_EQ(j["summary"]["a_better"], a_better);

  EXPECT_NE(
      get_json("/api/runs/compare?a=zero_shot&b=no_ranks", 409)["error"].get<std::string>().find(
          "no ranks.jsonl"),
      std::string::npos);
  EXPECT_NE(
      get_json("/api/runs/compare?a=zero_shot&b=other_split", 409)["error"].get<std::string>().find(
          "different queries"),
      std::string::npos);
  EXPECT_EQ(get_json("/api/runs/compare?a=zero_shot&b=nope", 404)["error"],
            "no run named 'nope' (GET /api/runs lists them)");
  EXPECT_NE(get_json("/api/runs/compare?a=zero_shot", 400)["error"].get<std::string>().find("b:"),
            std::string::npos);
}

TEST_F(ServeApi, EvalRanksAreTheGroundTruthRanksOfTheEmbeddings) {
  const auto v = index("videos.safetensors");
  const auto c = index("captions.safetensors");
  const auto ranks = read_query_ranks(*dir_ / "runs/zero_shot/ranks.jsonl");
  ASSERT_EQ(static_cast<int64_t>(ranks.size()), c.size());
  for (size_t q = 0; q < ranks.size(); ++q) {
    EXPECT_EQ(ranks[q].query, static_cast<int64_t>(q));
    EXPECT_EQ(ranks[q].caption, c.texts[q]);
    EXPECT_EQ(ranks[q].video, (*videos_)[q / 2]);
    const auto s = torch::matmul(v.emb, c.emb[static_cast<int64_t>(q)]);
    const auto want = 1 + (s > s[static_cast<int64_t>(q / 2)]).sum().item<int64_t>();
    EXPECT_EQ(ranks[q].rank, want) << "query " << q;
  }
}

TEST_F(ServeApi, PageIsServedFromMemory) {
  auto c = client();
  auto res = c.Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(res->body.find("<title>"), std::string::npos);
  res = c.Get("/app.js");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  get_json("/nothing.js", 404);
}

TEST_F(ServeApi, EightConcurrentClientsGetTheAnswersOfOne) {
  const auto c = index("captions.safetensors");
  std::vector<std::string> paths;
  for (int64_t q = 0; q < c.size(); q += 3) {
    paths.push_back("/api/search?q=" + url_encode(c.texts[static_cast<size_t>(q)]) + "&k=5");
  }
  for (size_t v = 0; v < 3; ++v) {
    paths.push_back("/api/video/" + url_encode((*videos_)[v]));
    paths.push_back("/api/video/" + url_encode((*videos_)[v]) + "/sheet.png");
  }
  std::vector<std::string> want;
  {
    auto one = client();
    for (const auto& p : paths) {
      auto res = one.Get(p.c_str());
      ASSERT_TRUE(res) << p;
      ASSERT_EQ(res->status, 200) << p;
      want.push_back(res->body);
    }
  }
  std::vector<std::vector<std::string>> got(8);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto mine = client();
      // Each client walks the paths from another starting point, so requests overlap.
      for (size_t i = 0; i < paths.size(); ++i) {
        const auto& p = paths[(i + t) % paths.size()];
        auto res = mine.Get(p.c_str());
        got[t].push_back(res && res->status == 200 ? res->body : std::string("failed"));
      }
    });
  }
  for (auto& th : threads) th.join();
  for (size_t t = 0; t < 8; ++t) {
    for (size_t i = 0; i < paths.size(); ++i) {
      EXPECT_TRUE(got[t][i] == want[(i + t) % paths.size()])
          << "client " << t << ", " << paths[(i + t) % paths.size()];
    }
  }
}

TEST_F(ServeApi, SigtermStopsTheServerCleanly) {
  ServeProcess second({test::cli_binary().string(), "serve", config_->string(), "--zero-shot",
                       "--index", (*dir_ / "videos.safetensors").string(), "--port", "0"});
  auto c = httplib::Client("127.0.0.1", second.port());
  auto res = c.Get("/api/runs");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, "[]");
  EXPECT_EQ(second.stop(), 0) << second.rest();
  EXPECT_NE(second.rest().find("stopped"), std::string::npos) << second.rest();
}

TEST(ServeCli, BadStartIsOneErrorLine) {
  MVA_REQUIRE_VIDEO();
  const fs::path dir = test::temp_dir("serve_cli_bad");
  std::ofstream(dir / "tiny.yaml") << "model:\n  arch: Tiny-32\n";
  struct Case {
    std::string args, expect;
  };
  const std::vector<Case> cases = {
      {" serve " + (dir / "tiny.yaml").string() + " --zero-shot --index " +
           (dir / "none.safetensors").string(),
       "index file does not exist"},
      {" serve " + (dir / "tiny.yaml").string() + " --zero-shot --index " +
           (dir / "none.safetensors").string() + " --port 70000",
       "--port"},
  };
  for (const auto& k : cases) {
    std::string out;
    EXPECT_NE(test::run_command(test::cli_binary().string() + k.args, &out), 0) << k.args;
    EXPECT_NE(out.find(k.expect), std::string::npos) << k.args << "\n" << out;
  }
  fs::remove_all(dir);
}

TEST(QueryRanks, BadLinesNameTheFileLineAndField) {
  const fs::path dir = test::temp_dir("query_ranks_bad");
  const std::vector<QueryRank> ranks = {{0, "a cat", "v1", 1}, {1, "a dog", "v2", 3}};
  write_query_ranks(dir / "ranks.jsonl", ranks);
  const auto back = read_query_ranks(dir / "ranks.jsonl");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].caption, "a dog");
  EXPECT_EQ(back[1].video, "v2");
  EXPECT_EQ(back[1].rank, 3);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[1]", ":1: not a JSON object"},
      {"{\"query\": 0, \"caption\": \"x\", \"video\": \"v\"}",
       ":1: field 'rank' must be an integer"},
      {"{\"query\": 0, \"caption\": 3, \"video\": \"v\", \"rank\": 1}",
       ":1: field 'caption' must be a string"},
      {"\n{\"query\": 0, \"caption\": \"x\", \"video\": \"v\", \"rank\": 0}",
       ":2: field 'rank' must be at least 1, got 0"},
  };
  for (const auto& [text, needle] : cases) {
    std::ofstream(dir / "bad.jsonl") << text << "\n";
    EXPECT_ERROR_CONTAINS(read_query_ranks(dir / "bad.jsonl"),
                          (dir / "bad.jsonl").string() + needle);
  }
  fs::remove_all(dir);
}

TEST(RunCatalog, RefusesFoldersWithoutResultsAndDuplicateNames) {
  const fs::path dir = test::temp_dir("run_catalog_bad");
  fs::create_directories(dir / "a" / "run");
  fs::create_directories(dir / "b" / "run");
  fs::create_directories(dir / "empty");
  std::ofstream(dir / "a/run/results.json") << "{\"name\": \"x\"}";
  std::ofstream(dir / "b/run/results.json") << "{\"name\": \"y\"}";
  EXPECT_ERROR_CONTAINS(RunCatalog({dir / "empty"}), "has no results.json");
  EXPECT_ERROR_CONTAINS(RunCatalog({dir / "nowhere"}), "is not a folder");
  EXPECT_ERROR_CONTAINS(RunCatalog({dir / "a/run", dir / "b/run"}), "are both named 'run'");
  std::ofstream(dir / "empty/results.json") << "{oops";
  EXPECT_ERROR_CONTAINS(RunCatalog({dir / "empty"}), "results.json: not valid JSON");
  RunCatalog one({dir / "a/run"});
  EXPECT_EQ(one.list()[0]["config"], "x");
  EXPECT_EQ(one.list()[0]["ranks"], false);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mva
