// Segment listing, line reading and chain verification. verify() stops at the first
// bad record: after it, nothing in the trail can be trusted to be what it claims.
#include "audit/reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "audit/record.h"
#include "core/json.h"

namespace sluice::audit {

// ---------------------------------------------------------------------------
// Segments
// ---------------------------------------------------------------------------

bool list_segments(const std::string& directory, std::vector<SegmentFile>& out, std::string& error) {
  namespace fs = std::filesystem;
  out.clear();
  std::error_code ec;
  fs::directory_iterator it(directory, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const std::optional<uint64_t> first = parse_segment_file_name(name);
    if (!first) continue;
    out.push_back({name, it->path().string(), *first});
  }
  if (ec) {
    error = "cannot read directory " + directory + ": " + ec.message();
    return false;
  }
  std::sort(out.begin(), out.end(), [](const SegmentFile& a, const SegmentFile& b) { return a.first < b.first; });
  return true;
}

// ---------------------------------------------------------------------------
// LineReader
// ---------------------------------------------------------------------------

namespace {
constexpr size_t kReadChunk = size_t{1} << 20;
}  // namespace

LineReader::~LineReader() { close(); }

void LineReader::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool LineReader::open(const std::string& path, std::string& error) {
  close();
  path_ = path;
  buffer_.clear();
  begin_ = scanned_ = 0;
  skipping_ = false;
  lines_done_ = line_number_ = 0;
  error_.clear();
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    error = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

bool LineReader::fill() {
  // Drop consumed bytes first, so the buffer holds at most one line plus one chunk.
  buffer_.erase(0, begin_);
  scanned_ -= begin_;
  begin_ = 0;
  const size_t old_size = buffer_.size();
  buffer_.resize(old_size + kReadChunk);
  ssize_t got;
  do {
    got = ::read(fd_, buffer_.data() + old_size, kReadChunk);
  } while (got < 0 && errno == EINTR);
  if (got < 0) error_ = "cannot read " + path_ + ": " + std::strerror(errno);
  buffer_.resize(old_size + static_cast<size_t>(std::max<ssize_t>(got, 0)));
  return got > 0;
}

LineReader::Result LineReader::next(std::string_view& line) {
  if (fd_ < 0) {
    error_ = "no file open";
    return Result::error;
  }
  for (;;) {
    const char* found = static_cast<const char*>(
        std::memchr(buffer_.data() + scanned_, '\n', buffer_.size() - scanned_));
    if (found != nullptr) {
      const auto newline = static_cast<size_t>(found - buffer_.data());
      const size_t start = begin_;
      begin_ = scanned_ = newline + 1;
      if (skipping_) {  // the end of a too-long line, already reported
        skipping_ = false;
        continue;
      }
      line_number_ = ++lines_done_;
      if (newline - start > kMaxLineBytes) return Result::too_long;  // it ended within the last read
      line = std::string_view(buffer_).substr(start, newline - start);
      return Result::line;
    }
    scanned_ = buffer_.size();
    if (skipping_) {
      begin_ = scanned_;  // discard, keep looking for the newline
    } else if (buffer_.size() - begin_ > kMaxLineBytes) {
      skipping_ = true;
      begin_ = scanned_;
      line_number_ = ++lines_done_;
      return Result::too_long;
    }
    if (fill()) continue;
    if (!error_.empty()) return Result::error;
    if (skipping_ || begin_ == buffer_.size()) return Result::end;
    // Keep the partial bytes: the next call retries, and a writer may finish the line.
    line_number_ = lines_done_ + 1;
    line = std::string_view(buffer_).substr(begin_);
    return Result::partial;
  }
}

// ---------------------------------------------------------------------------
// Findings
// ---------------------------------------------------------------------------

std::string format_finding(const Finding& finding) {
  std::string out = finding.file;
  if (finding.line > 0) out += ":" + std::to_string(finding.line);
  if (!out.empty()) out += ": ";
  if (finding.n > 0) out += "record " + std::to_string(finding.n) + ": ";
  out += finding.reason;
  return out;
}

namespace {

Finding partial_line_finding(const SegmentFile& segment, uint64_t line_number, size_t bytes, bool newest) {
  std::string reason = "file ends inside a line (" + std::to_string(bytes) + " bytes without a newline)";
  reason += newest ? ": torn tail, will be truncated at next start"
                   : ": only the newest segment may end that way";
  return {segment.name, line_number, 0, std::move(reason)};
}

std::string missing(uint64_t from, uint64_t to) {
  if (from == to) return "record " + std::to_string(from) + " is missing or out of order";
  return "records " + std::to_string(from) + ".." + std::to_string(to) + " are missing or out of order";
}

Finding too_long_finding(const SegmentFile& segment, uint64_t line_number) {
  return {segment.name, line_number, 0, "line longer than 64 MiB: not a record"};
}

// ---------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------

// Walks the segments in order, carrying the chain from one line to the next.
class Verifier {
 public:
  explicit Verifier(VerifyReport& report) : report_(report) {}

  // Checks every line of one segment. False once an error is recorded.
  bool segment(const SegmentFile& segment, bool newest) {
    LineReader reader;
    std::string error;
    if (!reader.open(segment.path, error)) return fail({segment.name, 0, 0, error});
    ++report_.segments;
    bool has_records = false, torn = false;
    for (;;) {
      std::string_view text;
      const LineReader::Result result = reader.next(text);
      if (result == LineReader::Result::line) {
        if (!line(segment, reader.line_number(), text, !has_records)) return false;
        has_records = true;
        continue;
      }
      if (result == LineReader::Result::too_long) return fail(too_long_finding(segment, reader.line_number()));
      if (result == LineReader::Result::error) return fail({segment.name, 0, 0, reader.error()});
      if (result == LineReader::Result::partial) {
        const Finding finding = partial_line_finding(segment, reader.line_number(), text.size(), newest);
        if (!newest) return fail(finding);
        report_.warnings.push_back(finding);
        torn = true;
      }
      break;  // end, or the torn tail of the newest segment
    }
    if (has_records || torn) return true;
    // sluiced writes a segment's first record as soon as it creates the file, so an
    // empty segment is a crash in between (newest) or damage (anywhere else).
    if (newest) {
      report_.warnings.push_back({segment.name, 0, 0, "empty segment"});
      return true;
    }
    return fail({segment.name, 0, 0, "empty segment: its name promises record " + std::to_string(segment.first)});
  }

  // After the last segment: was the start of the chain vouched for?
  void finish(const std::string& directory) {
    if (report_.error) return;
    if (!started_) {
      fail({directory, 0, 0, "no records"});
      return;
    }
    if (start_.n != 1 && !start_vouched_) {
      fail({start_.file, start_.line, start_.n,
            "chain starts at record " + std::to_string(start_.n) +
                "; earlier records are missing (no retention record vouches for their removal)"});
    }
  }

 private:
  struct Place {
    std::string file;
    uint64_t line = 0;
    uint64_t n = 0;
  };

  bool line(const SegmentFile& segment, uint64_t line_number, std::string_view text, bool first_in_segment) {
    const auto bad = [&](uint64_t n, std::string reason) {
      return fail({segment.name, line_number, n, std::move(reason)});
    };
    if (!valid_utf8(text)) return bad(0, "not valid UTF-8");
    if (!document_.load_json(text) || !document_.root().is_object()) return bad(0, "not a JSON object");
    uint64_t n = 0;
    Hash prev{};
    if (!parse_chain_prefix(text, n, prev))
      return bad(0, "does not start with the chain fields {\"n\":N,\"prev\":\"<64 hex digits>\",");
    if (first_in_segment && n != segment.first)
      return bad(n, "the file name says the segment starts at record " + std::to_string(segment.first) +
                        ", but its first record is " + std::to_string(n) + " (renamed?)");
    if (!started_) {
      if (n == 1 && prev != kGenesisHash) return bad(n, "record 1 must have prev of 64 zeros");
      started_ = true;
      start_ = {segment.name, line_number, n};
      start_prev_ = prev;
      report_.first = n;
    } else if (n != next_n_) {
      return bad(n, n > next_n_ ? missing(next_n_, n - 1) + " (the record before is " +
                                      std::to_string(next_n_ - 1) + ")"
                                : "expected record " + std::to_string(next_n_) +
                                      ": records were reordered, duplicated or inserted");
    } else if (prev != previous_hash_) {
      return bad(n, "prev is not the hash of record " + std::to_string(previous_.n) + " (" + previous_.file + ":" +
                        std::to_string(previous_.line) + "): that record or this one was altered");
    }
    note_retention();
    previous_hash_ = hash_line(text);
    previous_ = {segment.name, line_number, n};
    next_n_ = n + 1;
    ++report_.records;
    report_.last = n;
    report_.last_hash = previous_hash_;
    return true;
  }

  // A retention record vouches for the chain start when it names a removed segment
  // ending just before the first surviving record, with that record's prev as hash.
  void note_retention() {
    const core::JsonDocument::Node record = document_.root();
    if (start_.n <= 1 || start_vouched_ || record["type"].text() != "retention") return;
    const std::string last = std::to_string(start_.n - 1);
    const std::string hash = to_hex(start_prev_);
    for (auto removed = record["removed"].first(); removed; removed = removed.next())
      if (removed["last"].text() == last && removed["last_hash"].text() == hash) start_vouched_ = true;
  }

  bool fail(Finding finding) {
    report_.error = std::move(finding);
    return false;
  }

  VerifyReport& report_;
  core::JsonDocument document_;  // reused for every line
  bool started_ = false;
  Place start_;       // the first record of the trail
  Hash start_prev_{};  // ... and the hash it claims for the record before it
  bool start_vouched_ = false;
  Place previous_;
  Hash previous_hash_{};
  uint64_t next_n_ = 0;
};

}  // namespace

VerifyReport verify(const std::string& directory) {
  VerifyReport report;
  std::vector<SegmentFile> segments;
  std::string error;
  if (!list_segments(directory, segments, error)) {
    report.error = Finding{"", 0, 0, error};  // the message names the directory
    return report;
  }
  if (segments.empty()) {
    report.error = Finding{directory, 0, 0, "no segment files (audit-<N>.jsonl)"};
    return report;
  }
  Verifier verifier(report);
  for (size_t i = 0; i < segments.size(); ++i)
    if (!verifier.segment(segments[i], i + 1 == segments.size())) return report;
  verifier.finish(directory);
  return report;
}

bool scan_trail(const std::string& directory, const LineVisitor& visit, const std::function<void(const Finding&)>& warn,
                std::string& error) {
  std::vector<SegmentFile> segments;
  if (!list_segments(directory, segments, error)) return false;
  LineReader reader;
  for (size_t i = 0; i < segments.size(); ++i) {
    const SegmentFile& segment = segments[i];
    if (!reader.open(segment.path, error)) return false;
    for (;;) {
      std::string_view line;
      const LineReader::Result result = reader.next(line);
      if (result == LineReader::Result::line) {
        visit(segment, reader.line_number(), line);
        continue;
      }
      if (result == LineReader::Result::too_long) {
        warn(too_long_finding(segment, reader.line_number()));
        continue;
      }
      if (result == LineReader::Result::error) {
        error = reader.error();
        return false;
      }
      if (result == LineReader::Result::partial)
        warn(partial_line_finding(segment, reader.line_number(), line.size(), i + 1 == segments.size()));
      break;
    }
  }
  return true;
}

}  // namespace sluice::audit
