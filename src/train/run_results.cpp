#include "mvadapter/train/run_results.h"

#include <algorithm>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "mvadapter/core/error.h"
#include "mvadapter/io/atomic_file.h"
#include "mvadapter/io/json_file.h"

namespace mva {
namespace {

using Json = nlohmann::json;

// One table of the scalar fields: results.json's key and the member, so that writing and reading
// cannot disagree.
template <typename Results, typename Visit>
void visit_scalars(Results& r, Visit&& v) {
  v("name", r.name);
  v("command", r.command);
  v("dataset", r.dataset);
  v("split", r.split);
  v("arch", r.arch);
  v("trainable", r.trainable);
  v("use_adapters", r.use_adapters);
  v("frames", r.frames);
  v("words", r.words);
  v("adapter", r.adapter);
  v("precision", r.precision);
  v("trainable_params", r.trainable_params);
  v("adapter_params", r.adapter_params);
  v("clip_params", r.clip_params);
  v("percent_of_clip", r.percent_of_clip);
  v("epochs", r.epochs);
  v("epochs_done", r.epochs_done);
  v("steps", r.steps);
  v("skipped_steps", r.skipped_steps);
  v("finished", r.finished);
  v("best_epoch", r.best_epoch);
  v("skipped_videos", r.skipped_videos);
  v("eval_skipped_videos", r.eval_skipped_videos);
  v("wall_time_s", r.wall_time_s);
  v("date", r.date);
}

template <typename Results, typename Visit>
void visit_metrics(Results& r, Visit&& v) {
  v("best", r.best);
  v("best_official", r.best_official);
  v("final", r.final);
  v("final_official", r.final_official);
}

// Whether `j` holds a value of T's JSON type, and T's type in words for the error if not.
template <typename T>
std::pair<bool, const char*> json_type_check(const Json& j) {
  if constexpr (std::is_same_v<T, bool>) {
    return {j.is_boolean(), "true or false"};
  } else if constexpr (std::is_same_v<T, std::string>) {
    return {j.is_string(), "a string"};
  } else if constexpr (std::is_integral_v<T>) {
    return {j.is_number_integer(), "an integer"};
  } else {
    return {j.is_number(), "a number"};
  }
}

}  // namespace

Json RunResults::to_json() const {
  Json j = Json::object();
  visit_scalars(*this, [&](const char* key, const auto& value) { j[key] = value; });
  visit_metrics(*this, [&](const char* key, const std::optional<RetrievalMetrics>& m) {
    j[key] = m ? m->to_json() : Json();
  });
  j["final_epoch"] = final_epoch ? Json(*final_epoch) : Json();
  j["best_by_metric"] = best_by_metric;
  for (const auto& [key, value] : extra.items()) {
    if (!j.contains(key)) j[key] = value;
  }
  return j;
}

RunResults RunResults::from_json(const Json& j, const std::string& source) {
  if (!j.is_object()) {
    throw Error(
        fmt::format("{}: expected a JSON object of run results, found {}", source, j.type_name()));
  }
  RunResults r;
  std::vector<std::string> known = {"final_epoch", "best_by_metric"};
  visit_scalars(r, [&](const char* key, auto& value) {
    using T = std::decay_t<decltype(value)>;
    known.push_back(key);
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    if (const auto [ok, expected] = json_type_check<T>(*it); !ok) {
      throw Error(
          fmt::format("{}: '{}' is {}, expected {}", source, key, it->type_name(), expected));
    }
    value = it->get<T>();
  });
  visit_metrics(r, [&](const char* key, std::optional<RetrievalMetrics>& m) {
    known.push_back(key);
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    m = RetrievalMetrics::from_json(*it, fmt::format("{}: '{}'", source, key));
  });
  if (const auto it = j.find("final_epoch"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer()) {
      throw Error(
          fmt::format("{}: 'final_epoch' is {}, expected an integer", source, it->type_name()));
    }
    r.final_epoch = it->get<int64_t>();
  }
  if (const auto it = j.find("best_by_metric"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) {
      throw Error(
          fmt::format("{}: 'best_by_metric' is {}, expected an object", source, it->type_name()));
    }
    r.best_by_metric = *it;
  }
  for (const auto& [key, value] : j.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) r.extra[key] = value;
  }
  return r;
}

RunResults read_run_results(const std::filesystem::path& path) {
  std::error_code ec;
  const auto file = std::filesystem::is_directory(path, ec) ? path / "results.json" : path;
  if (!std::filesystem::exists(file, ec)) {
    throw Error(
        fmt::format("{}: no such file (is {} a run directory?)", file.string(), path.string()));
  }
  const auto ordered = read_json_file(file);
  return RunResults::from_json(Json::parse(ordered.dump()), file.string());
}

void write_run_results(const std::filesystem::path& dir, const RunResults& results) {
  write_text_atomically(dir / "results.json", results.to_json().dump(2) + "\n");
}

}  // namespace mva
