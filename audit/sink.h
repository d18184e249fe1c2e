// The central sink (docs/audit.md, "Central store"): a thread that ships the durable
// records of the local trail to a PostgreSQL table shared by many gateways. Off the
// data path: it reads the segment files, never the shards' rings, and blocking libpq
// is fine here. At least once: a batch is COPYed and inserted with ON CONFLICT DO
// NOTHING on (gateway, segment, line_offset), then the position is persisted, so a
// crash between the two ships the batch again and the table keeps one row per record.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "audit/config.h"
#include "audit/writer.h"

struct pg_conn;  // libpq's PGconn, kept out of this header

namespace sluice::audit {

// Where shipping goes on: the next byte to ship is `offset` into `segment`.
struct SinkPosition {
  std::string segment;  // a segment file name; "" = from the oldest segment
  uint64_t offset = 0;  // always the start of a line
  bool operator==(const SinkPosition&) const = default;
};

// The position file in the audit directory. Its name is no segment name, so the
// writer, the reader and retention never take it for one.
inline constexpr const char* kSinkPositionFile = "sink-position";

// Appends `value` as one field of COPY's text format: backslash, tab, newline and
// carriage return escaped (the only bytes that format gives a meaning to inside a
// UTF-8 field; the rest, "\." included once its backslash is doubled, pass as is).
void append_copy_text(std::string& out, std::string_view value);

enum class PositionLoad : uint8_t {
  found,        // `position` holds what the file says
  missing,      // no file: ship from the oldest segment
  damaged,      // unreadable or not ours: `problem` says why; ship from the oldest segment
  other_store,  // written for another store (host, database, table or gateway changed)
};
// `store` names the destination (store_name()): a position is only good for the store
// it was written for.
PositionLoad load_sink_position(const std::string& directory, const std::string& store, SinkPosition& position,
                                std::string& problem);
// Writes the file atomically and durably (temp file, fsync, rename, fsync of the
// directory). False, with `problem`, on failure; the old file is then untouched.
bool save_sink_position(const std::string& directory, const std::string& store, const SinkPosition& position,
                        std::string& problem);
// "HOST:PORT/DATABASE table T gateway G".
std::string store_name(const SinkConfig& config);

// Reads the complete, durable lines of a trail from a position, in record order, one
// segment at a time. Segments older than the durable end's are closed and read to
// their last newline; the open one only up to the durable end.
class SinkCursor {
 public:
  struct Line {
    uint64_t offset;        // of the line's first byte in its segment
    std::string_view text;  // without the newline; points into the batch's bytes
  };
  struct Batch {
    std::string segment;      // the lines' segment file name
    std::vector<Line> lines;  // in file order; empty: nothing to ship now
    uint64_t end = 0;         // offset just past the last line's newline
    std::string bytes;        // what the lines point into
  };

  SinkCursor(std::string directory, SinkPosition start)
      : directory_(std::move(directory)), position_(std::move(start)) {}

  // Up to max_records lines (and about kMaxBatchBytes) from position(), moving past
  // finished closed segments (position() changes then) and past removed ones (with a
  // warning). False, with `problem`, when the directory or a segment cannot be read.
  bool next(const DurableEnd& durable, size_t max_records, Batch& batch, std::string& problem);
  // The batch was shipped: position() moves past it.
  void advance(const Batch& batch) { position_ = {batch.segment, batch.end}; }
  const SinkPosition& position() const { return position_; }

  static constexpr size_t kMaxBatchBytes = size_t{16} << 20;

 private:
  enum class Read : uint8_t {
    ok,       // batch holds the lines found (maybe none; then `partial` bytes end the file)
    removed,  // the file is gone
    skipped,  // a line too long to be a record was skipped: position_ moved past it
    error,    // `problem` says why
  };
  // Reads the complete lines of `path` in [position_.offset, limit) into batch.
  Read read_lines(const std::string& path, uint64_t limit, size_t max_records, Batch& batch, uint64_t& partial,
                  std::string& problem);

  std::string directory_;
  SinkPosition position_;
};

// What the sink has done, for logs and tests.
struct SinkStats {
  std::atomic<uint64_t> shipped{0};   // lines sent in committed batches
  std::atomic<uint64_t> inserted{0};  // of those, new to the table (the rest were there already)
  std::atomic<uint64_t> failures{0};  // failed attempts (connect, COPY, commit)
  std::atomic<uint64_t> skipped{0};   // lines the table refused on their own (logged)
};

class Sink {
 public:
  // durable_end: where the writer's durable records end (Writer::durable_end).
  Sink(const Config& config, std::function<DurableEnd()> durable_end);
  ~Sink();
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  void start();
  // After the writer stopped: ships what is left for at most about `final_attempt`,
  // then ends the thread.
  void stop(std::chrono::milliseconds final_attempt = std::chrono::seconds(5));

  // "HOST:PORT/DATABASE", as the log names the store.
  std::string destination() const;
  const SinkStats& stats() const { return stats_; }

 private:
  enum class Shipped : uint8_t {
    ok,
    failed,      // the connection or the server failed: retry later, same batch
    bad_record,  // the server refused a record's content (SQLSTATE class 22/23)
  };

  void run();
  bool connect(std::chrono::seconds timeout, std::string& problem);
  void disconnect();
  Shipped ship(const std::string& segment, const std::vector<SinkCursor::Line>& lines, uint64_t& inserted,
               std::string& problem);
  // Ships a batch (record by record when the server refuses one); false on failure.
  bool ship_batch(const SinkCursor::Batch& batch, std::string& problem);
  // One step of work: connects if needed, ships one batch. Returns true when it
  // shipped something (more may wait), false when idle or on failure (`failed`).
  bool step(std::chrono::seconds connect_timeout, bool& failed, std::string& problem);
  void persist_position();
  void note_failure(const std::string& problem);
  // Waits up to `timeout` or until stop(); true when stopping.
  bool wait(std::chrono::milliseconds timeout);

  const Config config_;
  const SinkConfig& sink_;  // config_.sink
  const std::string store_;
  std::function<DurableEnd()> durable_end_;
  SinkCursor cursor_;
  SinkPosition persisted_;  // what the position file says
  bool position_warned_ = false;
  pg_conn* conn_ = nullptr;
  std::string insert_sql_;  // for the connection's quoted table name
  bool failing_ = false;    // since the last failure, not shipped yet
  SinkStats stats_;

  std::thread thread_;
  std::mutex mutex_;  // guards the fields below
  std::condition_variable wake_;
  bool stop_requested_ = false;
  bool finished_ = false;
  std::chrono::steady_clock::time_point final_deadline_{};
  int socket_ = -1;  // the connection's socket, for stop() to cut a hung final attempt
};

}  // namespace sluice::audit
