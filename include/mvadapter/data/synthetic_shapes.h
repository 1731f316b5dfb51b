#pragma once
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "mvadapter/data/dataset_readers.h"

namespace mva {

/// Settings of the synthetic Shapes dataset (DESIGN.md §7). The field names are the `mvadapter
/// synth` options; all but `threads` are recorded in synth.json.
struct ShapesOptions {
  uint64_t seed = 0;
  int64_t frames = 8;  ///< F: each clip lasts F seconds, so the 1-fps sampler sees F frames
  int64_t size = 32;   ///< frame side in pixels (even, for 4:2:0 codecs)
  int64_t fps = 4;     ///< frames written per second: a clip has frames x fps frames
  int64_t train_per_class = 8;   ///< training videos per (shape, ordered colour pair)
  int64_t shapes = 3;            ///< how many of shape_names() are used (the first ones)
  int64_t colors = 6;            ///< how many of color_names() are used (the first ones)
  bool motion = false;           ///< the shape also moves left/right/up/down and captions say so
  int threads = 0;  ///< encoding threads (0 = all cores); the output never depends on it
  /// mp4v | avc1 (.mp4) | MJPG (.avi); empty: the first of these whose writer opens.
  std::string codec;
};

/// One class of the dataset: a shape that changes from one colour to another.
struct ShapesClass {
  int shape = 0;       ///< index into shape_names()
  int color_from = 0;  ///< index into color_names(): the colour before the switch
  int color_to = 0;    ///< ... and after it
};

/// One generated video and the facts its captions state.
struct ShapesVideo {
  std::string id;     ///< "video0007" (MSR-VTT style, zero-padded so listings sort)
  std::string file;   ///< file name under videos/ ("video0007.mp4", or .avi after a fallback)
  std::string split;  ///< "train" or "test"
  ShapesClass cls;
  std::string direction;      ///< "" or left | right | up | down (motion family)
  int64_t num_frames = 0;     ///< frames written (frames x fps)
  int64_t switch_frame = 0;   ///< first frame (0-based) in the second colour
  double radius = 0.0;        ///< half the shape's extent in pixels
  double x0 = 0.0, y0 = 0.0;  ///< shape centre in the first frame (pixels, x right, y down)
  double x1 = 0.0, y1 = 0.0;  ///< shape centre in the last frame (equal to x0, y0 without motion)
  std::vector<std::string> captions;  ///< every template (train) or the one test caption
};

/// What write_shapes_dataset wrote.
struct ShapesSummary {
  std::filesystem::path out;
  std::vector<ShapesVideo> videos;  ///< training videos first, then the test videos
  int64_t train_videos = 0;
  int64_t test_videos = 0;
  int64_t train_captions = 0;
  int64_t pretrain_items = 0;  ///< lines of pretrain.jsonl (two single-colour windows a video)
  std::string codec;           ///< "mp4v", "avc1" or "MJPG" (then the files are .avi)
};

/// Every shape the generator can draw, in the order ShapesOptions::shapes takes them.
const std::vector<std::string>& shape_names();

/// Every colour the generator can paint, in the order ShapesOptions::colors takes them.
const std::vector<std::string>& color_names();

/// The RGB value of colour `color` (index into color_names()).
std::array<uint8_t, 3> color_rgb(int color);

/// The motion directions of the motion family.
const std::vector<std::string>& motion_directions();

/// Checks every option's range; throws Error naming the option (as `--name`) otherwise.
void validate_shapes_options(const ShapesOptions& opts);

/// The classes of a dataset using the first `shapes` shapes and `colors` colours: every shape
/// with every ordered pair of distinct colours, shape-major. The test set has one video each.
std::vector<ShapesClass> shapes_classes(int64_t shapes, int64_t colors);

/// All caption templates filled for one class ("a square changes from red to blue", "the red
/// square becomes blue", ...); `direction` non-empty adds the motion ("a square moving left
/// changes from red to blue").
std::vector<std::string> change_captions(const ShapesClass& cls, const std::string& direction = "");

/// Which template of change_captions a test video of `cls` uses: the same for both orders of a
/// colour pair, so the two captions differ only in the order of the colours.
int test_caption_template(const ShapesClass& cls, int64_t colors);

/// Captions of a single frame in one colour ("a red square", ...), for image-text pre-training.
std::vector<std::string> static_captions(int shape, int color);

/// Writes the dataset under `out` (DESIGN.md §7): videos/<id>.mp4, annotations/MSRVTT_data.json,
/// annotations/MSRVTT_train.9k.csv, annotations/MSRVTT_JSFUSION_test.csv,
/// annotations/pretrain.jsonl, synth.json and README.txt. Deterministic given the options (the
/// same annotation bytes and the same pixels). An existing `out` must be empty or an earlier
/// synth output (whose videos/ and annotations/ are replaced). Throws Error for bad options
/// (naming the option) and for a folder or file that cannot be written.
ShapesSummary write_shapes_dataset(const std::filesystem::path& out, const ShapesOptions& opts);

/// How to read a synth output with read_dataset: split "train" or "test" (MSR-VTT format, videos
/// under out/videos), or "pretrain" (the single-colour windows of pretrain.jsonl).
DatasetSpec shapes_dataset_spec(const std::filesystem::path& out, const std::string& split);

}  // namespace mva
