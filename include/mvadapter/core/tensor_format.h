#pragma once
#include <string>
#include <vector>

#include <torch/types.h>

namespace mva {

/// "[3, 4, 32]": a shape as error messages print it.
std::string shape_str(at::IntArrayRef shape);

/// Throws Error("<what>: expected shape [..], got [..]") unless t has exactly that shape;
/// -1 in `want` matches any size.
void check_shape(const torch::Tensor& t, const std::vector<int64_t>& want, const std::string& what);

}  // namespace mva
