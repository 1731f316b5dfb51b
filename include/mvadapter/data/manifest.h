#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "mvadapter/core/enum_names.h"

namespace mva {

/// One video of a dataset: where its pixels are and which part of it counts.
struct VideoEntry {
  std::string id;                   ///< the dataset's own id ("video7020", "v_QOlSCBRmfWY", ...)
  std::filesystem::path path;       ///< a video file, or a folder of frames when `frame_folder`
  bool frame_folder = false;        ///< `path` is a folder of pre-extracted (1-fps) JPEG frames
  double start_s = -1.0;            ///< clip window start in seconds; < 0 = from the beginning
  double end_s = -1.0;              ///< clip window end in seconds; < 0 = to the end
  /// Explicit frame images in temporal order (the official unified JSON lists them); when set,
  /// `frame_folder` is true, `path` is their folder, and these files are used as they are.
  std::vector<std::filesystem::path> frames;
};

/// Which (video, caption) pairs one training epoch visits.
enum class CaptionSampling {
  kEveryCaption,        ///< every caption is a sample (MSR-VTT `--expand_msrvtt_sentences`)
  kOneCaptionPerVideo,  ///< each video once per epoch with one of its captions drawn at random
};
/// all, one_per_video (`data.caption_sampling`).
constexpr std::array<EnumName<CaptionSampling>, 2> enum_names(CaptionSampling) {
  return {{{CaptionSampling::kEveryCaption, "all"},
           {CaptionSampling::kOneCaptionPerVideo, "one_per_video"}}};
}

/// One caption (or joined paragraph) and the video it describes.
struct CaptionEntry {
  int64_t video = 0;                ///< index into Manifest::videos
  std::string text;
};

/// The one in-memory form every dataset reader produces (DESIGN.md §4). Multi-caption datasets
/// (MSVD test) simply have several captions per video; paragraph datasets (DiDeMo, ActivityNet)
/// have one caption per video holding all sentences joined with spaces.
struct Manifest {
  std::string dataset;              ///< "msrvtt", "msvd", "lsmdc", "didemo", "activitynet", ...
  std::string split;                ///< "train", "val", "test"
  std::vector<VideoEntry> videos;
  std::vector<CaptionEntry> captions;
  CaptionSampling sampling = CaptionSampling::kEveryCaption;  ///< how training iterates it

  /// For each video, the indices of its captions (in caption order).
  std::vector<std::vector<int64_t>> captions_per_video() const;
};

}  // namespace mva
