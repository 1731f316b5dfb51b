#pragma once
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mva {

/// Appends one JSON object per line to a run's metrics.jsonl (DESIGN.md §5), flushing each line
/// so that a crash loses at most the line being written and `report` can be rebuilt from the
/// file at any time. Appending (never truncating) lets a resumed run continue the same log.
class MetricsLog {
 public:
  /// Opens (creating it and its folder if needed) `file`, normally run_dir/metrics.jsonl.
  explicit MetricsLog(const std::filesystem::path& file);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  /// Writes `record` (an object) as one line and flushes it; throws Error naming the file when
  /// the record is not an object or the write fails.
  void append(const nlohmann::json& record);

  /// Flushes and fsyncs the file; returns its size in bytes, the length a training state records
  /// so that a resumed run can cut the log back to it (rewind_metrics_log).
  uint64_t sync();

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
};

/// Cuts `file` back to its first `bytes` bytes when it is longer, then drops a partial last line
/// (one a kill cut short), so that a run resumed from a training state that saw `bytes` bytes of
/// its log does not log the steps it redoes twice; `bytes` = nullopt only drops a partial line,
/// 0 empties the file (a fresh run in a folder an earlier attempt left without a state). A
/// missing file is no error; throws Error naming the file when it cannot be cut.
void rewind_metrics_log(const std::filesystem::path& file, std::optional<uint64_t> bytes);

/// Every record of a metrics.jsonl, in file order; blank lines are skipped. Throws Error naming
/// the file and the line for a line that is not valid JSON or not an object, and for a file that
/// cannot be read.
std::vector<nlohmann::json> read_metrics_log(const std::filesystem::path& file);

/// Writes run_dir/report.html (atomically) from run_dir/metrics.jsonl, plus results.json and
/// config.yaml when present: a self-contained page (inline CSS and SVG, no script, no network)
/// with charts of the training loss and learning rates against the step and of T2V/V2T R@1/5/10
/// against the epoch, the results table with the metric conventions, the run's facts and the
/// resolved config. A missing or empty metrics.jsonl gives a page that says so; a malformed line
/// of it, or a malformed results.json, throws Error naming the file and line.
void write_run_report(const std::filesystem::path& run_dir);

/// The page write_run_report writes, as a string (for tools that serve or print it).
std::string render_run_report(const std::filesystem::path& run_dir);

/// `text` with &, <, >, " and ' replaced by entities: safe in HTML text and attribute values.
std::string html_escape(const std::string& text);

}  // namespace mva
