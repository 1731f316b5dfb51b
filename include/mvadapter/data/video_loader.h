#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <torch/types.h>

#include "mvadapter/core/enum_names.h"
#include "mvadapter/data/frame_sampler.h"
#include "mvadapter/data/manifest.h"
#include "mvadapter/data/video_decoder.h"
#include "mvadapter/data/video_transform.h"

namespace mva {

/// What the model gets from one video: F frames chosen and cropped, zero-padded when short.
struct ClipOptions {
  int64_t frames = 12;  ///< F (`max_frames`)
  FrameSampling sampling = FrameSampling::kOfficial;
  TransformOptions transform;  ///< resolution and resampler
  DecodeOptions decode;        ///< sample rate, frame-count trust
};

/// One video's frames as the model sees them, before normalisation.
struct ClipFrames {
  torch::Tensor frames;               ///< uint8 [F, 3, S, S] RGB crops; padded frames are all zero
  torch::Tensor mask;                 ///< int64 [F]: 1 for a real frame, 0 for padding
  std::vector<int64_t> positions;     ///< chosen positions among the sampled (1-fps) frames
  std::vector<int64_t> source_index;  ///< source frame index of each chosen frame
  int64_t num_sampled = 0;            ///< n, the sampled frames chosen from
  int64_t decoded_frames = 0;
  double fps = 0.0;
};

/// Decode, sample F frames, resize and crop one video (DESIGN.md §4). Throws Error naming the
/// path when the video is missing or cannot be decoded.
ClipFrames load_video_clip(const VideoEntry& video, const ClipOptions& opts = {});

/// What the loader does with a video that cannot be decoded.
enum class OnError {
  kSkip,  ///< log a warning (id and path), count it, leave the sample out
  kFail,  ///< stop: next() throws Error naming the video
};
/// skip, fail (`data.on_error`).
constexpr std::array<EnumName<OnError>, 2> enum_names(OnError) {
  return {{{OnError::kSkip, "skip"}, {OnError::kFail, "fail"}}};
}

/// "skip" or "fail"; throws Error otherwise.
OnError parse_on_error(const std::string& name);

/// Caption ids for a caption: the tokenizer, passed in so the data layer does not depend on it.
/// Called from the decode threads, so it must be safe to call concurrently. It returns at most
/// `max_words` ids (shorter is padded with 0).
using TokenizeFn = std::function<std::vector<int64_t>(const std::string&)>;

/// What the loader iterates over.
enum class LoaderMode {
  kCaptions,      ///< one sample per (caption, video) pair (training; MSR-VTT "expanded")
  kVideoCaption,  ///< one sample per video with one of its captions drawn per epoch
  kVideos,        ///< each video once, in manifest order, no shuffle, no text (evaluation)
};

/// Loader settings (the `data.*` config keys).
struct LoaderOptions {
  LoaderMode mode = LoaderMode::kCaptions;
  int64_t batch_size = 16;
  ClipOptions clip;
  int64_t max_words = 32;  ///< L: token ids are padded with 0 to this length
  int threads = 2;         ///< decode threads
  /// Samples claimed by the decoders and not yet taken by next(), at most; 0 = 2 x batch_size,
  /// never fewer than `threads`. Memory is bounded by (prefetch + batch_size) x F x 3 x S x S
  /// bytes of uint8 crops plus one float batch.
  int64_t prefetch = 0;
  bool shuffle = true;  ///< ignored in kVideos mode
  uint64_t seed = 0;
  bool drop_last = false;  ///< leave out a final batch smaller than batch_size
  int rank = 0;            ///< this process's shard ...
  int world_size = 1;      ///< ... of this many (training: a slice of each global batch)
  OnError on_error = OnError::kSkip;
  /// Frames in page-locked memory, so the copy to a GPU is asynchronous (CUDA runs only).
  bool pin_memory = false;
};

/// A batch of samples, in the epoch's order.
struct VideoBatch {
  torch::Tensor frames;         ///< uint8 [B, F, 3, S, S] RGB crops (model_frames normalises them)
  torch::Tensor frame_mask;     ///< int64 [B, F]
  torch::Tensor token_ids;      ///< int64 [B, L] ([B, 0] in kVideos mode)
  torch::Tensor caption_index;  ///< int64 [B]: index into Manifest::captions (-1 in kVideos mode)
  torch::Tensor video_index;    ///< int64 [B]: index into Manifest::videos
};

/// Progress counters, cumulative over the loader's life.
struct LoaderStats {
  int64_t samples_done = 0;     ///< samples delivered in batches
  int64_t samples_skipped = 0;  ///< samples left out because their video failed
  int64_t batches_done = 0;
  int64_t max_in_flight = 0;  ///< most samples ever claimed by decoders but not yet consumed
  std::vector<int64_t> failed_videos;  ///< indices of videos that failed, in order of discovery
};

/// Threaded loader over a Manifest (DESIGN.md §4): `threads` decoders claim the epoch's samples
/// in order and put the results in a bounded reorder window; next() hands them out in order, so
/// batches depend only on (seed, epoch, rank, world_size) and never on thread timing. A sample
/// whose video fails is skipped and the batch is filled from the following samples, so batches
/// keep their size (except the last).
class VideoLoader {
 public:
  /// `tokenize` may be empty in kVideos mode. Throws Error for invalid options.
  VideoLoader(Manifest manifest, LoaderOptions opts, TokenizeFn tokenize = {});
  ~VideoLoader();
  VideoLoader(const VideoLoader&) = delete;
  VideoLoader& operator=(const VideoLoader&) = delete;

  /// Starts (or restarts) epoch `epoch` at sample `start` of this rank's order (to resume);
  /// the order is a deterministic function of (seed, epoch). Stops any epoch in progress.
  void start_epoch(int64_t epoch, int64_t start = 0);

  /// The next batch of the current epoch, or nullopt when it is done. With on_error = fail,
  /// throws Error naming the first video (in order) that failed.
  std::optional<VideoBatch> next();

  /// Samples of this rank in one epoch (before skips).
  int64_t samples_per_epoch() const;
  /// Position in this rank's order of the next sample to consume (for checkpoints).
  int64_t position() const;
  /// This rank's samples of `epoch` in order, as (caption index or -1, video index).
  std::vector<std::pair<int64_t, int64_t>> epoch_order(int64_t epoch) const;

  LoaderStats stats() const;
  const Manifest& manifest() const { return manifest_; }
  const LoaderOptions& options() const { return opts_; }

 private:
  struct Sample {
    int64_t caption = -1;  // index into manifest_.captions, -1 in kVideos mode
    int64_t video = 0;
  };
  struct Result {
    bool ok = false;
    bool fatal = false;  // not a video problem (e.g. the tokenizer failed): always stops
    std::string error;
    torch::Tensor frames;  // uint8 [F, 3, S, S]
    torch::Tensor mask;    // int64 [F]
    torch::Tensor tokens;  // int64 [L]
  };
  void stop_workers();
  void worker_loop();
  Result decode_sample(const Sample& s);

  Manifest manifest_;
  LoaderOptions opts_;
  TokenizeFn tokenize_;
  std::vector<std::vector<int64_t>> captions_of_video_;

  std::vector<Sample> order_;  // this epoch's samples, this rank
  mutable std::mutex mu_;
  std::condition_variable cv_work_;    // workers wait for room in the window
  std::condition_variable cv_result_;  // the consumer waits for the next result
  std::map<int64_t, Result> results_;  // decoded, not yet consumed, by position
  int64_t next_claim_ = 0;             // next position a worker takes
  int64_t cursor_ = 0;                 // next position the consumer takes
  int64_t window_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  std::map<int64_t, std::string> bad_videos_;  // known failures: later samples skip decoding
  std::set<int64_t> reported_;                 // failed videos already logged (once each)
  LoaderStats stats_;
};

/// The model's input for `batch` on `device`: float32 [B, F, 3, S, S], CLIP-normalised on that
/// device, padded frames 0 (as the reference pads after normalising).
torch::Tensor model_frames(const VideoBatch& batch, torch::Device device);

}  // namespace mva
