#include "mvadapter/data/synthetic_shapes.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <fstream>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#if MVA_WITH_VIDEO
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#endif

#include "mvadapter/core/error.h"
#include "mvadapter/core/runtime.h"
#include "mvadapter/io/atomic_file.h"

namespace fs = std::filesystem;
using OJson = nlohmann::ordered_json;

namespace mva {
namespace {

// SplitMix64: a fixed, portable generator, so the same seed gives the same dataset with any
// standard library (std:: distributions are implementation-defined).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform(double lo, double hi) {
    return lo + (hi - lo) * static_cast<double>(next() >> 11) * 0x1.0p-53;
  }
  // Inclusive range; the modulo bias is below 2^-50 for the small ranges used here.
  int64_t integer(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1));
  }

 private:
  uint64_t state_;
};

// Independent streams per video (and per purpose), so videos can be drawn in any order.
uint64_t stream_seed(uint64_t seed, uint64_t video, uint64_t purpose) {
  Rng r(seed ^ (video * 0xD1B54A32D192ED03ull) ^ (purpose * 0x8CB92BA72F3D8DD7ull));
  r.next();
  return r.next();
}

double round3(double v) {
  return std::round(v * 1000.0) / 1000.0;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string fill(std::string tmpl, const std::string& key, const std::string& value) {
  for (size_t p = tmpl.find(key); p != std::string::npos; p = tmpl.find(key, p + value.size())) {
    tmpl.replace(p, key.size(), value);
  }
  return tmpl;
}

// {shape} is the noun with its motion phrase ("square moving left"), so every template reads
// naturally with and without motion.
const std::vector<std::string>& change_templates() {
  static const std::vector<std::string> kTemplates = {
      "a {shape} changes from {from} to {to}",
      "the {from} {shape} becomes {to}",
      "a {shape} is {from} then {to}",
      "a {from} {shape} turns {to}",
      "a {shape} that is {from} at first and {to} later",
  };
  return kTemplates;
}

void check_range(const char* option, int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi) {
    throw Error(
        fmt::format("synth: --{} {}: expected an integer in [{}, {}]", option, value, lo, hi));
  }
}

// The switch happens with at least a quarter of the clip on each side, and never after the last
// 1-fps sample (t = F - 1 s), so both colours are among the F sampled frames.
std::pair<int64_t, int64_t> switch_range(const ShapesOptions& o) {
  const int64_t n = o.frames * o.fps;
  const int64_t lo = std::max<int64_t>(1, (n + 3) / 4);
  const int64_t hi = std::min<int64_t>(3 * n / 4, (o.frames - 1) * o.fps);
  return {std::min(lo, hi), hi};
}

// Draws a video's class-independent parameters (position, size, switch time, motion).
ShapesVideo plan_video(const ShapesOptions& o, uint64_t index, const ShapesClass& cls) {
  Rng rng(stream_seed(o.seed, index, 1));
  ShapesVideo v;
  v.cls = cls;
  v.num_frames = o.frames * o.fps;
  const auto [slo, shi] = switch_range(o);
  v.switch_frame = rng.integer(slo, shi);
  const double s = static_cast<double>(o.size);
  // Moving shapes are smaller so that they travel a third of the frame and stay inside it.
  v.radius = round3(o.motion ? rng.uniform(0.20 * s, 0.27 * s) : rng.uniform(0.25 * s, 0.36 * s));
  const double lo = v.radius + 1.0, hi = s - 2.0 - v.radius;
  if (!o.motion) {
    v.x0 = v.x1 = round3(rng.uniform(lo, hi));
    v.y0 = v.y1 = round3(rng.uniform(lo, hi));
    return v;
  }
  const auto& dirs = motion_directions();
  v.direction = dirs[static_cast<size_t>(rng.integer(0, static_cast<int64_t>(dirs.size()) - 1))];
  const double travel = std::min(0.35 * s, hi - lo);
  const double ahead = round3(rng.uniform(lo + travel, hi));  // the larger coordinate
  const double behind = round3(ahead - travel);
  const double across = round3(rng.uniform(lo, hi));
  if (v.direction == "left" || v.direction == "right") {
    v.y0 = v.y1 = across;
    v.x0 = v.direction == "left" ? ahead : behind;
    v.x1 = v.direction == "left" ? behind : ahead;
  } else {  // image y grows downwards: "up" is decreasing y
    v.x0 = v.x1 = across;
    v.y0 = v.direction == "up" ? ahead : behind;
    v.y1 = v.direction == "up" ? behind : ahead;
  }
  return v;
}

struct Codec {
  std::string fourcc;
  std::string extension;
};

#if MVA_WITH_VIDEO

const std::vector<Codec>& codecs() {
  // MPEG-4 part 2 first: present in every FFmpeg build, fast, and exact enough at 32 px; H.264
  // when it is missing; Motion JPEG in an AVI when no MP4 writer opens at all.
  static const std::vector<Codec> kCodecs = {{"mp4v", ".mp4"}, {"avc1", ".mp4"}, {"MJPG", ".avi"}};
  return kCodecs;
}

// OpenCV draws with 4 fractional bits, so sub-pixel jitter of position and size is visible.
constexpr int kShift = 4;
constexpr double kScale = 1 << kShift;

cv::Point fixed_point(double x, double y) {
  return {static_cast<int>(std::lround(x * kScale)), static_cast<int>(std::lround(y * kScale))};
}

void fill_polygon(cv::Mat& mask, double cx, double cy,
                  const std::vector<std::pair<double, double>>& pts) {
  std::vector<cv::Point> poly;
  for (const auto& [x, y] : pts) poly.push_back(fixed_point(cx + x, cy + y));
  const cv::Point* data = poly.data();
  const int n = static_cast<int>(poly.size());
  cv::fillPoly(mask, &data, &n, 1, cv::Scalar(255), cv::LINE_AA, kShift);
}

std::vector<std::pair<double, double>> regular(int n, double r_outer, double r_inner,
                                               double start_deg) {
  std::vector<std::pair<double, double>> pts;
  const int count = r_inner > 0 ? 2 * n : n;
  for (int k = 0; k < count; ++k) {
    const double r = (r_inner > 0 && k % 2 == 1) ? r_inner : r_outer;
    const double a = (start_deg + 360.0 * k / count) * M_PI / 180.0;
    pts.emplace_back(r * std::cos(a), r * std::sin(a));
  }
  return pts;
}

// Coverage (0..255, antialiased) of shape `shape` centred at (cx, cy) with half-extent r.
cv::Mat shape_mask(int shape, double cx, double cy, double r, int size) {
  cv::Mat mask = cv::Mat::zeros(size, size, CV_8UC1);
  const std::string& name = shape_names()[static_cast<size_t>(shape)];
  if (name == "circle" || name == "ring") {
    cv::circle(mask, fixed_point(cx, cy), static_cast<int>(std::lround(r * kScale)),
               cv::Scalar(255), cv::FILLED, cv::LINE_AA, kShift);
    if (name == "ring") {
      cv::circle(mask, fixed_point(cx, cy), static_cast<int>(std::lround(0.5 * r * kScale)),
                 cv::Scalar(0), cv::FILLED, cv::LINE_AA, kShift);
    }
  } else if (name == "square") {
    const double h = 0.85 * r;  // about the circle's area
    fill_polygon(mask, cx, cy, {{-h, -h}, {h, -h}, {h, h}, {-h, h}});
  } else if (name == "triangle") {
    fill_polygon(mask, cx, cy, regular(3, r, 0, -90));
  } else if (name == "diamond") {
    fill_polygon(mask, cx, cy, regular(4, r, 0, -90));
  } else if (name == "star") {
    fill_polygon(mask, cx, cy, regular(5, r, 0.45 * r, -90));
  } else if (name == "cross") {
    const double t = 0.35 * r;
    fill_polygon(mask, cx, cy,
                 {{-t, -r},
                  {t, -r},
                  {t, -t},
                  {r, -t},
                  {r, t},
                  {t, t},
                  {t, r},
                  {-t, r},
                  {-t, t},
                  {-r, t},
                  {-r, -t},
                  {-t, -t}});
  } else {
    throw Error(fmt::format("synth: no drawing for shape '{}'", name));
  }
  return mask;
}

uint8_t clamp_u8(int v) {
  return static_cast<uint8_t>(std::clamp(v, 0, 255));
}

bool open_writer(cv::VideoWriter& w, const fs::path& file, const Codec& c, double fps, int size) {
  const auto& f = c.fourcc;
  return w.open(file.string(), cv::CAP_FFMPEG, cv::VideoWriter::fourcc(f[0], f[1], f[2], f[3]), fps,
                cv::Size(size, size)) &&
         w.isOpened();
}

// The first codec (of `wanted`, or of all when empty) whose writer opens and writes in `dir`.
Codec probe_codec(const fs::path& dir, int size, const std::string& wanted) {
  for (const auto& c : codecs()) {
    if (!wanted.empty() && c.fourcc != wanted) continue;
    const fs::path probe = dir / (".synth-probe" + c.extension);
    bool ok = false;
    {
      cv::VideoWriter w;
      if (open_writer(w, probe, c, 4.0, size)) {
        w.write(cv::Mat(size, size, CV_8UC3, cv::Scalar(128, 128, 128)));
        w.release();
        std::error_code ec;
        ok = fs::file_size(probe, ec) > 0 && !ec;
      }
    }
    std::error_code ec;
    fs::remove(probe, ec);
    if (ok) return c;
  }
  if (!wanted.empty()) {
    throw Error(fmt::format("{}: --codec {}: this OpenCV/FFmpeg build cannot write it",
                            dir.string(), wanted));
  }
  throw Error(
      fmt::format("{}: no video writer opens (tried mp4v and avc1 .mp4, MJPG .avi)", dir.string()));
}

// Renders and encodes one video. Pixels depend only on (seed, index) and the plan.
void render_video(const ShapesOptions& o, uint64_t index, const ShapesVideo& v, const Codec& codec,
                  const fs::path& file) {
  Rng rng(stream_seed(o.seed, index, 2));
  const int size = static_cast<int>(o.size);
  // A noisy grey background, fixed for the clip, in a random shade.
  const int grey = static_cast<int>(rng.integer(80, 170));
  cv::Mat background(size, size, CV_8UC3);
  for (int y = 0; y < size; ++y) {
    auto* row = background.ptr<uint8_t>(y);
    for (int x = 0; x < size; ++x) {
      const int g = grey + static_cast<int>(rng.integer(-22, 22));
      for (int ch = 0; ch < 3; ++ch)
        row[3 * x + ch] = clamp_u8(g + static_cast<int>(rng.integer(-5, 5)));
    }
  }
  // Each colour varies a little from clip to clip; stored BGR as OpenCV writes it.
  auto jittered_bgr = [&](int color) {
    const auto rgb = color_rgb(color);
    std::array<int, 3> bgr{};
    for (int ch = 0; ch < 3; ++ch) {
      bgr[2 - ch] =
          std::clamp(rgb[static_cast<size_t>(ch)] + static_cast<int>(rng.integer(-10, 10)), 0, 255);
    }
    return bgr;
  };
  const auto first = jittered_bgr(v.cls.color_from);
  const auto second = jittered_bgr(v.cls.color_to);

  cv::VideoWriter writer;
  if (!open_writer(writer, file, codec, static_cast<double>(o.fps), size)) {
    throw Error(fmt::format("{}: cannot open a {} video writer", file.string(), codec.fourcc));
  }
  cv::Mat frame(size, size, CV_8UC3);
  cv::Mat mask;
  for (int64_t j = 0; j < v.num_frames; ++j) {
    const double t =
        v.num_frames > 1 ? static_cast<double>(j) / static_cast<double>(v.num_frames - 1) : 0.0;
    if (mask.empty() || !v.direction.empty()) {
      mask = shape_mask(v.cls.shape, v.x0 + (v.x1 - v.x0) * t, v.y0 + (v.y1 - v.y0) * t, v.radius,
                        size);
    }
    const auto& colour = j < v.switch_frame ? first : second;
    for (int y = 0; y < size; ++y) {
      const auto* bg = background.ptr<uint8_t>(y);
      const auto* m = mask.ptr<uint8_t>(y);
      auto* out = frame.ptr<uint8_t>(y);
      for (int x = 0; x < size; ++x) {
        const int a = m[x];
        // One draw gives the sensor-like noise of the three channels of a pixel.
        const uint64_t bits = rng.next();
        for (int ch = 0; ch < 3; ++ch) {
          const int mixed =
              (bg[3 * x + ch] * (255 - a) + colour[static_cast<size_t>(ch)] * a + 127) / 255;
          const int noise = static_cast<int>((bits >> (8 * ch)) % 13) - 6;
          out[3 * x + ch] = clamp_u8(mixed + noise);
        }
      }
    }
    writer.write(frame);
  }
  writer.release();
  std::error_code ec;
  if (fs::file_size(file, ec) == 0 || ec) {
    throw Error(fmt::format("{}: the {} writer wrote nothing", file.string(), codec.fourcc));
  }
}

#else

Codec probe_codec(const fs::path& dir, int, const std::string&) {
  throw Error(fmt::format("{}: synth needs video support (this build has MVA_WITH_VIDEO=OFF)",
                          dir.string()));
}

void render_video(const ShapesOptions&, uint64_t, const ShapesVideo&, const Codec&,
                  const fs::path& file) {
  throw Error(fmt::format("{}: synth needs video support (this build has MVA_WITH_VIDEO=OFF)",
                          file.string()));
}

#endif  // MVA_WITH_VIDEO

// An existing folder is written into only when it is empty or an earlier synth output, so a
// typo in --out cannot wipe a user's folder.
void prepare_out(const fs::path& out) {
  std::error_code ec;
  if (fs::exists(out, ec)) {
    if (!fs::is_directory(out, ec)) {
      throw Error(fmt::format("{}: --out exists and is not a folder", out.string()));
    }
    if (!fs::is_empty(out, ec) && !fs::exists(out / "synth.json", ec)) {
      throw Error(
          fmt::format("{}: --out is a non-empty folder without synth.json (not an earlier synth "
                      "output); refusing to write into it",
                      out.string()));
    }
    for (const char* old : {"videos", "annotations", "synth.json", "README.txt"}) {
      fs::remove_all(out / old, ec);
      if (ec) {
        throw Error(fmt::format("{}: --out: cannot remove the earlier output: {}",
                                (out / old).string(), ec.message()));
      }
    }
  }
  for (const char* sub : {"videos", "annotations"}) {
    fs::create_directories(out / sub, ec);
    if (ec) {
      throw Error(fmt::format("{}: --out: cannot create the folder: {}", (out / sub).string(),
                              ec.message()));
    }
  }
  const fs::path probe = out / ".synth-write-test";
  {
    std::ofstream f(probe);
    f << "ok";
    f.close();
    if (!f) {
      throw Error(fmt::format("{}: --out: the folder is not writable", out.string()));
    }
  }
  fs::remove(probe, ec);
}

std::string msrvtt_data_json(const ShapesOptions& o, const std::vector<ShapesVideo>& videos) {
  OJson j;
  j["info"] = {{"description", "mvadapter synthetic Shapes videos (DESIGN.md section 7)"},
               {"seed", o.seed}};
  OJson vids = OJson::array(), sentences = OJson::array();
  int64_t sen = 0;
  for (size_t i = 0; i < videos.size(); ++i) {
    const ShapesVideo& v = videos[i];
    vids.push_back({{"category", v.cls.shape},
                    {"url", ""},
                    {"video_id", v.id},
                    {"start time", 0.0},
                    {"end time", static_cast<double>(o.frames)},
                    {"split", v.split},
                    {"id", i}});
    for (const auto& c : v.captions) {
      sentences.push_back({{"caption", c}, {"video_id", v.id}, {"sen_id", sen++}});
    }
  }
  j["videos"] = std::move(vids);
  j["sentences"] = std::move(sentences);
  return j.dump() + "\n";
}

std::string pretrain_jsonl(const ShapesOptions& o, const std::vector<ShapesVideo>& videos) {
  std::string out;
  const double fps = static_cast<double>(o.fps);
  for (const auto& v : videos) {
    if (v.split != "train") continue;  // the test videos stay unseen
    // Windows end and start half a frame from the switch, so int(t * fps) of every 1-fps sample
    // inside a window lands on the window's side of the switch whatever the rounding.
    const double before_end = (static_cast<double>(v.switch_frame) - 0.5) / fps;
    const double after_start = (static_cast<double>(v.switch_frame) + 0.5) / fps;
    const struct {
      const char* suffix;
      int color;
      double start, end;
    } windows[] = {{"first", v.cls.color_from, 0.0, before_end},
                   {"second", v.cls.color_to, after_start, static_cast<double>(o.frames)}};
    for (const auto& w : windows) {
      OJson line = {{"id", fmt::format("{}_{}", v.id, w.suffix)},
                    {"video", v.file},
                    {"start", w.start},
                    {"end", w.end},
                    {"captions", static_captions(v.cls.shape, w.color)}};
      out += line.dump() + "\n";
    }
  }
  return out;
}

std::string synth_json(const ShapesOptions& o, const ShapesSummary& s) {
  OJson j;
  j["generator"] = "mvadapter synth";
  j["format_version"] = 1;
  j["seed"] = o.seed;
  j["frames"] = o.frames;
  j["size"] = o.size;
  j["fps"] = o.fps;
  j["train_per_class"] = o.train_per_class;
  j["shapes"] = std::vector<std::string>(shape_names().begin(), shape_names().begin() + o.shapes);
  j["colors"] = std::vector<std::string>(color_names().begin(), color_names().begin() + o.colors);
  j["motion"] = o.motion;
  j["codec"] = s.codec;
  j["frames_per_video"] = o.frames * o.fps;
  j["train_videos"] = s.train_videos;
  j["test_videos"] = s.test_videos;
  j["train_captions"] = s.train_captions;
  j["pretrain_items"] = s.pretrain_items;
  OJson vids = OJson::array();
  for (const auto& v : s.videos) {
    vids.push_back({{"id", v.id},
                    {"file", v.file},
                    {"split", v.split},
                    {"shape", shape_names()[static_cast<size_t>(v.cls.shape)]},
                    {"from", color_names()[static_cast<size_t>(v.cls.color_from)]},
                    {"to", color_names()[static_cast<size_t>(v.cls.color_to)]},
                    {"direction", v.direction},
                    {"switch_frame", v.switch_frame},
                    {"radius", v.radius},
                    {"x0", v.x0},
                    {"y0", v.y0},
                    {"x1", v.x1},
                    {"y1", v.y1}});
  }
  j["videos"] = std::move(vids);
  return j.dump(2) + "\n";
}

std::string readme_text(const ShapesOptions& o, const ShapesSummary& s) {
  const auto [slo, shi] = switch_range(o);
  std::string shapes, colors;
  for (int64_t i = 0; i < o.shapes; ++i)
    shapes += (i ? ", " : "") + shape_names()[static_cast<size_t>(i)];
  for (int64_t i = 0; i < o.colors; ++i)
    colors += (i ? ", " : "") + color_names()[static_cast<size_t>(i)];
  return fmt::format(
      "Synthetic Shapes videos written by `mvadapter synth` (docs/DESIGN.md section 7).\n"
      "\n"
      "Each clip shows one shape on a noisy grey background that changes from one colour to\n"
      "another part-way through, so its captions depend on the order of the frames.\n"
      "\n"
      "Parameters (also in synth.json, with every video's shape, colours, switch frame and\n"
      "position): seed {}, {} s clips written at {} fps ({} frames, switch at frame {}..{}),\n"
      "{}x{} px, codec {}, motion {}.\n"
      "Shapes: {}.\nColours: {}.\n"
      "\n"
      "Layout:\n"
      "  videos/<id>{}                         the clips\n"
      "  annotations/MSRVTT_data.json            videos and sentences (MSR-VTT format)\n"
      "  annotations/MSRVTT_train.9k.csv         {} training videos ({} per class), {} captions\n"
      "  annotations/MSRVTT_JSFUSION_test.csv    {} test videos, one per (shape, ordered colour\n"
      "                                          pair), one caption each\n"
      "  annotations/pretrain.jsonl              {} single-colour windows of the training videos\n"
      "                                          with static captions (\"a red square\")\n"
      "\n"
      "Read with dataset msrvtt (annotations = annotations/, videos = videos/) for train/test,\n"
      "and dataset jsonl (annotations = annotations/pretrain.jsonl, videos = videos/).\n",
      o.seed, o.frames, o.fps, o.frames * o.fps, slo, shi, o.size, o.size, s.codec,
      o.motion ? "on" : "off", shapes, colors, s.codec == "MJPG" ? ".avi" : ".mp4", s.train_videos,
      o.train_per_class, s.train_captions, s.test_videos, s.pretrain_items);
}

}  // namespace

const std::vector<std::string>& shape_names() {
  // Ordered by how easily a 32 px frame tells them apart, since --shapes takes the first ones:
  // a circle and a square of radius 8-11 px differ only at their corners.
  static const std::vector<std::string> kShapes = {"circle",  "cross", "triangle", "square",
                                                   "diamond", "star",  "ring"};
  return kShapes;
}

const std::vector<std::string>& color_names() {
  static const std::vector<std::string> kColors = {"red",     "green", "blue",   "yellow",
                                                   "magenta", "cyan",  "orange", "white"};
  return kColors;
}

std::array<uint8_t, 3> color_rgb(int color) {
  // Saturated and far apart, and far from the grey background (80..170), so that a 32 px frame
  // after 4:2:0 chroma subsampling still shows which colour it is.
  static const std::array<std::array<uint8_t, 3>, 8> kRgb = {{{220, 40, 40},
                                                              {40, 190, 60},
                                                              {40, 80, 230},
                                                              {235, 215, 40},
                                                              {210, 50, 210},
                                                              {40, 210, 220},
                                                              {240, 140, 30},
                                                              {245, 245, 245}}};
  if (color < 0 || color >= static_cast<int>(kRgb.size())) {
    throw Error(fmt::format("synth: colour index {} (expected 0..{})", color, kRgb.size() - 1));
  }
  return kRgb[static_cast<size_t>(color)];
}

const std::vector<std::string>& motion_directions() {
  static const std::vector<std::string> kDirections = {"left", "right", "up", "down"};
  return kDirections;
}

void validate_shapes_options(const ShapesOptions& o) {
  check_range("frames", o.frames, 2, 64);
  check_range("size", o.size, 16, 256);
  if (o.size % 2 != 0) {
    throw Error(
        fmt::format("synth: --size {}: expected an even number of pixels (4:2:0 video)", o.size));
  }
  check_range("fps", o.fps, 1, 30);
  check_range("train-per-class", o.train_per_class, 1, 10000);
  check_range("shapes", o.shapes, 1, static_cast<int64_t>(shape_names().size()));
  check_range("colors", o.colors, 2, static_cast<int64_t>(color_names().size()));
  check_range("threads", o.threads, 0, 256);
  if (!o.codec.empty() && o.codec != "mp4v" && o.codec != "avc1" && o.codec != "MJPG") {
    throw Error(
        fmt::format("synth: --codec {}: expected mp4v, avc1 or MJPG (or none: the first "
                    "that works)",
                    o.codec));
  }
}

std::vector<ShapesClass> shapes_classes(int64_t shapes, int64_t colors) {
  std::vector<ShapesClass> out;
  for (int s = 0; s < shapes; ++s) {
    for (int a = 0; a < colors; ++a) {
      for (int b = 0; b < colors; ++b) {
        if (a != b) out.push_back({s, a, b});
      }
    }
  }
  return out;
}

std::vector<std::string> change_captions(const ShapesClass& cls, const std::string& direction) {
  const std::string shape = shape_names().at(static_cast<size_t>(cls.shape)) +
                            (direction.empty() ? "" : " moving " + direction);
  const std::string& from = color_names().at(static_cast<size_t>(cls.color_from));
  const std::string& to = color_names().at(static_cast<size_t>(cls.color_to));
  std::vector<std::string> out;
  for (const auto& t : change_templates()) {
    out.push_back(fill(fill(fill(t, "{shape}", shape), "{from}", from), "{to}", to));
  }
  return out;
}

int test_caption_template(const ShapesClass& cls, int64_t colors) {
  const int64_t lo = std::min(cls.color_from, cls.color_to);
  const int64_t hi = std::max(cls.color_from, cls.color_to);
  const int64_t pair = lo * colors + hi;
  return static_cast<int>((cls.shape + pair) % static_cast<int64_t>(change_templates().size()));
}

std::vector<std::string> static_captions(int shape, int color) {
  const std::string& s = shape_names().at(static_cast<size_t>(shape));
  const std::string& c = color_names().at(static_cast<size_t>(color));
  return {fmt::format("a {} {}", c, s), fmt::format("a photo of a {} {}", c, s),
          fmt::format("a {} that is {}", s, c)};
}

DatasetSpec shapes_dataset_spec(const fs::path& out, const std::string& split) {
  DatasetSpec spec;
  spec.videos = out / "videos";
  if (split == "pretrain") {
    spec.format = "jsonl";
    spec.split = "train";
    spec.annotations = out / "annotations" / "pretrain.jsonl";
  } else {
    spec.format = "msrvtt";
    spec.split = split;
    spec.annotations = out / "annotations";
  }
  return spec;
}

ShapesSummary write_shapes_dataset(const fs::path& out, const ShapesOptions& o) {
  validate_shapes_options(o);
#if !MVA_WITH_VIDEO
  // Before anything is created on disk.
  throw Error(fmt::format("{}: synth needs video support (this build has MVA_WITH_VIDEO=OFF)",
                          out.string()));
#endif
  prepare_out(out);
  const fs::path video_dir = out / "videos";
  const Codec codec = probe_codec(video_dir, static_cast<int>(o.size), o.codec);

  ShapesSummary s;
  s.out = out;
  s.codec = codec.fourcc;
  const auto classes = shapes_classes(o.shapes, o.colors);
  const int64_t total = static_cast<int64_t>(classes.size()) * (o.train_per_class + 1);
  const int digits = std::max<int>(4, static_cast<int>(fmt::format("{}", total - 1).size()));
  // Training videos go round the classes, so any prefix of the list is balanced.
  for (int64_t k = 0; k <= o.train_per_class; ++k) {
    const bool test = k == o.train_per_class;
    for (const auto& cls : classes) {
      const auto index = static_cast<uint64_t>(s.videos.size());
      ShapesVideo v = plan_video(o, index, cls);
      v.id = fmt::format("video{:0{}d}", index, digits);
      v.file = v.id + codec.extension;
      v.split = test ? "test" : "train";
      auto captions = change_captions(cls, v.direction);
      if (test) {
        v.captions = {captions[static_cast<size_t>(test_caption_template(cls, o.colors))]};
        ++s.test_videos;
      } else {
        v.captions = std::move(captions);
        ++s.train_videos;
        s.train_captions += static_cast<int64_t>(v.captions.size());
      }
      s.videos.push_back(std::move(v));
    }
  }

  std::atomic<size_t> next{0};
  std::mutex mu;
  std::exception_ptr failure;
  auto worker = [&] {
    for (size_t i = next++; i < s.videos.size(); i = next++) {
      try {
        render_video(o, i, s.videos[i], codec, video_dir / s.videos[i].file);
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu);
        if (!failure) failure = std::current_exception();
        next = s.videos.size();
      }
    }
  };
  const int threads = std::max(1, std::min(o.threads > 0 ? o.threads : hardware_threads(),
                                           static_cast<int>(s.videos.size())));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);

  const fs::path ann = out / "annotations";
  write_text_atomically(ann / "MSRVTT_data.json", msrvtt_data_json(o, s.videos));
  std::string train_csv = "video_id\n", test_csv = "key,vid_key,video_id,sentence\n";
  int64_t test_row = 0;
  for (size_t i = 0; i < s.videos.size(); ++i) {
    const ShapesVideo& v = s.videos[i];
    if (v.split == "train") {
      train_csv += v.id + "\n";
    } else {
      test_csv += fmt::format("ret{},msr{},{},{}\n", test_row++, i, v.id, csv_field(v.captions[0]));
    }
  }
  write_text_atomically(ann / "MSRVTT_train.9k.csv", train_csv);
  write_text_atomically(ann / "MSRVTT_JSFUSION_test.csv", test_csv);
  const std::string pretrain = pretrain_jsonl(o, s.videos);
  s.pretrain_items = static_cast<int64_t>(std::count(pretrain.begin(), pretrain.end(), '\n'));
  write_text_atomically(ann / "pretrain.jsonl", pretrain);
  write_text_atomically(out / "synth.json", synth_json(o, s));
  write_text_atomically(out / "README.txt", readme_text(o, s));
  return s;
}

}  // namespace mva
