#include "mvadapter/core/tensor_format.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "mvadapter/core/error.h"

namespace mva {

std::string shape_str(at::IntArrayRef shape) {
  return fmt::format("[{}]", fmt::join(shape.begin(), shape.end(), ", "));
}

void check_shape(const torch::Tensor& t, const std::vector<int64_t>& want,
                 const std::string& what) {
  bool ok = t.defined() && t.dim() == static_cast<int64_t>(want.size());
  for (size_t i = 0; ok && i < want.size(); ++i) {
    ok = want[i] < 0 || t.size(static_cast<int64_t>(i)) == want[i];
  }
  if (!ok) {
    std::vector<std::string> w;
    for (auto v : want) w.push_back(v < 0 ? "*" : std::to_string(v));
    throw Error(fmt::format("{}: expected shape [{}], got {}", what, fmt::join(w, ", "),
                            t.defined() ? shape_str(t.sizes()) : "an undefined tensor"));
  }
}

}  // namespace mva
