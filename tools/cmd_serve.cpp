// `mvadapter serve`: a local search page and JSON API over an embedding index.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <optional>
#include <thread>

#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "cli_model.h"
#include "commands.h"
#include "mvadapter/core/error.h"
#include "mvadapter/data/dataset_readers.h"
#include "mvadapter/serve/search_server.h"

namespace fs = std::filesystem;

namespace mva::cli {
namespace {

int g_stop_pipe[2] = {-1, -1};

// Async-signal-safe: one byte to the pipe serve's watcher thread reads.
extern "C" void on_stop_signal(int) {
  const char c = 1;
  const ssize_t n = ::write(g_stop_pipe[1], &c, 1);
  static_cast<void>(n);
}

// The page: --web, else installed (share/mvadapter/web, or MVADAPTER_DATA/web), else the sources.
fs::path find_web_dir(const std::string& given) {
  if (!given.empty()) return given;
  try {
    return fs::path(find_asset("web/index.html")).parent_path();
  } catch (const Error&) {
  }
  const fs::path source = fs::path(MVA_SOURCE_DIR) / "web";
  if (fs::is_regular_file(source / "index.html")) return source;
  spdlog::warn("serve: the page (web/index.html) was not found; serving the API only (--web DIR)");
  return {};
}

// The split the index was encoded from, for the videos' files and captions; a server without it
// still searches, but shows no frames or files.
Manifest indexed_split(const RunConfig& cfg, const EmbeddingIndex& index,
                       const std::string& index_file) {
  const std::string dataset = index.info.value("dataset", std::string());
  const std::string split = index.info.value("split", std::string());
  if (dataset != cfg.data.dataset) {
    spdlog::warn("{}: encoded from dataset '{}', the config reads '{}': no frames or files served",
                 index_file, dataset, cfg.data.dataset);
    return {};
  }
  try {
    return read_dataset(split == cfg.data.train_split && split != cfg.data.test_split
                            ? train_dataset_spec(cfg)
                            : test_dataset_spec(cfg));
  } catch (const Error& e) {
    spdlog::warn("{}: its dataset cannot be read ({}): no frames or files served", index_file,
                 e.what());
    return {};
  }
}

EmbeddingIndex load_kind(const std::string& file, const std::string& kind, const char* option,
                         const char* encode_flag) {
  EmbeddingIndex index = load_index(file);
  if (index.kind != kind) {
    throw Error(fmt::format("{} {}: this index holds {}, expected {} (encode it with {})", option,
                            file, index.kind, kind, encode_flag));
  }
  return index;
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "serve",
      "Serve a search page and JSON API over a videos index (from `mvadapter encode`): caption "
      "search, each video's frames, file and closest captions, and runs compared query by query.");
  struct Opts {
    ModelArgs model;
    std::string index, captions, host = "127.0.0.1", web;
    int port = 8080;
    int threads = 8;
    std::vector<std::string> runs;
  };
  auto o = std::make_shared<Opts>();
  add_model_options(cmd, o->model);
  cmd->add_option("--index", o->index, "the videos index to search (encode --videos)")->required();
  cmd->add_option("--captions", o->captions,
                  "a captions index of the same split (encode --captions): each video's closest "
                  "captions");
  cmd->add_option("--host", o->host, "address to listen on (default loopback only)");
  cmd->add_option("--port", o->port, "port to listen on; 0 picks a free one")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--threads", o->threads, "worker threads answering requests")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--runs", o->runs, "run folders (results.json, ranks.jsonl) to list and compare")
      ->allow_extra_args(true);
  cmd->add_option("--web", o->web, "the page's folder (default: the installed web/)");
  cmd->callback([o] {
    log_to_stderr();
    // The indexes first: a wrong path or kind fails before any weights are read.
    EmbeddingIndex videos = load_kind(o->index, "videos", "--index", "--videos");
    std::optional<EmbeddingIndex> captions;
    if (!o->captions.empty()) {
      captions = load_kind(o->captions, "captions", "--captions", "--captions");
    }
    std::vector<fs::path> run_dirs(o->runs.begin(), o->runs.end());
    RunCatalog runs(run_dirs);
    RunConfig cfg = load_cli_config(o->model, "serve");
    auto m = std::make_shared<CliModel>(build_cli_model(std::move(cfg), o->model));
    check_model_matches(videos, o->index, *m);
    if (captions) check_model_matches(*captions, o->captions, *m);

    ServeOptions opt;
    opt.host = o->host;
    opt.port = o->port;
    opt.threads = o->threads;
    opt.clip = m->eval.loader.clip;
    opt.web_dir = find_web_dir(o->web);
    Manifest split = indexed_split(m->cfg, videos, o->index);
    const auto n_videos = videos.size();
    std::shared_ptr<const IvfIndex> ivf;
    if (fs::exists(ivf_path(o->index))) {
      ivf = std::make_shared<const IvfIndex>(
          IvfIndex::load(ivf_path(o->index), videos.size(), videos.dim()));
      spdlog::info("serve: searching through {} (nlist {}, nprobe {})", ivf_path(o->index).string(),
                   ivf->nlist(), ivf->nprobe());
    }
    VideoCatalog catalog(std::move(videos), std::move(captions), std::move(split));
    if (ivf) catalog.use_ivf(ivf);
    QueryEncoder encode = [m](const std::string& q) {
      return encode_captions(*m->model, {q}, m->tokenize, 1, m->eval.precision)[0];
    };
    SearchServer server(std::move(catalog), std::move(runs), std::move(encode), opt);
    const int port = server.bind();

    // Ctrl-C and SIGTERM stop the server, so a request in flight finishes: the handler (whichever
    // thread LibTorch's or OpenMP's the signal lands on) only writes to a pipe, and one thread
    // waiting on that pipe calls stop().
    if (::pipe(g_stop_pipe) != 0) throw Error("serve: cannot create the stop pipe");
    struct sigaction on_stop {};
    on_stop.sa_handler = on_stop_signal;
    sigemptyset(&on_stop.sa_mask);
    ::sigaction(SIGINT, &on_stop, nullptr);
    ::sigaction(SIGTERM, &on_stop, nullptr);
    std::atomic<bool> finished{false};
    std::thread watcher([&server, &finished] {
      char c = 0;
      while (::read(g_stop_pipe[0], &c, 1) < 0 && errno == EINTR) {
      }
      // stop() does nothing before the listening loop has begun: repeated until run() returns.
      while (!finished) {
        server.stop();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
    // The one line a script or test waits for, with the port actually bound.
    std::printf("serving on http://%s:%d\n", o->host.c_str(), port);
    std::fflush(stdout);
    spdlog::info("serve: {} videos, {} runs; page: {}", n_videos, run_dirs.size(),
                 opt.web_dir.empty() ? std::string("none") : opt.web_dir.string());
    server.run();
    finished = true;
    on_stop_signal(0);  // wakes the watcher when run() ended on its own
    watcher.join();
    std::printf("stopped\n");
  });
}

}  // namespace mva::cli
