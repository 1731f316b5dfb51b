#include "mvadapter/data/dataset_readers.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <optional>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "mvadapter/core/error.h"
#include "mvadapter/data/video_index.h"
#include "mvadapter/io/csv.h"
#include "mvadapter/io/json_file.h"
#include "mvadapter/io/pickle.h"

namespace fs = std::filesystem;

namespace mva {
namespace {

using Json = nlohmann::ordered_json;

bool is_space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

// ---- JSON access with the field path in every message -------------------------------------------

// A place in a JSON document: "<file>: field sentences[3].caption".
struct JsonLoc {
  std::string file;
  std::string path;

  JsonLoc at(const std::string& key) const {
    const bool plain = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
    });
    if (plain) return {file, path.empty() ? key : path + "." + key};
    return {file, fmt::format("{}[\"{}\"]", path, key)};
  }
  JsonLoc at(size_t index) const { return {file, fmt::format("{}[{}]", path, index)}; }
  std::string str() const { return path.empty() ? file : fmt::format("{}: field {}", file, path); }
};

[[noreturn]] void expected(const JsonLoc& loc, const std::string& what, const Json& got) {
  throw Error(fmt::format("{}: expected {}, got {}", loc.str(), what, json_type_name(got)));
}

const Json& require_object(const Json& v, const JsonLoc& loc) {
  if (!v.is_object()) expected(loc, "an object", v);
  return v;
}

const Json& require_array(const Json& v, const JsonLoc& loc) {
  if (!v.is_array()) expected(loc, "a list", v);
  return v;
}

const Json& member(const Json& obj, const std::string& key, const JsonLoc& loc) {
  require_object(obj, loc);
  auto it = obj.find(key);
  if (it == obj.end()) throw Error(fmt::format("{}: missing field '{}'", loc.str(), key));
  return *it;
}

const Json* optional_member(const Json& obj, const std::string& key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

std::string string_value(const Json& v, const JsonLoc& loc) {
  if (!v.is_string()) expected(loc, "a string", v);
  return v.get<std::string>();
}

// A number, or a string holding one (CLIP4Clip reads durations with float()).
double number_value(const Json& v, const JsonLoc& loc) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const std::string s = trim(v.get<std::string>());
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size() && std::isfinite(d)) return d;
    throw Error(fmt::format("{}: expected a number, got the string '{}'", loc.str(), s));
  }
  expected(loc, "a number", v);
}

std::vector<std::string> string_list(const Json& v, const JsonLoc& loc) {
  require_array(v, loc);
  std::vector<std::string> out;
  out.reserve(v.size());
  for (size_t k = 0; k < v.size(); ++k) out.push_back(string_value(v[k], loc.at(k)));
  return out;
}

// ---- small text files ---------------------------------------------------------------------------

struct ListedId {
  std::string id;
  int64_t line = 0;
};

// A `*_list.txt`: one id per line, trimmed as Python's strip(); blank lines are skipped; an id
// listed twice is an error (it would duplicate the video's captions).
std::vector<ListedId> read_id_list(const fs::path& file) {
  const std::string text = read_file_bytes(file);
  std::vector<ListedId> out;
  std::unordered_map<std::string, int64_t> seen;
  int64_t line = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    ++line;
    std::string id = trim(std::string_view(text).substr(pos, end - pos));
    pos = end + 1;
    if (id.empty()) continue;
    auto [it, fresh] = seen.emplace(id, line);
    if (!fresh) {
      throw Error(fmt::format("{} line {}: video '{}' is listed twice (first on line {})",
                              file.string(), line, id, it->second));
    }
    out.push_back({std::move(id), line});
  }
  return out;
}

std::string join_words(const std::vector<std::string>& words) {
  return fmt::format("{}", fmt::join(words, " "));
}

// Trims each sentence and joins the non-empty ones with single spaces (a paragraph caption).
std::string join_paragraph(const std::vector<std::string>& sentences) {
  std::vector<std::string> parts;
  for (const auto& s : sentences) {
    std::string t = trim(s);
    if (!t.empty()) parts.push_back(std::move(t));
  }
  return join_words(parts);
}

// ---- building a manifest ------------------------------------------------------------------------

class Builder {
 public:
  Builder(const std::string& dataset, const DatasetSpec& spec) {
    m_.dataset = dataset;
    m_.split = spec.split;
    m_.sampling = spec.sampling;
  }

  // Index of video `id`, added when new.
  int64_t video(const std::string& id) {
    auto [it, fresh] = index_.emplace(id, static_cast<int64_t>(m_.videos.size()));
    if (fresh) {
      VideoEntry entry;
      entry.id = id;
      m_.videos.push_back(std::move(entry));
    }
    return it->second;
  }
  std::optional<int64_t> find(const std::string& id) const {
    auto it = index_.find(id);
    if (it == index_.end()) return std::nullopt;
    return it->second;
  }
  VideoEntry& entry(int64_t v) { return m_.videos[static_cast<size_t>(v)]; }
  void caption(int64_t v, std::string text) { m_.captions.push_back({v, std::move(text)}); }
  Manifest& manifest() { return m_; }

 private:
  Manifest m_;
  std::unordered_map<std::string, int64_t> index_;
};

// How a benchmark's video file is named from its id: by file stem, or by full file name.
struct VideoKey {
  enum class Kind { kStem, kName } kind;
  std::string key;
};

// Points every video at its file under `root`, looked up in one index of the folder. A video not
// found gets the path it would conventionally have (`<root>/<first key>.<first extension>`), so the
// loader's "cannot open" names a sensible file.
void locate_videos(Manifest& m, const fs::path& root, bool recursive,
                   const std::vector<std::string>& extensions,
                   const std::function<std::vector<VideoKey>(const std::string&)>& keys_of) {
  std::vector<std::vector<VideoKey>> keys(m.videos.size());
  std::unordered_set<std::string> folder_names;
  for (size_t v = 0; v < m.videos.size(); ++v) {
    keys[v] = keys_of(m.videos[v].id);
    for (const auto& k : keys[v]) folder_names.insert(k.key);
  }
  const VideoIndex index(root, recursive, extensions, folder_names);
  for (size_t v = 0; v < m.videos.size(); ++v) {
    VideoEntry& entry = m.videos[v];
    const fs::path* found = nullptr;
    for (const auto& k : keys[v]) {
      found = k.kind == VideoKey::Kind::kStem ? index.find_stem(k.key) : index.find_name(k.key);
      if (found != nullptr) break;
    }
    if (found != nullptr) {
      entry.path = *found;
      entry.frame_folder = false;
      continue;
    }
    for (const auto& k : keys[v]) {
      found = index.find_frame_folder(k.key);
      if (found != nullptr) break;
    }
    if (found != nullptr) {
      entry.path = *found;
      entry.frame_folder = true;
      continue;
    }
    const VideoKey& first = keys[v].front();
    entry.path = root / (first.kind == VideoKey::Kind::kStem ? first.key + "." + extensions.front()
                                                             : first.key);
  }
}

// video_extensions() with .avi moved to the front, for MSVD and LSMDC: their official releases
// are .avi (YouTubeClips.tar, the MPII clips), which is what the published numbers were measured
// on, so an .mp4 beside one is a conversion of it (often re-encoded, at another frame rate or
// quality) and the original should win. The other benchmarks ship .mp4 first, as CLIP4Clip reads.
const std::vector<std::string>& avi_first_extensions() {
  static const std::vector<std::string> kExtensions = [] {
    std::vector<std::string> out = {"avi"};
    for (const auto& e : video_extensions()) {
      if (e != "avi") out.push_back(e);
    }
    return out;
  }();
  return kExtensions;
}

std::vector<VideoKey> stem_key(const std::string& id) {
  return {{VideoKey::Kind::kStem, id}};
}

[[noreturn]] void unknown_split(const std::string& dataset, const std::string& split,
                                const std::string& valid) {
  throw Error(fmt::format("{}: unknown split '{}' (expected one of: {})", dataset, split, valid));
}

void require_found(const Manifest& m, const DatasetSpec& spec) {
  if (!spec.require_videos) return;
  const auto missing = check_videos_exist(m);
  if (missing.empty()) return;
  std::vector<std::string> examples;
  for (size_t k = 0; k < missing.size() && k < 3; ++k) {
    const auto& v = m.videos[static_cast<size_t>(missing[k])];
    examples.push_back(fmt::format("{} ({})", v.id, v.path.string()));
  }
  throw Error(fmt::format("{}/{}: {} of {} videos not found under '{}', e.g. {}", m.dataset,
                          m.split, missing.size(), m.videos.size(), spec.videos.string(),
                          fmt::join(examples, ", ")));
}

// ---- users' own data ----------------------------------------------------------------------------

struct UserVideo {
  std::string where;  // "<file> line N" of its first appearance
  std::string video;
  double start = -1.0, end = -1.0;
};

class UserDataBuilder {
 public:
  UserDataBuilder(const std::string& format, const DatasetSpec& spec)
      : builder_(format, spec),
        root_(spec.videos.empty() ? spec.annotations.parent_path() : spec.videos) {}

  // Registers a video (first appearance defines it) and returns its index.
  int64_t video(const std::string& id, const std::string& video, double start, double end,
                const std::string& where) {
    if (video.empty()) throw Error(fmt::format("{}: empty video path", where));
    if (start >= 0 && end >= 0 && end <= start) {
      throw Error(fmt::format("{}: end {} s is not after start {} s", where, end, start));
    }
    const std::string key = id.empty() ? video : id;
    if (auto v = builder_.find(key)) {
      const UserVideo& first = seen_[static_cast<size_t>(*v)];
      if (first.video != video || first.start != start || first.end != end) {
        throw Error(fmt::format(
            "{}: video id '{}' was given as '{}' [{}, {}] at {}, now as '{}' "
            "[{}, {}]; give each clip its own id",
            where, key, first.video, first.start, first.end, first.where, video, start, end));
      }
      return *v;
    }
    const int64_t v = builder_.video(key);
    seen_.push_back({where, video, start, end});
    VideoEntry& entry = builder_.entry(v);
    const fs::path p(video);
    entry.path = p.is_absolute() ? p : root_ / p;
    std::error_code ec;
    entry.frame_folder = fs::is_directory(entry.path, ec);
    entry.start_s = start;
    entry.end_s = end;
    return v;
  }

  void caption(int64_t v, const std::string& text, const std::string& where) {
    if (trim(text).empty()) throw Error(fmt::format("{}: empty caption", where));
    builder_.caption(v, text);
  }

  Manifest finish(const DatasetSpec& spec, const std::string& file) {
    Manifest& m = builder_.manifest();
    if (m.captions.empty()) throw Error(fmt::format("{}: no captions", file));
    require_found(m, spec);
    return std::move(m);
  }

 private:
  Builder builder_;
  fs::path root_;
  std::vector<UserVideo> seen_;
};

double parse_seconds(const std::string& text, const std::string& where, const std::string& column) {
  const std::string s = trim(text);
  if (s.empty()) return -1.0;
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(d) || d < 0) {
    throw Error(fmt::format("{}: column {}: expected a number of seconds >= 0, got '{}'", where,
                            column, s));
  }
  return d;
}

}  // namespace

// ---- MSR-VTT ------------------------------------------------------------------------------------

Manifest read_msrvtt(const DatasetSpec& spec) {
  Builder b("msrvtt", spec);
  if (spec.split == "train") {
    const CsvTable csv = read_csv_table(spec.annotations / spec.msrvtt_train_csv);
    const size_t col = csv.column("video_id");
    std::vector<int64_t> line_of;
    for (const auto& row : csv.rows) {
      const std::string& id = row.fields[col];
      if (trim(id).empty())
        throw Error(fmt::format("{} line {}: empty video_id", csv.file, row.line));
      if (b.video(id) == static_cast<int64_t>(line_of.size())) line_of.push_back(row.line);
    }
    const fs::path json_file = spec.annotations / "MSRVTT_data.json";
    const Json data = read_json_file(json_file);
    const JsonLoc root{json_file.string(), ""};
    const JsonLoc sentences_loc = root.at("sentences");
    const Json& sentences = require_array(member(data, "sentences", root), sentences_loc);
    std::vector<int64_t> count(line_of.size(), 0);
    for (size_t j = 0; j < sentences.size(); ++j) {
      const JsonLoc loc = sentences_loc.at(j);
      const std::string vid =
          string_value(member(sentences[j], "video_id", loc), loc.at("video_id"));
      const std::string caption =
          string_value(member(sentences[j], "caption", loc), loc.at("caption"));
      if (auto v = b.find(vid)) {
        b.caption(*v, caption);
        ++count[static_cast<size_t>(*v)];
      }
    }
    for (size_t v = 0; v < count.size(); ++v) {
      if (count[v] == 0) {
        throw Error(fmt::format("{} line {}: video '{}' has no caption in {} (field sentences)",
                                csv.file, line_of[v], b.entry(static_cast<int64_t>(v)).id,
                                json_file.string()));
      }
    }
  } else if (spec.split == "test" || spec.split == "val") {
    const CsvTable csv = read_csv_table(spec.annotations / "MSRVTT_JSFUSION_test.csv");
    const size_t vcol = csv.column("video_id");
    const size_t scol = csv.column("sentence");
    for (const auto& row : csv.rows) {
      const std::string& id = row.fields[vcol];
      if (trim(id).empty())
        throw Error(fmt::format("{} line {}: empty video_id", csv.file, row.line));
      b.caption(b.video(id), row.fields[scol]);
    }
  } else {
    unknown_split("msrvtt", spec.split, "train, val, test");
  }
  Manifest& m = b.manifest();
  locate_videos(m, spec.videos, /*recursive=*/false, video_extensions(), stem_key);
  require_found(m, spec);
  return std::move(m);
}

// ---- MSVD ---------------------------------------------------------------------------------------

Manifest read_msvd(const DatasetSpec& spec) {
  if (spec.split != "train" && spec.split != "val" && spec.split != "test") {
    unknown_split("msvd", spec.split, "train, val, test");
  }
  Builder b("msvd", spec);
  const fs::path list_file = spec.annotations / (spec.split + "_list.txt");
  const auto ids = read_id_list(list_file);
  const fs::path pkl_file = spec.annotations / "raw-captions.pkl";
  const Json captions = read_pickle(pkl_file);
  const JsonLoc root{pkl_file.string(), ""};
  require_object(captions, root);
  for (const auto& listed : ids) {
    auto it = captions.find(listed.id);
    if (it == captions.end()) {
      throw Error(fmt::format("{} line {}: video '{}' has no captions in {}", list_file.string(),
                              listed.line, listed.id, pkl_file.string()));
    }
    const JsonLoc loc = root.at(listed.id);
    require_array(*it, loc);
    const int64_t v = b.video(listed.id);
    for (size_t k = 0; k < it->size(); ++k) {
      const Json& cap = (*it)[k];
      // Captions are lists of words; a plain string (a converted file) is taken as it is.
      b.caption(v,
                cap.is_string() ? cap.get<std::string>() : join_words(string_list(cap, loc.at(k))));
    }
  }
  Manifest& m = b.manifest();
  locate_videos(m, spec.videos, /*recursive=*/true, avi_first_extensions(), stem_key);
  require_found(m, spec);
  return std::move(m);
}

// ---- LSMDC --------------------------------------------------------------------------------------

Manifest read_lsmdc(const DatasetSpec& spec) {
  std::string name;
  if (spec.split == "train") {
    name = "LSMDC16_annos_training.csv";
  } else if (spec.split == "val") {
    name = "LSMDC16_annos_val.csv";
  } else if (spec.split == "test") {
    name = "LSMDC16_challenge_1000_publictect.csv";
  } else {
    unknown_split("lsmdc", spec.split, "train, val, test");
  }
  const fs::path file = spec.annotations / name;
  Builder b("lsmdc", spec);
  for (auto& rec : read_csv(file, CsvDialect{'\t', /*quoting=*/false})) {
    if (rec.fields.size() != 6) {
      throw Error(
          fmt::format("{} line {}: expected 6 tab-separated fields (clip_id, start_aligned, "
                      "end_aligned, start_extracted, end_extracted, sentence), got {}",
                      file.string(), rec.line, rec.fields.size()));
    }
    const std::string clip_id = trim(rec.fields[0]);
    if (clip_id.empty())
      throw Error(fmt::format("{} line {}: empty clip_id", file.string(), rec.line));
    // As CLIP4Clip's line.strip(): only the line's ends are trimmed.
    std::string sentence = rec.fields[5];
    while (!sentence.empty() && is_space(sentence.back())) sentence.pop_back();
    b.caption(b.video(clip_id), std::move(sentence));
  }
  Manifest& m = b.manifest();
  locate_videos(m, spec.videos, /*recursive=*/true, avi_first_extensions(), stem_key);
  require_found(m, spec);
  return std::move(m);
}

// ---- DiDeMo -------------------------------------------------------------------------------------

Manifest read_didemo(const DatasetSpec& spec) {
  if (spec.split != "train" && spec.split != "val" && spec.split != "test") {
    unknown_split("didemo", spec.split, "train, val, test");
  }
  std::unordered_set<std::string> listed;
  for (auto& l : read_id_list(spec.annotations / (spec.split + "_list.txt"))) listed.insert(l.id);
  const fs::path json_file = spec.annotations / (spec.split + "_data.json");
  const Json data = read_json_file(json_file);
  const JsonLoc root{json_file.string(), ""};
  require_array(data, root);
  Builder b("didemo", spec);
  std::vector<std::vector<std::string>> texts;
  for (size_t i = 0; i < data.size(); ++i) {
    const JsonLoc loc = root.at(i);
    const std::string video = string_value(member(data[i], "video", loc), loc.at("video"));
    const std::string description =
        string_value(member(data[i], "description", loc), loc.at("description"));
    if (listed.count(video) == 0) continue;
    const auto v = static_cast<size_t>(b.video(video));
    if (v == texts.size()) texts.emplace_back();
    texts[v].push_back(description);
  }
  for (size_t v = 0; v < texts.size(); ++v) {
    VideoEntry& entry = b.entry(static_cast<int64_t>(v));
    // Videos were truncated to 30 s for annotation; CLIP4Clip reads [0, 31].
    entry.start_s = 0.0;
    entry.end_s = 31.0;
    b.caption(static_cast<int64_t>(v), join_paragraph(texts[v]));
  }
  Manifest& m = b.manifest();
  // Ids carry the Flickr file's extension ("<name>.mov"): the file as named, then the id with a
  // video extension added ("<name>.mov.mp4", as download_videos_AWS.py and other download
  // scripts save it), then the id's stem with any video extension ("<name>.mp4").
  locate_videos(m, spec.videos, /*recursive=*/true, video_extensions(), [](const std::string& id) {
    return std::vector<VideoKey>{{VideoKey::Kind::kName, id},
                                 {VideoKey::Kind::kStem, id},
                                 {VideoKey::Kind::kStem, fs::path(id).stem().string()}};
  });
  require_found(m, spec);
  return std::move(m);
}

// ---- ActivityNet --------------------------------------------------------------------------------

Manifest read_activitynet(const DatasetSpec& spec) {
  std::string json_name, ids_name;
  if (spec.split == "train") {
    json_name = "train.json";
    ids_name = "train_ids.json";
  } else if (spec.split == "val" || spec.split == "test") {
    json_name = "val_1.json";
    ids_name = "val_ids.json";
  } else {
    unknown_split("activitynet", spec.split, "train, val, test");
  }
  const fs::path json_file = spec.annotations / json_name;
  const Json data = read_json_file(json_file);
  const JsonLoc root{json_file.string(), ""};
  require_object(data, root);
  std::unordered_map<std::string, const Json*> by_id;
  std::vector<std::string> order;
  for (auto it = data.begin(); it != data.end(); ++it) {
    by_id.emplace(it.key(), &it.value());
    order.push_back(it.key());
  }
  const fs::path ids_file = spec.annotations / ids_name;
  std::error_code ec;
  if (fs::exists(ids_file, ec)) {
    const Json ids = read_json_file(ids_file);
    order = string_list(ids, JsonLoc{ids_file.string(), ""});
  }
  Builder b("activitynet", spec);
  for (const auto& id : order) {
    auto it = by_id.find(id);
    if (it == by_id.end() || b.find(id))
      continue;  // as CLIP4Clip: ids without captions are left out
    const JsonLoc loc = root.at(id);
    const Json& item = *it->second;
    const double duration = number_value(member(item, "duration", loc), loc.at("duration"));
    if (duration < 0) {
      throw Error(
          fmt::format("{}: expected a duration >= 0, got {}", loc.at("duration").str(), duration));
    }
    const std::string paragraph =
        join_paragraph(string_list(member(item, "sentences", loc), loc.at("sentences")));
    if (paragraph.empty())
      throw Error(fmt::format("{}: no non-empty sentence", loc.at("sentences").str()));
    const int64_t v = b.video(id);
    b.entry(v).start_s = 0.0;
    b.entry(v).end_s = std::ceil(duration);
    b.caption(v, paragraph);
  }
  Manifest& m = b.manifest();
  locate_videos(m, spec.videos, /*recursive=*/true, video_extensions(), [](const std::string& id) {
    std::vector<VideoKey> keys;
    if (id.rfind("v_", 0) == 0) keys.push_back({VideoKey::Kind::kStem, id.substr(2)});
    keys.push_back({VideoKey::Kind::kStem, id});
    return keys;
  });
  require_found(m, spec);
  return std::move(m);
}

// ---- the official unified JSON ------------------------------------------------------------------

Manifest read_unified_json(const DatasetSpec& spec) {
  const fs::path& file = spec.annotations;
  const fs::path data_root = spec.videos.empty() ? file.parent_path() : spec.videos;
  const Json data = read_json_file(file);
  const JsonLoc root{file.string(), ""};
  require_array(data, root);
  Builder b("unified", spec);
  std::vector<size_t> first_item;
  for (size_t i = 0; i < data.size(); ++i) {
    const JsonLoc loc = root.at(i);
    const Json& vid_json = member(data[i], "vid", loc);
    std::string vid;
    if (vid_json.is_string()) {
      vid = vid_json.get<std::string>();
    } else if (vid_json.is_number_integer()) {
      vid = std::to_string(vid_json.get<int64_t>());
    } else {
      expected(loc.at("vid"), "a string or an integer", vid_json);
    }
    const auto frame_names = string_list(member(data[i], "frames", loc), loc.at("frames"));
    if (frame_names.empty())
      throw Error(fmt::format("{}: expected at least one frame", loc.at("frames").str()));
    std::vector<fs::path> frames;
    frames.reserve(frame_names.size());
    for (const auto& f : frame_names) frames.push_back(data_root / f);
    // The official loader sorts the path strings.
    std::sort(frames.begin(), frames.end(),
              [](const fs::path& a, const fs::path& c) { return a.native() < c.native(); });

    const Json& cap = member(data[i], "caption", loc);
    std::vector<std::string> captions;
    if (cap.is_string()) {
      captions.push_back(cap.get<std::string>());
    } else if (cap.is_array()) {
      captions = string_list(cap, loc.at("caption"));
      if (captions.empty())
        throw Error(fmt::format("{}: expected at least one caption", loc.at("caption").str()));
    } else {
      expected(loc.at("caption"), "a string or a list of strings", cap);
    }

    const auto known = b.find(vid);
    const int64_t v = b.video(vid);
    VideoEntry& entry = b.entry(v);
    if (!known) {
      first_item.push_back(i);
      entry.frame_folder = true;
      entry.path = frames.front().parent_path();
      entry.frames = std::move(frames);
    } else if (entry.frames != frames) {
      throw Error(fmt::format("{}: differs from the frames of vid '{}' given at [{}]",
                              loc.at("frames").str(), vid, first_item[static_cast<size_t>(v)]));
    }
    for (auto& c : captions) b.caption(v, std::move(c));
  }
  Manifest& m = b.manifest();
  require_found(m, spec);
  return std::move(m);
}

// ---- users' own data ----------------------------------------------------------------------------

Manifest read_jsonl(const DatasetSpec& spec) {
  const fs::path& file = spec.annotations;
  const std::string text = read_file_bytes(file);
  UserDataBuilder b("jsonl", spec);
  int64_t line = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    ++line;
    const std::string_view content = std::string_view(text).substr(pos, end - pos);
    pos = end + 1;
    if (trim(content).empty()) continue;
    const std::string where = fmt::format("{} line {}", file.string(), line);
    const Json obj = parse_json_text(content, file.string(), line);
    const JsonLoc loc{where, ""};
    require_object(obj, loc);
    const std::string video = string_value(member(obj, "video", loc), loc.at("video"));
    std::string id;
    if (const Json* j = optional_member(obj, "id")) id = string_value(*j, loc.at("id"));
    double start = -1.0, end_s = -1.0;
    if (const Json* j = optional_member(obj, "start")) start = number_value(*j, loc.at("start"));
    if (const Json* j = optional_member(obj, "end")) end_s = number_value(*j, loc.at("end"));
    std::vector<std::string> captions;
    if (const Json* j = optional_member(obj, "caption"))
      captions.push_back(string_value(*j, loc.at("caption")));
    if (const Json* j = optional_member(obj, "captions")) {
      for (auto& c : string_list(*j, loc.at("captions"))) captions.push_back(std::move(c));
    }
    if (captions.empty()) {
      throw Error(
          fmt::format("{}: expected \"caption\" (a string) or \"captions\" (a list of "
                      "strings)",
                      where));
    }
    const int64_t v = b.video(id, video, start, end_s, where);
    for (const auto& c : captions) b.caption(v, c, where);
  }
  return b.finish(spec, file.string());
}

Manifest read_caption_csv(const DatasetSpec& spec) {
  const CsvTable csv = read_csv_table(spec.annotations);
  const size_t vcol = csv.column("video");
  const size_t ccol = csv.column("caption");
  const auto optional_column = [&](const std::string& name) -> std::optional<size_t> {
    if (!csv.has_column(name)) return std::nullopt;
    return csv.column(name);
  };
  const auto icol = optional_column("id");
  const auto scol = optional_column("start");
  const auto ecol = optional_column("end");
  UserDataBuilder b("csv", spec);
  for (const auto& row : csv.rows) {
    const std::string where = fmt::format("{} line {}", csv.file, row.line);
    const double start = scol ? parse_seconds(row.fields[*scol], where, "start") : -1.0;
    const double end = ecol ? parse_seconds(row.fields[*ecol], where, "end") : -1.0;
    const int64_t v = b.video(icol ? trim(row.fields[*icol]) : std::string(),
                              trim(row.fields[vcol]), start, end, where);
    b.caption(v, row.fields[ccol], where);
  }
  return b.finish(spec, csv.file);
}

// ---- common -------------------------------------------------------------------------------------

std::vector<int64_t> check_videos_exist(const Manifest& manifest) {
  std::vector<int64_t> missing;
  for (size_t v = 0; v < manifest.videos.size(); ++v) {
    const VideoEntry& e = manifest.videos[v];
    std::error_code ec;
    bool ok;
    if (!e.frames.empty()) {
      ok = std::all_of(e.frames.begin(), e.frames.end(),
                       [&](const fs::path& f) { return fs::is_regular_file(f, ec); });
    } else if (e.frame_folder) {
      ok = fs::is_directory(e.path, ec);
    } else {
      ok = fs::is_regular_file(e.path, ec);
    }
    if (!ok) missing.push_back(static_cast<int64_t>(v));
  }
  return missing;
}

int64_t drop_missing_videos(Manifest& manifest) {
  const auto missing = check_videos_exist(manifest);
  if (missing.empty()) return 0;
  std::vector<int64_t> new_index(manifest.videos.size(), 0);
  for (int64_t v : missing) new_index[static_cast<size_t>(v)] = -1;
  std::vector<VideoEntry> videos;
  videos.reserve(manifest.videos.size() - missing.size());
  for (size_t v = 0; v < manifest.videos.size(); ++v) {
    if (new_index[v] < 0) continue;
    new_index[v] = static_cast<int64_t>(videos.size());
    videos.push_back(std::move(manifest.videos[v]));
  }
  std::vector<CaptionEntry> captions;
  for (auto& c : manifest.captions) {
    const int64_t v = new_index[static_cast<size_t>(c.video)];
    if (v < 0) continue;
    captions.push_back({v, std::move(c.text)});
  }
  manifest.videos = std::move(videos);
  manifest.captions = std::move(captions);
  return static_cast<int64_t>(missing.size());
}

const std::vector<std::string>& dataset_formats() {
  static const std::vector<std::string> kFormats = {"msrvtt",      "msvd",    "lsmdc", "didemo",
                                                    "activitynet", "unified", "jsonl", "csv"};
  return kFormats;
}

Manifest read_dataset(const DatasetSpec& spec) {
  if (spec.format == "msrvtt") return read_msrvtt(spec);
  if (spec.format == "msvd") return read_msvd(spec);
  if (spec.format == "lsmdc") return read_lsmdc(spec);
  if (spec.format == "didemo") return read_didemo(spec);
  if (spec.format == "activitynet") return read_activitynet(spec);
  if (spec.format == "unified") return read_unified_json(spec);
  if (spec.format == "jsonl") return read_jsonl(spec);
  if (spec.format == "csv") return read_caption_csv(spec);
  throw Error(fmt::format("dataset format '{}' is unknown (expected one of: {})", spec.format,
                          fmt::join(dataset_formats(), ", ")));
}

}  // namespace mva
