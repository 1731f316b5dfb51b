#include "mvadapter/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "mvadapter/core/error.h"

namespace mva {

void write_file_atomically(
    const std::filesystem::path& path,
    const std::function<void(std::function<void(std::string_view)>)>& write) {
  auto tmp = path;
  tmp += fmt::format(".tmp.{}", ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw Error(fmt::format("{}: cannot create ({})", tmp.string(), std::strerror(errno)));
  }
  auto fail = [&](const std::string& what) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error(fmt::format("{}: {} ({})", path.string(), what, std::strerror(err)));
  };
  try {
    write([&](std::string_view bytes) {
      const char* p = bytes.data();
      size_t left = bytes.size();
      while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail("write failed");
        p += n;
        left -= static_cast<size_t>(n);
      }
    });
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::fsync(fd) != 0) fail("fsync failed");
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw Error(fmt::format("{}: close failed ({})", path.string(), std::strerror(errno)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw Error(fmt::format("{}: rename failed ({})", path.string(), std::strerror(err)));
  }
}

void write_text_atomically(const std::filesystem::path& path, std::string_view content) {
  write_file_atomically(path,
                        [&](const std::function<void(std::string_view)>& put) { put(content); });
}

}  // namespace mva
