#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <vector>

#include <torch/types.h>

#include "mvadapter/data/manifest.h"

namespace mva {

/// How videos are read (DESIGN.md §4).
struct DecodeOptions {
  /// Frames kept per second of video: the k-th kept frame is the source frame
  /// int((start + k / sample_fps) * fps). The reference uses 1.
  double sample_fps = 1.0;
  /// Stop decoding after the last frame needed, trusting the container's frame count instead of
  /// decoding to the end. Faster, but a container whose count is wrong then gives other frames
  /// than the reference (which counts decoded frames), and truncation past the last needed frame
  /// goes unnoticed.
  bool trust_frame_count = false;
};

/// The frames read from one video and what the decoder learned on the way.
struct VideoFrames {
  /// RGB uint8 [H, W, 3], one per entry of `positions`.
  std::vector<torch::Tensor> frames;
  /// Which of the sampled frames these are (0-based positions among sample_index).
  std::vector<int64_t> positions;
  /// Source frame index of every sampled (1-fps) frame of the video or window; size n. For a
  /// folder of frames: the file's position in the sorted listing.
  std::vector<int64_t> sample_index;
  /// Frames in the video, counted by decoding to the end (the container's count when decoding
  /// stopped early: trust_frame_count or a window ending inside the video). For a folder: the
  /// number of frame files.
  int64_t decoded_frames = 0;
  /// Frame rate the container reports (a folder of frames counts as `sample_fps`).
  double fps = 0.0;

  /// n: the number of sampled frames the selection chose from.
  int64_t num_sampled() const { return static_cast<int64_t>(sample_index.size()); }
};

/// Chooses which of the n sampled frames to keep: increasing positions in [0, n).
using FrameSelector = std::function<std::vector<int64_t>(int64_t n)>;

/// The most frames sampled from one video (12 days at 1 fps): a container that claims more is
/// refused before the list is built, since a corrupt header can claim any count.
constexpr int64_t kMaxSampledFrames = int64_t{1} << 20;

/// The source frame indices of the sampled frames of a video with `frame_count` frames at
/// `fps`, inside the window [start_s, end_s] (negative = open end): int((start + k / sample_fps)
/// * fps) for k = 0, 1, ... while the index is < frame_count and the time is <= end_s.
std::vector<int64_t> sampled_frame_indices(int64_t frame_count, double fps, double sample_fps,
                                           double start_s, double end_s);

/// Decodes `video` (a file through OpenCV's FFmpeg backend, or a folder of *.jpg/*.png frames
/// sorted by name, numbers compared by value) and returns the sampled frames `select` picks.
/// Decoding is sequential (grab every frame, retrieve only the needed ones: seeking is inexact in
/// many codecs). A missing, unreadable, undecodable or truncated video throws Error naming the
/// path and what failed; no zero frames are ever made up.
VideoFrames read_video(const VideoEntry& video, const FrameSelector& select,
                       const DecodeOptions& opts = {});

/// All sampled frames of `video` (the selection keeps every position).
VideoFrames read_video(const VideoEntry& video, const DecodeOptions& opts = {});

/// Receives one sampled frame as it is decoded: its position among the sampled frames, its
/// source frame index and the RGB uint8 [H, W, 3] pixels (valid during the call).
using SampledFrameFn =
    std::function<void(int64_t position, int64_t source_index, const torch::Tensor& rgb)>;

/// Decodes `video` once, in order, and hands every sampled frame to `on_frame` without keeping
/// any (for extracting long videos in bounded memory). Returns what read_video would, without
/// frames. Errors as read_video; a truncation is found only at the end, after frames were given.
VideoFrames for_each_sampled_frame(const VideoEntry& video, const SampledFrameFn& on_frame,
                                   const DecodeOptions& opts = {});

/// The frame files of a folder of frames, in frame order (names compared with digit runs as
/// numbers, so "9.jpg" < "10.jpg"; zero-padded names sort the same either way). Throws Error
/// when the folder is missing or holds no *.jpg/*.jpeg/*.png.
std::vector<std::filesystem::path> list_frame_files(const std::filesystem::path& folder);

}  // namespace mva
