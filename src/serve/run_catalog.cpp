#include "mvadapter/serve/run_catalog.h"

#include <fstream>
#include <map>

#include <fmt/format.h>

#include "mvadapter/core/error.h"
#include "mvadapter/serve/api_error.h"

namespace fs = std::filesystem;

namespace mva {
namespace {

nlohmann::json read_results(const fs::path& dir) {
  const fs::path file = dir / "results.json";
  if (!fs::is_regular_file(file)) {
    throw Error(fmt::format("--runs: {} has no results.json (a run folder of train, or eval --out)",
                            dir.string()));
  }
  std::ifstream in(file);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: not valid JSON ({})", file.string(), e.what()));
  }
  if (!j.is_object()) throw Error(fmt::format("{}: expected a JSON object", file.string()));
  return j;
}

nlohmann::json string_or_null(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key] : nlohmann::json();
}

}  // namespace

RunCatalog::RunCatalog(const std::vector<fs::path>& dirs) {
  for (const auto& dir : dirs) {
    if (!fs::is_directory(dir)) {
      throw Error(fmt::format("--runs: {} is not a folder", dir.string()));
    }
    ServedRun run;
    run.dir = fs::weakly_canonical(dir);
    run.name = run.dir.filename().string();
    for (const auto& other : runs_) {
      if (other.name == run.name) {
        throw Error(
            fmt::format("--runs: {} and {} are both named '{}' (runs are told apart by "
                        "their folder names)",
                        other.dir.string(), run.dir.string(), run.name));
      }
    }
    run.results = read_results(run.dir);
    if (fs::is_regular_file(run.dir / "ranks.jsonl")) {
      run.ranks = read_query_ranks(run.dir / "ranks.jsonl");
      run.has_ranks = true;
    }
    runs_.push_back(std::move(run));
  }
}

nlohmann::json RunCatalog::list() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& run : runs_) {
    const auto& r = run.results;
    nlohmann::json t2v;
    if (r.contains("final") && r["final"].is_object() && r["final"].contains("t2v")) {
      t2v = r["final"]["t2v"];
    }
    out.push_back({{"name", run.name},
                   {"config", string_or_null(r, "name")},
                   {"dataset", string_or_null(r, "dataset")},
                   {"command", string_or_null(r, "command")},
                   {"ranks", run.has_ranks},
                   {"num_queries", run.ranks.size()},
                   {"t2v", t2v}});
  }
  return out;
}

const ServedRun& RunCatalog::find(const std::string& name) const {
  for (const auto& run : runs_) {
    if (run.name == name) return run;
  }
  throw ApiError(404, fmt::format("no run named '{}' (GET /api/runs lists them)", name));
}

nlohmann::json RunCatalog::compare(const std::string& a, const std::string& b) const {
  const ServedRun& ra = find(a);
  const ServedRun& rb = find(b);
  for (const ServedRun* r : {&ra, &rb}) {
    if (!r->has_ranks) {
      throw ApiError(409, fmt::format("run '{}' has no ranks.jsonl (evaluate it again with this "
                                      "version: eval --out, or train)",
                                      r->name));
    }
  }
  std::map<int64_t, const QueryRank*> by_query;
  for (const auto& q : rb.ranks) by_query[q.query] = &q;
  if (ra.ranks.size() != rb.ranks.size()) {
    throw ApiError(409, fmt::format("runs '{}' and '{}' ranked {} and {} queries: not the same "
                                    "test split",
                                    a, b, ra.ranks.size(), rb.ranks.size()));
  }
  nlohmann::json queries = nlohmann::json::array();
  int64_t disagree = 0, a_better = 0, b_better = 0, a_r1 = 0, b_r1 = 0;
  for (const auto& qa : ra.ranks) {
    auto it = by_query.find(qa.query);
    if (it == by_query.end() || it->second->caption != qa.caption ||
        it->second->video != qa.video) {
      throw ApiError(409, fmt::format("runs '{}' and '{}' ranked different queries (query {}: "
                                      "'{}' is not in both): not the same test split",
                                      a, b, qa.query, qa.caption));
    }
    const QueryRank& qb = *it->second;
    disagree += qa.rank != qb.rank;
    a_better += qa.rank < qb.rank;
    b_better += qb.rank < qa.rank;
    a_r1 += qa.rank == 1;
    b_r1 += qb.rank == 1;
    queries.push_back({{"query", qa.query},
                       {"caption", qa.caption},
                       {"video", qa.video},
                       {"rank_a", qa.rank},
                       {"rank_b", qb.rank}});
  }
  return {{"a", a},
          {"b", b},
          {"queries", queries},
          {"summary",
           {{"queries", ra.ranks.size()},
            {"disagree", disagree},
            {"a_better", a_better},
            {"b_better", b_better},
            {"a_r1", a_r1},
            {"b_r1", b_r1}}}};
}

}  // namespace mva
