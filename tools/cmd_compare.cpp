#include <cstdio>
#include <fstream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "mvadapter/core/error.h"
#include "mvadapter/io/atomic_file.h"

namespace mva::cli {
namespace {

nlohmann::json read_results(const std::filesystem::path& run) {
  const auto path = std::filesystem::is_directory(run) ? run / "results.json" : run;
  std::ifstream in(path);
  if (!in) throw Error(fmt::format("{}: cannot read (is it a run directory?)", path.string()));
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw Error(fmt::format("{}: malformed JSON: {}", path.string(), e.what()));
  }
}

std::string num(const nlohmann::json& j, const char* dir, const char* key, int decimals) {
  if (!j.is_object() || !j.contains(dir) || !j[dir].contains(key)) return "-";
  return fmt::format("{:.{}f}", j[dir][key].get<double>(), decimals);
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
      const auto r = read_results(run);
      const auto& m = r.contains(o->metrics) ? r[o->metrics] : nlohmann::json();
      table += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                           r.value("name", run), num(m, "t2v", "R1", 1), num(m, "t2v", "R5", 1),
                           num(m, "t2v", "R10", 1), num(m, "t2v", "MdR", 1),
                           num(m, "t2v", "MnR", 1), num(m, "v2t", "R1", 1), num(m, "v2t", "R5", 1),
                           num(m, "v2t", "R10", 1), num(m, "v2t", "MdR", 1),
                           num(m, "v2t", "MnR", 1), params(r.value("trainable_params", int64_t{0})),
                           duration(r.value("wall_time_s", 0.0)));
      if (conventions.empty() && m.is_object()) {
        conventions = fmt::format("{} test captions, {} videos; ranks: {} convention; DSL {}.",
                                  m.value("num_captions", 0), m.value("num_videos", 0),
                                  m.value("convention", std::string("standard")),
                                  m.value("dsl", false) ? "on" : "off");
      }
    }
    if (!conventions.empty()) table += "\n" + conventions + "\n";
    std::fputs(table.c_str(), stdout);
    if (!o->out.empty()) write_text_atomically(o->out, table);
  });
}

}  // namespace mva::cli
