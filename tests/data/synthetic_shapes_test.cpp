#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "mvadapter/core/error.h"
#include "mvadapter/data/dataset_readers.h"
#include "mvadapter/data/synthetic_shapes.h"
#include "mvadapter/data/video_loader.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace mva {
namespace {

// The palette as the brief specifies it, written out here rather than taken from the generator.
const std::map<std::string, std::array<int, 3>> kPalette = {
    {"red", {220, 40, 40}}, {"green", {40, 190, 60}}, {"blue", {40, 80, 230}}};

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// (shape, first colour, second colour) as a caption states them: every template names the
// colour before the switch first.
std::tuple<std::string, std::string, std::string> parse_caption(const std::string& caption) {
  std::string shape;
  for (const char* s : {"circle", "cross"}) {
    if (caption.find(s) != std::string::npos) shape = s;
  }
  std::vector<std::pair<size_t, std::string>> colours;
  for (const auto& [name, rgb] : kPalette) {
    const size_t p = caption.find(name);
    if (p != std::string::npos) colours.emplace_back(p, name);
  }
  std::sort(colours.begin(), colours.end());
  if (colours.size() != 2) return {shape, "", ""};
  return {shape, colours[0].second, colours[1].second};
}

ShapesOptions small_options(uint64_t seed) {
  ShapesOptions o;
  o.seed = seed;
  o.frames = 4;
  o.fps = 2;
  o.size = 32;
  o.train_per_class = 2;
  o.shapes = 2;  // circle, cross: their centre is always inside the shape
  o.colors = 3;  // red, green, blue: 6 ordered pairs
  return o;
}

// Mean RGB of frame `f` of uint8 [F, 3, S, S] in the box of half-side `half` around (cx, cy).
std::array<double, 3> box_mean(const torch::Tensor& frames, int64_t f, double cx, double cy,
                               double half) {
  const auto x0 = static_cast<int64_t>(std::ceil(cx - half));
  const auto x1 = static_cast<int64_t>(std::floor(cx + half));
  const auto y0 = static_cast<int64_t>(std::ceil(cy - half));
  const auto y1 = static_cast<int64_t>(std::floor(cy + half));
  const auto box = frames[f].slice(1, y0, y1 + 1).slice(2, x0, x1 + 1).to(torch::kFloat64);
  const auto mean = box.mean({1, 2});
  return {mean[0].item<double>(), mean[1].item<double>(), mean[2].item<double>()};
}

std::string nearest_colour(const std::array<double, 3>& rgb) {
  std::string best;
  double best_d = 1e18;
  for (const auto& [name, ref] : kPalette) {
    double d = 0;
    for (int c = 0; c < 3; ++c) d += (rgb[c] - ref[c]) * (rgb[c] - ref[c]);
    if (d < best_d) best_d = d, best = name;
  }
  return best;
}

std::string describe(const std::array<double, 3>& rgb) {
  return fmt::format("({:.0f}, {:.0f}, {:.0f})", rgb[0], rgb[1], rgb[2]);
}

ClipFrames load(const VideoEntry& v, int64_t frames) {
  ClipOptions opts;
  opts.frames = frames;
  opts.transform.size = 32;  // the frames' own size: the crop is the whole frame
  return load_video_clip(v, opts);
}

class SyntheticShapes : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!MVA_WITH_VIDEO) return;  // SetUp skips each test
    dir_ = new fs::path(test::temp_dir("synth_small"));
    summary_ = new ShapesSummary(write_shapes_dataset(*dir_, small_options(7)));
  }
  static void TearDownTestSuite() {
    if (dir_ == nullptr) return;
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
    delete summary_;
  }
  void SetUp() override { MVA_REQUIRE_VIDEO(); }
  static const ShapesVideo& video_of(const std::string& id) {
    for (const auto& v : summary_->videos) {
      if (v.id == id) return v;
    }
    throw Error("no video " + id);
  }
  static fs::path* dir_;
  static ShapesSummary* summary_;
};
fs::path* SyntheticShapes::dir_ = nullptr;
ShapesSummary* SyntheticShapes::summary_ = nullptr;

TEST(ShapesHelpers, ClassesAreEveryShapeWithEveryOrderedPairOfDistinctColours) {
  const auto classes = shapes_classes(2, 3);
  ASSERT_EQ(classes.size(), 12u);  // 2 shapes x 3 x 2 ordered pairs
  std::set<std::tuple<int, int, int>> seen;
  for (const auto& c : classes) {
    EXPECT_NE(c.color_from, c.color_to);
    seen.insert({c.shape, c.color_from, c.color_to});
  }
  EXPECT_EQ(seen.size(), 12u);
  EXPECT_EQ(shapes_classes(3, 6).size(), 90u);  // the default test set
}

TEST(ShapesHelpers, CaptionsStateTheOrderOfTheColours) {
  const auto names = shape_names();
  const auto colours = color_names();
  ASSERT_EQ(names[3], "square");
  ASSERT_EQ(colours[0], "red");
  ASSERT_EQ(colours[2], "blue");
  const auto captions = change_captions({3, 0, 2});
  for (const char* want : {"a square changes from red to blue", "the red square becomes blue",
                           "a square is red then blue", "a red square turns blue"}) {
    EXPECT_NE(std::find(captions.begin(), captions.end(), want), captions.end()) << want;
  }
  const auto moving = change_captions({3, 0, 2}, "left");
  EXPECT_NE(std::find(moving.begin(), moving.end(), "a red square moving left turns blue"),
            moving.end());
  const auto statics = static_captions(3, 0);
  EXPECT_NE(std::find(statics.begin(), statics.end(), "a red square"), statics.end());
}

TEST(ShapesHelpers, ReversedPairsShareTheTestTemplate) {
  for (int s = 0; s < 6; ++s) {
    for (int a = 0; a < 4; ++a) {
      for (int b = a + 1; b < 4; ++b) {
        EXPECT_EQ(test_caption_template({s, a, b}, 4), test_caption_template({s, b, a}, 4));
      }
    }
  }
}

TEST(ShapesHelpers, BadOptionsNameTheOption) {
  const fs::path out = test::temp_dir("synth_bad");
  auto with = [](auto change) {
    ShapesOptions o;
    change(o);
    return o;
  };
  EXPECT_ERROR_CONTAINS(write_shapes_dataset(out, with([](auto& o) { o.frames = 1; })), "--frames");
  EXPECT_ERROR_CONTAINS(write_shapes_dataset(out, with([](auto& o) { o.size = 33; })), "--size");
  EXPECT_ERROR_CONTAINS(write_shapes_dataset(out, with([](auto& o) { o.fps = 0; })), "--fps");
  EXPECT_ERROR_CONTAINS(write_shapes_dataset(out, with([](auto& o) { o.train_per_class = 0; })),
                        "--train-per-class");
  EXPECT_ERROR_CONTAINS(write_shapes_dataset(out, with([](auto& o) { o.shapes = 99; })),
                        "--shapes");
  EXPECT_ERROR_CONTAINS(write_shapes_dataset(out, with([](auto& o) { o.colors = 1; })), "--colors");
  EXPECT_TRUE(fs::is_empty(out)) << "nothing is written for bad options";
  fs::remove_all(out);
}

TEST(ShapesHelpers, UnwritableOrForeignOutputIsAnError) {
  MVA_REQUIRE_VIDEO();
  const fs::path dir = test::temp_dir("synth_out");
  const fs::path file = dir / "a_file";
  std::ofstream(file) << "not a folder";
  ShapesOptions o = small_options(1);
  EXPECT_ERROR_CONTAINS(write_shapes_dataset(file, o), "--out");
  EXPECT_ERROR_CONTAINS(write_shapes_dataset(file / "sub", o), "--out");
  // A folder holding someone's files is never overwritten.
  EXPECT_ERROR_CONTAINS(write_shapes_dataset(dir, o), "refusing");
  EXPECT_TRUE(fs::exists(file));
  fs::remove_all(dir);
}

TEST_F(SyntheticShapes, WritesTheDocumentedLayout) {
  for (const char* f : {"README.txt", "synth.json", "annotations/MSRVTT_data.json",
                        "annotations/MSRVTT_train.9k.csv", "annotations/MSRVTT_JSFUSION_test.csv",
                        "annotations/pretrain.jsonl"}) {
    EXPECT_TRUE(fs::is_regular_file(*dir_ / f)) << f;
  }
  EXPECT_EQ(summary_->train_videos, 24);  // 12 classes x 2
  EXPECT_EQ(summary_->test_videos, 12);
  EXPECT_EQ(summary_->pretrain_items, 48);
  int64_t files = 0;
  for (const auto& e : fs::directory_iterator(*dir_ / "videos")) {
    ++files;
    EXPECT_TRUE(e.path().extension() == ".mp4" || e.path().extension() == ".avi") << e.path();
  }
  EXPECT_EQ(files, 36);
  const auto json = nlohmann::json::parse(read_text(*dir_ / "synth.json"));
  EXPECT_EQ(json.at("seed").get<uint64_t>(), 7u);
  EXPECT_EQ(json.at("frames").get<int64_t>(), 4);
  EXPECT_EQ(json.at("fps").get<int64_t>(), 2);
  EXPECT_EQ(json.at("train_per_class").get<int64_t>(), 2);
  const std::string header = "key,vid_key,video_id,sentence\n";
  EXPECT_EQ(read_text(*dir_ / "annotations/MSRVTT_JSFUSION_test.csv").substr(0, header.size()),
            header);
  EXPECT_EQ(read_text(*dir_ / "annotations/MSRVTT_train.9k.csv").substr(0, 9), "video_id\n");
}

TEST_F(SyntheticShapes, TrainSplitReadsAsMsrvttWithEveryTemplate) {
  DatasetSpec spec = shapes_dataset_spec(*dir_, "train");
  spec.require_videos = true;
  const Manifest m = read_dataset(spec);
  ASSERT_EQ(m.videos.size(), 24u);
  ASSERT_EQ(m.captions.size(), 24u * 5u);
  const auto per_video = m.captions_per_video();
  for (size_t v = 0; v < m.videos.size(); ++v) {
    ASSERT_EQ(per_video[v].size(), 5u) << m.videos[v].id;
    EXPECT_EQ(m.videos[v].path.parent_path(), *dir_ / "videos");
    // Every caption of a video states the same shape and colour order, the generated one.
    const ShapesVideo& truth = video_of(m.videos[v].id);
    EXPECT_EQ(truth.split, "train");
    for (auto c : per_video[v]) {
      const auto [shape, from, to] = parse_caption(m.captions[static_cast<size_t>(c)].text);
      EXPECT_EQ(shape, shape_names()[static_cast<size_t>(truth.cls.shape)]);
      EXPECT_EQ(from, color_names()[static_cast<size_t>(truth.cls.color_from)]);
      EXPECT_EQ(to, color_names()[static_cast<size_t>(truth.cls.color_to)]);
    }
  }
}

TEST_F(SyntheticShapes, TestSplitHasEveryShapeAndOrderedPairOnceWithOneCaption) {
  DatasetSpec spec = shapes_dataset_spec(*dir_, "test");
  spec.require_videos = true;
  const Manifest m = read_dataset(spec);
  ASSERT_EQ(m.videos.size(), 12u);
  ASSERT_EQ(m.captions.size(), 12u);
  for (const auto& ids : m.captions_per_video()) EXPECT_EQ(ids.size(), 1u);
  std::set<std::tuple<std::string, std::string, std::string>> seen;
  for (const auto& c : m.captions) seen.insert(parse_caption(c.text));
  std::set<std::tuple<std::string, std::string, std::string>> want;
  for (const char* s : {"circle", "cross"}) {
    for (const char* a : {"red", "green", "blue"}) {
      for (const char* b : {"red", "green", "blue"}) {
        if (std::string(a) != b) want.insert({s, a, b});
      }
    }
  }
  EXPECT_EQ(seen, want);
}

TEST_F(SyntheticShapes, DecodedFramesShowTheFirstColourThenTheSecond) {
  const Manifest m = read_dataset(shapes_dataset_spec(*dir_, "test"));
  for (size_t v = 0; v < m.videos.size(); ++v) {
    const auto [shape, from, to] = parse_caption(m.captions[v].text);
    const ShapesVideo& truth = video_of(m.videos[v].id);
    const ClipFrames clip = load(m.videos[v], 4);
    // 4 s clips: the 1-fps sampler sees 4 frames, spanning the clip.
    ASSERT_EQ(clip.num_sampled, 4) << m.videos[v].id;
    EXPECT_EQ(clip.source_index, (std::vector<int64_t>{0, 2, 4, 6}));
    const double half = 0.5 * truth.radius;
    const auto first = box_mean(clip.frames, 0, truth.x0, truth.y0, half);
    const auto last = box_mean(clip.frames, 3, truth.x1, truth.y1, half);
    EXPECT_EQ(nearest_colour(first), from) << m.videos[v].id << " first frame " << describe(first);
    EXPECT_EQ(nearest_colour(last), to) << m.videos[v].id << " last frame " << describe(last);
    for (int c = 0; c < 3; ++c) {
      EXPECT_NEAR(first[c], kPalette.at(from)[c], 40.0) << m.videos[v].id << describe(first);
      EXPECT_NEAR(last[c], kPalette.at(to)[c], 40.0) << m.videos[v].id << describe(last);
    }
  }
}

TEST_F(SyntheticShapes, PretrainWindowsHoldOneColourEach) {
  const Manifest m = read_dataset(shapes_dataset_spec(*dir_, "pretrain"));
  ASSERT_EQ(m.videos.size(), 48u) << "two windows per training video, ids unique";
  ASSERT_EQ(m.captions.size(), 48u * 3u);
  const auto per_video = m.captions_per_video();
  for (size_t v = 0; v < m.videos.size(); v += 7) {  // a spread of windows, both halves
    const VideoEntry& e = m.videos[v];
    const std::string& caption = m.captions[static_cast<size_t>(per_video[v][0])].text;
    std::string colour;
    for (const auto& [name, rgb] : kPalette) {
      if (caption.rfind("a " + name + " ", 0) == 0) colour = name;
    }
    ASSERT_FALSE(colour.empty()) << caption;
    const ShapesVideo& truth = video_of(e.id.substr(0, e.id.find('_')));
    ASSERT_TRUE(e.start_s >= 0.0 && e.end_s > e.start_s) << e.id;
    const ClipFrames clip = load(e, 4);
    ASSERT_GE(clip.num_sampled, 1) << e.id;
    for (int64_t f = 0; f < static_cast<int64_t>(clip.positions.size()); ++f) {
      const auto rgb = box_mean(clip.frames, f, truth.x0, truth.y0, 0.5 * truth.radius);
      EXPECT_EQ(nearest_colour(rgb), colour) << e.id << " frame " << f << " " << describe(rgb);
    }
  }
}

TEST_F(SyntheticShapes, SameSeedSameBytesAndPixelsOtherSeedDiffers) {
  const fs::path again = test::temp_dir("synth_again");
  const fs::path other = test::temp_dir("synth_other");
  write_shapes_dataset(again, small_options(7));
  write_shapes_dataset(other, small_options(8));
  for (const char* f :
       {"synth.json", "annotations/MSRVTT_data.json", "annotations/MSRVTT_train.9k.csv",
        "annotations/MSRVTT_JSFUSION_test.csv", "annotations/pretrain.jsonl"}) {
    EXPECT_EQ(read_text(*dir_ / f), read_text(again / f)) << f;
  }
  EXPECT_NE(read_text(*dir_ / "annotations/pretrain.jsonl"),
            read_text(other / "annotations/pretrain.jsonl"));
  const ShapesVideo& v = summary_->videos[5];
  VideoEntry a, b, c;
  a.path = *dir_ / "videos" / v.file;
  b.path = again / "videos" / v.file;
  c.path = other / "videos" / v.file;
  const auto fa = load(a, 4).frames, fb = load(b, 4).frames, fc = load(c, 4).frames;
  EXPECT_TRUE(torch::equal(fa, fb));
  EXPECT_FALSE(torch::equal(fa, fc));
  fs::remove_all(again);
  fs::remove_all(other);
}

TEST(SyntheticShapesAvi, MjpgFallbackFilesAreFoundAndDecoded) {
  MVA_REQUIRE_VIDEO();
  const fs::path dir = test::temp_dir("synth_avi");
  ShapesOptions o = small_options(11);
  o.colors = 2;
  o.train_per_class = 1;
  o.codec = "MJPG";
  write_shapes_dataset(dir, o);
  DatasetSpec spec = shapes_dataset_spec(dir, "test");
  spec.require_videos = true;
  const Manifest m = read_dataset(spec);
  ASSERT_EQ(m.videos.size(), 4u);  // 2 shapes x 2 ordered pairs
  for (size_t v = 0; v < m.videos.size(); ++v) {
    EXPECT_EQ(m.videos[v].path.extension(), ".avi");
    const auto [shape, from, to] = parse_caption(m.captions[v].text);
    const ClipFrames clip = load(m.videos[v], 4);
    ASSERT_EQ(clip.num_sampled, 4);
    // Where the shape is comes from synth.json, as a user would read it.
    const auto meta = nlohmann::json::parse(read_text(dir / "synth.json")).at("videos");
    const auto it = std::find_if(meta.begin(), meta.end(),
                                 [&](const auto& j) { return j.at("id") == m.videos[v].id; });
    ASSERT_NE(it, meta.end());
    const double x = it->at("x0"), y = it->at("y0"), r = it->at("radius");
    EXPECT_EQ(nearest_colour(box_mean(clip.frames, 0, x, y, 0.5 * r)), from);
    EXPECT_EQ(nearest_colour(box_mean(clip.frames, 3, x, y, 0.5 * r)), to);
  }
  const Manifest pre = read_dataset(shapes_dataset_spec(dir, "pretrain"));
  EXPECT_TRUE(check_videos_exist(pre).empty());
  fs::remove_all(dir);
}

TEST(SyntheticShapesMotion, ShapesMoveTheWayTheCaptionsSay) {
  MVA_REQUIRE_VIDEO();
  const fs::path dir = test::temp_dir("synth_motion");
  ShapesOptions o = small_options(3);
  o.shapes = 1;
  o.colors = 2;
  o.train_per_class = 3;
  o.motion = true;
  write_shapes_dataset(dir, o);
  const Manifest m = read_dataset(shapes_dataset_spec(dir, "train"));
  ASSERT_EQ(m.videos.size(), 6u);
  const auto per_video = m.captions_per_video();
  for (size_t v = 0; v < m.videos.size(); ++v) {
    const std::string& caption = m.captions[static_cast<size_t>(per_video[v][0])].text;
    std::string direction;
    for (const char* d : {"left", "right", "up", "down"}) {
      if (caption.find(std::string("moving ") + d) != std::string::npos) direction = d;
    }
    ASSERT_FALSE(direction.empty()) << caption;
    for (auto c : per_video[v]) {
      EXPECT_NE(m.captions[static_cast<size_t>(c)].text.find("moving " + direction),
                std::string::npos);
    }
    // Centroid of the coloured (saturated) pixels in the first and the last sampled frame.
    const ClipFrames clip = load(m.videos[v], 4);
    auto centroid = [&](int64_t f) {
      const auto img = clip.frames[f].to(torch::kInt32);
      const auto sat = std::get<0>(img.max(0)) - std::get<0>(img.min(0));
      const auto mask = (sat > 90).to(torch::kFloat64);
      const auto ys = torch::arange(32, torch::kFloat64).unsqueeze(1);
      const auto xs = torch::arange(32, torch::kFloat64).unsqueeze(0);
      const double n = mask.sum().item<double>();
      EXPECT_GT(n, 20.0) << m.videos[v].id << " frame " << f;
      return std::pair<double, double>{(mask * xs).sum().item<double>() / n,
                                       (mask * ys).sum().item<double>() / n};
    };
    const auto [x0, y0] = centroid(0);
    const auto [x1, y1] = centroid(3);
    const double dx = x1 - x0, dy = y1 - y0;
    // Image y grows downwards: "up" is decreasing y.
    const bool horizontal = direction == "left" || direction == "right";
    const double forward = direction == "left"    ? -dx
                           : direction == "right" ? dx
                           : direction == "up"    ? -dy
                                                  : dy;
    EXPECT_GT(forward, 4.0) << m.videos[v].id << " moving " << direction;
    EXPECT_LT(std::abs(horizontal ? dy : dx), 1.5) << m.videos[v].id << " moving " << direction;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mva
