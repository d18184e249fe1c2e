// Receive buffers shared between the kernel and the connections of one shard.
//
// Ownership: a buffer the kernel filled (a recv completion) belongs to the shard's
// connections from that completion until its reference count drops to zero, which
// happens when every output segment pointing into it has been sent (or dropped).
// Then it goes back to the kernel's provided-buffer ring. A buffer is never shared
// across shards.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice::core {

// Identifies one pooled buffer; kNoBuffer marks bytes not owned by a pool.
using BufferIndex = int32_t;
inline constexpr BufferIndex kNoBuffer = -1;

class BufferPool {
 public:
  virtual ~BufferPool() = default;
  virtual void retain(BufferIndex index) = 0;
  // Drops one reference; at zero the buffer is recycled.
  virtual void release(BufferIndex index) = 0;
  virtual size_t buffer_size() const = 0;
};

// Bytes received from a peer. While a handler runs, `data` is valid; a handler that
// keeps a pointer into it must retain(buffer) (OutQueue::push_buffer_slice does).
struct Chunk {
  const uint8_t* data = nullptr;
  uint32_t size = 0;
  BufferIndex buffer = kNoBuffer;
};

}  // namespace sluice::core
