#include "mvadapter/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <optional>
#include <utility>

#include <fmt/format.h>
#include <torch/torch.h>

#include "mvadapter/core/error.h"

namespace mva {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The two facts a convention fixes: which V2T candidates are counted, and the rank base of
// MdR/MnR. Every branch on the convention asks one of these.
bool v2t_ranks_captions(RankConvention convention) {
  return convention == RankConvention::kCaptionRanking;
}
bool zero_based(RankConvention convention) {
  return convention == RankConvention::kOfficial;
}

void check_chunk_size(int64_t chunk_size, const char* field) {
  if (chunk_size <= 0) {
    throw Error(fmt::format("{}: chunk size {} must be positive", field, chunk_size));
  }
}

std::string shape_str(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += fmt::format("{}{}", d ? ", " : "", t.size(d));
  return s + "]";
}

void validate(const torch::Tensor& sim, const std::vector<int64_t>& caption_video,
              const MetricsOptions& options) {
  if (!sim.defined()) throw Error("sim: similarity matrix is undefined");
  if (sim.dim() != 2) {
    throw Error(fmt::format("sim: shape {}, expected [num_captions, num_videos]", shape_str(sim)));
  }
  if (!sim.device().is_cpu()) throw Error("sim: similarity matrix must be on the CPU");
  if (!sim.is_floating_point()) {
    throw Error(fmt::format("sim: dtype {}, expected a floating-point tensor",
                            std::string(c10::toString(sim.scalar_type()))));
  }
  const int64_t nc = sim.size(0), nv = sim.size(1);
  if (nc == 0 || nv == 0) {
    throw Error(fmt::format("sim: shape {} has no captions or no videos", shape_str(sim)));
  }
  if (static_cast<int64_t>(caption_video.size()) != nc) {
    throw Error(fmt::format(
        "caption_video: {} ground-truth entries, expected one per caption = sim rows ({})",
        caption_video.size(), nc));
  }
  std::vector<char> has_caption(nv, 0);
  for (int64_t i = 0; i < nc; ++i) {
    const int64_t v = caption_video[i];
    if (v < 0 || v >= nv) {
      throw Error(fmt::format(
          "caption_video[{}]: video index {} out of range [0, {}) (sim columns)", i, v, nv));
    }
    has_caption[v] = 1;
  }
  for (int64_t v = 0; v < nv; ++v) {
    if (!has_caption[v]) {
      throw Error(
          fmt::format("caption_video: video {} has no caption, so its V2T rank is undefined", v));
    }
  }
  check_chunk_size(options.chunk_size, "chunk_size");
  if (options.dsl && !(options.dsl_temperature > 0.0 && std::isfinite(options.dsl_temperature))) {
    throw Error(fmt::format("dsl_temperature: {} must be a positive finite number",
                            options.dsl_temperature));
  }
}

// Rows [begin, end) of sim in the working dtype; NaN would silently compare false and look like
// a perfect rank, so it is an error.
torch::Tensor load_rows(const torch::Tensor& sim, int64_t begin, int64_t end,
                        torch::ScalarType dtype) {
  auto rows = sim.slice(0, begin, end).to(dtype);
  auto nan = torch::isnan(rows);
  if (nan.any().item<bool>()) {
    auto at = nan.nonzero()[0];
    throw Error(fmt::format("sim: NaN at row {}, column {}", begin + at[0].item<int64_t>(),
                            at[1].item<int64_t>()));
  }
  return rows;
}

// Scores of the rows of one direction's matrix, with the dual softmax applied when asked.
// T2V normalises each video column over all captions (`col_lse` holds its log-sum-exp);
// V2T normalises each caption over all videos, which is local to the row.
class Scorer {
 public:
  Scorer(const MetricsOptions& options, int64_t nc, int64_t nv)
      : dsl_(options.dsl), inv_t_(1.0 / options.dsl_temperature), nc_(nc), nv_(nv) {}

  void set_col_lse(torch::Tensor col_lse) { col_lse_ = std::move(col_lse); }
  torch::Tensor logits(const torch::Tensor& rows) const { return rows * inv_t_; }

  torch::Tensor t2v(const torch::Tensor& rows) const {
    if (!dsl_) return rows;
    return rows * torch::exp(logits(rows) - col_lse_.unsqueeze(0)) * static_cast<double>(nc_);
  }

  torch::Tensor v2t(const torch::Tensor& rows) const {
    if (!dsl_) return rows;
    return rows * torch::softmax(logits(rows), 1) * static_cast<double>(nv_);
  }

 private:
  bool dsl_;
  double inv_t_;
  int64_t nc_, nv_;
  torch::Tensor col_lse_;
};

double median_standard(const std::vector<int64_t>& sorted) {
  const size_t n = sorted.size();
  const double mid = n % 2 ? static_cast<double>(sorted[n / 2])
                           : 0.5 * static_cast<double>(sorted[n / 2 - 1] + sorted[n / 2]);
  return mid + 1.0;
}

// MV-Adapter's get_rank slices sorted[n // 2 : (n + 1) // 2 + 1] and averages it.
double median_official(const std::vector<int64_t>& sorted) {
  const size_t n = sorted.size();
  const size_t lo = n / 2, hi = std::min(n, (n + 1) / 2 + 1);
  double sum = 0.0;
  for (size_t i = lo; i < hi; ++i) sum += static_cast<double>(sorted[i]);
  return sum / static_cast<double>(hi - lo);
}

nlohmann::json direction_json(const DirectionMetrics& m) {
  return {{"R1", m.r1},
          {"R5", m.r5},
          {"R10", m.r10},
          {"RSum", m.rsum},
          {"MdR", m.mdr},
          {"MnR", m.mnr},
          {"num_queries", m.num_queries}};
}

std::string dsl_text(const RetrievalMetrics& m) {
  return m.dsl ? fmt::format("DSL on (T={})", m.dsl_temperature) : std::string("DSL off");
}

std::string direction_line(const char* name, const DirectionMetrics& m) {
  return fmt::format("{} R@1 {:.1f} R@5 {:.1f} R@10 {:.1f} RSum {:.1f} MdR {:.1f} MnR {:.1f}", name,
                     m.r1, m.r5, m.r10, m.rsum, m.mdr, m.mnr);
}

}  // namespace

std::string to_string(RankConvention convention) {
  return enum_name(convention);
}

RankConvention parse_rank_convention(const std::string& name, const std::string& field) {
  if (auto v = enum_from_name<RankConvention>(name)) return *v;
  throw Error(fmt::format("{}: '{}' is not a rank convention, expected {}", field, name,
                          enum_choices<RankConvention>(" or ")));
}

std::string describe(RankConvention convention) {
  switch (convention) {
    case RankConvention::kStandard:
      return "standard (CLIP4Clip: 1-based MdR/MnR, V2T ranks videos by their best caption)";
    case RankConvention::kOfficial:
      return "official (MV-Adapter get_rank: 0-based MdR/MnR, V2T ranks videos by their best "
             "caption)";
    case RankConvention::kCaptionRanking:
      return "caption_ranking (1-based MdR/MnR, V2T ranks every caption)";
  }
  throw Error("describe: unknown RankConvention");
}

std::vector<int64_t> caption_video_from_counts(const std::vector<int64_t>& captions_per_video) {
  std::vector<int64_t> out;
  for (size_t v = 0; v < captions_per_video.size(); ++v) {
    if (captions_per_video[v] < 1) {
      throw Error(fmt::format("captions_per_video[{}]: {} captions, expected at least 1", v,
                              captions_per_video[v]));
    }
    out.insert(out.end(), captions_per_video[v], static_cast<int64_t>(v));
  }
  return out;
}

torch::Tensor similarity_matrix(const torch::Tensor& text_emb, const torch::Tensor& video_emb,
                                int64_t chunk_size) {
  check_chunk_size(chunk_size, "similarity_matrix: chunk_size");
  if (!text_emb.defined() || !video_emb.defined()) {
    throw Error("similarity_matrix: text or video embeddings are undefined");
  }
  if (text_emb.dim() != 2 || video_emb.dim() != 2 || text_emb.size(1) != video_emb.size(1)) {
    throw Error(fmt::format(
        "similarity_matrix: text embeddings {} and video embeddings {}, expected [Nt, D] and "
        "[Nv, D] with the same D",
        shape_str(text_emb), shape_str(video_emb)));
  }
  if (text_emb.device() != video_emb.device()) {
    throw Error("similarity_matrix: text and video embeddings are on different devices");
  }
  if (!text_emb.is_floating_point() || !video_emb.is_floating_point()) {
    throw Error("similarity_matrix: embeddings must be floating-point tensors");
  }
  torch::NoGradGuard no_grad;
  const auto dtype = torch::promote_types(text_emb.scalar_type(), video_emb.scalar_type());
  const auto videos_t = video_emb.to(dtype).t();
  const int64_t nt = text_emb.size(0);
  auto out = torch::empty({nt, video_emb.size(0)}, torch::kFloat);
  for (int64_t a = 0; a < nt; a += chunk_size) {
    const int64_t b = std::min(nt, a + chunk_size);
    out.slice(0, a, b).copy_(text_emb.slice(0, a, b).to(dtype).matmul(videos_t).to(torch::kCPU));
  }
  return out;
}

RetrievalRanks compute_retrieval_ranks(const torch::Tensor& sim,
                                       const std::vector<int64_t>& caption_video,
                                       const MetricsOptions& options) {
  validate(sim, caption_video, options);
  torch::NoGradGuard no_grad;
  const int64_t nc = sim.size(0), nv = sim.size(1), chunk = options.chunk_size;
  const auto dtype = sim.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  const auto gt = torch::tensor(caption_video, torch::kLong);
  Scorer scorer(options, nc, nv);

  if (options.dsl) {
    auto col_lse = torch::full({nv}, -kInf, dtype);
    for (int64_t a = 0; a < nc; a += chunk) {
      auto rows = load_rows(sim, a, std::min(nc, a + chunk), dtype);
      col_lse = torch::logaddexp(col_lse, torch::logsumexp(scorer.logits(rows), 0));
    }
    scorer.set_col_lse(col_lse);
  }

  // T2V, and the best own-caption score of every video for V2T.
  RetrievalRanks ranks;
  ranks.t2v = torch::empty({nc}, torch::kLong);
  // A plain loop rather than scatter_reduce_(amax), which LibTorch 1.13 flags as beta with a
  // warning on stderr; the scores are exact in double, so the maximum is the same.
  std::vector<double> best_own(static_cast<size_t>(nv), -kInf);
  for (int64_t a = 0; a < nc; a += chunk) {
    const int64_t b = std::min(nc, a + chunk);
    auto rows = load_rows(sim, a, b, dtype);
    auto g = gt.slice(0, a, b).unsqueeze(1);
    auto t2v = scorer.t2v(rows);
    ranks.t2v.slice(0, a, b).copy_((t2v > t2v.gather(1, g)).sum(1));
    auto own = scorer.v2t(rows).gather(1, g).squeeze(1).to(torch::kDouble).contiguous();
    auto video = g.squeeze(1).contiguous();
    const auto* own_p = own.data_ptr<double>();
    const auto* video_p = video.data_ptr<int64_t>();
    for (int64_t i = 0; i < b - a; ++i) {
      auto& best = best_own[static_cast<size_t>(video_p[i])];
      best = std::max(best, own_p[i]);
    }
  }
  const auto best_row = torch::tensor(best_own, torch::kDouble).to(dtype).unsqueeze(0);

  // An own caption can never beat its video's best, so counting over all captions
  // (caption_ranking) or over all videos (standard, official) needs no mask for the ground truth.
  auto v2t_count = torch::zeros({nv}, torch::kLong);
  if (v2t_ranks_captions(options.convention)) {
    for (int64_t a = 0; a < nc; a += chunk) {
      auto rows = sim.slice(0, a, std::min(nc, a + chunk)).to(dtype);
      v2t_count += (scorer.v2t(rows) > best_row).sum(0);
    }
  } else {
    // Videos are taken in groups whose captions fit one chunk (at least one video per group), so
    // "does any caption of video v beat video j's best" is reduced per group, never over a
    // [num_videos, num_videos] matrix.
    std::vector<std::vector<int64_t>> by_video(nv);
    for (int64_t i = 0; i < nc; ++i) by_video[caption_video[i]].push_back(i);
    int64_t v = 0;
    while (v < nv) {
      std::vector<int64_t> rows_idx, local;
      int64_t group = 0;
      while (v < nv &&
             (group == 0 || static_cast<int64_t>(rows_idx.size() + by_video[v].size()) <= chunk)) {
        for (int64_t i : by_video[v]) {
          rows_idx.push_back(i);
          local.push_back(group);
        }
        ++group;
        ++v;
      }
      auto rows = sim.index_select(0, torch::tensor(rows_idx, torch::kLong)).to(dtype);
      auto hits = (scorer.v2t(rows) > best_row).to(torch::kInt);
      auto per_video = torch::zeros({group, nv}, torch::kInt);
      per_video.index_add_(0, torch::tensor(local, torch::kLong), hits);
      v2t_count += (per_video > 0).sum(0);
    }
  }
  ranks.v2t = v2t_count;
  return ranks;
}

DirectionMetrics summarize_ranks(const torch::Tensor& ranks, RankConvention convention) {
  if (!ranks.defined() || ranks.dim() != 1 || ranks.numel() == 0) {
    throw Error("ranks: expected a non-empty 1-D tensor of 0-based ranks");
  }
  auto r = ranks.to(torch::kLong).contiguous();
  std::vector<int64_t> sorted(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
  std::sort(sorted.begin(), sorted.end());
  if (sorted.front() < 0) throw Error(fmt::format("ranks: negative rank {}", sorted.front()));

  DirectionMetrics m;
  const auto n = static_cast<int64_t>(sorted.size());
  m.num_queries = n;
  auto recall = [&](int64_t k) {
    const auto hits = std::lower_bound(sorted.begin(), sorted.end(), k) - sorted.begin();
    return static_cast<double>(hits) / static_cast<double>(n) * 100.0;
  };
  m.r1 = recall(1);
  m.r5 = recall(5);
  m.r10 = recall(10);
  m.rsum = m.r1 + m.r5 + m.r10;
  double total = 0.0;
  for (int64_t x : sorted) total += static_cast<double>(x);
  const double mean0 = total / static_cast<double>(n);
  if (zero_based(convention)) {
    m.mdr = median_official(sorted);
    m.mnr = mean0;
  } else {
    m.mdr = median_standard(sorted);
    m.mnr = mean0 + 1.0;
  }
  return m;
}

RetrievalMetrics compute_retrieval_metrics(const torch::Tensor& sim,
                                           const std::vector<int64_t>& caption_video,
                                           const MetricsOptions& options) {
  return compute_retrieval_metrics_each(sim, caption_video, {options.convention}, options).at(0);
}

std::vector<RetrievalMetrics> compute_retrieval_metrics_each(
    const torch::Tensor& sim, const std::vector<int64_t>& caption_video,
    const std::vector<RankConvention>& conventions, const MetricsOptions& options) {
  // At most two rankings: V2T over videos and V2T over captions (T2V is the same in both).
  std::optional<RetrievalRanks> by_video, by_caption;
  std::vector<RetrievalMetrics> out;
  for (const auto convention : conventions) {
    auto& ranks = v2t_ranks_captions(convention) ? by_caption : by_video;
    if (!ranks) {
      MetricsOptions o = options;
      o.convention = convention;
      ranks = compute_retrieval_ranks(sim, caption_video, o);
    }
    RetrievalMetrics m;
    m.t2v = summarize_ranks(ranks->t2v, convention);
    m.v2t = summarize_ranks(ranks->v2t, convention);
    m.num_captions = sim.size(0);
    m.num_videos = sim.size(1);
    m.convention = convention;
    m.dsl = options.dsl;
    m.dsl_temperature = options.dsl ? options.dsl_temperature : 0.0;
    out.push_back(m);
  }
  return out;
}

RetrievalMetrics compute_retrieval_metrics(const torch::Tensor& sim,
                                           const MetricsOptions& options) {
  if (sim.defined() && sim.dim() == 2 && sim.size(0) != sim.size(1)) {
    throw Error(fmt::format(
        "sim: shape {} is not square; give each caption's video index for multi-caption sets",
        shape_str(sim)));
  }
  std::vector<int64_t> identity(sim.defined() && sim.dim() == 2 ? sim.size(0) : 0);
  for (size_t i = 0; i < identity.size(); ++i) identity[i] = static_cast<int64_t>(i);
  return compute_retrieval_metrics(sim, identity, options);
}

nlohmann::json RetrievalMetrics::to_json() const {
  nlohmann::json j = {{"t2v", direction_json(t2v)},          {"v2t", direction_json(v2t)},
                      {"num_captions", num_captions},        {"num_videos", num_videos},
                      {"convention", to_string(convention)}, {"dsl", dsl}};
  if (dsl) j["dsl_temperature"] = dsl_temperature;
  return j;
}

namespace {

// A number under `key` of `j`; throws Error naming where/key otherwise.
template <typename T>
T number_field(const nlohmann::json& j, const std::string& key, const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number()) {
    throw Error(fmt::format("{}: '{}' is {}, expected a number", where, key,
                            it == j.end() ? std::string("missing") : it->type_name()));
  }
  return it->get<T>();
}

DirectionMetrics direction_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw Error(fmt::format("{}: expected an object of metrics", where));
  DirectionMetrics m;
  m.r1 = number_field<double>(j, "R1", where);
  m.r5 = number_field<double>(j, "R5", where);
  m.r10 = number_field<double>(j, "R10", where);
  m.rsum = number_field<double>(j, "RSum", where);
  m.mdr = number_field<double>(j, "MdR", where);
  m.mnr = number_field<double>(j, "MnR", where);
  m.num_queries = number_field<int64_t>(j, "num_queries", where);
  return m;
}

}  // namespace

RetrievalMetrics RetrievalMetrics::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw Error(fmt::format("{}: expected an object of metrics", where));
  RetrievalMetrics m;
  for (const char* dir : {"t2v", "v2t"}) {
    if (!j.contains(dir)) throw Error(fmt::format("{}: '{}' is missing", where, dir));
  }
  m.t2v = direction_from_json(j.at("t2v"), where + ".t2v");
  m.v2t = direction_from_json(j.at("v2t"), where + ".v2t");
  m.num_captions = number_field<int64_t>(j, "num_captions", where);
  m.num_videos = number_field<int64_t>(j, "num_videos", where);
  const auto convention = j.find("convention");
  if (convention == j.end() || !convention->is_string()) {
    throw Error(fmt::format("{}: 'convention' is missing or not a string", where));
  }
  m.convention = parse_rank_convention(convention->get<std::string>(), where + ".convention");
  m.dsl = j.value("dsl", false);
  if (m.dsl) m.dsl_temperature = number_field<double>(j, "dsl_temperature", where);
  return m;
}

std::string RetrievalMetrics::summary() const {
  return fmt::format("{} | {} | {} captions, {} videos, {}, ties to ground truth, {}",
                     direction_line("T2V", t2v), direction_line("V2T", v2t), num_captions,
                     num_videos, describe(convention), dsl_text(*this));
}

std::string RetrievalMetrics::table() const {
  std::string out = fmt::format("{} | {} captions, {} videos | ties to ground truth | {}\n",
                                describe(convention), num_captions, num_videos, dsl_text(*this));
  out += fmt::format("{:<4}{:>8}{:>8}{:>8}{:>8}{:>8}{:>8}\n", "", "R@1", "R@5", "R@10", "RSum",
                     "MdR", "MnR");
  auto row = [](const char* name, const DirectionMetrics& m) {
    return fmt::format("{:<4}{:>8.1f}{:>8.1f}{:>8.1f}{:>8.1f}{:>8.1f}{:>8.1f}\n", name, m.r1, m.r5,
                       m.r10, m.rsum, m.mdr, m.mnr);
  };
  return out + row("T2V", t2v) + row("V2T", v2t);
}

}  // namespace mva
