#include <cstdio>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "cli_model.h"
#include "commands.h"
#include "mvadapter/core/error.h"
#include "mvadapter/eval/embedding_index.h"
#include "mvadapter/eval/ivf_index.h"

namespace mva::cli {
void add_search_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "search",
      "Rank an embedding index (from `mvadapter encode`) against captions (text -> videos) or a "
      "video file (video -> captions), with the model that made the index.");
  struct Opts {
    ModelArgs model;
    std::string index;
    int64_t top_k = 5;
    bool json = false;
    bool exact = false;
    int64_t nprobe = 0;
    std::string video;
    std::vector<std::string> queries;
  };
  auto o = std::make_shared<Opts>();
  add_model_options(cmd, o->model);
  cmd->add_option("--index", o->index, "the index to search (.safetensors from encode)")
      ->required();
  cmd->add_option("--top-k", o->top_k, "results per query (at most the index size)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--json", o->json, "print the results as JSON");
  cmd->add_flag("--exact", o->exact, "ignore an IVF index beside the index (INDEX.ivf)");
  cmd->add_option("--nprobe", o->nprobe, "IVF cells visited per query (default: as encoded)")
      ->check(CLI::PositiveNumber);
  auto* video = cmd->add_option("--video", o->video,
                                "a video file to find captions for (needs a captions index)");
  auto* queries = cmd->add_option("query", o->queries, "captions to find videos for");
  video->excludes(queries);
  cmd->callback([o] {
    log_to_stderr();
    // Without a CONFIG the first positional argument is a caption: a config is a .yaml file.
    if (!o->model.config.empty() && !is_config_path(o->model.config)) {
      o->queries.insert(o->queries.begin(), o->model.config);
      o->model.config.clear();
    }
    const bool by_video = !o->video.empty();
    if (by_video && !o->queries.empty()) {
      throw Error("search: give QUERY captions or --video FILE, not both");
    }
    if (!by_video && o->queries.empty()) {
      throw Error("search: give one or more QUERY captions, or --video FILE");
    }
    // The index first: a wrong path or kind fails before any weights are read.
    EmbeddingIndex index = load_index(o->index);
    if (by_video && index.kind != "captions") {
      throw Error(fmt::format(
          "{}: --video searches a captions index, this one holds {} (encode it with --captions)",
          o->index, index.kind));
    }
    if (!by_video && index.kind != "videos") {
      throw Error(fmt::format(
          "{}: caption queries search a videos index, this one holds {} (encode it with "
          "--videos, or search it with --video FILE)",
          o->index, index.kind));
    }
    RunConfig cfg = load_cli_config(o->model, "search");
    CliModel m = build_cli_model(std::move(cfg), o->model);
    check_model_matches(index, o->index, m);

    torch::Tensor query;
    std::vector<std::string> labels;
    if (by_video) {
      VideoEntry entry;
      entry.id = o->video;
      entry.path = o->video;
      if (!std::filesystem::exists(entry.path)) {
        throw Error(fmt::format("--video: '{}' does not exist", o->video));
      }
      query = embed_video_file(*m.model, entry, m.eval.loader.clip, m.eval.precision);
      labels.push_back(o->video);
    } else {
      query = encode_captions(*m.model, o->queries, m.tokenize, m.eval.text_batch_size,
                              m.eval.precision);
      labels = o->queries;
    }
    std::vector<SearchHit> hits;
    if (!o->exact && std::filesystem::exists(ivf_path(o->index))) {
      auto ivf = IvfIndex::load(ivf_path(o->index), index.size(), index.dim());
      if (o->nprobe > 0) ivf.set_nprobe(o->nprobe);
      hits = ivf.search(query, o->top_k);
    } else {
      hits = search(index, query, o->top_k);
    }

    const char* what = by_video ? "video" : "query";
    if (o->json) {
      nlohmann::json out = nlohmann::json::array();
      for (size_t q = 0; q < labels.size(); ++q) out.push_back({{what, labels[q]}, {"hits", {}}});
      for (const auto& h : hits) {
        nlohmann::json j = {
            {"rank", h.rank}, {"score", h.score}, {"id", index.ids[static_cast<size_t>(h.row)]}};
        if (by_video) j["text"] = index.texts[static_cast<size_t>(h.row)];
        out[static_cast<size_t>(h.query)]["hits"].push_back(j);
      }
      std::printf("%s\n", out.dump(2).c_str());
      return;
    }
    int64_t current = -1;
    for (const auto& h : hits) {
      if (h.query != current) {
        current = h.query;
        std::printf("%s: %s\n", what, labels[static_cast<size_t>(h.query)].c_str());
      }
      const auto& id = index.ids[static_cast<size_t>(h.row)];
      if (by_video) {
        std::printf("%3lld  %.4f  %s  %s\n", static_cast<long long>(h.rank), h.score, id.c_str(),
                    index.texts[static_cast<size_t>(h.row)].c_str());
      } else {
        std::printf("%3lld  %.4f  %s\n", static_cast<long long>(h.rank), h.score, id.c_str());
      }
    }
  });
}

}  // namespace mva::cli
