#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace mva {

/// A one-line progress indicator for long loops (training epochs, evaluation, preprocessing):
/// "label  37/120  31% 12.3 it/s ETA 0:07" on stderr, redrawn in place with '\r' at most about
/// five times a second. It draws only when the stream is a terminal, so logs and redirected
/// output stay free of carriage-return noise (DESIGN.md §5: "quiet in logs").
class Progress {
 public:
  /// `total` items (<= 0: unknown, no percentage or ETA); `start` items were already done before
  /// this object existed (a resumed epoch), so they do not count towards the rate. `enabled =
  /// false` silences it even on a terminal.
  Progress(std::string label, int64_t total, bool enabled = true, int64_t start = 0);
  /// The same on `stream` (for tests and for tools that report on stdout); draws only if
  /// `stream` is a terminal.
  Progress(std::string label, int64_t total, std::FILE* stream, bool enabled = true,
           int64_t start = 0);
  /// Ends the line if finish() was not called.
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  /// `done` items of `total` are finished; redraws when ~0.2 s passed since the last redraw or
  /// the work is complete.
  void update(int64_t done);
  /// Draws the final state and ends the line (once; later calls do nothing).
  void finish();
  /// Whether this object writes anything at all (enabled and the stream is a terminal).
  bool active() const { return active_; }

 private:
  void draw(int64_t done);

  std::string label_;
  int64_t total_;
  int64_t start_;
  std::FILE* stream_;
  bool active_;
  bool finished_ = false;
  int64_t done_ = 0;
  size_t last_width_ = 0;
  std::chrono::steady_clock::time_point t0_;
  std::chrono::steady_clock::time_point last_draw_;
};

/// Remaining time as M:SS under an hour and H:MM:SS from an hour on (427 -> "7:07",
/// 3725 -> "1:02:05"); rounded to whole seconds; "?:??" when negative or not finite.
std::string format_eta(double seconds);

/// Items per second with three significant figures: "12.3 it/s", "0.456 it/s", "1234 it/s";
/// slower than one item a second also reads as seconds per item ("0.25 it/s (4.0 s/it)").
std::string format_rate(double items_per_second);

/// The text of one progress line (without '\r'): label, done/total, percent, rate and ETA;
/// the rate and ETA are left out until `elapsed_seconds` and the items counted are positive.
/// `counted` = items finished since timing began (done minus items already done before).
std::string format_progress_line(const std::string& label, int64_t done, int64_t total,
                                 int64_t counted, double elapsed_seconds);

}  // namespace mva
