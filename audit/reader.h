// Reading the audit trail (docs/audit.md): the segment files of a directory in record
// order, the lines of one segment, and verify(), which recomputes the hash chain.
// The files are treated as hostile: a line is capped at kMaxLineBytes, a file that
// ends inside a line is reported, and nothing in a file can make the reader crash.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/chain.h"

namespace sluice::audit {

// Longest line the reader accepts. A record's size is bounded by the writer
// (statement and parameter caps); anything near this is damage, not a record.
inline constexpr size_t kMaxLineBytes = size_t{64} << 20;

struct SegmentFile {
  std::string name;    // "audit-<20 digits>.jsonl"
  std::string path;    // directory/name
  uint64_t first = 0;  // the record number in the name
};

// The segment files of `directory`, oldest (lowest record number) first. Files with
// other names (.lock, backups, "audit-1.jsonl") are not segments and are skipped.
// False, with `error` set, when the directory cannot be read.
bool list_segments(const std::string& directory, std::vector<SegmentFile>& out, std::string& error);

// Reads one segment file line by line. At the end of the file it keeps what it has of
// an unfinished line and tries again on the next call, so a follower can poll a
// segment that sluiced is still appending to.
class LineReader {
 public:
  enum class Result {
    line,      // a complete line, without its newline
    end,       // end of file and nothing pending
    partial,   // end of file inside a line: `line` holds its bytes so far
    too_long,  // a line longer than kMaxLineBytes: reported once, skipped to its newline
    error,     // the file could not be read (error() says why)
  };

  LineReader() = default;
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // Opens `path` (closing any file open before) and starts at its first line.
  bool open(const std::string& path, std::string& error);
  bool is_open() const { return fd_ >= 0; }

  // The next line. `line` stays valid until the next call.
  Result next(std::string_view& line);

  // 1-based number, in the file, of the line the last next() was about.
  uint64_t line_number() const { return line_number_; }
  const std::string& error() const { return error_; }

 private:
  bool fill();  // reads more of the file into buffer_; false at end of file or error
  void close();

  int fd_ = -1;
  std::string path_;
  std::string buffer_;    // unconsumed bytes start at begin_
  size_t begin_ = 0;      // start of the current (unfinished) line in buffer_
  size_t scanned_ = 0;    // buffer_[begin_, scanned_) holds no newline
  bool skipping_ = false; // inside a too-long line: discard up to its newline
  uint64_t lines_done_ = 0;
  uint64_t line_number_ = 0;
  std::string error_;
};

// Something wrong (or worth a warning) at one place in the trail.
struct Finding {
  std::string file;       // segment file name, the directory, or "" when the reason names it
  uint64_t line = 0;      // 1-based line in the file; 0 = the whole file
  uint64_t n = 0;         // record number when known, else 0
  std::string reason;
};

// "audit-00000000000000000007.jsonl:3: record 9: reason"
std::string format_finding(const Finding& finding);

struct VerifyReport {
  std::optional<Finding> error;   // the first bad record; empty when the trail is intact
  std::vector<Finding> warnings;  // e.g. a torn final line (sluiced truncates it at start)
  uint64_t segments = 0;
  uint64_t records = 0;           // records verified (up to the first error)
  uint64_t first = 0, last = 0;   // record numbers of the first and last verified record
  Hash last_hash{};               // hash_line() of the last verified record
  bool ok() const { return !error; }
};

// Recomputes the chain of `directory`: every line one JSON object starting with a
// chain prefix, n consecutive across lines and segments, prev the hash of the line
// before, each segment named after its first record, and the chain starting at record
// 1 (genesis prev) or at a point a later `retention` record vouches for.
VerifyReport verify(const std::string& directory);

// Calls visit(segment, line_number, line) for every complete line of the trail, in
// order, and warn() for every line that is not complete (too long, or a file ending
// inside a line). False, with `error` set, when the directory or a segment cannot be
// read; lines visited before that stay visited.
using LineVisitor = std::function<void(const SegmentFile& segment, uint64_t line_number, std::string_view line)>;
bool scan_trail(const std::string& directory, const LineVisitor& visit, const std::function<void(const Finding&)>& warn,
                std::string& error);

}  // namespace sluice::audit
