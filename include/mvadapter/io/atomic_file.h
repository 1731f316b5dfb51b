#pragma once
#include <filesystem>
#include <functional>
#include <string_view>

namespace mva {

/// Writes a file so that readers see either the old or the complete new content: the bytes go
/// to `<path>.tmp.<pid>`, which is fsync'ed and renamed over `path`. `write` receives the open
/// file descriptor's writer; throws Error naming the path on any I/O failure.
void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(std::function<void(std::string_view)>)>& write);

/// write_file_atomically for a text (or byte) string already in memory.
void write_text_atomically(const std::filesystem::path& path, std::string_view content);

}  // namespace mva
