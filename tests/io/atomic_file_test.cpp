// write_file_atomically: the order of its steps (temp file, fsync, rename, directory fsync), what
// a failure or a kill leaves on disk, and the fault injection the crash tests drive it with.
#include "mvadapter/io/atomic_file.h"

#include <csignal>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mvadapter/core/error.h"
#include "mvadapter/io/fault_inject.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace mva {
namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every file in `dir` whose name holds ".tmp." (what a write leaves when it is cut short).
std::vector<std::string> temp_files(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (name.find(".tmp.") != std::string::npos) out.push_back(name);
  }
  return out;
}

// Resets the injection and the observer a test installed, however the test ends.
struct InjectionGuard {
  ~InjectionGuard() {
    detail::set_fault_injection("");
    detail::set_write_observer(nullptr);
  }
};

TEST(AtomicFile, SyncsTheTempFileBeforeTheRenameAndTheDirectoryAfter) {
  InjectionGuard guard;
  const auto dir = test::temp_dir("atomic_order");
  const auto target = dir / "state.bin";
  write_text_atomically(target, "old");
  const auto tmp = target.string() + ".tmp." + std::to_string(::getpid());

  std::vector<WriteStage> stages;
  std::string at_synced_target, at_synced_tmp, at_renamed_target;
  detail::set_write_observer([&](WriteStage stage, const fs::path& path) {
    EXPECT_EQ(path, target);
    if (stages.empty() || stages.back() != stage) stages.push_back(stage);
    if (stage == WriteStage::kFileSynced) {
      at_synced_target = read_text(target);
      at_synced_tmp = read_text(tmp);
    }
    if (stage == WriteStage::kRenamed) at_renamed_target = read_text(target);
  });
  write_file_atomically(target, [](const std::function<void(std::string_view)>& put) {
    put("new ");
    put("content");
  });
  const std::vector<WriteStage> want = {WriteStage::kOpen, WriteStage::kWrite,
                                        WriteStage::kFileSynced, WriteStage::kRenamed,
                                        WriteStage::kDirSynced};
  EXPECT_EQ(stages, want) << "temp file, fsync, rename, directory fsync: in this order";
  EXPECT_EQ(at_synced_target, "old") << "the target changes only by the rename";
  EXPECT_EQ(at_synced_tmp, "new content") << "the temp file is complete before the rename";
  EXPECT_EQ(at_renamed_target, "new content");
  EXPECT_TRUE(temp_files(dir).empty());
  fs::remove_all(dir);
}

TEST(AtomicFile, FullDiskIsOneErrorNamingTheFileAndKeepsTheOldContent) {
  InjectionGuard guard;
  const auto dir = test::temp_dir("atomic_enospc");
  const auto target = dir / "last.safetensors";
  write_text_atomically(target, "previous checkpoint");
  detail::set_fault_injection("enospc");
  EXPECT_ERROR_CONTAINS(write_text_atomically(target, "next checkpoint"),
                        target.string() +
                            ": write failed (No space left on device); the file "
                            "on disk is unchanged");
  EXPECT_EQ(read_text(target), "previous checkpoint");
  EXPECT_TRUE(temp_files(dir).empty()) << "the partial temp file is removed";
  // The entry fired once: the next write goes through.
  write_text_atomically(target, "next checkpoint");
  EXPECT_EQ(read_text(target), "next checkpoint");
  fs::remove_all(dir);
}

TEST(AtomicFile, ReadOnlyDirectoryIsOneErrorAndKeepsTheOldContent) {
  InjectionGuard guard;
  const auto dir = test::temp_dir("atomic_readonly");
  const auto target = dir / "results.json";
  write_text_atomically(target, "{}");
  detail::set_fault_injection("readonly");
  EXPECT_ERROR_CONTAINS(write_text_atomically(target, "{\"a\": 1}"),
                        target.string() + ": cannot create");
  EXPECT_ERROR_CONTAINS(write_text_atomically(fs::path("/nonexistent/dir/results.json"), "{}"),
                        "/nonexistent/dir/results.json: cannot create");
  detail::set_fault_injection("readonly");
  EXPECT_ERROR_CONTAINS(write_text_atomically(target, "{}"), "(Read-only file system)");
  EXPECT_EQ(read_text(target), "{}");
  if (::geteuid() != 0) {
    // A really read-only directory (root writes anyway, hence the injection above).
    fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec);
    EXPECT_ERROR_CONTAINS(write_text_atomically(target, "{\"b\": 2}"), "(Permission denied)");
    fs::permissions(dir, fs::perms::owner_all);
    EXPECT_EQ(read_text(target), "{}");
  }
  EXPECT_TRUE(temp_files(dir).empty());
  fs::remove_all(dir);
}

TEST(AtomicFile, InjectionCountsTheWritesOfTheNamedFile) {
  InjectionGuard guard;
  const auto dir = test::temp_dir("atomic_count");
  detail::set_fault_injection("enospc:2@b.txt");
  write_text_atomically(dir / "b.txt", "1");
  write_text_atomically(dir / "a.txt", "1");  // another name: not counted
  EXPECT_ERROR_CONTAINS(write_text_atomically(dir / "b.txt", "2"), "b.txt: write failed");
  write_text_atomically(dir / "b.txt", "3");
  EXPECT_EQ(read_text(dir / "b.txt"), "3");

  EXPECT_ERROR_CONTAINS(detail::set_fault_injection("enospc:0"), "is not a count >= 1");
  EXPECT_ERROR_CONTAINS(detail::set_fault_injection("kill"), "unknown action 'kill'");
  detail::set_fault_injection("nonfinite_loss:7,enospc@x");
  EXPECT_TRUE(detail::nonfinite_loss_injected(7));
  EXPECT_FALSE(detail::nonfinite_loss_injected(6));
  fs::remove_all(dir);
}

TEST(AtomicFile, KillDuringWriteLeavesTheOldFileAndACompleteTempFileThatIsCleanedUp) {
  const auto dir = test::temp_dir("atomic_kill");
  const auto target = dir / "train_state.safetensors";
  write_text_atomically(target, "state at step 2");
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    detail::set_fault_injection("kill_during_write@train_state.safetensors");
    write_text_atomically(target, "state at step 4");
    _exit(0);  // not reached: the write kills the process
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_EQ(read_text(target), "state at step 2");
  const auto left = temp_files(dir);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0], "train_state.safetensors.tmp." + std::to_string(pid));
  EXPECT_EQ(read_text(dir / left[0]), "state at step 4");

  // The leftover of the dead writer goes; a live process's temp file and other files stay.
  const auto mine = dir / ("other.tmp." + std::to_string(::getpid()));
  std::ofstream(mine) << "in progress";
  std::ofstream(dir / "notes.tmp.txt") << "not a temp file";
  EXPECT_EQ(remove_stale_temp_files(dir), 1);
  EXPECT_TRUE(fs::exists(mine));
  EXPECT_TRUE(fs::exists(dir / "notes.tmp.txt"));
  EXPECT_TRUE(fs::exists(target));
  EXPECT_EQ(remove_stale_temp_files(dir / "missing"), 0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mva
