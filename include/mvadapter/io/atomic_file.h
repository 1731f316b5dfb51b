#pragma once
#include <filesystem>
#include <functional>
#include <string_view>

namespace mva {

/// Writes a file so that readers, a kill -9 at any moment and a power cut all see either the old
/// or the complete new content: the bytes go to `<path>.tmp.<pid>`, which is fsync'ed and renamed
/// over `path`, then the directory is fsync'ed so the rename itself is durable. `write` receives
/// the writer of the temporary file. Any I/O failure (full disk, read-only directory, ...) throws
/// Error naming `path` and the reason, removes the temporary file and leaves `path` as it was.
/// Faults can be injected for tests (io/fault_inject.h).
void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(std::function<void(std::string_view)>)>& write);

/// write_file_atomically for a text (or byte) string already in memory.
void write_text_atomically(const std::filesystem::path& path, std::string_view content);

/// fsync of a directory: makes the creation, renaming or removal of its entries durable. Throws
/// Error naming `dir` when it cannot be opened or synced (file systems that cannot sync a
/// directory at all are accepted).
void sync_directory(const std::filesystem::path& dir);

/// Removes the temporary files (`<name>.tmp.<pid>`) that killed writers left in `dir`, skipping
/// those of processes still alive; returns how many were removed. A missing `dir` is no error.
int remove_stale_temp_files(const std::filesystem::path& dir);

}  // namespace mva
