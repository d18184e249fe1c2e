#include "audit/writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "audit/record.h"
#include "core/log.h"

namespace sluice::audit {

namespace {

constexpr size_t kMaxBatchBytes = 4 << 20;        // collected before writing, while the disk keeps up
constexpr auto kRetryDelay = std::chrono::milliseconds(250);
constexpr auto kIdleWake = std::chrono::milliseconds(1000);  // rotation by age, retention
constexpr auto kRetentionEvery = std::chrono::seconds(60);

std::string errno_text(int error) { return std::strerror(error); }

bool make_directories(const std::string& path, std::string& problem) {
  for (size_t at = 1; at <= path.size(); ++at) {
    if (at != path.size() && path[at] != '/') continue;
    const std::string prefix = path.substr(0, at);
    if (mkdir(prefix.c_str(), 0750) != 0 && errno != EEXIST) {
      problem = "cannot create audit directory " + prefix + ": " + errno_text(errno);
      return false;
    }
  }
  return true;
}

struct SegmentFile {
  uint64_t first = 0;
  std::string name;
};

// Segment files of the directory, oldest first.
std::vector<SegmentFile> list_segments(int directory_fd) {
  std::vector<SegmentFile> segments;
  const int fd = dup(directory_fd);
  if (fd < 0) return segments;
  DIR* dir = fdopendir(fd);
  if (dir == nullptr) {
    close(fd);
    return segments;
  }
  rewinddir(dir);
  while (const dirent* entry = readdir(dir)) {
    if (auto first = parse_segment_file_name(entry->d_name)) segments.push_back({*first, entry->d_name});
  }
  closedir(dir);
  std::sort(segments.begin(), segments.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return segments;
}

bool read_exact(int fd, uint64_t offset, size_t length, std::string& out) {
  out.resize(length);
  size_t done = 0;
  while (done < length) {
    const ssize_t n = pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Offset of the last '\n' before `end` (exclusive), or -1.
int64_t last_newline_before(int fd, uint64_t end) {
  constexpr size_t kBlock = 64 * 1024;
  std::string block;
  while (end > 0) {
    const uint64_t start = end > kBlock ? end - kBlock : 0;
    if (!read_exact(fd, start, end - start, block)) return -2;
    const size_t at = block.rfind('\n');
    if (at != std::string::npos) return static_cast<int64_t>(start + at);
    end = start;
  }
  return -1;
}

// The last complete line of a segment. torn: bytes after the last newline.
bool read_last_line(int fd, std::string& line, uint64_t& torn, uint64_t& size_after_cut, std::string& problem) {
  struct stat st{};
  if (fstat(fd, &st) != 0) {
    problem = errno_text(errno);
    return false;
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  const int64_t last = last_newline_before(fd, size);
  if (last == -2) {
    problem = "read failed: " + errno_text(errno);
    return false;
  }
  size_after_cut = last < 0 ? 0 : static_cast<uint64_t>(last) + 1;
  torn = size - size_after_cut;
  line.clear();
  if (last < 0) return true;
  const int64_t before = last_newline_before(fd, static_cast<uint64_t>(last));
  if (before == -2) {
    problem = "read failed: " + errno_text(errno);
    return false;
  }
  const uint64_t start = static_cast<uint64_t>(before + 1);
  if (!read_exact(fd, start, static_cast<size_t>(last) - start, line)) {
    problem = "read failed";
    return false;
  }
  return true;
}

bool write_all_at(int fd, std::string_view bytes, uint64_t offset) {
  while (!bytes.empty()) {
    const ssize_t n = pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

size_t ring_capacity_for(size_t configured) {
  size_t capacity = 4096;
  while (capacity < configured) capacity <<= 1;
  return capacity;
}

}  // namespace

const char* durability_name(Durability mode) { return mode == Durability::strict ? "strict" : "async"; }

// ---------------------------------------------------------------------------
// ShardLog: the shard's side
// ---------------------------------------------------------------------------

uint64_t ShardLog::append(std::string body) {
  ++appended_;
  if (overflow_.empty() && push(body)) return appended_;
  overflow_.push_back(std::move(body));
  return appended_;
}

bool ShardLog::push(std::string& body) {
  if (!ring_.try_push(body)) return false;
  writer_.notify();
  return true;
}

void ShardLog::pump() {
  while (!overflow_.empty() && push(overflow_.front())) overflow_.pop_front();
}

bool ShardLog::strict() const { return writer_.config().mode == Durability::strict; }
bool ShardLog::failing() const { return writer_.failing(); }
uint32_t ShardLog::max_param_bytes() const { return writer_.config().max_param_bytes; }

// ---------------------------------------------------------------------------
// Writer: opening and recovery
// ---------------------------------------------------------------------------

std::unique_ptr<Writer> Writer::open(const Config& config, std::string& problem) {
  std::unique_ptr<Writer> writer(new Writer(config));
  if (!make_directories(config.directory, problem)) return nullptr;
  writer->directory_fd_ = ::open(config.directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (writer->directory_fd_ < 0) {
    problem = "cannot open audit directory " + config.directory + ": " + errno_text(errno);
    return nullptr;
  }
  const std::string lock_path = config.directory + "/.lock";
  writer->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (writer->lock_fd_ < 0) {
    problem = "cannot create " + lock_path + ": " + errno_text(errno);
    return nullptr;
  }
  if (flock(writer->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    problem = "audit directory " + config.directory +
              " is in use by another sluiced (two gateways cannot write one trail; give each its own directory)";
    return nullptr;
  }
  writer->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (writer->wake_fd_ < 0) {
    problem = "eventfd: " + errno_text(errno);
    return nullptr;
  }
  if (!writer->recover(problem) || !writer->open_segment(problem)) return nullptr;
  return writer;
}

// Finds where the chain ends: the newest segment's last complete record. Cuts a torn
// final line (a record that was never acknowledged) and drops empty segments.
bool Writer::recover(std::string& problem) {
  std::vector<SegmentFile> segments = list_segments(directory_fd_);
  while (!segments.empty()) {
    const SegmentFile newest = segments.back();
    const std::string path = config_.directory + "/" + newest.name;
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      problem = "cannot open " + path + ": " + errno_text(errno);
      return false;
    }
    std::string line;
    uint64_t torn = 0, keep = 0;
    const bool read_ok = read_last_line(fd, line, torn, keep, problem);
    if (read_ok && torn > 0) {
      if (ftruncate(fd, static_cast<off_t>(keep)) != 0 || fsync(fd) != 0) {
        problem = "cannot cut the torn last record of " + path + ": " + errno_text(errno);
        close(fd);
        return false;
      }
      LOG_WARN("audit: %s ended in a partial record (%llu bytes, never acknowledged); cut it", path.c_str(),
               static_cast<unsigned long long>(torn));
      torn_bytes_ += torn;
    }
    close(fd);
    if (!read_ok) {
      problem = "cannot read " + path + ": " + problem;
      return false;
    }
    if (line.empty()) {  // nothing complete in it: a segment created just before a crash
      if (unlink(path.c_str()) != 0) {
        problem = "cannot remove empty segment " + path + ": " + errno_text(errno);
        return false;
      }
      segments.pop_back();
      continue;
    }
    uint64_t n = 0;
    Hash ignored{};
    if (!parse_chain_prefix(line, n, ignored) || n < newest.first) {
      problem = "the last record of " + path +
                " is damaged, so the chain cannot be continued; check it with `sluicectl audit verify " +
                config_.directory + "`, then move the directory's segments elsewhere to start a new trail";
      return false;
    }
    next_n_ = n + 1;
    prev_ = hash_line(line);
    return true;
  }
  next_n_ = 1;
  prev_ = kGenesisHash;
  return true;
}

// Opens the segment that starts at record next_n_. Commits the writer to it only when
// its name is durable; on failure the current segment (if any) stays in use, untouched.
bool Writer::open_segment(std::string& problem) {
  const std::string name = segment_file_name(next_n_);
  const std::string path = config_.directory + "/" + name;
  const int fd = ::openat(directory_fd_, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
  if (fd < 0) {
    problem = "cannot create audit segment " + path + ": " + errno_text(errno);
    return false;
  }
  if (fsync(directory_fd_) != 0) {  // the new name must survive a crash too
    problem = "cannot sync audit directory " + config_.directory + ": " + errno_text(errno);
    close(fd);
    (void)unlinkat(directory_fd_, name.c_str(), 0);  // empty: a later rotation may create it again
    return false;
  }
  if (segment_fd_ >= 0) close(segment_fd_);
  segment_fd_ = fd;
  segment_name_ = name;
  segment_synced_bytes_ = 0;
  segment_opened_ = std::chrono::steady_clock::now();
  publish_durable_end();
  return true;
}

Writer::~Writer() {
  if (thread_.joinable()) stop("shutdown");
  for (int fd : {segment_fd_, directory_fd_, lock_fd_, wake_fd_}) {
    if (fd >= 0) close(fd);
  }
}

ShardLog& Writer::add_shard(int wake_fd) {
  const size_t capacity = ring_capacity_for(config_.ring_bytes);
  shards_.push_back(std::unique_ptr<ShardLog>(new ShardLog(*this, capacity, wake_fd)));
  pending_consumed_.push_back(0);
  return *shards_.back();
}

// ---------------------------------------------------------------------------
// Writer: the thread
// ---------------------------------------------------------------------------

void Writer::append_own_record(const std::string& body) { chain(body); }

void Writer::start() {
  std::string body;
  begin_body(body, "start", now_unix_micros())
      .number("pid", static_cast<uint64_t>(getpid()))
      .string("version", "0.1.0")
      .string("mode", durability_name(config_.mode))
      .number("torn_bytes", torn_bytes_);
  finish_body(body);
  append_own_record(body);
  thread_ = std::thread([this] { run(); });
}

void Writer::stop(const std::string& reason) {
  if (!thread_.joinable()) return;
  stop_reason_ = reason;
  stop_requested_.store(true, std::memory_order_release);
  notify();
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
  thread_.join();
  // The shards have stopped: what still waits in their overflow queues is ours now.
  for (size_t i = 0; i < shards_.size(); ++i) {
    for (const std::string& body : shards_[i]->overflow_) chain(body);
    shards_[i]->overflow_.clear();
  }
  std::string body;
  begin_body(body, "stop", now_unix_micros()).string("reason", reason);
  finish_body(body);
  append_own_record(body);
  for (int attempt = 0; attempt < 20 && !flush_pending(); ++attempt) std::this_thread::sleep_for(kRetryDelay);
  if (!pending_.empty())
    LOG_ERROR("audit: %zu bytes of records could not be written to %s at shutdown", pending_.size(),
              config_.directory.c_str());
  LOG_INFO("audit: %llu records, %llu bytes, %llu fdatasync calls", static_cast<unsigned long long>(stats_.records),
           static_cast<unsigned long long>(stats_.bytes), static_cast<unsigned long long>(stats_.fsyncs));
}

void Writer::notify() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_relaxed) && sleeping_.exchange(false)) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
  }
}

void Writer::run() {
  core::set_log_shard(-1);
  auto last_sync = std::chrono::steady_clock::now();
  while (true) {
    const size_t collected = collect();
    const auto now = std::chrono::steady_clock::now();
    const bool stopping = stop_requested_.load(std::memory_order_acquire);
    if (!pending_.empty()) {
      const bool due = config_.mode == Durability::strict || stopping || pending_.size() >= kMaxBatchBytes ||
                       now - last_sync >= config_.async_flush;
      if (due) {
        if (flush_pending()) {
          last_sync = now;
          publish_durable();
          maybe_rotate();
        } else {
          wake_shards();  // congested shards may still pump what collect() made room for
          std::this_thread::sleep_for(kRetryDelay);
          continue;
        }
      }
    }
    wake_shards();
    if (stopping && collected == 0 && pending_.empty()) break;
    if (now - last_retention_ >= kRetentionEvery) {
      last_retention_ = now;
      apply_retention();
    }
    if (collected == 0) {
      if (pending_.empty()) {
        maybe_rotate();
        sleep_until_work(kIdleWake);
      } else {  // async: sleep until the flush is due; new records wait for it too
        sleep_until_work(std::chrono::duration_cast<std::chrono::milliseconds>(config_.async_flush - (now - last_sync)),
                         /*woken_by_records=*/false);
      }
    }
  }
}

size_t Writer::collect() {
  size_t total = 0;
  for (size_t i = 0; i < shards_.size() && pending_.size() < kMaxBatchBytes; ++i) {
    ShardLog& shard = *shards_[i];
    const size_t n = shard.ring_.consume([this](std::string_view body) { chain(body); }, 1024);
    shard.consumed_ += n;
    pending_consumed_[i] = shard.consumed_;
    total += n;
  }
  return total;
}

void Writer::chain(std::string_view body) {
  const size_t start = pending_.size();
  append_line(pending_, next_n_, prev_, body);
  prev_ = hash_line(std::string_view(pending_).substr(start, pending_.size() - start - 1));
  ++next_n_;
  stats_.records.fetch_add(1, std::memory_order_relaxed);
}

bool Writer::flush_pending() {
  if (pending_.empty()) return true;
  // After a failure the file may hold part of pending_ past the synced size: cut it,
  // then write all of pending_ again.
  bool ok = write_all_at(segment_fd_, pending_, segment_synced_bytes_) && fdatasync(segment_fd_) == 0;
  if (!ok) {
    const int error = errno;
    stats_.write_failures.fetch_add(1, std::memory_order_relaxed);
    (void)!ftruncate(segment_fd_, static_cast<off_t>(segment_synced_bytes_));
    if (!failing_.exchange(true, std::memory_order_acq_rel))
      LOG_ERROR("audit: cannot write %s/%s: %s; new statements are refused (53100) until it can be written",
                config_.directory.c_str(), segment_name_.c_str(), errno_text(error).c_str());
    return false;
  }
  stats_.fsyncs.fetch_add(1, std::memory_order_relaxed);
  stats_.bytes.fetch_add(pending_.size(), std::memory_order_relaxed);
  segment_synced_bytes_ += pending_.size();
  pending_.clear();
  publish_durable_end();
  if (failing_.exchange(false, std::memory_order_acq_rel))
    LOG_WARN("audit: writing %s works again; statements are accepted", config_.directory.c_str());
  return true;
}

void Writer::publish_durable() {
  for (size_t i = 0; i < shards_.size(); ++i) shards_[i]->durable_.store(pending_consumed_[i], std::memory_order_release);
}

// Called with pending_ empty: every record chained so far is durable.
void Writer::publish_durable_end() {
  std::lock_guard lock(durable_end_mutex_);
  durable_end_.segment = segment_name_;
  durable_end_.bytes = segment_synced_bytes_;
  durable_end_.last_n = next_n_ - 1;
}

DurableEnd Writer::durable_end() const {
  std::lock_guard lock(durable_end_mutex_);
  return durable_end_;
}

void Writer::wake_shards() {
  std::atomic_thread_fence(std::memory_order_seq_cst);  // durable_ stores before wake_requested_ loads
  for (const auto& shard : shards_) {
    if (shard->wake_requested_.load(std::memory_order_acquire) && shard->wake_requested_.exchange(false)) {
      uint64_t one = 1;
      (void)!write(shard->wake_fd_, &one, sizeof one);
    }
  }
}

void Writer::sleep_until_work(std::chrono::milliseconds timeout, bool woken_by_records) {
  if (!woken_by_records) {
    // Producers wake only a sleeping_ writer: without it, only stop() ends the wait.
    pollfd p{wake_fd_, POLLIN, 0};
    (void)poll(&p, 1, static_cast<int>(std::max<int64_t>(timeout.count(), 1)));
    uint64_t value;
    (void)!read(wake_fd_, &value, sizeof value);
    return;
  }
  sleeping_.store(true, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  bool work = stop_requested_.load(std::memory_order_acquire);
  for (const auto& shard : shards_) work = work || !shard->ring_.empty();
  if (!work) {
    pollfd p{wake_fd_, POLLIN, 0};
    (void)poll(&p, 1, static_cast<int>(std::max<int64_t>(timeout.count(), 1)));
  }
  uint64_t value;
  (void)!read(wake_fd_, &value, sizeof value);
  sleeping_.store(false, std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------
// Rotation and retention
// ---------------------------------------------------------------------------

void Writer::maybe_rotate() {
  if (segment_synced_bytes_ == 0 || !pending_.empty()) return;
  const bool too_big = segment_synced_bytes_ >= config_.segment_bytes;
  const bool too_old = std::chrono::steady_clock::now() - segment_opened_ >= config_.segment_age;
  if (!too_big && !too_old) return;
  const auto now = std::chrono::steady_clock::now();
  if (now < rotation_retry_at_) return;
  std::string problem;
  if (!open_segment(problem)) {
    LOG_ERROR("audit: %s; still writing %s", problem.c_str(), segment_name_.c_str());
    rotation_retry_at_ = now + std::chrono::seconds(1);  // one line a second, not one a batch
    return;
  }
  apply_retention();
}

void Writer::apply_retention() {
  if (config_.retain_age.count() == 0 && config_.retain_bytes == 0) return;
  struct Candidate {
    SegmentFile file;
    uint64_t size;
    time_t mtime;
  };
  std::vector<Candidate> closed;
  uint64_t total = segment_synced_bytes_;
  for (const SegmentFile& segment : list_segments(directory_fd_)) {
    if (segment.name == segment_name_) continue;
    struct stat st{};
    if (fstatat(directory_fd_, segment.name.c_str(), &st, 0) != 0) continue;
    closed.push_back({segment, static_cast<uint64_t>(st.st_size), st.st_mtime});
    total += static_cast<uint64_t>(st.st_size);
  }
  const time_t now = time(nullptr);
  std::string removed_json;
  JsonWriter removed(removed_json);
  removed.begin_array();
  std::vector<std::string> to_delete;
  for (const Candidate& c : closed) {
    const bool expired = config_.retain_age.count() > 0 && now - c.mtime > config_.retain_age.count();
    const bool over_size = config_.retain_bytes > 0 && total > config_.retain_bytes;
    if (!expired && !over_size) break;  // oldest first: the rest are newer
    const int fd = openat(directory_fd_, c.file.name.c_str(), O_RDONLY | O_CLOEXEC);
    std::string line, problem;
    uint64_t torn = 0, keep = 0, last = 0;
    Hash ignored{};
    const bool read_ok = fd >= 0 && read_last_line(fd, line, torn, keep, problem);
    if (fd >= 0) close(fd);
    if (!read_ok || !parse_chain_prefix(line, last, ignored)) {
      LOG_ERROR("audit: retention skipped %s: its last record cannot be read", c.file.name.c_str());
      break;
    }
    removed.begin_object()
        .string("file", c.file.name)
        .number("first", c.file.first)
        .number("last", last)
        .string("last_hash", to_hex(hash_line(line)))
        .end_object();
    to_delete.push_back(c.file.name);
    total -= c.size;
  }
  if (to_delete.empty()) return;
  removed.end_array();
  std::string body;
  begin_body(body, "retention", now_unix_micros()).key("removed").raw(removed_json);
  finish_body(body);
  append_own_record(body);
  if (!flush_pending()) return;  // the record must be durable before the files go
  publish_durable();
  for (const std::string& name : to_delete) {
    if (unlinkat(directory_fd_, name.c_str(), 0) != 0)
      LOG_ERROR("audit: cannot remove %s: %s", name.c_str(), errno_text(errno).c_str());
  }
  (void)fsync(directory_fd_);
  LOG_INFO("audit: retention removed %zu segment(s)", to_delete.size());
}

}  // namespace sluice::audit
