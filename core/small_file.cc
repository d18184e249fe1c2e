#include "core/small_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sluice::core {

std::string describe_cap(size_t bytes) {
  if (bytes >= (1u << 20) && bytes % (1u << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  if (bytes >= 1024 && bytes % 1024 == 0) return std::to_string(bytes >> 10) + " KiB";
  return std::to_string(bytes) + " bytes";
}

SmallFile read_small_file(const std::string& path, size_t max_bytes) {
  SmallFile file;
  // O_NONBLOCK: a FIFO planted in place of the file must not hang the caller.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    file.problem = std::strerror(errno);
    return file;
  }
  file.status = SmallFile::Status::cannot_read;
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    file.problem = std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    file.problem = "not a regular file";
  } else if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    file.problem = "larger than " + describe_cap(max_bytes);
  } else {
    file.mode = static_cast<unsigned>(st.st_mode & 07777);
    // One byte past the cap, so a file that grew since fstat is still caught.
    file.content.resize(max_bytes + 1);
    size_t used = 0;
    while (used < file.content.size()) {
      const ssize_t n = ::read(fd, file.content.data() + used, file.content.size() - used);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        file.problem = std::strerror(errno);
        break;
      }
      if (n == 0) break;
      used += static_cast<size_t>(n);
    }
    file.content.resize(used);
    if (file.problem.empty() && used > max_bytes) file.problem = "larger than " + describe_cap(max_bytes);
  }
  ::close(fd);
  if (file.problem.empty()) file.status = SmallFile::Status::ok;
  return file;
}

}  // namespace sluice::core
