#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string_view>

namespace mva {

/// The stages of write_file_atomically, in order: where tests watch a write and where
/// MVA_FAULT_INJECT makes it fail.
enum class WriteStage {
  kOpen,        ///< before the temporary file is created
  kWrite,       ///< before each block of bytes goes to the temporary file
  kFileSynced,  ///< the temporary file is complete and fsync'ed; the target is still the old one
  kRenamed,     ///< the temporary file has replaced the target
  kDirSynced,   ///< the directory is fsync'ed: the new content survives a power cut
};

namespace detail {

// Test-only fault injection, all of it in this one place (docs/robustness.md, "Crash safety").
// The environment variable MVA_FAULT_INJECT, read at the first write, holds comma-separated
// entries ACTION[:N][@FILE]; N counts from 1 and defaults to 1; @FILE restricts an entry to the
// atomic writes of files with that name (e.g. @train_state.safetensors), otherwise every atomic
// write counts:
//   kill_during_write  raise SIGKILL in the Nth write once the temporary file is complete and
//                      fsync'ed, before it is renamed (the process dies as under kill -9)
//   enospc             the Nth write fails as on a full disk (ENOSPC) when its bytes are written
//   readonly           the Nth write fails as in a read-only directory (EROFS) when it opens
//   nonfinite_loss     optimiser step N (1-based, counted over the whole run) gets a NaN loss and
//                      NaN gradients; N is a step here, not a count of writes, and FILE is unused

/// Called by write_file_atomically at each stage of writing `path`: tells the observer (if any),
/// then applies the MVA_FAULT_INJECT entry armed for this write. Returns 0 to go on, or the errno
/// value the stage must fail with; does not return when the entry kills the process. Throws Error
/// for a malformed MVA_FAULT_INJECT.
int write_fault(WriteStage stage, const std::filesystem::path& path);

/// Whether MVA_FAULT_INJECT asks for a non-finite loss at optimiser step `step` (1-based).
bool nonfinite_loss_injected(int64_t step);

/// Replaces the entries read from MVA_FAULT_INJECT with `spec` (same syntax; "" = none) and
/// restarts their counts: for tests that inject faults in their own process.
void set_fault_injection(std::string_view spec);

/// Calls `observer` at every stage of every atomic write of this process (tests); an empty
/// function stops it.
void set_write_observer(std::function<void(WriteStage, const std::filesystem::path&)> observer);

}  // namespace detail
}  // namespace mva
