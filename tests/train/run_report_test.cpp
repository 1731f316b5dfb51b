#include "mvadapter/train/run_report.h"

#include <fstream>
#include <sstream>
#include <string>

#include "mvadapter/core/error.h"
#include "test_support.h"

namespace mva {
namespace {

namespace fs = std::filesystem;

void write(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary);
  out << text;
}

std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Hand-made records in the Trainer's format (metrics.jsonl, DESIGN.md §5).
const char* kTrainLines =
    R"({"kind":"train","epoch":1,"step":10,"samples":1280,"loss":2.5,"lr":5e-6,"clip_lr":1e-7,"logit_scale":100.0,"grad_norm":0.8,"time_s":60.0}
{"kind":"train","epoch":1,"step":20,"samples":2560,"loss":2.25,"lr":4.5e-6,"clip_lr":9e-8,"logit_scale":100.0,"grad_norm":0.7,"time_s":120.0}
)";
const char* kEval1 =
    R"({"kind":"eval","epoch":1,"step":20,"time_s":130.0,"metrics":{"t2v":{"R1":41.3,"R5":70.1,"R10":80.2,"RSum":191.6,"MdR":2.0,"MnR":15.5,"num_queries":1000},"v2t":{"R1":42.1,"R5":71.0,"R10":81.0,"RSum":194.1,"MdR":2.0,"MnR":12.25,"num_queries":1000},"num_captions":1000,"num_videos":1000,"convention":"standard","dsl":false}}
)";
const char* kTrainLine3 =
    R"({"kind":"train","epoch":2,"step":30,"samples":1280,"loss":1.75,"lr":2e-6,"clip_lr":4e-8,"logit_scale":100.0,"grad_norm":0.6,"time_s":190.0}
)";
const char* kFinalMetrics =
    R"({"t2v":{"R1":46.7,"R5":73.4,"R10":82.9,"RSum":203.0,"MdR":2.0,"MnR":13.4,"num_queries":1000},"v2t":{"R1":47.9,"R5":74.6,"R10":84.1,"RSum":206.6,"MdR":2.0,"MnR":9.8,"num_queries":1000},"num_captions":1000,"num_videos":1000,"convention":"standard","dsl":false})";

// The same evaluation under the official code's convention: same R@K, MdR/MnR one lower.
const char* kFinalOfficial =
    R"({"t2v":{"R1":46.7,"R5":73.4,"R10":82.9,"RSum":203.0,"MdR":1.0,"MnR":12.4,"num_queries":1000},"v2t":{"R1":47.9,"R5":74.6,"R10":84.1,"RSum":206.6,"MdR":1.0,"MnR":8.8,"num_queries":1000},"num_captions":1000,"num_videos":1000,"convention":"official","dsl":false})";
const char* kBestByMetric =
    R"({"sum":{"epoch":2,"value":409.6},"t2v_r1":{"epoch":2,"value":46.7},"t2v_sum":{"epoch":2,"value":203.0},"v2t_r1":{"epoch":1,"value":48.3},"v2t_sum":{"epoch":2,"value":206.6}})";

fs::path make_run(const std::string& tag) {
  const fs::path dir = test::temp_dir(tag);
  const std::string eval2 =
      std::string(R"({"kind":"eval","epoch":2,"step":30,"time_s":200.0,"metrics":)") +
      kFinalMetrics + "}\n";
  write(dir / "metrics.jsonl", std::string(kTrainLines) + kEval1 + kTrainLine3 + eval2);
  const std::string results =
      std::string(R"({"name":"<script>alert(1)</script>","dataset":"msrvtt",)") +
      R"("arch":"ViT-B/16","method":{"trainable":"adapters","adapters":true},)" +
      R"("trainable_params":3572736,"clip_params":149620737,)" +
      R"("percent_of_clip":2.3878,"epochs":2,"best_epoch":2,"best":)" + kFinalMetrics +
      R"(,"best_official":)" + kFinalOfficial + R"(,"final":)" + kFinalMetrics +
      R"(,"final_official":)" + kFinalOfficial + R"(,"final_epoch":2,"best_by_metric":)" +
      kBestByMetric +
      R"(,"wall_time_s":427.0,"skipped_videos":0,"date":"2025-01-01T00:00:00Z","command":"mvadapter train x.yaml"})";
  write(dir / "results.json", results);
  write(dir / "config.yaml",
        "name: \"<script>alert(1)</script>\"\nmodel:\n  clip: weights/ViT-B-16.pt\n");
  return dir;
}

TEST(RunReport, WritesAPageWithFourChartsAndTheFinalResults) {
  const fs::path dir = make_run("report_full");
  write_run_report(dir);
  ASSERT_TRUE(fs::exists(dir / "report.html"));
  const std::string html = slurp(dir / "report.html");
  EXPECT_EQ(count(html, "<svg"), 4u) << "loss, learning rate, T2V recall, V2T recall";
  // The final results row: T2V R@1/5/10 and V2T R@1 as printed with one decimal.
  EXPECT_NE(html.find("<td>46.7</td><td>73.4</td><td>82.9</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>47.9</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>13.4</td>"), std::string::npos) << "T2V MnR";
  EXPECT_NE(html.find("final (epoch 2)"), std::string::npos);
  EXPECT_NE(html.find("2.39 %"), std::string::npos) << "percent of CLIP, two decimals";
  EXPECT_NE(html.find("3,572,736"), std::string::npos) << "trainable parameters";
  EXPECT_NE(html.find("<td class=\"l\">standard</td><td class=\"l\">off</td>"), std::string::npos)
      << "convention and DSL flag";
  EXPECT_NE(html.find("7:07 (427 s)"), std::string::npos) << "wall time";
  // The epoch-1 evaluation appears in the evaluations table.
  EXPECT_NE(html.find("<td>41.3</td>"), std::string::npos);
  // The resolved config, escaped, in a <pre>.
  EXPECT_NE(html.find("<pre>name: &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;"),
            std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos) << "all text must be escaped";
  EXPECT_NE(html.find("<h1>Run report: &lt;script&gt;alert(1)&lt;/script&gt;</h1>"),
            std::string::npos);
  // Self-contained: no external resources.
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
  fs::remove_all(dir);
}

TEST(RunReport, ShowsBothConventionsAndTheBestEpochOfEachCriterion) {
  const fs::path dir = make_run("report_conventions");
  const std::string html = render_run_report(dir);
  // final and best, each under the standard and the official convention.
  EXPECT_EQ(count(html, "<td class=\"l\">standard</td><td class=\"l\">off</td>"), 4u)
      << "final, best and the two logged evaluations";
  EXPECT_EQ(count(html, "<td class=\"l\">official</td><td class=\"l\">off</td>"), 2u) << html;
  EXPECT_NE(html.find("<td>1.0</td><td>12.4</td>"), std::string::npos) << "official T2V MdR/MnR";
  // log_best: one row per criterion with its epoch and value.
  EXPECT_NE(html.find("<td class=\"l\">v2t_r1</td><td>1</td><td>48.3</td>"), std::string::npos)
      << html;
  EXPECT_NE(html.find("<td class=\"l\">sum</td><td>2</td><td>409.6</td>"), std::string::npos);
  // Shown in the results section, not again as raw JSON among the run's facts.
  EXPECT_EQ(html.find(">best_by_metric<"), std::string::npos);
  EXPECT_EQ(html.find(">final_official<"), std::string::npos);
  EXPECT_NE(html.find("<th class=\"l\">final epoch</th><td class=\"l\">2</td>"), std::string::npos);
  fs::remove_all(dir);
}

TEST(RunReport, ChartsHaveTickLabelsAndClipLearningRateHasItsOwnAxis) {
  const fs::path dir = make_run("report_axes");
  const std::string html = render_run_report(dir);
  // Adapter lr 2e-6..5e-6 on the left in steps of 5e-7; CLIP lr 4e-8..1e-7 (50x smaller) on a
  // right axis in steps of 1e-8, so it is not a flat line at the bottom.
  EXPECT_NE(html.find("class=\"ytick\">5e-6</text>"), std::string::npos);
  EXPECT_NE(html.find("class=\"ytick\">2.5e-6</text>"), std::string::npos);
  EXPECT_NE(html.find("class=\"ytick right\">1e-7</text>"), std::string::npos);
  EXPECT_NE(html.find("class=\"ytick right\">4e-8</text>"), std::string::npos);
  EXPECT_NE(html.find("CLIP biases (clip_lr) (right axis)"), std::string::npos);
  EXPECT_EQ(count(html, "class=\"ytick right\""), 7u) << "only the learning-rate chart has one";
  // Step axis: 10..30 in 1-2-5 steps of 2 ("10", "20", "30" among them); epochs on whole numbers.
  EXPECT_NE(html.find("class=\"xtick\">20</text>"), std::string::npos);
  EXPECT_EQ(html.find("class=\"xtick\">1.5</text>"), std::string::npos) << "epochs are integers";
  EXPECT_GE(count(html, "class=\"ytick\""), 4u * 2u) << "every chart has labelled y ticks";
  // Hover text of a loss point; the epoch end (eval at step 20) as a guide labelled e1.
  EXPECT_NE(html.find("loss (window mean): step = 30, loss = 1.75"), std::string::npos);
  EXPECT_NE(html.find(">e1</text>"), std::string::npos);
  fs::remove_all(dir);
}

TEST(RunReport, ARepeatedStepAfterAResumeKeepsTheLaterValue) {
  const fs::path dir = test::temp_dir("report_resume");
  write(dir / "metrics.jsonl",
        R"({"kind":"train","epoch":1,"step":10,"loss":2.0,"lr":1e-6,"clip_lr":1e-6}
{"kind":"train","epoch":1,"step":20,"loss":1.9,"lr":1e-6,"clip_lr":1e-6}
{"kind":"train","epoch":1,"step":20,"loss":1.5,"lr":1e-6,"clip_lr":1e-6}
)");
  const std::string html = render_run_report(dir);
  EXPECT_NE(html.find("step = 20, loss = 1.5<"), std::string::npos);
  EXPECT_EQ(html.find("loss = 1.9<"), std::string::npos);
  // No evaluations logged: the recall charts say so instead of drawing empty axes.
  EXPECT_EQ(count(html, "<svg"), 2u);
  EXPECT_NE(html.find("No evaluation results yet."), std::string::npos);
  EXPECT_NE(html.find("config.yaml not found"), std::string::npos);
  fs::remove_all(dir);
}

TEST(RunReport, NameComesFromConfigWithoutResultsAndIsEscaped) {
  const fs::path dir = test::temp_dir("report_config_name");
  write(dir / "metrics.jsonl", kEval1);
  write(dir / "config.yaml", "name: a<b>&c\n");
  const std::string html = render_run_report(dir);
  EXPECT_NE(html.find("<title>a&lt;b&gt;&amp;c &middot;"), std::string::npos);
  // Without results.json the last logged evaluation is the result shown.
  EXPECT_NE(html.find("last evaluation (epoch 1)"), std::string::npos);
  EXPECT_NE(html.find("<td>41.3</td><td>70.1</td><td>80.2</td><td>2.0</td><td>15.5</td>"),
            std::string::npos);
  fs::remove_all(dir);
}

TEST(RunReport, MissingOrEmptyMetricsGiveAPageThatSaysSo) {
  const fs::path dir = test::temp_dir("report_empty");
  write_run_report(dir);
  std::string html = slurp(dir / "report.html");
  EXPECT_NE(html.find("metrics.jsonl is missing"), std::string::npos);
  EXPECT_EQ(html.find("<svg"), std::string::npos);
  write(dir / "metrics.jsonl", "\n  \n");
  write_run_report(dir);
  html = slurp(dir / "report.html");
  EXPECT_NE(html.find("metrics.jsonl is empty"), std::string::npos);
  fs::remove_all(dir);
}

TEST(RunReport, MalformedLineIsAnErrorNamingFileAndLine) {
  const fs::path dir = test::temp_dir("report_bad");
  write(dir / "metrics.jsonl", std::string(kEval1) + "{\"kind\":\"train\",\"step\":\n");
  EXPECT_ERROR_CONTAINS(write_run_report(dir), "metrics.jsonl line 2");
  EXPECT_ERROR_CONTAINS(read_metrics_log(dir / "metrics.jsonl"), "metrics.jsonl line 2");
  EXPECT_FALSE(fs::exists(dir / "report.html")) << "no page from a broken log";

  write(dir / "metrics.jsonl", std::string(kEval1) + "\n[1, 2]\n");
  EXPECT_ERROR_CONTAINS(read_metrics_log(dir / "metrics.jsonl"),
                        "metrics.jsonl line 3: expected a JSON object, got array");

  write(dir / "metrics.jsonl", R"({"kind":"train","step":"ten","loss":1.0})");
  EXPECT_ERROR_CONTAINS(write_run_report(dir),
                        "metrics.jsonl line 1: \"step\" is a string, expected a number");
  fs::remove_all(dir);
}

TEST(RunReport, MissingRunDirectoryIsAnError) {
  EXPECT_ERROR_CONTAINS(write_run_report("/nonexistent/run_dir"), "/nonexistent/run_dir");
}

TEST(MetricsLog, AppendsLinesThatReadBackEqualAcrossReopening) {
  const fs::path dir = test::temp_dir("metrics_log");
  const fs::path file = dir / "sub" / "metrics.jsonl";
  const nlohmann::json a = {{"kind", "train"}, {"step", 10}, {"loss", 0.1}, {"lr", 5e-6}};
  const nlohmann::json b = {{"kind", "eval"}, {"epoch", 1}, {"metrics", {{"t2v", {{"R1", 46.2}}}}}};
  const nlohmann::json c = {{"kind", "train"}, {"step", 20}, {"note", "a \"quoted\"\nline"}};
  {
    MetricsLog log(file);
    log.append(a);
    log.append(b);
    // Flushed per line: readable while the log is still open.
    ASSERT_EQ(read_metrics_log(file).size(), 2u);
  }
  {
    MetricsLog log(file);  // a resumed run appends, never truncates
    log.append(c);
    EXPECT_ERROR_CONTAINS(log.append(nlohmann::json::array({1, 2})), "must be a JSON object");
  }
  const auto records = read_metrics_log(file);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0], a);
  EXPECT_EQ(records[1], b);
  EXPECT_EQ(records[2], c);
  EXPECT_EQ(count(slurp(file), "\n"), 3u) << "one line per record";
  fs::remove_all(dir);
}

TEST(MetricsLog, RewindCutsBackToTheSyncedLengthAndDropsAPartialLine) {
  const fs::path dir = test::temp_dir("metrics_rewind");
  const fs::path file = dir / "metrics.jsonl";
  const nlohmann::json a = {{"kind", "train"}, {"step", 1}};
  const nlohmann::json b = {{"kind", "train"}, {"step", 2}};
  uint64_t saved = 0;
  {
    MetricsLog log(file);
    log.append(a);
    saved = log.sync();  // the length a training state saved after step 1 records
    EXPECT_EQ(saved, slurp(file).size());
    log.append(b);
  }
  // A kill in the middle of the next line.
  std::ofstream(file, std::ios::app) << R"({"kind":"tra)";
  // Resumed from the state of step 1: steps 2 and up are redone, so their lines go.
  rewind_metrics_log(file, saved);
  EXPECT_EQ(read_metrics_log(file), std::vector<nlohmann::json>{a});

  // A state without a recorded length: only the partial line goes.
  {
    MetricsLog log(file);
    log.append(b);
  }
  std::ofstream(file, std::ios::app) << R"({"kind":"tra)";
  rewind_metrics_log(file, std::nullopt);
  EXPECT_EQ(read_metrics_log(file), (std::vector<nlohmann::json>{a, b}));
  rewind_metrics_log(file, 1000000);  // longer than the file: nothing to cut
  EXPECT_EQ(read_metrics_log(file).size(), 2u);
  // A fresh run empties what an earlier attempt left; a missing file is fine.
  rewind_metrics_log(file, 0);
  EXPECT_EQ(slurp(file), "");
  rewind_metrics_log(dir / "missing.jsonl", 0);
  EXPECT_FALSE(fs::exists(dir / "missing.jsonl"));
  fs::remove_all(dir);
}

TEST(HtmlEscape, ReplacesTheFiveSpecialCharacters) {
  EXPECT_EQ(html_escape("a<b>&\"'z"), "a&lt;b&gt;&amp;&quot;&#39;z");
  EXPECT_EQ(html_escape("plain"), "plain");
}

}  // namespace
}  // namespace mva
