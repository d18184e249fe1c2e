// Reading a small file an operator points sluice at (a password file, a token key, the
// configuration): never blocks on a FIFO planted in its place, refuses anything that
// is not a regular file, and never reads more than a cap, whatever the file claims.
#pragma once

#include <cstddef>
#include <string>

namespace sluice::core {

struct SmallFile {
  enum class Status { ok, cannot_open, cannot_read };
  Status status = Status::cannot_open;
  // Why, when not ok: strerror text, "not a regular file", or "larger than 64 KiB".
  std::string problem;
  std::string content;  // the whole file when ok (callers holding secrets wipe it)
  unsigned mode = 0;    // permission bits (st_mode & 07777) when opened
};

SmallFile read_small_file(const std::string& path, size_t max_bytes);

// "4 KiB", "1 MiB", "100 bytes": a cap as the messages above write it.
std::string describe_cap(size_t bytes);

}  // namespace sluice::core
