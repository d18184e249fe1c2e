// The bytes waiting to be sent on one socket, in order.
//
// Segments either point into pooled receive buffers (forwarded frames, zero copy)
// or own bytes sluice generated (auth replies, errors). Invariants:
// - pooled segments hold one reference on their buffer until popped;
// - at most one send is in flight; the segments it covers stay untouched until
//   its completion is applied with consume();
// - queued_bytes() is the sum of unsent segment bytes; buffers_held() counts the
//   pooled segments. Producers check over_limit() to apply backpressure: this
//   queue never grows past the limit by more than one receive buffer's worth.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <span>

#include "core/buffer_pool.h"

namespace sluice::core {

class OutQueue {
 public:
  static constexpr int kMaxIovecs = 64;
  static constexpr uint32_t kCopyChunk = 16 * 1024;

  OutQueue(BufferPool* pool, uint32_t limit_bytes) : pool_(pool), limit_bytes_(limit_bytes) {}
  ~OutQueue() { clear(); }
  OutQueue(const OutQueue&) = delete;
  OutQueue& operator=(const OutQueue&) = delete;

  // Queues bytes inside a pooled buffer; adjacent slices of the same buffer merge.
  void push_buffer_slice(const uint8_t* data, uint32_t size, BufferIndex buffer);
  // Queues a copy of bytes sluice generated. Small copies are appended to the last
  // copied segment while it has room (kCopyChunk), so a stream of rewritten rows goes
  // out in few iovecs and few allocations; bytes already handed to a send never move.
  void push_copy(std::span<const uint8_t> bytes);
  // Queues a copy of `head` followed by `tail` as one segment (a message header and a
  // body held elsewhere): one allocation, no intermediate buffer.
  void push_copy(std::span<const uint8_t> head, std::span<const uint8_t> tail);

  bool empty() const { return count_ == 0; }
  uint64_t queued_bytes() const { return queued_bytes_; }
  uint32_t buffers_held() const { return buffers_held_; }
  // True when the producer side should stop reading until the queue drains.
  bool over_limit() const;
  // True when a paused producer may resume (below half the limit).
  bool below_resume_mark() const;

  // Fills iov with the unsent bytes from the head; returns the count (0 if empty).
  int prepare_iovecs(iovec* iov, int max_iov) const;
  // Applies a completed send of `bytes` bytes: pops what was fully sent.
  void consume(uint64_t bytes);
  // Drops everything (connection closing).
  void clear();

 private:
  struct Segment {
    const uint8_t* data;
    uint32_t size;
    BufferIndex buffer;                 // kNoBuffer when `owned` holds the bytes
    std::unique_ptr<uint8_t[]> owned;
    uint32_t capacity = 0;              // of `owned`; size <= capacity
  };
  void pop_front();
  Segment& at(uint32_t i) { return ring_[(head_ + i) & (capacity_ - 1)]; }
  const Segment& at(uint32_t i) const { return ring_[(head_ + i) & (capacity_ - 1)]; }
  void grow();

  BufferPool* pool_;
  uint32_t limit_bytes_;
  // Segments in a power-of-two ring: [head_, head_ + count_). Grows by doubling and
  // never shrinks below its high-water mark, so a steady stream allocates nothing.
  std::unique_ptr<Segment[]> ring_;
  uint32_t capacity_ = 0;
  uint32_t head_ = 0;
  uint32_t count_ = 0;
  uint32_t head_offset_ = 0;  // bytes of the head segment already sent
  uint64_t queued_bytes_ = 0;
  uint32_t buffers_held_ = 0;
};

}  // namespace sluice::core
