#include <cstdio>
#include <optional>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mvadapter/core/error.h"
#include "mvadapter/io/atomic_file.h"
#include "mvadapter/train/run_results.h"

namespace mva::cli {
namespace {

std::string num(const std::optional<RetrievalMetrics>& m, double DirectionMetrics::*field,
                const DirectionMetrics RetrievalMetrics::*dir) {
  if (!m) return "-";
  return fmt::format("{:.1f}", (*m).*dir.*field);
}

std::string params(int64_t n) {
  if (n >= 1000000) return fmt::format("{:.2f} M", static_cast<double>(n) / 1e6);
  if (n >= 1000) return fmt::format("{:.1f} k", static_cast<double>(n) / 1e3);
  return std::to_string(n);
}

std::string duration(double s) {
  const auto t = static_cast<int64_t>(s + 0.5);
  return fmt::format("{}:{:02d}", t / 60, t % 60);
}

}  // namespace

void add_compare_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "compare",
      "One table of several runs (their results.json): T2V and V2T R@1/5/10, MdR, MnR, "
      "trainable parameters and wall time, as Markdown.");
  struct Opts {
    std::vector<std::string> runs;
    std::string out;
    std::string metrics = "final";
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("runs", o->runs, "run directories (or results.json files)")->required();
  cmd->add_option("--out", o->out, "also write the table to this Markdown file");
  cmd->add_option("--metrics", o->metrics,
                  "final (last evaluation) or best (selected epoch), under eval.convention; "
                  "final_official or best_official: the same under the official code's "
                  "convention (0-based MdR/MnR)")
      ->check(CLI::IsMember({"final", "best", "final_official", "best_official"}))
      ->capture_default_str();
  cmd->callback([o] {
    std::string table =
        "| method | T2V R@1 | R@5 | R@10 | MdR | MnR | V2T R@1 | R@5 | R@10 | MdR | MnR | "
        "trainable params | wall time |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    std::string conventions;
    for (const auto& run : o->runs) {
      const RunResults r = read_run_results(run);
      const std::optional<RetrievalMetrics>& m = o->metrics == "best"             ? r.best
                                                 : o->metrics == "final_official" ? r.final_official
                                                 : o->metrics == "best_official"  ? r.best_official
                                                                                  : r.final;
      constexpr auto t2v = &RetrievalMetrics::t2v;
      constexpr auto v2t = &RetrievalMetrics::v2t;
      table += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                           r.name.empty() ? run : r.name, num(m, &DirectionMetrics::r1, t2v),
                           num(m, &DirectionMetrics::r5, t2v), num(m, &DirectionMetrics::r10, t2v),
                           num(m, &DirectionMetrics::mdr, t2v), num(m, &DirectionMetrics::mnr, t2v),
                           num(m, &DirectionMetrics::r1, v2t), num(m, &DirectionMetrics::r5, v2t),
                           num(m, &DirectionMetrics::r10, v2t), num(m, &DirectionMetrics::mdr, v2t),
                           num(m, &DirectionMetrics::mnr, v2t), params(r.trainable_params),
                           duration(r.wall_time_s));
      if (conventions.empty() && m) {
        conventions = fmt::format("{} test captions, {} videos; ranks: {} convention; DSL {}.",
                                  m->num_captions, m->num_videos, to_string(m->convention),
                                  m->dsl ? "on" : "off");
      }
    }
    if (!conventions.empty()) table += "\n" + conventions + "\n";
    std::fputs(table.c_str(), stdout);
    if (!o->out.empty()) write_text_atomically(o->out, table);
  });
}

}  // namespace mva::cli
