// Embed a folder of videos and a few captions with mva::Retriever, then rank: each video against
// the others (it must find itself first) and each caption against the videos.
//   embed_and_search VIDEO_DIR [ADAPTER_CHECKPOINT]
// The checkpoint is what custom_training_loop (or `mvadapter train`) saved: it records its run
// config and backbone, so it alone rebuilds the model. Without one, the example's config is
// built in code (example_config.h) and the adapters keep their initial weights.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include <mvadapter/mvadapter.h>

#include "example_config.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: %s VIDEO_DIR [ADAPTER_CHECKPOINT]\n", argv[0]);
    return 2;
  }
  try {
    mva::set_threads(1);
    std::vector<fs::path> videos;
    for (const auto& e : fs::directory_iterator(argv[1])) {
      if (e.is_regular_file()) videos.push_back(e.path());
    }
    std::sort(videos.begin(), videos.end());

    mva::Retriever retriever =
        argc == 3 ? mva::Retriever::from_checkpoint(argv[2]) : mva::Retriever(example_config());
    const mva::EmbeddingIndex index = retriever.index_videos(videos);
    std::printf("indexed %lld videos, D = %lld\n", static_cast<long long>(index.size()),
                static_cast<long long>(index.dim()));
    std::printf("vocabulary: %s\n", mva::find_asset("bpe_simple_vocab_16e6.txt.gz").c_str());

    // Video -> video: every embedding is its own nearest neighbour (cosine 1).
    int64_t self_first = 0;
    for (const auto& hit : retriever.rank(index.emb, index, 1)) {
      if (hit.row == hit.query) ++self_first;
    }
    std::printf("video -> video: %lld of %lld videos rank themselves first\n",
                static_cast<long long>(self_first), static_cast<long long>(index.size()));

    // Text -> video: one caption per video, as custom_training_loop trains them.
    std::vector<std::string> captions;
    for (const auto& v : videos) captions.push_back("video " + v.stem().string());
    const auto hits = retriever.rank(retriever.embed_captions(captions), index, 3);
    int64_t correct = 0;
    for (const auto& hit : hits) {
      const auto& caption = captions[static_cast<size_t>(hit.query)];
      const auto& id = index.ids[static_cast<size_t>(hit.row)];
      if (hit.rank == 1) {
        std::printf("'%s':\n", caption.c_str());
        if (caption == "video " + id) ++correct;
      }
      std::printf("  %lld. %s (%.3f)\n", static_cast<long long>(hit.rank), id.c_str(), hit.score);
    }
    std::printf("caption -> video R@1: %lld of %zu\n", static_cast<long long>(correct),
                captions.size());
  } catch (const std::exception& e) {  // mva::Error, and the file system's errors
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
