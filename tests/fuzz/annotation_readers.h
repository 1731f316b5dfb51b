#pragma once
// What the two annotation fuzz targets share: the spec of a reader's files and the dispatch of an
// input to one reader by its first byte.
#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_support.h"
#include "mvadapter/data/dataset_readers.h"

namespace mva::fuzz {

/// A reader run on its first file `a` and, when the input has one, its second file `b`, both
/// written into `dir`.
using AnnotationReader = void (*)(const std::filesystem::path& dir, std::string_view a,
                                  std::optional<std::string_view> b);

/// The spec of `format`'s `split` read from `annotations` (a file or a folder).
inline DatasetSpec spec(const std::string& format, const std::string& split,
                        const std::filesystem::path& annotations) {
  DatasetSpec s;
  s.format = format;
  s.split = split;
  s.annotations = annotations;
  return s;
}

/// Runs the reader the first byte picks on the rest of the input (split_files), in a fresh folder.
template <size_t N>
int run_annotation_reader(const std::array<AnnotationReader, N>& readers, const uint8_t* data,
                          size_t size) {
  if (size == 0) return 0;
  return run_one([&] {
    const auto [a, b] = split_files(as_view(data + 1, size - 1));
    readers[data[0] % N](fresh_scratch_dir(), a, b);
  });
}

}  // namespace mva::fuzz
