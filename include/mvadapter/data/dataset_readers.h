#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "mvadapter/data/manifest.h"

namespace mva {

/// Where a dataset's files are and which part of it to read: everything `read_dataset` needs.
///
/// Readers never fail because a video file is missing (unless `require_videos`): each video gets
/// the file found under `videos` or, when none is found, the path it would conventionally have,
/// and the loader reports what it cannot open. `check_videos_exist` lists missing videos up front.
/// Videos are found by id through one index of the video root built per call; when no video file
/// is found, a folder named like the video (e.g. written by `mvadapter preprocess`) is taken as a
/// folder of frames.
struct DatasetSpec {
  /// msrvtt | msvd | lsmdc | didemo | activitynet | unified | jsonl | csv (see dataset_formats()).
  std::string format;
  /// train | val | test, no default: a benchmark reader rejects any other name. MSR-VTT: test =
  /// the 1k-A JSFUSION set (val is the same set, as in CLIP4Clip); ActivityNet: val and test both
  /// read val_1.json. unified/jsonl/csv only copy it into the manifest.
  std::string split;
  /// The folder of the dataset's native annotation files; for unified/jsonl/csv the file itself.
  std::filesystem::path annotations;
  /// The video root (for unified: the data root the frame paths are relative to; for jsonl/csv:
  /// the root relative video paths start from). Empty: unified/jsonl/csv use the annotation
  /// file's folder; the benchmarks find no videos.
  std::filesystem::path videos;
  /// MSR-VTT train only: MSRVTT_train.9k.csv or MSRVTT_train.7k.csv (relative to `annotations`).
  std::string msrvtt_train_csv = "MSRVTT_train.9k.csv";
  /// Copied into Manifest::sampling; CLIP4Clip's MSR-VTT default without
  /// --expand_msrvtt_sentences is kOneCaptionPerVideo.
  CaptionSampling sampling = CaptionSampling::kEveryCaption;
  /// Throw Error listing missing videos instead of leaving them to the loader.
  bool require_videos = false;
};

/// The format names `read_dataset` accepts.
const std::vector<std::string>& dataset_formats();

/// Reads the dataset `spec.format` names; throws Error for an unknown format or split and for any
/// malformed annotation file (the message names the file, the line or JSON field path, and what
/// was expected).
Manifest read_dataset(const DatasetSpec& spec);

/// MSR-VTT. train: videos of `msrvtt_train_csv` (header `video_id`) in CSV order, captions of
/// MSRVTT_data.json `sentences` for them in file order (a train video without captions is an
/// error). test/val: MSRVTT_JSFUSION_test.csv (header key,vid_key,video_id,sentence; RFC 4180
/// quoting), one caption per row. Videos are `<videos>/<video_id>.mp4` (then video_extensions()
/// order: .webm, ...), the whole
/// file: the JSON's "start time"/"end time" locate the clip in its YouTube source, not in the file.
Manifest read_msrvtt(const DatasetSpec& spec);

/// MSVD: videos of `<split>_list.txt` in list order, every caption of raw-captions.pkl for each
/// (a caption is its words joined with single spaces, as CLIP4Clip does). A listed id absent from
/// the pickle is an error. Videos are found anywhere under `videos` by file stem (.avi first: the
/// official release's format, so it wins over a converted copy with the same name).
Manifest read_msvd(const DatasetSpec& spec);

/// LSMDC: LSMDC16_annos_training.csv / LSMDC16_annos_val.csv /
/// LSMDC16_challenge_1000_publictect.csv, tab-separated without header, 6 fields (clip_id, four
/// times, sentence). One caption per line, videos = distinct clip ids in first-seen order, found
/// anywhere under `videos` by file stem (.avi first, as MSVD).
Manifest read_lsmdc(const DatasetSpec& spec);

/// DiDeMo paragraph retrieval: `<split>_data.json` moments whose `video` is listed in
/// `<split>_list.txt`; one caption per video holding its descriptions (trimmed) joined with single
/// spaces in file order; videos in order of first appearance in the JSON; window [0, 31] s (the
/// annotated part, as CLIP4Clip). Listed videos without moments are left out, as in CLIP4Clip.
/// Files are found anywhere under `videos` by full name (id includes the extension: "<name>.mov"),
/// then as the id plus a video extension ("<name>.mov.mp4"), then by the id's stem ("<name>.mp4").
Manifest read_didemo(const DatasetSpec& spec);

/// ActivityNet Captions paragraph retrieval: train.json (train) or val_1.json (val, test), keyed
/// `v_<id>`, in the order of train_ids.json / val_ids.json when present (ids without captions are
/// left out, as in CLIP4Clip), else JSON order. One caption per video: its sentences trimmed and
/// joined with single spaces (CLIP4Clip joins untrimmed sentences; the tokenizer collapses the
/// difference). Window [0, ceil(duration)]. Files `<id>.<ext>` or `v_<id>.<ext>` anywhere under
/// `videos`.
Manifest read_activitynet(const DatasetSpec& spec);

/// The official MV-Adapter unified JSON: a list of {caption: str | [str...], id, vid, frames:
/// [paths relative to `videos`]}. Items sharing a `vid` are one video (their frame lists must
/// agree); a list caption gives several captions. Frames are sorted, as the official loader does.
Manifest read_unified_json(const DatasetSpec& spec);

/// Users' own data, one JSON object per line: {"video": path, "caption": str} and/or
/// "captions": [str...]; optional "id" (default: the video path as written), "start"/"end"
/// (seconds). Blank lines are skipped; a repeated id must repeat the same video and window.
Manifest read_jsonl(const DatasetSpec& spec);

/// Users' own data as CSV with a header holding `video` and `caption` (optional `id`, `start`,
/// `end`), RFC 4180 quoting, one caption per row; same rules as read_jsonl.
Manifest read_caption_csv(const DatasetSpec& spec);

/// Indices of the videos whose file (or frame folder, or any listed frame) does not exist.
std::vector<int64_t> check_videos_exist(const Manifest& manifest);

/// Removes the videos check_videos_exist reports and their captions, keeping the order of the
/// rest (caption video indices renumbered); returns how many videos were removed. The one rule
/// for a missing test video that `eval` and `encode` share: it has no embedding, so its captions
/// would be queries without a right answer, and both leave them out.
int64_t drop_missing_videos(Manifest& manifest);

}  // namespace mva
