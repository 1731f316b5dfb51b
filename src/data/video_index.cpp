#include "mvadapter/data/video_index.h"

#include <algorithm>
#include <system_error>

#include <fmt/format.h>

#include "mvadapter/core/error.h"
#include "mvadapter/core/strings.h"

namespace fs = std::filesystem;

namespace mva {

const std::vector<std::string>& video_extensions() {
  static const std::vector<std::string> kExtensions = {"mp4", "webm", "mkv", "avi", "mov", "m4v",
                                                       "mpg", "mpeg", "flv", "3gp", "wmv", "ogv"};
  return kExtensions;
}

bool is_video_file(const fs::path& path) {
  const std::string ext = path.extension().string();
  if (ext.empty()) return false;
  const std::string want = ascii_lower(ext.substr(1));
  const auto& exts = video_extensions();
  return std::find(exts.begin(), exts.end(), want) != exts.end();
}

VideoIndex::VideoIndex(const fs::path& root, bool recursive,
                       const std::vector<std::string>& extensions,
                       const std::unordered_set<std::string>& frame_folders)
    : root_(root) {
  std::error_code ec;
  if (root.empty() || !fs::is_directory(root, ec)) return;

  std::unordered_map<std::string, size_t> rank_of;
  for (size_t k = 0; k < extensions.size(); ++k) rank_of.emplace(ascii_lower(extensions[k]), k);

  auto consider = [&](const fs::directory_entry& entry) {
    const fs::path& p = entry.path();
    const std::string name = p.filename().string();
    std::error_code type_ec;
    if (entry.is_directory(type_ec)) {
      if (frame_folders.count(name) != 0) frame_folders_.emplace(name, p);
      return;
    }
    if (!entry.is_regular_file(type_ec)) return;
    std::string ext = p.extension().string();
    if (ext.empty()) return;
    auto it = rank_of.find(ascii_lower(ext.substr(1)));
    if (it == rank_of.end()) return;
    // Directory order is unspecified: keep the smallest path on ties so the index is stable.
    auto [name_it, fresh] = by_name_.emplace(name, p);
    if (!fresh && p < name_it->second) name_it->second = p;
    const std::string stem = p.stem().string();
    auto [stem_it, new_stem] = by_stem_.emplace(stem, Candidate{p, it->second});
    if (!new_stem) {
      Candidate& c = stem_it->second;
      if (it->second < c.rank || (it->second == c.rank && p < c.path)) c = Candidate{p, it->second};
    }
  };

  const auto options = fs::directory_options::skip_permission_denied |
                       fs::directory_options::follow_directory_symlink;
  try {
    if (recursive) {
      for (auto it = fs::recursive_directory_iterator(root, options); it != fs::end(it); ++it) {
        consider(*it);
        std::error_code type_ec;
        if (it->is_directory(type_ec) && frame_folders.count(it->path().filename().string()) != 0) {
          it.disable_recursion_pending();
        }
      }
    } else {
      for (const auto& entry : fs::directory_iterator(root, options)) consider(entry);
    }
  } catch (const fs::filesystem_error& e) {
    throw Error(fmt::format("{}: cannot list the video folder: {}", root.string(), e.what()));
  }
}

const fs::path* VideoIndex::find_stem(const std::string& stem) const {
  auto it = by_stem_.find(stem);
  return it == by_stem_.end() ? nullptr : &it->second.path;
}

const fs::path* VideoIndex::find_name(const std::string& file_name) const {
  auto it = by_name_.find(file_name);
  return it == by_name_.end() ? nullptr : &it->second;
}

const fs::path* VideoIndex::find_frame_folder(const std::string& name) const {
  auto it = frame_folders_.find(name);
  return it == frame_folders_.end() ? nullptr : &it->second;
}

}  // namespace mva
