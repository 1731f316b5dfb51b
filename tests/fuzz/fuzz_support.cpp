#include "fuzz_support.h"

#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <fstream>
#include <system_error>

#include <fmt/format.h>

#include "mvadapter/core/error.h"

namespace mva::fuzz {
namespace fs = std::filesystem;

int run_one(const std::function<void()>& body) {
  static const bool strict = [] {
    const char* v = std::getenv("MVA_FUZZ_STRICT");
    return v != nullptr && std::string(v) == "1";
  }();
  try {
    body();
  } catch (const Error&) {
    // The library's own error: names the file or field and what was expected.
  } catch (const std::exception& e) {
    if (strict) {
      fmt::print(stderr, "MVA_FUZZ_STRICT: {} escaped the library\n", e.what());
      std::abort();
    }
  }
  return 0;
}

namespace {

struct ScratchDir {
  fs::path path;
  ScratchDir() {
    const fs::path root =
        fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    path = root / fmt::format("mva_fuzz_{}", ::getpid());
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

const fs::path& fresh_scratch_dir() {
  static ScratchDir dir;
  std::error_code ec;
  fs::remove_all(dir.path, ec);
  fs::create_directories(dir.path);
  return dir.path;
}

fs::path write_file(const fs::path& dir, const std::string& name, std::string_view bytes) {
  const fs::path p = dir / name;
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return p;
}

std::pair<std::string_view, std::optional<std::string_view>> split_files(std::string_view input) {
  constexpr std::string_view kSeparator = "\n%%\n";
  const size_t at = input.find(kSeparator);
  if (at == std::string_view::npos) return {input, std::nullopt};
  return {input.substr(0, at), input.substr(at + kSeparator.size())};
}

}  // namespace mva::fuzz
