// The audit writer: one thread per process that collects record bodies from every
// shard's ring, chains them (chain.h), appends them to the open segment file, makes
// them durable with one fdatasync per batch (group commit), and tells each shard how
// far its records are durable. It also rotates segments and applies retention.
//
// Durability contract: ShardLog::durable(ticket) becomes true only after the record
// with that ticket, and every record before it from any shard, was written and
// fdatasync'ed. When writing fails (ENOSPC, EIO, a read-only file system) the writer
// keeps every record in memory, reports failing(), and retries until it succeeds;
// nothing is dropped. A failed fdatasync is treated like a failed write: the segment
// is cut back to its last synced size and the records are written again, because
// after such a failure the kernel may have dropped the dirty pages.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "audit/chain.h"
#include "audit/config.h"
#include "audit/ring.h"

namespace sluice::audit {

// What the writer has done, for logs, metrics and benchmarks.
struct WriterStats {
  std::atomic<uint64_t> records{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> fsyncs{0};
  std::atomic<uint64_t> write_failures{0};
};

class Writer;

// Where the durable part of the trail ends: every record up to `bytes` into `segment`
// (a segment file name), and every record of the older segments, was written and
// fdatasync'ed. Readers that must not see more (the sink, sink.h) stop there.
struct DurableEnd {
  std::string segment;  // the open segment; "" before the writer opened one
  uint64_t bytes = 0;   // its synced size, always at the end of a complete line
  uint64_t last_n = 0;  // the number of the last durable record (0: none yet)
};

// The producer side of one shard's ring. Used only by that shard's thread, except
// for the atomics the writer publishes.
class ShardLog {
 public:
  // Queues a record body; returns its ticket (1, 2, ... per shard). Never fails: when
  // the ring is full the body waits here, in order, and congested() is true until
  // pump() moves it into the ring; the shard should stop reading clients meanwhile.
  uint64_t append(std::string body);
  // Every record with a ticket up to this one is durable.
  uint64_t durable_ticket() const { return durable_.load(std::memory_order_acquire); }
  bool durable(uint64_t ticket) const { return ticket <= durable_ticket(); }
  bool strict() const;
  // The writer cannot write the directory: refuse new statements (53100).
  bool failing() const;
  bool congested() const { return !overflow_.empty(); }
  // Ask the writer to write this shard's wake fd the next time it makes progress.
  void request_wake() {
    wake_requested_.store(true, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with the writer's fence in wake_shards()
  }
  // Moves waiting bodies into the ring as room allows.
  void pump();
  uint32_t max_param_bytes() const;

 private:
  friend class Writer;
  ShardLog(Writer& writer, size_t ring_bytes, int wake_fd) : writer_(writer), ring_(ring_bytes), wake_fd_(wake_fd) {}
  bool push(std::string& body);

  Writer& writer_;
  RecordRing ring_;
  const int wake_fd_;                    // the shard's eventfd
  std::deque<std::string> overflow_;     // bodies that did not fit in the ring yet
  uint64_t appended_ = 0;                // tickets handed out
  uint64_t consumed_ = 0;                // writer thread only: records taken from the ring
  std::atomic<uint64_t> durable_{0};
  std::atomic<bool> wake_requested_{false};
};

class Writer {
 public:
  // Creates the directory if needed, locks it, recovers the chain's end from the
  // newest segment (cutting a torn final line) and opens a new segment. nullptr and
  // `problem` when the directory cannot be used.
  static std::unique_ptr<Writer> open(const Config& config, std::string& problem);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // One per shard, before start(). wake_fd: an eventfd the writer writes to when the
  // shard asked to be woken (ShardLog::request_wake).
  ShardLog& add_shard(int wake_fd);
  // Writes the `start` record and starts the thread.
  void start();
  // Writes everything queued and a `stop` record, syncs, and joins the thread.
  void stop(const std::string& reason);

  const Config& config() const { return config_; }
  bool failing() const { return failing_.load(std::memory_order_acquire); }
  const WriterStats& stats() const { return stats_; }
  // Bytes cut from a torn final line at open (0 if none).
  uint64_t torn_bytes() const { return torn_bytes_; }
  // Where the durable records end. Thread-safe; updated after every fdatasync.
  DurableEnd durable_end() const;
  // The producers call this after pushing: wakes the thread if it sleeps.
  void notify();

 private:
  explicit Writer(const Config& config) : config_(config) {}
  bool recover(std::string& problem);
  bool open_segment(std::string& problem);
  void run();
  // Takes records from every ring into pending_ (chained). Returns how many.
  size_t collect();
  void chain(std::string_view body);
  // Writes and syncs pending_; false on failure (pending_ kept).
  bool flush_pending();
  void publish_durable();
  void publish_durable_end();
  void wake_shards();
  void maybe_rotate();
  void apply_retention();
  void append_own_record(const std::string& body);
  // Sleeps until timeout, stop(), or (when woken_by_records) a producer's notify().
  void sleep_until_work(std::chrono::milliseconds timeout, bool woken_by_records = true);

  const Config config_;
  int lock_fd_ = -1;
  int directory_fd_ = -1;
  int segment_fd_ = -1;
  std::string segment_name_;
  uint64_t segment_synced_bytes_ = 0;   // the segment's size as of the last good fdatasync
  std::chrono::steady_clock::time_point segment_opened_;
  std::chrono::steady_clock::time_point rotation_retry_at_;  // after a failed rotation
  uint64_t next_n_ = 1;
  Hash prev_{};
  uint64_t torn_bytes_ = 0;

  std::vector<std::unique_ptr<ShardLog>> shards_;
  std::string pending_;                  // chained lines not yet durable
  std::vector<uint64_t> pending_consumed_;  // per shard: consumed_ once pending_ is durable

  std::thread thread_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> sleeping_{false};
  std::atomic<bool> failing_{false};
  int wake_fd_ = -1;  // the writer's own eventfd
  std::string stop_reason_;
  std::chrono::steady_clock::time_point last_retention_{};
  WriterStats stats_;
  mutable std::mutex durable_end_mutex_;  // guards durable_end_ only, held for a copy
  DurableEnd durable_end_;
};

}  // namespace sluice::audit
