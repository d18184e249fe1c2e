// One shard's io_uring: the ring, its provided receive buffers, and the operations
// the gateway needs (multishot accept and recv, sendmsg, connect, close, cancel,
// a periodic tick, an eventfd wake-up and MSG_RING messages between shards).
//
// Completions carry a Tag in user_data: the op kind, a connection slot, which side
// of the connection, and the slot's generation, so a completion that arrives after
// its slot was reused is recognised as stale and dropped by the owner.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/buffer_pool.h"

namespace sluice::core {

enum class OpKind : uint8_t {
  none = 0,
  accept,        // multishot accept on a listener (slot = listener index)
  recv,          // multishot recv with provided buffers
  send,          // sendmsg of an OutQueue's head
  connect,       // connect to a backend
  close,         // close(2) of a socket; result ignored
  cancel,        // async cancel of another op; result ignored
  tick,          // the periodic timeout driving the timer wheel
  wake,          // read of the shard's eventfd (shutdown, reload)
  audit_wake,    // read of the shard's audit eventfd (the audit writer made progress)
  msg_sent,      // our MSG_RING to another shard completed
  cross_shard,   // a message from another shard (posted by MSG_RING)
  cancel_connect,  // connect of a CancelRequest forwarder (slot = forwarder index)
  cancel_send,     // send of a CancelRequest forwarder
  cancel_wait,     // recv on a forwarder's socket: PostgreSQL closes it once the cancel is processed
};

// Layout of user_data: [63..58 op][57..56 side][55..32 slot][31..0 generation].
struct Tag {
  OpKind op = OpKind::none;
  uint8_t side = 0;       // 0..3, meaning chosen by the owner (client/backend)
  uint32_t slot = 0;      // < 2^24
  uint32_t generation = 0;

  static constexpr uint32_t kMaxSlots = 1u << 24;
  uint64_t encode() const {
    return (uint64_t{static_cast<uint8_t>(op)} << 58) | (uint64_t{side & 3u} << 56) |
           (uint64_t{slot & (kMaxSlots - 1)} << 32) | generation;
  }
  static Tag decode(uint64_t v) {
    return Tag{static_cast<OpKind>(v >> 58), static_cast<uint8_t>((v >> 56) & 3), static_cast<uint32_t>((v >> 32) & (kMaxSlots - 1)),
               static_cast<uint32_t>(v)};
  }
};

struct Completion {
  Tag tag;
  int32_t result;
  uint32_t flags;
  bool more() const { return (flags & IORING_CQE_F_MORE) != 0; }
  bool has_buffer() const { return (flags & IORING_CQE_F_BUFFER) != 0; }
  BufferIndex buffer() const { return static_cast<BufferIndex>(flags >> IORING_CQE_BUFFER_SHIFT); }
};

// What the kernel offers; filled by probe_kernel().
struct KernelFeatures {
  bool defer_taskrun = false;
  bool single_issuer = false;
  std::string summary() const;
};

// Checks that io_uring works here with every feature sluice requires. On failure
// returns false and sets `problem` to one actionable sentence (which sysctl,
// seccomp, kernel version).
bool probe_kernel(KernelFeatures& features, std::string& problem);

class Reactor final : public BufferPool {
 public:
  struct Options {
    unsigned entries = 4096;
    uint32_t buffer_size = 16 * 1024;
    uint32_t buffer_count = 4096;  // power of two
  };
  Reactor() = default;
  ~Reactor() override;
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // Returns false with `problem` set if the ring or the buffer ring cannot be created.
  bool init(const Options& options, std::string& problem);
  int ring_fd() const { return ring_.ring_fd; }

  // --- BufferPool ---
  void retain(BufferIndex index) override { ++refcounts_[index]; }
  void release(BufferIndex index) override;
  size_t buffer_size() const override { return buffer_size_; }
  const uint8_t* buffer_data(BufferIndex index) const { return buffers_ + size_t(index) * buffer_size_; }
  uint32_t buffers_free() const { return buffers_free_; }

  // --- operations (queued; submitted by wait()) ---
  void accept_multishot(int listen_fd, Tag tag);
  void recv_multishot(int fd, Tag tag);
  // One receive into a provided buffer (no IORING_CQE_F_MORE): nothing is armed on the
  // socket once its completion arrives.
  void recv_once(int fd, Tag tag);
  void sendmsg(int fd, const msghdr* message, Tag tag);
  void send(int fd, const void* data, size_t size, Tag tag);
  void connect(int fd, const sockaddr* address, socklen_t length, Tag tag);
  void close(int fd);
  void cancel(Tag target);
  void tick_after(uint32_t milliseconds);
  void read_eventfd(int fd, uint64_t* value, Tag tag);
  void msg_ring(int target_ring_fd, int32_t result, Tag tag_for_target);

  // Submits queued operations, waits for at least one completion (or the tick),
  // and hands every completion to `handle`. A completion's provided buffer holds one
  // reference owned by the caller of handle for the duration of the call.
  template <typename Handler>
  void wait(Handler&& handle);

 private:
  io_uring_sqe* next_sqe();
  // A receive into a buffer of the shard's provided group.
  void prepare_buffered_recv(int fd, Tag tag, bool multishot);
  void recycle(BufferIndex index);

  io_uring ring_{};
  bool ring_ready_ = false;
  io_uring_buf_ring* buf_ring_ = nullptr;
  size_t buf_ring_bytes_ = 0;
  uint8_t* buffers_ = nullptr;
  size_t buffers_bytes_ = 0;
  uint32_t buffer_size_ = 0;
  uint32_t buffer_count_ = 0;
  uint32_t buffers_free_ = 0;
  int pending_recycles_ = 0;
  std::vector<uint16_t> refcounts_;
  __kernel_timespec tick_{};
};

template <typename Handler>
void Reactor::wait(Handler&& handle) {
  if (pending_recycles_ > 0) {
    io_uring_buf_ring_advance(buf_ring_, pending_recycles_);
    pending_recycles_ = 0;
  }
  io_uring_submit_and_wait(&ring_, 1);
  io_uring_cqe* cqe = nullptr;
  unsigned head = 0;
  unsigned seen = 0;
  // Copy completions out first: handlers queue new SQEs, and the CQ ring must be
  // advanced before a handler could overflow it.
  Completion batch[256];
  int count = 0;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    batch[count++] = Completion{Tag::decode(cqe->user_data), cqe->res, cqe->flags};
    ++seen;
    if (count == 256) break;
  }
  io_uring_cq_advance(&ring_, seen);
  for (int i = 0; i < count; ++i) {
    const Completion& c = batch[i];
    if (c.has_buffer()) {
      --buffers_free_;
      refcounts_[c.buffer()] = 1;  // the handler's reference
      handle(c);
      release(c.buffer());
    } else {
      handle(c);
    }
  }
}

}  // namespace sluice::core
