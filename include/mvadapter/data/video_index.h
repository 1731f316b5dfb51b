#pragma once
#include <filesystem>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace mva {

/// Extensions (lower case, no dot) of the files taken as videos, most preferred first: when several
/// files share a name ("video7.mp4", "video7.webm") the earlier extension wins, as CLIP4Clip falls
/// back from .mp4 to .webm. The one list the video index, `mvadapter preprocess` and the decode
/// benchmark use.
const std::vector<std::string>& video_extensions();

/// True when the extension of `path` (compared case-insensitively) is one of video_extensions().
bool is_video_file(const std::filesystem::path& path);

/// The video files under one root folder, listed once per dataset so that finding a video by its
/// id is a hash lookup instead of a filesystem probe per caption.
class VideoIndex {
 public:
  /// Lists `root` (its sub-folders too when `recursive`) for files whose extension is one of
  /// `extensions` (compared case-insensitively; most preferred first, as video_extensions()). A
  /// folder whose name is in `frame_folders` is recorded as a folder of pre-extracted frames and
  /// not descended into. A root that does not exist gives an empty index: missing videos are
  /// reported by the loader, not here.
  VideoIndex(const std::filesystem::path& root, bool recursive,
             const std::vector<std::string>& extensions = video_extensions(),
             const std::unordered_set<std::string>& frame_folders = {});

  /// The file whose name without its extension is `stem` (the preferred one among several);
  /// nullptr when there is none.
  const std::filesystem::path* find_stem(const std::string& stem) const;
  /// The file called exactly `file_name` (extension included); nullptr when there is none.
  const std::filesystem::path* find_name(const std::string& file_name) const;
  /// The frame folder called `name` (one of the `frame_folders` given); nullptr when there is none.
  const std::filesystem::path* find_frame_folder(const std::string& name) const;

  const std::filesystem::path& root() const { return root_; }
  /// Number of video files indexed.
  size_t size() const { return by_name_.size(); }

 private:
  struct Candidate {
    std::filesystem::path path;
    size_t rank = 0;  // position of the extension in the preference list
  };
  std::filesystem::path root_;
  std::unordered_map<std::string, Candidate> by_stem_;
  std::unordered_map<std::string, std::filesystem::path> by_name_;
  std::unordered_map<std::string, std::filesystem::path> frame_folders_;
};

}  // namespace mva
