#include "mvadapter/io/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "mvadapter/core/error.h"
#include "mvadapter/io/fault_inject.h"

namespace mva {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kTempMark = ".tmp.";

[[noreturn]] void fail(const fs::path& path, const std::string& what, int err) {
  throw Error(fmt::format("{}: {} ({}); the file on disk is unchanged", path.string(), what,
                          std::strerror(err)));
}

// The temporary file of one write: closed, and removed unless it was renamed into place, on every
// way out, so a failed write leaves nothing behind but the old file.
class TempFile {
 public:
  explicit TempFile(fs::path path) : path_(std::move(path)) {}
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!renamed_) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  int& fd() { return fd_; }
  const fs::path& path() const { return path_; }
  void mark_renamed() { renamed_ = true; }

 private:
  fs::path path_;
  int fd_ = -1;
  bool renamed_ = false;
};

// The pid in a temporary file name `<name>.tmp.<pid>`, or 0 when `name` is not one.
pid_t temp_file_pid(const std::string& name) {
  const auto mark = name.rfind(kTempMark);
  if (mark == std::string::npos || mark == 0) return 0;
  const std::string digits = name.substr(mark + kTempMark.size());
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return 0;
  return static_cast<pid_t>(std::strtol(digits.c_str(), nullptr, 10));
}

}  // namespace

void write_file_atomically(
    const std::filesystem::path& path,
    const std::function<void(std::function<void(std::string_view)>)>& write) {
  auto tmp_path = path;
  tmp_path += fmt::format("{}{}", kTempMark, ::getpid());
  TempFile tmp(tmp_path);
  if (int err = detail::write_fault(WriteStage::kOpen, path)) {
    fail(path, fmt::format("cannot create {}", tmp.path().string()), err);
  }
  tmp.fd() = ::open(tmp.path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (tmp.fd() < 0) fail(path, fmt::format("cannot create {}", tmp.path().string()), errno);
  write([&](std::string_view bytes) {
    if (int err = detail::write_fault(WriteStage::kWrite, path)) fail(path, "write failed", err);
    const char* p = bytes.data();
    size_t left = bytes.size();
    while (left > 0) {
      ssize_t n = ::write(tmp.fd(), p, left);
      if (n < 0 && errno == EINTR) continue;
      // write() returns 0 only for a zero-byte request; treat it as "no space" rather than spin.
      if (n <= 0) fail(path, "write failed", n < 0 ? errno : ENOSPC);
      p += n;
      left -= static_cast<size_t>(n);
    }
  });
  // The bytes must be on disk before the name points at them: otherwise a power cut after the
  // rename can leave an empty or partial file under the final name.
  if (::fsync(tmp.fd()) != 0) fail(path, "fsync failed", errno);
  const int fd = tmp.fd();
  tmp.fd() = -1;
  if (::close(fd) != 0) fail(path, "close failed", errno);
  if (int err = detail::write_fault(WriteStage::kFileSynced, path)) fail(path, "write failed", err);
  if (::rename(tmp.path().c_str(), path.c_str()) != 0) fail(path, "rename failed", errno);
  tmp.mark_renamed();
  detail::write_fault(WriteStage::kRenamed, path);
  sync_directory(path.has_parent_path() ? path.parent_path() : fs::path("."));
  detail::write_fault(WriteStage::kDirSynced, path);
}

void write_text_atomically(const std::filesystem::path& path, std::string_view content) {
  write_file_atomically(path,
                        [&](const std::function<void(std::string_view)>& put) { put(content); });
}

void sync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    throw Error(fmt::format("{}: cannot open the directory to fsync it ({})", dir.string(),
                            std::strerror(errno)));
  }
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  // Some file systems (and /proc-like ones) cannot sync a directory: nothing more can be done.
  if (rc != 0 && err != EINVAL && err != ENOTSUP) {
    throw Error(fmt::format("{}: directory fsync failed ({})", dir.string(), std::strerror(err)));
  }
}

int remove_stale_temp_files(const std::filesystem::path& dir) {
  int removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const pid_t pid = temp_file_pid(it->path().filename().string());
    if (pid <= 0 || pid == ::getpid()) continue;
    // A live process may still be writing it (or a pid reused: then the file stays, harmlessly).
    if (::kill(pid, 0) == 0 || errno == EPERM) continue;
    std::error_code rm;
    if (fs::remove(it->path(), rm)) ++removed;
  }
  return removed;
}

}  // namespace mva
