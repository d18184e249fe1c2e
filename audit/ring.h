// A single-producer, single-consumer ring of variable-length records: a shard's
// thread appends audit record bodies, the writer thread takes them in order. No locks:
// the producer publishes `head_` with release after writing a record, the consumer
// publishes `tail_` with release after it has copied records out.
//
// Layout invariant: records start at 8-byte aligned offsets, each as a u32 length, a
// u32 of padding, then the bytes, padded to 8. A length of kWrapMarker means "the
// rest of the buffer is unused; continue at offset 0"; kOwnedMarker means the 8 bytes
// that follow are a std::string* the consumer takes ownership of (records too long to
// copy into the ring). head_ and tail_ only grow; the offset of a position is
// position & (capacity - 1).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

namespace sluice::audit {

class RecordRing {
 public:
  // capacity: a power of two, at least 4 KiB.
  explicit RecordRing(size_t capacity);
  ~RecordRing();
  RecordRing(const RecordRing&) = delete;
  RecordRing& operator=(const RecordRing&) = delete;

  // Longest record copied into the ring; longer ones travel by pointer.
  static constexpr size_t kMaxInline = 64 * 1024;
  size_t capacity() const { return capacity_; }

  // Producer. false: not enough room now; `record` is then left untouched.
  bool try_push(std::string& record);

  // Consumer. Calls visit(std::string_view) for up to max_records records in order;
  // the view is valid only during the call. Returns the number visited.
  template <typename Visit>
  size_t consume(Visit&& visit, size_t max_records);

  bool empty() const { return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire); }

 private:
  static constexpr size_t kHeader = 8;
  static constexpr uint32_t kWrapMarker = UINT32_MAX;
  static constexpr uint32_t kOwnedMarker = UINT32_MAX - 1;
  bool reserve(size_t need, uint64_t& at);
  std::string* owned_at(uint64_t position) const {
    std::string* owned;
    std::memcpy(&owned, data_ + (position & mask_) + kHeader, sizeof owned);
    return owned;
  }
  static size_t padded(size_t length) { return (length + 7) & ~size_t{7}; }
  uint32_t length_at(uint64_t position) const {
    uint32_t length;
    std::memcpy(&length, data_ + (position & mask_), sizeof length);
    return length;
  }

  uint8_t* data_ = nullptr;
  const size_t capacity_;
  const uint64_t mask_;
  alignas(64) std::atomic<uint64_t> head_{0};  // written by the producer
  uint64_t producer_tail_cache_ = 0;            // producer's last view of tail_
  alignas(64) std::atomic<uint64_t> tail_{0};  // written by the consumer
};

template <typename Visit>
size_t RecordRing::consume(Visit&& visit, size_t max_records) {
  uint64_t tail = tail_.load(std::memory_order_relaxed);
  const uint64_t head = head_.load(std::memory_order_acquire);
  size_t visited = 0;
  while (tail != head && visited < max_records) {
    const uint32_t length = length_at(tail);
    if (length == kWrapMarker) {
      tail += capacity_ - (tail & mask_);
      continue;
    }
    if (length == kOwnedMarker) {
      std::unique_ptr<std::string> owned(owned_at(tail));
      visit(std::string_view(*owned));
      tail += kHeader + sizeof(std::string*);
    } else {
      visit(std::string_view(reinterpret_cast<const char*>(data_ + (tail & mask_) + kHeader), length));
      tail += kHeader + padded(length);
    }
    ++visited;
  }
  tail_.store(tail, std::memory_order_release);
  return visited;
}

}  // namespace sluice::audit
