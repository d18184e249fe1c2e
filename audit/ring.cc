#include "audit/ring.h"

#include <sys/mman.h>

#include <new>

namespace sluice::audit {

RecordRing::RecordRing(size_t capacity) : capacity_(capacity), mask_(capacity - 1) {
  // Anonymous mapping: pages are committed as the ring first reaches them, so a large
  // ring sized for the longest possible record costs memory only when used.
  void* memory = mmap(nullptr, capacity_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) throw std::bad_alloc();
  data_ = static_cast<uint8_t*>(memory);
}

RecordRing::~RecordRing() {
  // Free records still passed by pointer.
  consume([](std::string_view) {}, SIZE_MAX);
  munmap(data_, capacity_);
}

// Finds room for an entry of `need` bytes (header included) at the head, writing a
// wrap marker first when the buffer's end is too close. false: the ring is too full.
bool RecordRing::reserve(size_t need, uint64_t& at) {
  const uint64_t head = head_.load(std::memory_order_relaxed);
  const size_t contiguous = capacity_ - (head & mask_);
  const size_t skip = contiguous < need ? contiguous : 0;
  const uint64_t end = head + skip + need;
  if (end - producer_tail_cache_ > capacity_) {
    producer_tail_cache_ = tail_.load(std::memory_order_acquire);
    if (end - producer_tail_cache_ > capacity_) return false;
  }
  if (skip != 0) std::memcpy(data_ + (head & mask_), &kWrapMarker, sizeof kWrapMarker);
  at = head + skip;
  return true;
}

bool RecordRing::try_push(std::string& record) {
  uint64_t at = 0;
  if (record.size() > kMaxInline) {
    if (!reserve(kHeader + sizeof(std::string*), at)) return false;
    auto* owned = new std::string(std::move(record));
    std::memcpy(data_ + (at & mask_), &kOwnedMarker, sizeof kOwnedMarker);
    std::memcpy(data_ + (at & mask_) + kHeader, &owned, sizeof owned);
    head_.store(at + kHeader + sizeof owned, std::memory_order_release);
    return true;
  }
  const size_t need = kHeader + padded(record.size());
  if (!reserve(need, at)) return false;
  const auto length = static_cast<uint32_t>(record.size());
  std::memcpy(data_ + (at & mask_), &length, sizeof length);
  std::memcpy(data_ + (at & mask_) + kHeader, record.data(), record.size());
  head_.store(at + need, std::memory_order_release);
  return true;
}

}  // namespace sluice::audit
