#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mvadapter/eval/query_ranks.h"

namespace mva {

/// One evaluated run that `serve` shows: its folder's results.json and, when present, ranks.jsonl.
struct ServedRun {
  std::string name;  ///< the folder's name: what the API and the page call it
  std::filesystem::path dir;
  nlohmann::json results;        ///< results.json as written by train or eval
  std::vector<QueryRank> ranks;  ///< ranks.jsonl; empty when the run has none
  bool has_ranks = false;
};

/// The runs given to `serve --runs`, read once at start-up: listed by /api/runs and compared query
/// by query by /api/runs/compare.
class RunCatalog {
 public:
  RunCatalog() = default;
  /// Reads each folder's results.json (required) and ranks.jsonl (optional). Throws Error naming
  /// the folder or file when one is missing or malformed, or when two folders share a name.
  explicit RunCatalog(const std::vector<std::filesystem::path>& dirs);

  /// [{"name", "config", "dataset", "command", "ranks", "num_queries", "t2v": final T2V metrics
  /// or null}], in the order given.
  nlohmann::json list() const;

  /// Per query, the rank of its ground truth under run `a` and under run `b`:
  /// {"a", "b", "queries": [{"query", "caption", "video", "rank_a", "rank_b"}], "summary":
  /// {"queries", "disagree", "a_better", "b_better", "a_r1", "b_r1"}}. Throws ApiError: 404 for an
  /// unknown run, 409 for a run without ranks.jsonl or two runs that ranked different queries.
  nlohmann::json compare(const std::string& a, const std::string& b) const;

  const std::vector<ServedRun>& runs() const { return runs_; }

 private:
  const ServedRun& find(const std::string& name) const;

  std::vector<ServedRun> runs_;
};

}  // namespace mva
