#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace mva::fuzz {

/// Runs the library on one input. A thrown std::exception (mva::Error, c10::Error, ...) is the
/// library rejecting the input: a normal outcome. A crash, a sanitizer report or anything thrown
/// that is not a std::exception is a finding, reported by libFuzzer. With MVA_FUZZ_STRICT=1 in the
/// environment an exception other than mva::Error also aborts: the library let a message through
/// that does not name the file or field (worth a look, not a memory bug).
int run_one(const std::function<void()>& body);

/// A folder of this process's own under /dev/shm (the temporary folder when /dev/shm is missing),
/// emptied by every call and removed at exit; readers that take paths read the input from there.
const std::filesystem::path& fresh_scratch_dir();

/// Writes `bytes` to `dir / name`.
std::filesystem::path write_file(const std::filesystem::path& dir, const std::string& name,
                                 std::string_view bytes);

/// Splits an input holding several files at the first "\n%%\n": the first file and, when the
/// separator is there, the rest.
std::pair<std::string_view, std::optional<std::string_view>> split_files(std::string_view input);

/// The input as a string_view.
inline std::string_view as_view(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace mva::fuzz
