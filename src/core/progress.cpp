#include "mvadapter/core/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace mva {

namespace {

using Clock = std::chrono::steady_clock;

// Five redraws a second look live without costing the loop anything measurable.
constexpr std::chrono::milliseconds kRedrawInterval{200};

std::string three_figures(double v) {
  if (v >= 100.0) return fmt::format("{:.0f}", v);
  if (v >= 10.0) return fmt::format("{:.1f}", v);
  return fmt::format("{:.2f}", v);
}

}  // namespace

std::string format_eta(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0.0) return "?:??";
  const auto total = static_cast<int64_t>(std::llround(seconds));
  const int64_t h = total / 3600, m = (total / 60) % 60, s = total % 60;
  if (h > 0) return fmt::format("{}:{:02}:{:02}", h, m, s);
  return fmt::format("{}:{:02}", m, s);
}

std::string format_rate(double items_per_second) {
  if (!std::isfinite(items_per_second) || items_per_second <= 0.0) return "? it/s";
  // Below one item a second the reciprocal reads better (a training step of 4 s: "4.00 s/it").
  if (items_per_second < 1.0) return three_figures(1.0 / items_per_second) + " s/it";
  return three_figures(items_per_second) + " it/s";
}

std::string format_progress_line(const std::string& label, int64_t done, int64_t total,
                                 int64_t counted, double elapsed_seconds) {
  std::string line;
  if (total > 0) {
    const int width = static_cast<int>(std::to_string(total).size());
    int64_t percent = static_cast<int64_t>(
        std::llround(100.0 * static_cast<double>(done) / static_cast<double>(total)));
    // Rounding must not announce completion early.
    if (done < total) percent = std::min<int64_t>(percent, 99);
    line = fmt::format("{}  {:>{}}/{} {:>3}%", label, done, width, total, percent);
  } else {
    line = fmt::format("{}  {}", label, done);
  }
  if (counted > 0 && elapsed_seconds > 0.0) {
    const double rate = static_cast<double>(counted) / elapsed_seconds;
    line += " " + format_rate(rate);
    if (total > 0 && done < total) {
      line += " ETA " + format_eta(static_cast<double>(total - done) / rate);
    }
  }
  return line;
}

Progress::Progress(std::string label, int64_t total, bool enabled, int64_t start)
    : Progress(std::move(label), total, stderr, enabled, start) {}

Progress::Progress(std::string label, int64_t total, std::FILE* stream, bool enabled, int64_t start)
    : label_(std::move(label)),
      total_(total),
      start_(start),
      stream_(stream),
      active_(enabled && stream != nullptr && ::isatty(::fileno(stream)) == 1),
      done_(start),
      t0_(Clock::now()),
      last_draw_(t0_) {}

Progress::~Progress() {
  // Destructors must not throw; finish() only writes to a FILE*, which reports no exceptions.
  finish();
}

void Progress::update(int64_t done) {
  done_ = done;
  if (!active_ || finished_) return;
  const auto now = Clock::now();
  if (now - last_draw_ < kRedrawInterval && !(total_ > 0 && done >= total_)) return;
  last_draw_ = now;
  draw(done);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (!active_) return;
  draw(done_);
  std::fputc('\n', stream_);
  std::fflush(stream_);
}

void Progress::draw(int64_t done) {
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0_).count();
  std::string line = format_progress_line(label_, done, total_, done - start_, elapsed);
  // Blank out what a longer previous line left behind.
  const size_t width = line.size();
  if (width < last_width_) line.append(last_width_ - width, ' ');
  last_width_ = width;
  std::fputc('\r', stream_);
  std::fputs(line.c_str(), stream_);
  std::fflush(stream_);
}

}  // namespace mva
