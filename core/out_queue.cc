#include "core/out_queue.h"

#include <algorithm>

#include <cassert>
#include <cstring>

namespace sluice::core {

void OutQueue::push_buffer_slice(const uint8_t* data, uint32_t size, BufferIndex buffer) {
  if (size == 0) return;
  assert(buffer != kNoBuffer);
  queued_bytes_ += size;
  if (count_ != 0) {
    Segment& last = at(count_ - 1);
    if (last.buffer == buffer && last.data + last.size == data) {
      last.size += size;  // contiguous with the previous slice: one iovec, one reference
      return;
    }
  }
  pool_->retain(buffer);
  ++buffers_held_;
  if (count_ == capacity_) grow();
  at(count_++) = Segment{data, size, buffer, nullptr};
}

void OutQueue::grow() {
  const uint32_t capacity = capacity_ == 0 ? 4 : capacity_ * 2;
  auto ring = std::make_unique<Segment[]>(capacity);
  for (uint32_t i = 0; i < count_; ++i) ring[i] = std::move(at(i));
  ring_ = std::move(ring);
  capacity_ = capacity;
  head_ = 0;
}

void OutQueue::push_copy(std::span<const uint8_t> bytes) { push_copy(bytes, {}); }

void OutQueue::push_copy(std::span<const uint8_t> head, std::span<const uint8_t> tail) {
  const size_t size = head.size() + tail.size();
  if (size == 0) return;
  uint8_t* to = nullptr;
  if (count_ != 0) {
    // Append to the last copied segment when it has room. A send in flight covers
    // only the bytes it was given; the buffer does not move, so appending is safe.
    Segment& last = at(count_ - 1);
    if (last.owned && last.capacity - last.size >= size) {
      to = last.owned.get() + last.size;
      last.size += static_cast<uint32_t>(size);
    }
  }
  if (to == nullptr) {
    const uint32_t capacity = static_cast<uint32_t>(std::max<size_t>(size, size < kCopyChunk / 4 ? kCopyChunk : 0));
    auto owned = std::make_unique_for_overwrite<uint8_t[]>(capacity);
    to = owned.get();
    if (count_ == capacity_) grow();
    at(count_++) = Segment{to, static_cast<uint32_t>(size), kNoBuffer, std::move(owned), capacity};
  }
  if (!head.empty()) std::memcpy(to, head.data(), head.size());
  if (!tail.empty()) std::memcpy(to + head.size(), tail.data(), tail.size());
  queued_bytes_ += size;
}

bool OutQueue::over_limit() const {
  if (queued_bytes_ >= limit_bytes_) return true;
  // Each held pooled buffer pins a whole receive buffer, however small the slice.
  const size_t buffer_size = pool_ ? pool_->buffer_size() : 0;
  return buffer_size != 0 && uint64_t{buffers_held_} * buffer_size >= limit_bytes_;
}

bool OutQueue::below_resume_mark() const {
  const size_t buffer_size = pool_ ? pool_->buffer_size() : 0;
  const uint64_t held = buffer_size != 0 ? uint64_t{buffers_held_} * buffer_size : 0;
  return queued_bytes_ < limit_bytes_ / 2 && held < limit_bytes_ / 2 + buffer_size;
}

int OutQueue::prepare_iovecs(iovec* iov, int max_iov) const {
  int count = 0;
  uint32_t skip = head_offset_;
  for (uint32_t i = 0; i < count_; ++i) {
    const Segment& segment = at(i);
    if (count == max_iov) break;
    iov[count].iov_base = const_cast<uint8_t*>(segment.data + skip);
    iov[count].iov_len = segment.size - skip;
    skip = 0;
    ++count;
  }
  return count;
}

void OutQueue::consume(uint64_t bytes) {
  assert(bytes <= queued_bytes_);
  queued_bytes_ -= bytes;
  while (bytes > 0) {
    Segment& front = at(0);
    const uint32_t left = front.size - head_offset_;
    if (bytes < left) {
      head_offset_ += static_cast<uint32_t>(bytes);
      return;
    }
    bytes -= left;
    pop_front();
  }
}

void OutQueue::pop_front() {
  Segment& front = at(0);
  if (front.buffer != kNoBuffer) {
    pool_->release(front.buffer);
    --buffers_held_;
  }
  front.owned.reset();
  head_ = (head_ + 1) & (capacity_ - 1);
  --count_;
  head_offset_ = 0;
}

void OutQueue::clear() {
  while (count_ != 0) pop_front();
  queued_bytes_ = 0;
}

}  // namespace sluice::core
