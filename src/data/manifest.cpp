#include "mvadapter/data/manifest.h"

#include <fmt/format.h>

#include "mvadapter/core/error.h"

namespace mva {

std::vector<std::vector<int64_t>> Manifest::captions_per_video() const {
  std::vector<std::vector<int64_t>> out(videos.size());
  for (size_t i = 0; i < captions.size(); ++i) {
    const auto v = captions[i].video;
    if (v < 0 || v >= static_cast<int64_t>(videos.size())) {
      throw Error(fmt::format("manifest {}/{}: caption {} refers to video {} of {}", dataset, split,
                              i, v, videos.size()));
    }
    out[static_cast<size_t>(v)].push_back(static_cast<int64_t>(i));
  }
  return out;
}

}  // namespace mva
