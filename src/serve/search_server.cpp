#include "mvadapter/serve/search_server.h"

#include <algorithm>
#include <cctype>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <unordered_map>

#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"
#include "mvadapter/data/contact_sheet.h"
#include "mvadapter/serve/api_error.h"

namespace fs = std::filesystem;

namespace mva {
namespace {

using httplib::Request;
using httplib::Response;

// Invalid UTF-8 in a query must not turn an answer into an exception: replace it.
void send_json(Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json");
}

std::string first_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

std::string trimmed(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::string mime_of(const fs::path& file) {
  static const std::map<std::string, std::string> types = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".png", "image/png"},
      {".svg", "image/svg+xml"},
      {".ico", "image/x-icon"},
      {".mp4", "video/mp4"},
      {".webm", "video/webm"},
      {".mkv", "video/x-matroska"},
      {".avi", "video/x-msvideo"},
      {".mov", "video/quicktime"}};
  std::string ext = file.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  auto it = types.find(ext);
  return it == types.end() ? "application/octet-stream" : it->second;
}

// A positive integer of at most `max` from a query parameter, digits only.
int64_t parse_k(const std::string& text, int64_t max) {
  const bool digits =
      !text.empty() && text.size() <= 6 &&
      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  const int64_t k = digits ? std::stoll(text) : 0;
  if (k < 1 || k > max) {
    throw ApiError(400, fmt::format("k: expected an integer from 1 to {}, got '{}'", max, text));
  }
  return k;
}

std::string required_param(const Request& req, const char* name, const char* what) {
  if (!req.has_param(name)) throw ApiError(400, fmt::format("{}: missing ({})", name, what));
  return req.get_param_value(name);
}

// The files of the page, read once: requests are answered from memory, so no request path is
// ever joined to a folder.
std::map<std::string, std::string> read_web_files(const fs::path& dir) {
  std::map<std::string, std::string> files;
  if (dir.empty()) return files;
  if (!fs::is_directory(dir)) throw Error(fmt::format("--web: {} is not a folder", dir.string()));
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file() || mime_of(e.path()) == "application/octet-stream") continue;
    std::ifstream in(e.path(), std::ios::binary);
    files[e.path().filename().string()] = std::string(std::istreambuf_iterator<char>(in), {});
  }
  if (files.count("index.html") == 0) {
    throw Error(fmt::format("--web: {} has no index.html", dir.string()));
  }
  return files;
}

}  // namespace

struct SearchServer::Impl {
  Impl(VideoCatalog v, RunCatalog r, QueryEncoder e, ServeOptions o)
      : videos(std::move(v)), runs(std::move(r)), encode(std::move(e)), opt(std::move(o)) {}

  VideoCatalog videos;
  RunCatalog runs;
  QueryEncoder encode;
  ServeOptions opt;
  std::map<std::string, std::string> web;
  httplib::Server http;

  std::mutex model_mutex;  // one query through the model at a time
  std::mutex sheet_mutex;
  std::unordered_map<int64_t, std::shared_ptr<const std::string>> sheets;
  std::deque<int64_t> sheet_order;  // oldest first: evicted when over the byte budget
  size_t sheet_bytes = 0;

  int64_t video_row(const std::string& id) const {
    const int64_t row = videos.row_of(id);
    if (row < 0) throw ApiError(404, fmt::format("no video '{}' in the index", id));
    return row;
  }

  const VideoEntry& video_entry(int64_t row) const {
    const VideoEntry* e = videos.entry(row);
    if (e == nullptr) {
      throw ApiError(404, fmt::format("video '{}': its dataset split is not known to this server "
                                      "(serve it with the config the index was encoded with)",
                                      videos.videos().ids[static_cast<size_t>(row)]));
    }
    return *e;
  }

  void search(const Request& req, Response& res) {
    const std::string q =
        trimmed(required_param(req, "q", "the caption to search for: /api/search?q=...&k=10"));
    if (q.empty()) throw ApiError(400, "q: the query is empty");
    if (q.size() > opt.max_query_bytes) {
      throw ApiError(400,
                     fmt::format("q: {} bytes, at most {} allowed", q.size(), opt.max_query_bytes));
    }
    const int64_t k = req.has_param("k") ? parse_k(req.get_param_value("k"), opt.max_k)
                                         : std::min(opt.default_k, opt.max_k);
    torch::Tensor emb;
    {
      std::lock_guard<std::mutex> lock(model_mutex);
      torch::NoGradGuard no_grad;
      try {
        emb = encode(q);
      } catch (const Error& e) {
        throw ApiError(400, fmt::format("q: {}", e.what()));
      }
    }
    const auto truth = videos.ground_truth(q);
    nlohmann::json ids = nlohmann::json::array();
    for (int64_t row : truth) ids.push_back(videos.videos().ids[static_cast<size_t>(row)]);
    send_json(res, 200,
              {{"query", q},
               {"k", k},
               {"ground_truth", ids},
               {"hits", videos.rank_videos(emb, k, truth)}});
  }

  void video(const std::string& id, Response& res) const {
    const int64_t row = video_row(id);
    nlohmann::json file;
    if (const VideoEntry* e = videos.entry(row)) {
      std::error_code ec;
      const bool exists = !e->frame_folder && fs::is_regular_file(e->path, ec);
      file = {{"name", e->path.filename().string()},
              {"available", exists},
              {"bytes", exists ? nlohmann::json(fs::file_size(e->path, ec)) : nlohmann::json()},
              {"frame_folder", e->frame_folder},
              {"start_s", e->start_s},
              {"end_s", e->end_s}};
    }
    send_json(res, 200,
              {{"id", id},
               {"row", row},
               {"captions", videos.captions_of(row)},
               {"file", file},
               {"captions_index", videos.captions() != nullptr},
               {"top_captions", videos.top_captions(row, opt.top_captions)}});
  }

  std::shared_ptr<const std::string> sheet_png(int64_t row) {
    {
      std::lock_guard<std::mutex> lock(sheet_mutex);
      auto it = sheets.find(row);
      if (it != sheets.end()) return it->second;
    }
    // Decoded outside the lock: two first requests for one video may both decode it, which
    // costs less than making every other sheet wait.
    const ClipFrames clip = load_video_clip(video_entry(row), opt.clip);
    const auto bytes = contact_sheet_png(clip, opt.sheet_columns, opt.clip.decode.sample_fps);
    auto png = std::make_shared<const std::string>(bytes.begin(), bytes.end());
    std::lock_guard<std::mutex> lock(sheet_mutex);
    if (sheets.emplace(row, png).second) {
      sheet_order.push_back(row);
      sheet_bytes += png->size();
      while (sheet_bytes > opt.sheet_cache_bytes && sheet_order.size() > 1) {
        auto old = sheets.find(sheet_order.front());
        sheet_bytes -= old->second->size();
        sheets.erase(old);
        sheet_order.pop_front();
      }
    }
    return png;
  }

  void sheet(const std::string& id, Response& res) {
    const auto png = sheet_png(video_row(id));
    res.set_header("Cache-Control", "max-age=3600");
    res.set_content(*png, "image/png");
  }

  // Range is answered here rather than by httplib 0.11, which slices without checking the range
  // against the length; the request's ranges are then cleared so it does not slice again.
  void file(const Request& req, const std::string& id, Response& res) const {
    const int64_t row = video_row(id);
    const VideoEntry& e = video_entry(row);
    if (e.frame_folder) {
      throw ApiError(404, fmt::format("video '{}' is a folder of frames, not one file", id));
    }
    std::error_code ec;
    if (!fs::is_regular_file(e.path, ec)) {
      throw ApiError(404, fmt::format("the file of video '{}' is missing", id));
    }
    const auto size = static_cast<int64_t>(fs::file_size(e.path, ec));
    int64_t first = 0, last = size - 1;
    auto& ranges = const_cast<Request&>(req).ranges;
    res.set_header("Accept-Ranges", "bytes");
    if (ranges.size() == 1) {  // several ranges: the whole file, as RFC 9110 allows
      const auto [a, b] = ranges[0];
      if (a < 0) {  // "bytes=-N": the last N bytes
        first = std::max<int64_t>(0, size - b);
      } else {
        first = a;
        if (b >= 0) last = std::min<int64_t>(b, size - 1);
      }
      if (first >= size || first > last) {
        ranges.clear();
        res.set_header("Content-Range", fmt::format("bytes */{}", size));
        throw ApiError(416, fmt::format("Range: {} is outside the file's {} bytes",
                                        req.get_header_value("Range"), size));
      }
      res.status = 206;
      res.set_header("Content-Range", fmt::format("bytes {}-{}/{}", first, last, size));
    } else {
      res.status = 200;
    }
    ranges.clear();
    auto in = std::make_shared<std::ifstream>(e.path, std::ios::binary);
    if (!*in) throw Error(fmt::format("the file of video '{}' cannot be read", id));
    const int64_t base = first;
    res.set_content_provider(static_cast<size_t>(last - first + 1), mime_of(e.path),
                             [in, base](size_t offset, size_t length, httplib::DataSink& sink) {
                               std::vector<char> buf(std::min<size_t>(length, 1 << 16));
                               in->seekg(base + static_cast<int64_t>(offset));
                               in->read(buf.data(), static_cast<std::streamsize>(buf.size()));
                               const auto got = in->gcount();
                               if (got <= 0) return false;
                               return sink.write(buf.data(), static_cast<size_t>(got));
                             });
  }

  void compare(const Request& req, Response& res) const {
    const auto a = required_param(req, "a", "the first run: /api/runs/compare?a=RUN&b=RUN");
    const auto b = required_param(req, "b", "the second run: /api/runs/compare?a=RUN&b=RUN");
    send_json(res, 200, runs.compare(a, b));
  }

  void static_file(const std::string& name, Response& res) const {
    auto it = web.find(name);
    if (it == web.end()) {
      throw ApiError(404, web.empty() ? std::string("the page is not installed (serve --web DIR)")
                                      : fmt::format("no file '{}'", name));
    }
    res.set_content(it->second, mime_of(name));
  }

  void routes() {
    http.Get("/api/search", [this](const Request& req, Response& res) { search(req, res); });
    http.Get("/api/runs",
             [this](const Request&, Response& res) { send_json(res, 200, runs.list()); });
    http.Get("/api/runs/compare", [this](const Request& req, Response& res) { compare(req, res); });
    // Ids are keys into the index, never paths; an id may hold '/', so sheet and file come first.
    http.Get(R"(/api/video/(.+)/sheet\.png)",
             [this](const Request& req, Response& res) { sheet(req.matches[1], res); });
    http.Get(R"(/api/video/(.+)/file)",
             [this](const Request& req, Response& res) { file(req, req.matches[1], res); });
    http.Get(R"(/api/video/(.+))",
             [this](const Request& req, Response& res) { video(req.matches[1], res); });
    http.Get("/", [this](const Request&, Response& res) { static_file("index.html", res); });
    http.Get(R"(/([A-Za-z0-9_-]+\.[a-z]+))",
             [this](const Request& req, Response& res) { static_file(req.matches[1], res); });

    http.set_exception_handler([](const Request& req, Response& res, std::exception_ptr ep) {
      int status = 500;
      std::string message = "internal error";
      try {
        std::rethrow_exception(ep);
      } catch (const ApiError& e) {
        status = e.status;
        message = e.what();
      } catch (const std::exception& e) {
        // LibTorch's messages carry a backtrace after the first line: not for the client.
        message = first_line(e.what());
        spdlog::warn("{} {}: {}", req.method, req.path, message);
      } catch (...) {
      }
      send_json(res, status, {{"error", message}});
    });
    // Spelled out: a lambda would match both of httplib's error handler overloads.
    http.set_error_handler(
        httplib::Server::HandlerWithResponse([](const Request& req, Response& res) {
          if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
          const_cast<Request&>(req).ranges.clear();
          send_json(res, res.status,
                    {{"error", res.status == 404 ? fmt::format("not found: {}", req.path)
                                                 : fmt::format("HTTP {}", res.status)}});
          return httplib::Server::HandlerResponse::Handled;
        }));
  }
};

SearchServer::SearchServer(VideoCatalog videos, RunCatalog runs, QueryEncoder encode,
                           ServeOptions options)
    : impl_(std::make_unique<Impl>(std::move(videos), std::move(runs), std::move(encode),
                                   std::move(options))) {
  auto& opt = impl_->opt;
  if (opt.threads < 1) throw Error(fmt::format("--threads: {} must be at least 1", opt.threads));
  impl_->web = read_web_files(opt.web_dir);
  const size_t threads = static_cast<size_t>(opt.threads);
  impl_->http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  impl_->http.set_read_timeout(opt.timeout_s, 0);
  impl_->http.set_write_timeout(opt.timeout_s, 0);
  // An idle keep-alive connection holds a worker: kept short, so a browser's other connections
  // wait little.
  impl_->http.set_keep_alive_timeout(1);
  impl_->http.set_payload_max_length(64 * 1024);  // the API takes GETs only
  impl_->http.set_default_headers({{"X-Content-Type-Options", "nosniff"}});
  impl_->routes();
}

SearchServer::~SearchServer() = default;

int SearchServer::bind() {
  auto& opt = impl_->opt;
  int port = opt.port;
  if (port == 0) {
    port = impl_->http.bind_to_any_port(opt.host);
  } else if (!impl_->http.bind_to_port(opt.host, port)) {
    port = -1;
  }
  if (port < 0) {
    throw Error(
        fmt::format("--host/--port: cannot listen on {}:{} (in use, or not an address of "
                    "this machine)",
                    opt.host, opt.port));
  }
  return port;
}

void SearchServer::run() {
  impl_->http.listen_after_bind();
}

void SearchServer::stop() {
  impl_->http.stop();
}

}  // namespace mva
