#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include <torch/types.h>

#include "mvadapter/data/video_loader.h"
#include "mvadapter/serve/run_catalog.h"
#include "mvadapter/serve/video_catalog.h"

namespace mva {

/// Embeds one caption query: [D], on the CPU. The server calls it from one thread at a time.
using QueryEncoder = std::function<torch::Tensor(const std::string& query)>;

/// How `serve` listens and what it allows.
struct ServeOptions {
  std::string host = "127.0.0.1";  ///< loopback by default: the index and files are not public
  int port = 8080;                 ///< 0: any free port (bind() returns it)
  int threads = 8;                 ///< worker threads answering requests (a browser opens 6)
  int timeout_s = 10;              ///< read and write timeout of a connection
  size_t max_query_bytes = 500;    ///< longest q of /api/search
  int64_t max_k = 100;             ///< largest k of /api/search
  int64_t default_k = 10;
  int64_t top_captions = 10;              ///< captions listed by /api/video/<id>
  size_t sheet_cache_bytes = 256u << 20;  ///< contact sheets kept in memory
  ClipOptions clip;  ///< how the model's frames are decoded (the sheets show them)
  int sheet_columns = 4;
  std::filesystem::path web_dir;  ///< the page (web/); empty: API only
};

/// The HTTP server of `mvadapter serve`: a JSON API over a VideoCatalog and a RunCatalog, and the
/// page in `web_dir`. Requests are answered by a bounded pool of threads; the model (through the
/// QueryEncoder) is used by one of them at a time, under no-grad, behind a mutex, because a
/// LibTorch module's forward is not meant to run concurrently on one set of buffers.
class SearchServer {
 public:
  SearchServer(VideoCatalog videos, RunCatalog runs, QueryEncoder encode, ServeOptions options);
  ~SearchServer();
  SearchServer(const SearchServer&) = delete;
  SearchServer& operator=(const SearchServer&) = delete;

  /// Binds options.host:options.port; returns the bound port. Throws Error when it cannot.
  int bind();
  /// Answers requests until stop(); call after bind().
  void run();
  /// Makes run() return (from any thread).
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;  // keeps httplib out of this header
};

}  // namespace mva
