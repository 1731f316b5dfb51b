#include "mvadapter/train/run_report.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <utility>

#include <fmt/format.h>

#include "mvadapter/core/clock.h"
#include "mvadapter/core/error.h"
#include "mvadapter/core/progress.h"
#include "mvadapter/io/atomic_file.h"
#include "mvadapter/io/json_file.h"
#include "mvadapter/train/run_results.h"

namespace mva {

namespace fs = std::filesystem;
using json = nlohmann::json;
// Internally records keep their keys in file order, so the report lists them as written.
using ojson = nlohmann::ordered_json;

// ---- metrics.jsonl ----------------------------------------------------------------------------

MetricsLog::MetricsLog(const fs::path& file) : path_(file) {
  std::error_code ec;
  if (file.has_parent_path()) fs::create_directories(file.parent_path(), ec);
  file_ = std::fopen(file.c_str(), "a");
  if (file_ == nullptr) {
    throw Error(
        fmt::format("{}: cannot open for appending ({})", file.string(), std::strerror(errno)));
  }
}

MetricsLog::~MetricsLog() {
  if (file_ != nullptr) std::fclose(file_);
}

void MetricsLog::append(const json& record) {
  if (!record.is_object()) {
    throw Error(fmt::format("{}: a metrics record must be a JSON object, got {}", path_.string(),
                            record.type_name()));
  }
  // One write call per line: a reader (or a crash) sees whole lines only, except the last.
  const std::string line = record.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    throw Error(fmt::format("{}: write failed ({})", path_.string(), std::strerror(errno)));
  }
}

uint64_t MetricsLog::sync() {
  if (std::fflush(file_) != 0 || ::fsync(fileno(file_)) != 0) {
    throw Error(fmt::format("{}: fsync failed ({})", path_.string(), std::strerror(errno)));
  }
  std::error_code ec;
  const auto size = fs::file_size(path_, ec);
  if (ec) throw Error(fmt::format("{}: cannot read its size ({})", path_.string(), ec.message()));
  return size;
}

void rewind_metrics_log(const fs::path& file, std::optional<uint64_t> bytes) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return;
  uint64_t keep = fs::file_size(file, ec);
  if (ec) throw Error(fmt::format("{}: cannot read its size ({})", file.string(), ec.message()));
  if (bytes && *bytes < keep) keep = *bytes;
  // Back to the end of the last whole line.
  {
    std::ifstream in(file, std::ios::binary);
    std::string text(keep, '\0');
    if (!in.read(text.data(), static_cast<std::streamsize>(keep))) {
      throw Error(fmt::format("{}: read failed", file.string()));
    }
    const auto last = text.rfind('\n');
    keep = last == std::string::npos ? 0 : last + 1;
  }
  if (keep == fs::file_size(file, ec)) return;
  fs::resize_file(file, keep, ec);
  if (ec) throw Error(fmt::format("{}: cannot truncate it ({})", file.string(), ec.message()));
}

namespace {

/// A record and the 1-based line it came from, so later checks can name the line.
struct LoggedRecord {
  int64_t line = 0;
  ojson record;
};

std::vector<LoggedRecord> read_records(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open ({})", file.string(), std::strerror(errno)));
  std::vector<LoggedRecord> out;
  std::string text;
  for (int64_t line = 1; std::getline(in, text); ++line) {
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    // parse_json_text names the file and this line in its error.
    const auto parsed = parse_json_text(text, file.string(), line);
    if (!parsed.is_object()) {
      throw Error(fmt::format("{} line {}: expected a JSON object, got {}", file.string(), line,
                              json_type_name(parsed)));
    }
    out.push_back({line, parsed});
  }
  if (in.bad()) throw Error(fmt::format("{}: read failed", file.string()));
  return out;
}

}  // namespace

std::vector<json> read_metrics_log(const fs::path& file) {
  std::vector<json> out;
  for (auto& r : read_records(file)) out.push_back(json(r.record));
  return out;
}

// ---- HTML helpers -----------------------------------------------------------------------------

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

constexpr const char* kDash = "&mdash;";

std::string read_text_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open ({})", file.string(), std::strerror(errno)));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The value at `keys` in a metrics.jsonl record: nullopt when absent or null (a NaN is written as
/// null); any other non-number is an error naming the file, the line and the dotted key.
std::optional<double> number_at(const LoggedRecord& r, std::initializer_list<const char*> keys,
                                const fs::path& file) {
  const ojson* v = &r.record;
  std::string dotted;
  for (const char* k : keys) {
    dotted += dotted.empty() ? k : fmt::format(".{}", k);
    if (!v->is_object()) {
      throw Error(fmt::format("{} line {}: \"{}\" is {}, expected an object", file.string(), r.line,
                              dotted.substr(0, dotted.rfind('.')), v->type_name()));
    }
    auto it = v->find(k);
    if (it == v->end()) return std::nullopt;
    v = &*it;
  }
  if (v->is_null()) return std::nullopt;
  if (!v->is_number()) {
    throw Error(fmt::format("{} line {}: \"{}\" is a {}, expected a number", file.string(), r.line,
                            dotted, v->type_name()));
  }
  return v->get<double>();
}

/// A number of results.json for display: "—" when absent or not a number.
std::string fixed(const ojson& j, const char* key, int decimals) {
  if (!j.is_object()) return kDash;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return kDash;
  return fmt::format("{:.{}f}", it->get<double>(), decimals);
}

std::string group_digits(int64_t v) {
  std::string s = std::to_string(v < 0 ? -v : v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return v < 0 ? "-" + s : s;
}

/// A scalar of results.json as text (objects: "key: value, ..." as the method description is).
std::string scalar_text(const ojson& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number_integer()) return group_digits(v.get<int64_t>());
  if (v.is_number()) return fmt::format("{:g}", v.get<double>());
  if (v.is_null()) return "";
  if (v.is_object()) {
    std::string out;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!out.empty()) out += ", ";
      out += it.key() + ": " + scalar_text(it.value());
    }
    return out;
  }
  if (v.is_array()) {
    std::string out;
    for (const auto& e : v) out += (out.empty() ? "" : ", ") + scalar_text(e);
    return "[" + out + "]";
  }
  return v.dump();
}

// ---- SVG line charts --------------------------------------------------------------------------

struct Point {
  double x = 0.0, y = 0.0;
};

struct Series {
  std::string name;
  std::string color;
  std::vector<Point> points;
  /// Drawn dashed against a second y axis on the right, with its own range: the CLIP biases'
  /// learning rate is ~50x below the adapters' and would be a flat line on their axis.
  bool right_axis = false;
};

struct ChartSpec {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::string y_label_right;  ///< label of the right axis, when a series uses it
  bool integer_x = false;     ///< steps and epochs: ticks on whole numbers only
  /// Vertical dashed guides (epoch ends on step axes): x and label.
  std::vector<std::pair<double, std::string>> guides;
};

struct Axis {
  double lo = 0.0, hi = 1.0;
  std::vector<double> ticks;
};

/// "{:g}" without the exponent's padding: 5e-06 -> 5e-6, 1e+06 -> 1e6.
std::string tick_label(double v) {
  if (std::fabs(v) < 1e-300) return "0";
  std::string s = fmt::format("{:g}", v);
  const size_t e = s.find('e');
  if (e == std::string::npos) return s;
  std::string mant = s.substr(0, e);
  const char sign = s[e + 1];
  std::string digits = s.substr(e + 2);
  digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size() - 1));
  return mant + "e" + (sign == '-' ? "-" : "") + digits;
}

/// Axis over [lo, hi] with 1-2-5 ticks (about `target` of them), widened to whole ticks.
Axis nice_axis(double lo, double hi, int target, bool integer) {
  if (hi - lo <= 0.0) {
    // A single value: a window around it, so the point sits mid-chart.
    const double pad = integer ? 1.0 : (lo == 0.0 ? 1.0 : std::fabs(lo) * 0.1);
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  double step = (norm < 1.5 ? 1.0 : norm < 3.0 ? 2.0 : norm < 7.0 ? 5.0 : 10.0) * mag;
  if (integer) step = std::max(1.0, std::round(step));
  Axis a;
  a.lo = std::floor(lo / step + 1e-9) * step;
  a.hi = std::ceil(hi / step - 1e-9) * step;
  const auto n = static_cast<int64_t>(std::llround((a.hi - a.lo) / step));
  for (int64_t i = 0; i <= n; ++i) {
    // Rounded to the step's grid so 0.1 + 0.2 prints as 0.3.
    a.ticks.push_back(std::round((a.lo + static_cast<double>(i) * step) / step) * step);
  }
  return a;
}

double to_unit(const Axis& a, double v) {
  return (v - a.lo) / (a.hi - a.lo);
}

/// The y axis of the series on one side (nullopt when that side has none).
std::optional<Axis> y_axis_of(const std::vector<const Series*>& series, bool right) {
  double lo = 1e300, hi = -1e300;
  for (const auto* s : series) {
    if (s->right_axis != right) continue;
    for (const auto& p : s->points) lo = std::min(lo, p.y), hi = std::max(hi, p.y);
  }
  if (lo > hi) return std::nullopt;
  return nice_axis(lo, hi, 5, false);
}

std::string svg_chart(const ChartSpec& spec, const std::vector<Series>& all_series) {
  std::vector<const Series*> series;
  for (const auto& s : all_series) {
    if (!s.points.empty()) series.push_back(&s);
  }
  if (series.empty()) {
    return fmt::format("<p class=\"note\">{}: nothing logged.</p>\n", html_escape(spec.title));
  }
  double x0 = 1e300, x1 = -1e300;
  size_t most_points = 0;
  for (const auto* s : series) {
    most_points = std::max(most_points, s->points.size());
    for (const auto& p : s->points) x0 = std::min(x0, p.x), x1 = std::max(x1, p.x);
  }
  const Axis ax = nice_axis(x0, x1, 8, spec.integer_x);
  std::optional<Axis> ay = y_axis_of(series, false);
  std::optional<Axis> ay_right = y_axis_of(series, true);
  if (!ay) std::swap(ay, ay_right);  // only right-axis series: one axis, on the left
  const bool two_axes = ay_right.has_value();

  constexpr double kW = 720, kH = 300, kL = 74, kT = 40, kB = 46;
  const double kR = two_axes ? 74 : 18;
  const double pw = kW - kL - kR, ph = kH - kT - kB;
  auto px = [&](double x) { return kL + to_unit(ax, x) * pw; };
  auto py = [&](const Axis& a, double y) { return kT + (1.0 - to_unit(a, y)) * ph; };

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {0} {1}\" "
      "width=\"{0}\" height=\"{1}\" role=\"img\" aria-label=\"{2}\">\n"
      "<title>{2}</title>\n"
      "<text x=\"{3}\" y=\"18\" class=\"ctitle\">{2}</text>\n"
      "<rect x=\"{3}\" y=\"{4}\" width=\"{5}\" height=\"{6}\" class=\"plot\"/>\n",
      kW, kH, html_escape(spec.title), kL, kT, pw, ph);
  for (double t : ay->ticks) {
    const double y = py(*ay, t);
    svg += fmt::format(
        "<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" class=\"grid\"/>"
        "<text x=\"{3}\" y=\"{4:.1f}\" class=\"ytick\">{5}</text>\n",
        kL, y, kL + pw, kL - 6, y + 4, html_escape(tick_label(t)));
  }
  if (two_axes) {
    for (double t : ay_right->ticks) {
      const double y = py(*ay_right, t);
      svg += fmt::format(
          "<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" class=\"axis\"/>"
          "<text x=\"{3}\" y=\"{4:.1f}\" class=\"ytick right\">{5}</text>\n",
          kL + pw, y, kL + pw + 5, kL + pw + 7, y + 4, html_escape(tick_label(t)));
    }
    svg += fmt::format(
        "<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" class=\"axis\"/>"
        "<text transform=\"translate({3} {4}) rotate(90)\" class=\"ylabel\">{5}</text>\n",
        kL + pw, kT, kT + ph, kW - 14, kT + ph / 2, html_escape(spec.y_label_right));
  }
  for (double t : ax.ticks) {
    const double x = px(t);
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" class=\"axis\"/>"
        "<text x=\"{0:.1f}\" y=\"{3}\" class=\"xtick\">{4}</text>\n",
        x, kT + ph, kT + ph + 5, kT + ph + 18, html_escape(tick_label(t)));
  }
  for (const auto& [gx, label] : spec.guides) {
    if (gx < ax.lo || gx > ax.hi) continue;
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" class=\"guide\"/>"
        "<text x=\"{3:.1f}\" y=\"{4}\" class=\"glabel\">{5}</text>\n",
        px(gx), kT, kT + ph, px(gx) - 3, kT + 10, html_escape(label));
  }
  svg += fmt::format(
      "<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" class=\"axis\"/>"
      "<line x1=\"{0}\" y1=\"{2}\" x2=\"{3}\" y2=\"{2}\" class=\"axis\"/>\n"
      "<text x=\"{4}\" y=\"{5}\" class=\"xlabel\">{6}</text>\n"
      "<text transform=\"translate(16 {7}) rotate(-90)\" class=\"ylabel\">{8}</text>\n",
      kL, kT, kT + ph, kL + pw, kL + pw / 2, kH - 8, html_escape(spec.x_label), kT + ph / 2,
      html_escape(spec.y_label));

  // Legend, right-aligned above the plot; width estimated at ~7 px per character.
  auto legend_name = [&](const Series& s) {
    return two_axes && s.right_axis ? s.name + " (right axis)" : s.name;
  };
  double lx = kL + pw;
  for (auto it = series.rbegin(); it != series.rend(); ++it) {
    const std::string name = legend_name(**it);
    lx -= 26.0 + 7.0 * static_cast<double>(name.size()) + 10.0;
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"27\" x2=\"{1:.1f}\" y2=\"27\" stroke=\"{2}\" "
        "stroke-width=\"3\"{3}/><text x=\"{4:.1f}\" y=\"31\" class=\"legend\">{5}</text>\n",
        lx, lx + 18, (*it)->color, two_axes && (*it)->right_axis ? " stroke-dasharray=\"5 3\"" : "",
        lx + 22, html_escape(name));
  }

  // Markers (with hover text) only where they stay readable.
  const bool markers = most_points <= 40;
  for (const auto* s : series) {
    const Axis& a = two_axes && s->right_axis ? *ay_right : *ay;
    const std::string& y_label = two_axes && s->right_axis ? spec.y_label_right : spec.y_label;
    std::string pts;
    for (const auto& p : s->points) pts += fmt::format("{:.1f},{:.1f} ", px(p.x), py(a, p.y));
    if (s->points.size() > 1) {
      svg += fmt::format(
          "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\"{} "
          "stroke-linejoin=\"round\" points=\"{}\"/>\n",
          s->color, two_axes && s->right_axis ? " stroke-dasharray=\"5 3\"" : "", pts);
    }
    if (markers || s->points.size() == 1) {
      for (const auto& p : s->points) {
        svg += fmt::format(
            "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"><title>{}: {} = {}, {} = "
            "{}</title></circle>\n",
            px(p.x), py(a, p.y), s->color, html_escape(s->name), html_escape(spec.x_label),
            html_escape(tick_label(p.x)), html_escape(y_label), fmt::format("{:.6g}", p.y));
      }
    }
  }
  svg += "</svg>\n";
  return svg;
}

/// Points sorted by x; a repeated x (lines logged again after a resume) keeps the later value.
std::vector<Point> by_x(const std::map<double, double>& m) {
  std::vector<Point> out;
  for (const auto& [x, y] : m) out.push_back({x, y});
  return out;
}

// ---- the page ---------------------------------------------------------------------------------

constexpr const char* kStyle =
    R"(body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1000px;padding:0 16px;color:#1f2328}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.sub,.note{color:#59636e}table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:right}
th{background:#f6f8fa}td.l,th.l{text-align:left}pre{background:#f6f8fa;padding:12px;overflow:auto;font-size:12px;border:1px solid #d0d7de}
svg.chart{display:block;margin:12px 0;max-width:100%;height:auto;font-size:11px}.plot{fill:#fff;stroke:#d0d7de}
.grid{stroke:#eaeef2}.axis{stroke:#59636e}.guide{stroke:#afb8c1;stroke-dasharray:4 3}
.ytick{text-anchor:end;fill:#59636e}.ytick.right{text-anchor:start}.xtick{text-anchor:middle;fill:#59636e}.glabel{text-anchor:end;fill:#8c959f;font-size:10px}
.xlabel,.ylabel{text-anchor:middle;fill:#1f2328;font-size:12px}.ctitle{font-weight:600;font-size:13px;fill:#1f2328}.legend{fill:#1f2328}
)";

const char* const kColors[] = {"#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#57606a"};

struct RunFiles {
  fs::path dir;
  fs::path metrics_file;
  bool metrics_present = false;
  std::vector<LoggedRecord> records;
  ojson results;  // null when absent
  std::optional<std::string> config;
};

/// `name:` of a resolved config.yaml (a top-level scalar), without YAML: the train layer does
/// not link yaml-cpp, and to_yaml writes this key plainly.
std::string config_name(const std::string& yaml) {
  std::istringstream in(yaml);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("name:", 0) != 0) continue;
    std::string v = line.substr(5);
    v.erase(0, v.find_first_not_of(" \t"));
    while (!v.empty() && (v.back() == ' ' || v.back() == '\r')) v.pop_back();
    if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
      v = v.substr(1, v.size() - 2);
    }
    return v;
  }
  return "";
}

std::string run_name(const RunFiles& run) {
  if (run.results.is_object()) {
    auto it = run.results.find("name");
    if (it != run.results.end() && it->is_string() && !it->get<std::string>().empty()) {
      return it->get<std::string>();
    }
  }
  if (run.config) {
    const std::string n = config_name(*run.config);
    if (!n.empty()) return n;
  }
  fs::path dir = fs::absolute(run.dir).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();  // "runs/x/" names x too
  return dir.filename().string();
}

std::string metrics_cells(const ojson& m) {
  std::string out;
  for (const char* dir : {"t2v", "v2t"}) {
    const ojson d = m.is_object() && m.contains(dir) ? m.at(dir) : ojson();
    for (const char* k : {"R1", "R5", "R10"}) out += fmt::format("<td>{}</td>", fixed(d, k, 1));
    out += fmt::format("<td>{}</td><td>{}</td>", fixed(d, "MdR", 1), fixed(d, "MnR", 1));
  }
  return out;
}

std::string conventions_text(const ojson& m) {
  if (!m.is_object()) return kDash;
  std::string conv = m.contains("convention") && m["convention"].is_string()
                         ? m["convention"].get<std::string>()
                         : "?";
  std::string dsl = "off";
  if (m.contains("dsl") && m["dsl"].is_boolean() && m["dsl"].get<bool>()) {
    dsl = m.contains("dsl_temperature") && m["dsl_temperature"].is_number()
              ? fmt::format("ON (T = {:g})", m["dsl_temperature"].get<double>())
              : "ON";
  }
  std::string size;
  if (m.contains("num_captions") && m.contains("num_videos")) {
    size = fmt::format("{} &times; {}", html_escape(scalar_text(m["num_captions"])),
                       html_escape(scalar_text(m["num_videos"])));
  }
  return fmt::format("<td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td>",
                     size.empty() ? kDash : size, html_escape(conv), dsl);
}

constexpr const char* kMetricsHeader =
    "<tr><th class=\"l\" rowspan=\"2\">{}</th><th colspan=\"5\">text &rarr; video</th>"
    "<th colspan=\"5\">video &rarr; text</th><th rowspan=\"2\">captions &times; videos</th>"
    "<th rowspan=\"2\" class=\"l\">convention</th><th rowspan=\"2\" class=\"l\">DSL</th></tr>\n"
    "<tr><th>R@1</th><th>R@5</th><th>R@10</th><th>MdR</th><th>MnR</th>"
    "<th>R@1</th><th>R@5</th><th>R@10</th><th>MdR</th><th>MnR</th></tr>\n";

/// The official runner's log_best: the best epoch of each criterion (results.json
/// "best_by_metric"); empty when there is none.
std::string best_by_metric_table(const ojson& r) {
  if (!r.is_object() || !r.contains("best_by_metric") || !r["best_by_metric"].is_object() ||
      r["best_by_metric"].empty()) {
    return "";
  }
  std::string html =
      "<table>\n<tr><th class=\"l\">best epoch by</th><th>epoch</th><th>value</th></tr>\n";
  for (auto it = r["best_by_metric"].begin(); it != r["best_by_metric"].end(); ++it) {
    const ojson& e = it.value();
    html += fmt::format(
        "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td></tr>\n", html_escape(it.key()),
        e.is_object() && e.contains("epoch") ? html_escape(scalar_text(e["epoch"])) : kDash,
        fixed(e, "value", 1));
  }
  return html + "</table>\n";
}

std::string results_section(const RunFiles& run, const std::vector<const LoggedRecord*>& evals) {
  std::string html = "<h2>Results</h2>\n";
  std::vector<std::pair<std::string, ojson>> rows;
  const ojson& r = run.results;
  if (r.is_object()) {
    const std::string best_epoch = r.contains("best_epoch") ? scalar_text(r["best_epoch"]) : "";
    // Older results.json have no final_epoch: the final evaluation followed the last epoch done.
    const ojson& done = r.contains("final_epoch")   ? r["final_epoch"]
                        : r.contains("epochs_done") ? r["epochs_done"]
                                                    : r.value("epochs", ojson());
    const std::string final_label = done.is_number()
                                        ? fmt::format("final (epoch {})", scalar_text(done))
                                        : std::string("final");
    const std::string best_label = best_epoch.empty() || best_epoch == "0"
                                       ? std::string("best")
                                       : fmt::format("best (epoch {})", best_epoch);
    // Each result under eval.convention, then the official code's convention (key + "_official").
    for (const auto& [key, label] : {std::pair<std::string, std::string>{"final", final_label},
                                     std::pair<std::string, std::string>{"best", best_label}}) {
      for (const std::string suffix : {"", "_official"}) {
        if (r.contains(key + suffix) && r[key + suffix].is_object()) {
          rows.push_back({label, r[key + suffix]});
        }
      }
    }
  }
  if (rows.empty() && !evals.empty()) {
    const auto* last = evals.back();
    const ojson& m = last->record.contains("metrics") ? last->record["metrics"] : ojson();
    rows.push_back({fmt::format("last evaluation (epoch {})",
                                scalar_text(last->record.value("epoch", ojson()))),
                    m});
  }
  if (rows.empty()) {
    return html + "<p class=\"note\">No evaluation results yet.</p>\n";
  }
  html += "<table>\n" + fmt::format(kMetricsHeader, "");
  for (const auto& [label, m] : rows) {
    html += fmt::format("<tr><td class=\"l\">{}</td>{}{}</tr>\n", html_escape(label),
                        metrics_cells(m), conventions_text(m));
  }
  html += "</table>\n";
  html += best_by_metric_table(r);
  if (r.is_object() && r.contains("trainable_params")) {
    std::string line = fmt::format("Trainable parameters: <b>{}</b>",
                                   html_escape(scalar_text(r["trainable_params"])));
    if (r.contains("percent_of_clip") && r["percent_of_clip"].is_number()) {
      line += fmt::format(" = <b>{:.2f} %</b>", r["percent_of_clip"].get<double>());
      if (r.contains("clip_params")) {
        line += fmt::format(" of CLIP's {}", html_escape(scalar_text(r["clip_params"])));
      }
    }
    html += "<p>" + line + ".</p>\n";
  }
  html +=
      "<p class=\"note\">R@K in percent. A query's rank counts the candidates scoring strictly "
      "higher than its best ground truth; V2T candidates are videos, each scored by its best "
      "caption. Convention <i>standard</i>: CLIP4Clip's, MdR/MnR 1-based; <i>official</i>: "
      "MV-Adapter's code, the same ranks and R@K, 0-based MdR/MnR; <i>caption_ranking</i>: "
      "1-based, V2T candidates are all captions. DSL = dual softmax at inference (the paper uses "
      "none).</p>\n";
  return html;
}

std::string evaluations_section(const std::vector<const LoggedRecord*>& evals) {
  if (evals.empty()) return "";
  std::string html = "<h2>Evaluations</h2>\n<table>\n" + fmt::format(kMetricsHeader, "epoch");
  for (const auto* e : evals) {
    const ojson m = e->record.contains("metrics") ? e->record["metrics"] : ojson();
    html += fmt::format("<tr><td class=\"l\">{}</td>{}{}</tr>\n",
                        html_escape(scalar_text(e->record.value("epoch", ojson()))),
                        metrics_cells(m), conventions_text(m));
  }
  return html + "</table>\n";
}

/// A results.json value with nothing to show: null, or an empty string (a field the command
/// that wrote the file does not fill, such as `split` for a training run).
bool blank(const ojson& v) {
  return v.is_null() || (v.is_string() && v.get<std::string>().empty());
}

std::string run_facts_section(const RunFiles& run) {
  const ojson& r = run.results;
  std::string rows;
  auto row = [&](const std::string& label, const std::string& value_html) {
    rows += fmt::format("<tr><th class=\"l\">{}</th><td class=\"l\">{}</td></tr>\n",
                        html_escape(label), value_html);
  };
  row("run directory", html_escape(run.dir.string()));
  if (r.is_object()) {
    static const std::pair<const char*, const char*> kKnown[] = {
        {"dataset", "dataset"},
        {"arch", "backbone"},
        {"method", "method"},
        {"trainable_params", "trainable parameters"},
        {"adapter_params", "adapter parameters"},
        {"clip_params", "CLIP parameters"},
        {"percent_of_clip", "% of CLIP"},
        {"epochs", "epochs"},
        {"epochs_done", "epochs done"},
        {"best_epoch", "best epoch"},
        {"final_epoch", "final epoch"},
        {"steps", "optimiser steps"},
        {"finished", "finished"},
        {"precision", "precision"},
        {"skipped_videos", "skipped videos (training)"},
        {"eval_skipped_videos", "skipped videos (evaluation)"},
        {"wall_time_s", "wall time"},
        {"date", "date"},
        {"command", "command"},
    };
    std::vector<std::string> shown = {"name",  "best",           "best_official",
                                      "final", "final_official", "best_by_metric"};
    for (const auto& [key, label] : kKnown) {
      shown.push_back(key);
      auto it = r.find(key);
      if (it == r.end() || blank(*it)) continue;
      std::string text = scalar_text(*it);
      if (std::string(key) == "wall_time_s" && it->is_number()) {
        text = format_eta(it->get<double>()) + fmt::format(" ({:.0f} s)", it->get<double>());
      } else if (std::string(key) == "percent_of_clip" && it->is_number()) {
        text = fmt::format("{:.2f} %", it->get<double>());
      }
      row(label, html_escape(text));
    }
    // Keys a newer Trainer adds still show up.
    for (auto it = r.begin(); it != r.end(); ++it) {
      if (std::find(shown.begin(), shown.end(), it.key()) != shown.end() || blank(it.value())) {
        continue;
      }
      row(it.key(), html_escape(scalar_text(it.value())));
    }
  } else {
    row("results.json", "not written yet");
  }
  return "<h2>Run</h2>\n<table>\n" + rows + "</table>\n";
}

std::string charts_section(const RunFiles& run, const std::vector<const LoggedRecord*>& trains,
                           const std::vector<const LoggedRecord*>& evals) {
  std::map<double, double> loss, lr, clip_lr;
  std::map<double, double> recall[2][3];
  std::vector<std::pair<double, std::string>> epoch_ends;
  for (const auto* t : trains) {
    const auto step = number_at(*t, {"step"}, run.metrics_file);
    if (!step) continue;
    if (auto v = number_at(*t, {"loss"}, run.metrics_file)) loss[*step] = *v;
    if (auto v = number_at(*t, {"lr"}, run.metrics_file)) lr[*step] = *v;
    if (auto v = number_at(*t, {"clip_lr"}, run.metrics_file)) clip_lr[*step] = *v;
  }
  const char* const dirs[] = {"t2v", "v2t"};
  const char* const ks[] = {"R1", "R5", "R10"};
  for (const auto* e : evals) {
    const auto epoch = number_at(*e, {"epoch"}, run.metrics_file);
    if (!epoch) continue;
    if (auto step = number_at(*e, {"step"}, run.metrics_file); step && !trains.empty()) {
      epoch_ends.push_back({*step, fmt::format("e{:g}", *epoch)});
    }
    for (int d = 0; d < 2; ++d) {
      for (int k = 0; k < 3; ++k) {
        if (auto v = number_at(*e, {"metrics", dirs[d], ks[k]}, run.metrics_file)) {
          recall[d][k][*epoch] = *v;
        }
      }
    }
  }
  std::string html = "<h2>Curves</h2>\n";
  ChartSpec loss_spec{"Training loss", "step", "loss", "", true, epoch_ends};
  html += svg_chart(loss_spec, {{"loss (window mean)", kColors[0], by_x(loss)}});
  ChartSpec lr_spec{"Learning rate", "step", "lr (adapters)", "clip_lr (CLIP)", true, epoch_ends};
  html += svg_chart(lr_spec, {{"adapters (lr)", kColors[0], by_x(lr)},
                              {"CLIP biases (clip_lr)", kColors[1], by_x(clip_lr), true}});
  const char* const titles[] = {"Text → video recall", "Video → text recall"};
  for (int d = 0; d < 2; ++d) {
    ChartSpec spec{titles[d], "epoch", "R@K (%)", "", true, {}};
    html += svg_chart(spec, {{"R@1", kColors[0], by_x(recall[d][0])},
                             {"R@5", kColors[1], by_x(recall[d][1])},
                             {"R@10", kColors[2], by_x(recall[d][2])}});
  }
  return html;
}

RunFiles load_run(const fs::path& run_dir) {
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) {
    throw Error(fmt::format("{}: not a run directory (it does not exist or is not a folder)",
                            run_dir.string()));
  }
  RunFiles run;
  run.dir = run_dir;
  run.metrics_file = run_dir / "metrics.jsonl";
  run.metrics_present = fs::exists(run.metrics_file, ec);
  if (run.metrics_present) run.records = read_records(run.metrics_file);
  const fs::path results = run_dir / "results.json";
  // Through the one reader of results.json (typed, validated); displayed as its JSON.
  if (fs::exists(results, ec)) {
    run.results = ojson::parse(read_run_results(results).to_json().dump());
  }
  const fs::path config = run_dir / "config.yaml";
  if (fs::exists(config, ec)) run.config = read_text_file(config);
  return run;
}

}  // namespace

std::string render_run_report(const fs::path& run_dir) {
  const RunFiles run = load_run(run_dir);
  std::vector<const LoggedRecord*> trains, evals;
  for (const auto& r : run.records) {
    const auto kind = r.record.find("kind");
    if (kind == r.record.end() || !kind->is_string()) continue;  // unknown records: not plotted
    if (*kind == "train") trains.push_back(&r);
    if (*kind == "eval") evals.push_back(&r);
  }
  const std::string name = run_name(run);

  std::string html = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>{0} &middot; mvadapter run report</title>\n<style>\n{1}</style>\n</head>\n<body>\n"
      "<h1>Run report: {0}</h1>\n<p class=\"sub\">{2} &middot; written {3}</p>\n",
      html_escape(name), kStyle, html_escape(run.dir.string()), utc_now_readable());

  html += results_section(run, evals);
  if (!run.metrics_present) {
    html += "<h2>Curves</h2>\n<p class=\"note\">No metrics yet: metrics.jsonl is missing.</p>\n";
  } else if (run.records.empty()) {
    html += "<h2>Curves</h2>\n<p class=\"note\">No metrics yet: metrics.jsonl is empty.</p>\n";
  } else {
    html += charts_section(run, trains, evals);
  }
  html += evaluations_section(evals);
  html += run_facts_section(run);
  html += "<h2>Resolved config</h2>\n";
  html += run.config ? "<pre>" + html_escape(*run.config) + "</pre>\n"
                     : std::string("<p class=\"note\">config.yaml not found.</p>\n");
  html += "</body>\n</html>\n";
  return html;
}

void write_run_report(const fs::path& run_dir) {
  write_text_atomically(run_dir / "report.html", render_run_report(run_dir));
}

}  // namespace mva
