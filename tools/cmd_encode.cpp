#include <cstdio>
#include <ctime>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "cli_model.h"
#include "commands.h"
#include "mvadapter/core/clock.h"
#include "mvadapter/core/error.h"
#include "mvadapter/data/dataset_readers.h"
#include "mvadapter/eval/embedding_index.h"
#include "mvadapter/eval/ivf_index.h"

namespace mva::cli {

void add_encode_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "encode",
      "Encode a split's videos or captions into an embedding index (safetensors) that "
      "`mvadapter search` ranks.");
  struct Opts {
    ModelArgs model;
    std::string split = "test";
    bool videos = false;
    bool captions = false;
    std::string out;
    std::string index_type = "flat";
    int64_t nlist = 0;
  };
  auto o = std::make_shared<Opts>();
  add_model_options(cmd, o->model);
  cmd->add_option("--split", o->split, "which split of the config: test (data.test_split) or train")
      ->check(CLI::IsMember({"test", "train"}));
  auto* v = cmd->add_flag("--videos", o->videos, "encode the split's videos (ids = video ids)");
  auto* c = cmd->add_flag("--captions", o->captions,
                          "encode the split's captions (ids = <video id>#<n>, n from 0)");
  v->excludes(c);
  cmd->add_option("--out", o->out, "the index file to write (.safetensors)")->required();
  cmd->add_option("--index-type", o->index_type,
                  "flat: exact search; ivf: also a FAISS IVF index beside it (OUT.ivf), which "
                  "search and serve use")
      ->check(CLI::IsMember({"flat", "ivf"}));
  cmd->add_option("--nlist", o->nlist, "ivf: cells (default about 4 sqrt(N))")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([o] {
    log_to_stderr();
    if (!o->videos && !o->captions) throw Error("encode: give --videos or --captions");
    const IndexType type = parse_index_type(o->index_type);
    if (type == IndexType::kIvf && !ivf_supported()) {
      throw Error("--index-type ivf: this build has no FAISS (install libfaiss-dev, reconfigure)");
    }
    RunConfig cfg = load_cli_config(o->model, "encode");
    const bool train = o->split == "train";
    Manifest split = read_dataset(train ? train_dataset_spec(cfg) : test_dataset_spec(cfg));
    // The rule eval applies: a missing video and its captions are left out of either index, so a
    // captions index never holds queries whose video the videos index lacks.
    check_missing_videos(split, cfg.data.on_error);
    const auto captions_before = static_cast<int64_t>(split.captions.size());
    const int64_t missing = drop_missing_videos(split);
    const int64_t missing_captions = captions_before - static_cast<int64_t>(split.captions.size());
    CliModel m = build_cli_model(std::move(cfg), o->model);

    EmbeddingIndex index;
    std::vector<int64_t> skipped;
    if (o->videos) {
      index = encode_video_index(*m.model, split, m.eval, &skipped);
    } else {
      index = encode_caption_index(*m.model, split, m.tokenize, m.eval.text_batch_size,
                                   m.eval.precision);
    }
    index.info = model_info(m);
    index.info["dataset"] = m.cfg.data.dataset;
    index.info["split"] = train ? m.cfg.data.train_split : m.cfg.data.test_split;
    index.info["date"] = utc_now();
    index.info["missing_videos"] = missing;
    if (!skipped.empty()) {
      nlohmann::json ids = nlohmann::json::array();
      for (int64_t i : skipped) ids.push_back(split.videos[static_cast<size_t>(i)].id);
      index.info["skipped_videos"] = ids;
    }
    save_index(o->out, index);
    // An IVF index beside a flat one would answer for rows it no longer has.
    std::filesystem::remove(ivf_path(o->out));
    std::string ivf_note;
    if (type == IndexType::kIvf) {
      const auto ivf = IvfIndex::build(index.emb, o->nlist);
      ivf.save(ivf_path(o->out));
      ivf_note = fmt::format(" + IVF (nlist {}, nprobe {}) -> {}", ivf.nlist(), ivf.nprobe(),
                             ivf_path(o->out).string());
    }

    if (missing > 0) {
      std::printf("left out %lld missing videos and their %lld captions\n",
                  static_cast<long long>(missing), static_cast<long long>(missing_captions));
    }
    for (int64_t i : skipped) {
      const auto& video = split.videos[static_cast<size_t>(i)];
      std::printf("skipped %s (%s): could not be decoded\n", video.id.c_str(),
                  video.path.string().c_str());
    }
    std::printf("encoded %lld %s (D=%lld) -> %s%s\n", static_cast<long long>(index.size()),
                index.kind.c_str(), static_cast<long long>(index.dim()), o->out.c_str(),
                ivf_note.c_str());
  });
}

}  // namespace mva::cli
