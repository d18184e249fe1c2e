#include "audit/sink.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "audit/chain.h"
#include "audit/reader.h"
#include "core/log.h"

namespace sluice::audit {

namespace {

constexpr size_t kMaxPositionFileBytes = 4096;
constexpr const char* kPositionHeader = "sluice audit sink position 1";
constexpr auto kConnectTimeout = std::chrono::seconds(5);
constexpr auto kFirstBackoff = std::chrono::seconds(1);
constexpr auto kMaxBackoff = std::chrono::seconds(30);
constexpr auto kStopSlack = std::chrono::seconds(2);  // past the final attempt, before stop() cuts the socket
constexpr size_t kCopyChunkBytes = size_t{1} << 20;
constexpr size_t kScanChunkBytes = size_t{1} << 20;
constexpr uint64_t kNoNewline = UINT64_MAX;

std::string errno_text(int error) { return std::strerror(error); }

unsigned long long ull(uint64_t value) { return static_cast<unsigned long long>(value); }

// Reads [offset, offset + length) of fd; false (errno set) on a read error or a file
// shorter than that.
bool pread_all(int fd, uint64_t offset, size_t length, std::string& out) {
  out.resize(length);
  size_t done = 0;
  while (done < length) {
    const ssize_t n = pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;  // the file shrank under us
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

// Offset of the first '\n' in [from, limit) of fd, kNoNewline if none; false on error.
bool find_newline(int fd, uint64_t from, uint64_t limit, uint64_t& at) {
  std::string chunk;
  while (from < limit) {
    const size_t length = static_cast<size_t>(std::min<uint64_t>(limit - from, kScanChunkBytes));
    if (!pread_all(fd, from, length, chunk)) return false;
    const size_t nl = chunk.find('\n');
    if (nl != std::string::npos) {
      at = from + nl;
      return true;
    }
    from += length;
  }
  at = kNoNewline;
  return true;
}

bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::optional<uint64_t> parse_offset(std::string_view text) {
  if (text.empty() || text.size() > 19) return std::nullopt;  // 19 digits always fit
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value;
}

// libpq's messages end in a newline and may span lines; the log wants one line.
std::string one_line(std::string_view text) {
  std::string out;
  for (char c : text) {
    const bool space = c == '\n' || c == '\t' || c == '\r' || c == ' ';
    if (!space)
      out += c;
    else if (!out.empty() && out.back() != ' ')
      out += ' ';
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out.empty() ? "unknown error" : out;
}

uint64_t record_number(std::string_view line) {
  uint64_t n = 0;
  Hash ignored{};
  return parse_chain_prefix(line, n, ignored) ? n : 0;
}

}  // namespace

// ---------------------------------------------------------------------------
// COPY text format and the position file
// ---------------------------------------------------------------------------

void append_copy_text(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
}

std::string store_name(const SinkConfig& config) {
  return config.host + ":" + std::to_string(config.port) + "/" + config.database + " table " + config.table +
         " gateway " + config.gateway;
}

PositionLoad load_sink_position(const std::string& directory, const std::string& store, SinkPosition& position,
                                std::string& problem) {
  const std::string path = directory + "/" + kSinkPositionFile;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return PositionLoad::missing;
    problem = "cannot open it: " + errno_text(errno);
    return PositionLoad::damaged;
  }
  std::string text(kMaxPositionFileBytes + 1, '\0');
  size_t used = 0;
  while (used < text.size()) {
    const ssize_t n = ::read(fd, text.data() + used, text.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      problem = "cannot read it: " + errno_text(errno);
      ::close(fd);
      return PositionLoad::damaged;
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  ::close(fd);
  text.resize(used);
  if (text.size() > kMaxPositionFileBytes) {
    problem = "larger than " + std::to_string(kMaxPositionFileBytes) + " bytes";
    return PositionLoad::damaged;
  }
  // Exactly four lines: header, store, segment, offset.
  std::vector<std::string_view> lines;
  std::string_view rest(text);
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) {
      problem = "its last line is incomplete";
      return PositionLoad::damaged;
    }
    lines.push_back(rest.substr(0, nl));
    rest.remove_prefix(nl + 1);
  }
  if (lines.size() != 4 || lines[0] != kPositionHeader || !lines[1].starts_with("store ") ||
      !lines[2].starts_with("segment ") || !lines[3].starts_with("offset ")) {
    problem = "not a position file of this version";
    return PositionLoad::damaged;
  }
  const std::string_view segment = lines[2].substr(8);
  const std::optional<uint64_t> offset = parse_offset(lines[3].substr(7));
  if (!parse_segment_file_name(segment) || !offset) {
    problem = "its segment or offset is not valid";
    return PositionLoad::damaged;
  }
  if (lines[1].substr(6) != store) {
    problem = std::string(lines[1].substr(6));
    return PositionLoad::other_store;
  }
  position = {std::string(segment), *offset};
  return PositionLoad::found;
}

bool save_sink_position(const std::string& directory, const std::string& store, const SinkPosition& position,
                        std::string& problem) {
  const std::string path = directory + "/" + kSinkPositionFile;
  const std::string temp = path + ".tmp";
  const std::string text = std::string(kPositionHeader) + "\nstore " + store + "\nsegment " + position.segment +
                           "\noffset " + std::to_string(position.offset) + "\n";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) {
    problem = "cannot create " + temp + ": " + errno_text(errno);
    return false;
  }
  if (!write_all(fd, text) || fsync(fd) != 0) {
    problem = "cannot write " + temp + ": " + errno_text(errno);
    ::close(fd);
    (void)unlink(temp.c_str());
    return false;
  }
  ::close(fd);
  if (rename(temp.c_str(), path.c_str()) != 0) {
    problem = "cannot rename " + temp + " to " + path + ": " + errno_text(errno);
    (void)unlink(temp.c_str());
    return false;
  }
  const int dir = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0 || fsync(dir) != 0) {
    problem = "cannot sync directory " + directory + ": " + errno_text(errno);
    if (dir >= 0) ::close(dir);
    return false;
  }
  ::close(dir);
  return true;
}

// ---------------------------------------------------------------------------
// SinkCursor
// ---------------------------------------------------------------------------

bool SinkCursor::next(const DurableEnd& durable, size_t max_records, Batch& batch, std::string& problem) {
  batch.segment.clear();
  batch.lines.clear();
  batch.bytes.clear();
  batch.end = 0;
  const std::optional<uint64_t> open_first = parse_segment_file_name(durable.segment);
  if (!open_first) return true;  // the writer has no segment yet
  std::vector<SegmentFile> segments;
  // Each round either returns or moves the position to a later segment (or, once
  // the listing is stale, re-lists), so this ends.
  for (int stale = 0; stale < 8;) {
    if (!list_segments(directory_, segments, problem)) return false;
    if (segments.empty()) return true;
    if (position_.segment.empty()) position_ = {segments.front().name, 0};
    const uint64_t wanted = parse_segment_file_name(position_.segment).value_or(0);
    auto current =
        std::find_if(segments.begin(), segments.end(), [&](const SegmentFile& s) { return s.first >= wanted; });
    if (current == segments.end()) {
      // Newer than every segment: a position from another trail (or a directory
      // that was emptied). Everything here is unshipped as far as we can tell.
      LOG_WARN("audit sink: the position names %s, which is newer than every segment in %s; shipping from the oldest",
               position_.segment.c_str(), directory_.c_str());
      position_ = {segments.front().name, 0};
      continue;
    }
    if (current->first != wanted) {
      LOG_WARN(
          "audit sink: %s was removed (retention) before it was all shipped (from byte %llu on); its records "
          "will be missing from the central store; continuing with %s",
          position_.segment.c_str(), ull(position_.offset), current->name.c_str());
      position_ = {current->name, 0};
    }
    if (current->first > *open_first) return true;  // created, not yet in use: nothing durable in it
    const bool closed = current->first < *open_first;
    uint64_t partial = 0;
    switch (read_lines(current->path, closed ? UINT64_MAX : durable.bytes, max_records, batch, partial, problem)) {
      case Read::ok:
        break;
      case Read::removed:  // retention took it between the listing and the read
        ++stale;
        continue;
      case Read::skipped:
        continue;
      case Read::error:
        return false;
    }
    if (!batch.lines.empty() || !closed) return true;
    if (partial > 0)
      LOG_WARN("audit sink: %s ends in %llu bytes that are not a complete line; not shipped", current->name.c_str(),
               ull(partial));
    // A closed segment with nothing left: on to the next one (there is one: the open
    // segment is newer).
    const auto after = std::next(current);
    if (after == segments.end()) return true;
    position_ = {after->name, 0};
  }
  problem = "the segments of " + directory_ + " keep disappearing while being read";
  return false;
}

SinkCursor::Read SinkCursor::read_lines(const std::string& path, uint64_t limit, size_t max_records, Batch& batch,
                                        uint64_t& partial, std::string& problem) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Read::removed;
    problem = "cannot open " + path + ": " + errno_text(errno);
    return Read::error;
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    problem = "cannot stat " + path + ": " + errno_text(errno);
    return Read::error;
  }
  limit = std::min<uint64_t>(limit, static_cast<uint64_t>(st.st_size));
  const uint64_t start = position_.offset;
  if (start >= limit) return Read::ok;
  const uint64_t available = limit - start;
  const size_t want = static_cast<size_t>(std::min<uint64_t>(available, kMaxBatchBytes));
  if (!pread_all(fd, start, want, batch.bytes)) {
    problem = "cannot read " + path + ": " + errno_text(errno);
    return Read::error;
  }
  const std::string_view bytes(batch.bytes);
  size_t at = 0;
  while (batch.lines.size() < max_records) {
    const size_t nl = bytes.find('\n', at);
    if (nl == std::string_view::npos) break;
    batch.lines.push_back({start + at, bytes.substr(at, nl - at)});
    at = nl + 1;
  }
  if (!batch.lines.empty() || want == available) {
    batch.segment = position_.segment;
    batch.end = start + at;
    if (batch.lines.empty()) partial = available;
    return Read::ok;
  }
  // The first line is longer than a batch: read it alone, or skip it when it is
  // longer than any record can be (damage; verify reports it).
  uint64_t nl = 0;
  if (!find_newline(fd, start + want, limit, nl)) {
    problem = "cannot read " + path + ": " + errno_text(errno);
    return Read::error;
  }
  if (nl == kNoNewline) {
    batch.bytes.clear();
    partial = available;
    return Read::ok;
  }
  if (nl - start > kMaxLineBytes) {
    LOG_WARN("audit sink: %s: the line at byte %llu is longer than %zu MiB; not shipped", position_.segment.c_str(),
             ull(start), kMaxLineBytes >> 20);
    position_.offset = nl + 1;
    batch.bytes.clear();
    return Read::skipped;
  }
  if (!pread_all(fd, start, static_cast<size_t>(nl + 1 - start), batch.bytes)) {
    problem = "cannot read " + path + ": " + errno_text(errno);
    return Read::error;
  }
  batch.lines.push_back({start, std::string_view(batch.bytes).substr(0, static_cast<size_t>(nl - start))});
  batch.segment = position_.segment;
  batch.end = nl + 1;
  return Read::ok;
}

// ---------------------------------------------------------------------------
// Sink
// ---------------------------------------------------------------------------

Sink::Sink(const Config& config, std::function<DurableEnd()> durable_end)
    : config_(config),
      sink_(config_.sink),
      store_(store_name(config_.sink)),
      durable_end_(std::move(durable_end)),
      cursor_(config_.directory, {}) {}

Sink::~Sink() {
  if (thread_.joinable()) stop();
  disconnect();
}

std::string Sink::destination() const { return sink_.host + ":" + std::to_string(sink_.port) + "/" + sink_.database; }

void Sink::start() {
  SinkPosition position;
  std::string problem;
  const std::string path = config_.directory + "/" + kSinkPositionFile;
  switch (load_sink_position(config_.directory, store_, position, problem)) {
    case PositionLoad::found:
      LOG_DEBUG("audit sink: resuming at %s byte %llu", position.segment.c_str(), ull(position.offset));
      persisted_ = position;
      break;
    case PositionLoad::missing:
      LOG_INFO("audit sink: no %s yet; shipping from the oldest segment", path.c_str());
      break;
    case PositionLoad::damaged:
      LOG_WARN("audit sink: %s is damaged (%s); shipping the whole trail again (the table keeps one row per record)",
               path.c_str(), problem.c_str());
      position = {};
      break;
    case PositionLoad::other_store:
      LOG_INFO("audit sink: %s was written for another store (%s); shipping the whole trail to %s", path.c_str(),
               problem.c_str(), store_.c_str());
      position = {};
      break;
  }
  cursor_ = SinkCursor(config_.directory, position);
  thread_ = std::thread([this] { run(); });
}

void Sink::stop(std::chrono::milliseconds final_attempt) {
  if (!thread_.joinable()) return;
  const auto deadline = std::chrono::steady_clock::now() + final_attempt;
  {
    std::unique_lock lock(mutex_);
    stop_requested_ = true;
    final_deadline_ = deadline;
    wake_.notify_all();
    // A server that stopped answering mid-COPY would hold the thread in libpq:
    // cutting the socket makes that call fail at once.
    if (!wake_.wait_until(lock, deadline + kStopSlack, [this] { return finished_; }) && socket_ >= 0) {
      LOG_WARN("audit sink: %s did not answer in time at shutdown; giving up", destination().c_str());
      ::shutdown(socket_, SHUT_RDWR);
    }
  }
  thread_.join();
  LOG_INFO("audit sink: %llu records shipped (%llu new to the table)", ull(stats_.shipped.load()),
           ull(stats_.inserted.load()));
}

bool Sink::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return wake_.wait_for(lock, timeout, [this] { return stop_requested_; });
}

void Sink::run() {
  core::set_log_shard(-1);
  std::chrono::milliseconds backoff = kFirstBackoff;
  std::string problem;
  while (true) {
    {
      std::lock_guard lock(mutex_);
      if (stop_requested_) break;
    }
    bool failed = false;
    const bool busy = step(kConnectTimeout, failed, problem);
    if (failed) {
      note_failure(problem);
      if (wait(backoff)) break;
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxBackoff);
      continue;
    }
    backoff = kFirstBackoff;
    if (!busy && wait(sink_.interval)) break;
  }
  // Stopping: the writer has written its last record; ship what is left, bounded.
  std::chrono::steady_clock::time_point deadline;
  {
    std::lock_guard lock(mutex_);
    deadline = final_deadline_;
  }
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    bool failed = false;
    const bool busy = step(std::min(left, kConnectTimeout), failed, problem);
    if (failed) {
      note_failure(problem);
      break;
    }
    if (!busy) break;
  }
  disconnect();
  std::lock_guard lock(mutex_);
  finished_ = true;
  wake_.notify_all();
}

bool Sink::step(std::chrono::seconds connect_timeout, bool& failed, std::string& problem) {
  const DurableEnd durable = durable_end_();
  SinkCursor::Batch batch;
  std::string read_problem;
  if (!cursor_.next(durable, sink_.batch_records, batch, read_problem)) {
    failed = true;
    problem = "cannot read the trail: " + read_problem;
    return false;
  }
  if (batch.lines.empty()) {
    if (cursor_.position() != persisted_ && !cursor_.position().segment.empty()) persist_position();
    return false;
  }
  if (conn_ == nullptr && !connect(connect_timeout, problem)) {
    failed = true;
    problem = "cannot ship to " + destination() + ": " + problem;
    return false;
  }
  const uint64_t first_n = record_number(batch.lines.front().text);
  if (!ship_batch(batch, problem)) {
    failed = true;
    problem = "cannot ship to " + destination() + ": " + problem;
    disconnect();  // a fresh connection next time: this one may be in any state
    return false;
  }
  stats_.shipped.fetch_add(batch.lines.size(), std::memory_order_relaxed);
  cursor_.advance(batch);
  persist_position();
  if (failing_) {
    failing_ = false;
    const uint64_t behind = first_n != 0 && durable.last_n >= first_n ? durable.last_n - first_n + 1 : 0;
    LOG_INFO("audit sink: shipping again, %llu records behind", ull(behind));
  }
  return true;
}

void Sink::note_failure(const std::string& problem) {
  stats_.failures.fetch_add(1, std::memory_order_relaxed);
  if (!failing_) {
    failing_ = true;
    LOG_WARN("audit sink: %s; retrying", problem.c_str());
  } else {
    LOG_DEBUG("audit sink: %s; retrying", problem.c_str());
  }
}

void Sink::persist_position() {
  std::string problem;
  if (!save_sink_position(config_.directory, store_, cursor_.position(), problem)) {
    if (!position_warned_)
      LOG_WARN(
          "audit sink: cannot save the position (%s); after a restart the sink ships again from the last saved "
          "one",
          problem.c_str());
    position_warned_ = true;
    return;
  }
  position_warned_ = false;
  persisted_ = cursor_.position();
}

bool Sink::connect(std::chrono::seconds timeout, std::string& problem) {
  const std::string port = std::to_string(sink_.port);
  // libpq takes at least 2 s; the writer's stop already bounds the final attempt.
  const std::string connect_timeout = std::to_string(std::max<int64_t>(timeout.count(), 2));
  std::vector<const char*> keys = {"host",
                                   "port",
                                   "dbname",
                                   "user",
                                   "sslmode",
                                   "connect_timeout",
                                   "application_name",
                                   "client_encoding",
                                   "keepalives",
                                   "keepalives_idle",
                                   "keepalives_interval",
                                   "keepalives_count",
                                   "tcp_user_timeout"};
  std::vector<const char*> values = {sink_.host.c_str(),
                                     port.c_str(),
                                     sink_.database.c_str(),
                                     sink_.user.c_str(),
                                     sink_.sslmode.c_str(),
                                     connect_timeout.c_str(),
                                     "sluice audit sink",
                                     "UTF8",
                                     "1",
                                     "10",
                                     "5",
                                     "3",
                                     "30000"};
  if (!sink_.password.empty()) {
    keys.push_back("password");
    values.push_back(sink_.password.reveal().c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* conn = PQconnectdbParams(keys.data(), values.data(), 0);
  if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) {
    problem = conn == nullptr ? "out of memory" : one_line(PQerrorMessage(conn));
    if (conn != nullptr) PQfinish(conn);
    return false;
  }
  // "relation already exists, skipping" and the like: not for stderr.
  PQsetNoticeProcessor(
      conn, [](void*, const char* message) { LOG_DEBUG("audit sink: server notice: %s", one_line(message).c_str()); },
      nullptr);
  char* quoted = PQescapeIdentifier(conn, sink_.table.c_str(), sink_.table.size());
  char* session_index = PQescapeIdentifier(conn, (sink_.table + "_session_idx").c_str(), sink_.table.size() + 12);
  char* ts_index = PQescapeIdentifier(conn, (sink_.table + "_ts_idx").c_str(), sink_.table.size() + 7);
  if (quoted == nullptr || session_index == nullptr || ts_index == nullptr) {
    problem = one_line(PQerrorMessage(conn));
    for (char* p : {quoted, session_index, ts_index})
      if (p != nullptr) PQfreemem(p);
    PQfinish(conn);
    return false;
  }
  const std::string table = quoted;
  const std::string create = "CREATE TABLE IF NOT EXISTS " + table +
                             " (gateway text NOT NULL, segment text NOT NULL, line_offset bigint NOT NULL, "
                             "n bigint NOT NULL, ts timestamptz, type text NOT NULL, session text, "
                             "record jsonb NOT NULL, PRIMARY KEY (gateway, segment, line_offset));\n"
                             "CREATE INDEX IF NOT EXISTS " +
                             std::string(session_index) + " ON " + table +
                             " (session);\n"
                             "CREATE INDEX IF NOT EXISTS " +
                             std::string(ts_index) + " ON " + table + " (ts);";
  for (char* p : {quoted, session_index, ts_index}) PQfreemem(p);
  // Only when missing: CREATE ... IF NOT EXISTS wants CREATE on the schema even when
  // the table exists, and a role that may only INSERT into it must work too.
  const char* name = table.c_str();
  PGresult* result = PQexecParams(conn, "SELECT to_regclass($1) IS NOT NULL", 1, nullptr, &name, nullptr, nullptr, 0);
  bool ready = PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1;
  const bool exists = ready && std::strcmp(PQgetvalue(result, 0, 0), "t") == 0;
  if (!ready) problem = "cannot look for table " + sink_.table + ": " + one_line(PQresultErrorMessage(result));
  PQclear(result);
  if (ready && !exists) {
    result = PQexec(conn, create.c_str());
    ready = PQresultStatus(result) == PGRES_COMMAND_OK;
    if (!ready) problem = "cannot create table " + sink_.table + ": " + one_line(PQresultErrorMessage(result));
    PQclear(result);
  }
  if (!ready) {
    PQfinish(conn);
    return false;
  }
  insert_sql_ = "INSERT INTO " + table +
                " (gateway, segment, line_offset, n, ts, type, session, record)"
                " SELECT $1, segment, line_offset, (r->>'n')::bigint, (r->>'ts')::timestamptz, r->>'type',"
                " r->>'session', r FROM (SELECT segment, line_offset, record::jsonb AS r FROM sluice_sink_batch) AS b"
                " ON CONFLICT (gateway, segment, line_offset) DO NOTHING";
  conn_ = conn;
  std::lock_guard lock(mutex_);
  socket_ = PQsocket(conn_);
  return true;
}

void Sink::disconnect() {
  if (conn_ == nullptr) return;
  {
    std::lock_guard lock(mutex_);
    socket_ = -1;
  }
  PQfinish(conn_);
  conn_ = nullptr;
}

bool Sink::ship_batch(const SinkCursor::Batch& batch, std::string& problem) {
  uint64_t inserted = 0;
  switch (ship(batch.segment, batch.lines, inserted, problem)) {
    case Shipped::ok:
      stats_.inserted.fetch_add(inserted, std::memory_order_relaxed);
      return true;
    case Shipped::failed:
      return false;
    case Shipped::bad_record:
      break;
  }
  // Some record's content was refused (it is not what the writer writes: damage).
  // One by one, so only that record stays out of the table.
  for (const SinkCursor::Line& line : batch.lines) {
    inserted = 0;
    std::string reason;
    switch (ship(batch.segment, {line}, inserted, reason)) {
      case Shipped::ok:
        stats_.inserted.fetch_add(inserted, std::memory_order_relaxed);
        break;
      case Shipped::failed:
        problem = reason;
        return false;
      case Shipped::bad_record:
        stats_.skipped.fetch_add(1, std::memory_order_relaxed);
        LOG_WARN(
            "audit sink: the central table refused the record at %s byte %llu (%s); not shipped, the local "
            "trail keeps it",
            batch.segment.c_str(), ull(line.offset), reason.c_str());
        break;
    }
  }
  return true;
}

Sink::Shipped Sink::ship(const std::string& segment, const std::vector<SinkCursor::Line>& lines, uint64_t& inserted,
                         std::string& problem) {
  bool in_transaction = false;
  // Runs one command; on failure fills `problem` and tells a content error apart.
  auto fail = [&](PGresult* result, const char* what) {
    const char* field = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    const std::string sqlstate = field != nullptr ? field : "";
    problem =
        std::string(what) + ": " + one_line(result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn_));
    if (result != nullptr) PQclear(result);
    // Class 22 (data exception) and 23 (integrity): this batch's content, not the server.
    const bool content = sqlstate.starts_with("22") || sqlstate.starts_with("23");
    if (in_transaction && PQstatus(conn_) == CONNECTION_OK) PQclear(PQexec(conn_, "ROLLBACK"));
    return content && PQstatus(conn_) == CONNECTION_OK ? Shipped::bad_record : Shipped::failed;
  };
  PGresult* result = PQexec(conn_, "BEGIN");
  if (PQresultStatus(result) != PGRES_COMMAND_OK) return fail(result, "BEGIN");
  PQclear(result);
  in_transaction = true;
  result = PQexec(conn_,
                  "CREATE TEMP TABLE sluice_sink_batch (segment text, line_offset bigint, record text) ON COMMIT DROP");
  if (PQresultStatus(result) != PGRES_COMMAND_OK) return fail(result, "CREATE TEMP TABLE");
  PQclear(result);
  result = PQexec(conn_, "COPY sluice_sink_batch FROM STDIN");
  if (PQresultStatus(result) != PGRES_COPY_IN) return fail(result, "COPY");
  PQclear(result);
  std::string data;
  data.reserve(kCopyChunkBytes + 4096);
  bool sent = true;
  for (const SinkCursor::Line& line : lines) {
    data += segment;
    data += '\t';
    data += std::to_string(line.offset);
    data += '\t';
    append_copy_text(data, line.text);
    data += '\n';
    if (data.size() >= kCopyChunkBytes) {
      sent = PQputCopyData(conn_, data.data(), static_cast<int>(data.size())) == 1;
      data.clear();
      if (!sent) break;
    }
  }
  if (sent && !data.empty()) sent = PQputCopyData(conn_, data.data(), static_cast<int>(data.size())) == 1;
  if (!sent || PQputCopyEnd(conn_, nullptr) != 1) return fail(nullptr, "COPY");
  result = PQgetResult(conn_);
  const bool copied = PQresultStatus(result) == PGRES_COMMAND_OK;
  for (PGresult* more = PQgetResult(conn_); more != nullptr; more = PQgetResult(conn_)) PQclear(more);
  if (!copied) return fail(result, "COPY");
  PQclear(result);
  const char* gateway = sink_.gateway.c_str();
  result = PQexecParams(conn_, insert_sql_.c_str(), 1, nullptr, &gateway, nullptr, nullptr, 0);
  if (PQresultStatus(result) != PGRES_COMMAND_OK) return fail(result, "INSERT");
  inserted = parse_offset(PQcmdTuples(result)).value_or(0);
  PQclear(result);
  result = PQexec(conn_, "COMMIT");
  if (PQresultStatus(result) != PGRES_COMMAND_OK) return fail(result, "COMMIT");
  PQclear(result);
  return Shipped::ok;
}

}  // namespace sluice::audit
