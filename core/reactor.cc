#include "core/reactor.h"

#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "core/log.h"

namespace sluice::core {
namespace {

constexpr int kBufferGroup = 0;

// Flags sluice asks for, best first: each shard's ring is used by its own thread only.
constexpr unsigned kPreferredFlags[] = {
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
    IORING_SETUP_SUBMIT_ALL,
    0,
};

std::string read_sysctl(const char* path) {
  std::ifstream in(path);
  std::string value;
  if (!(in >> value)) return {};
  return value;
}

std::string explain_setup_error(int error) {
  const std::string disabled = read_sysctl("/proc/sys/kernel/io_uring_disabled");
  if (error == EPERM || error == EACCES) {
    if (disabled == "2")
      return "io_uring is disabled on this host (sysctl kernel.io_uring_disabled=2); enable it with "
             "'sysctl -w kernel.io_uring_disabled=0' (sluice needs io_uring)";
    if (disabled == "1")
      return "io_uring is restricted (sysctl kernel.io_uring_disabled=1) to members of the group named in "
             "kernel.io_uring_group; run sluiced as a member of that group or set the sysctl to 0";
    return "io_uring_setup was denied (EPERM): a seccomp filter blocks it (a container runtime's default "
           "profile, or systemd SystemCallFilter=); allow io_uring_setup, io_uring_enter and io_uring_register";
  }
  if (error == ENOSYS)
    return "io_uring is not available (ENOSYS): the kernel lacks CONFIG_IO_URING or a seccomp filter "
           "hides it; sluice needs Linux 6.0 or newer with io_uring";
  if (error == ENOMEM)
    return "io_uring_setup failed with ENOMEM: raise the locked-memory limit (ulimit -l, LimitMEMLOCK=) "
           "or lower [gateway] recv_buffers_per_shard";
  return std::string("io_uring_setup failed: ") + std::strerror(error);
}

bool kernel_at_least(int want_major, int want_minor, std::string& release) {
  utsname name{};
  if (uname(&name) != 0) return true;  // cannot tell: let the probes decide
  release = name.release;
  int major = 0, minor = 0;
  if (std::sscanf(name.release, "%d.%d", &major, &minor) != 2) return true;
  return major > want_major || (major == want_major && minor >= want_minor);
}

}  // namespace

std::string KernelFeatures::summary() const {
  std::string s = "io_uring";
  s += single_issuer ? " single-issuer" : "";
  s += defer_taskrun ? " defer-taskrun" : " (no defer-taskrun: Linux < 6.1)";
  return s;
}

bool probe_kernel(KernelFeatures& features, std::string& problem) {
  std::string release;
  if (!kernel_at_least(6, 0, release)) {
    problem = "Linux " + release + " is too old: sluice needs 6.0 or newer (multishot recv with provided buffer rings)";
    return false;
  }
  io_uring ring{};
  int rc = -EINVAL;
  for (unsigned flags : kPreferredFlags) {
    io_uring_params params{};
    params.flags = flags;
    rc = io_uring_queue_init_params(8, &ring, &params);
    if (rc == 0) {
      features.single_issuer = (flags & IORING_SETUP_SINGLE_ISSUER) != 0;
      features.defer_taskrun = (flags & IORING_SETUP_DEFER_TASKRUN) != 0;
      break;
    }
    if (rc != -EINVAL) break;  // EINVAL = flag unknown here; try the next set
  }
  if (rc != 0) {
    problem = explain_setup_error(-rc);
    return false;
  }
  io_uring_probe* probe = io_uring_get_probe_ring(&ring);
  const struct {
    int op;
    const char* name;
  } required[] = {{IORING_OP_RECV, "RECV"},         {IORING_OP_SENDMSG, "SENDMSG"}, {IORING_OP_ACCEPT, "ACCEPT"},
                  {IORING_OP_CONNECT, "CONNECT"},   {IORING_OP_CLOSE, "CLOSE"},     {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
                  {IORING_OP_TIMEOUT, "TIMEOUT"},   {IORING_OP_READ, "READ"},       {IORING_OP_MSG_RING, "MSG_RING"},
                  {IORING_OP_SEND, "SEND"}};
  bool ok = probe != nullptr;
  if (probe == nullptr) problem = "cannot probe io_uring opcodes (IORING_REGISTER_PROBE failed)";
  for (const auto& r : required) {
    if (ok && !io_uring_opcode_supported(probe, r.op)) {
      problem = std::string("io_uring here lacks IORING_OP_") + r.name + ": sluice needs Linux 6.0 or newer";
      ok = false;
    }
  }
  if (probe != nullptr) io_uring_free_probe(probe);
  io_uring_queue_exit(&ring);
  return ok;
}

Reactor::~Reactor() {
  if (ring_ready_) {
    if (buf_ring_ != nullptr) io_uring_unregister_buf_ring(&ring_, kBufferGroup);
    io_uring_queue_exit(&ring_);
  }
  if (buf_ring_ != nullptr) munmap(buf_ring_, buf_ring_bytes_);
  if (buffers_ != nullptr) munmap(buffers_, buffers_bytes_);
}

bool Reactor::init(const Options& options, std::string& problem) {
  int rc = -EINVAL;
  for (unsigned flags : kPreferredFlags) {
    io_uring_params params{};
    params.flags = flags;
    params.flags |= IORING_SETUP_CQSIZE;
    params.cq_entries = options.entries * 4;  // multishot ops post many CQEs per SQE
    rc = io_uring_queue_init_params(options.entries, &ring_, &params);
    if (rc != -EINVAL) break;
  }
  if (rc != 0) {
    problem = explain_setup_error(-rc);
    return false;
  }
  ring_ready_ = true;

  buffer_size_ = options.buffer_size;
  buffer_count_ = options.buffer_count;
  buffers_bytes_ = size_t(buffer_size_) * buffer_count_;
  // Reserved, not touched: pages become resident only when the kernel fills them.
  void* mem = mmap(nullptr, buffers_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) {
    problem = std::string("cannot reserve receive buffers: ") + std::strerror(errno);
    return false;
  }
  buffers_ = static_cast<uint8_t*>(mem);
  buf_ring_bytes_ = sizeof(io_uring_buf) * buffer_count_;
  mem = mmap(nullptr, buf_ring_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    problem = std::string("cannot map the provided-buffer ring: ") + std::strerror(errno);
    return false;
  }
  buf_ring_ = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(buf_ring_);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<unsigned long>(buf_ring_);
  reg.ring_entries = buffer_count_;
  reg.bgid = kBufferGroup;
  rc = io_uring_register_buf_ring(&ring_, &reg, 0);
  if (rc != 0) {
    munmap(buf_ring_, buf_ring_bytes_);
    buf_ring_ = nullptr;
    problem = std::string("cannot register a provided-buffer ring (needs Linux 5.19+): ") + std::strerror(-rc);
    return false;
  }
  refcounts_.assign(buffer_count_, 0);
  const int mask = io_uring_buf_ring_mask(buffer_count_);
  for (uint32_t i = 0; i < buffer_count_; ++i) {
    io_uring_buf_ring_add(buf_ring_, buffers_ + size_t(i) * buffer_size_, buffer_size_, static_cast<unsigned short>(i), mask,
                          static_cast<int>(i));
  }
  io_uring_buf_ring_advance(buf_ring_, static_cast<int>(buffer_count_));
  buffers_free_ = buffer_count_;
  return true;
}

void Reactor::release(BufferIndex index) {
  if (--refcounts_[index] == 0) recycle(index);
}

void Reactor::recycle(BufferIndex index) {
  io_uring_buf_ring_add(buf_ring_, buffers_ + size_t(index) * buffer_size_, buffer_size_, static_cast<unsigned short>(index),
                        io_uring_buf_ring_mask(buffer_count_), pending_recycles_);
  ++pending_recycles_;
  ++buffers_free_;
  // Returned in batches before the next submit; publish early when many are pending so
  // the offsets never wrap past the ring.
  if (static_cast<uint32_t>(pending_recycles_) >= buffer_count_ / 2) {
    io_uring_buf_ring_advance(buf_ring_, pending_recycles_);
    pending_recycles_ = 0;
  }
}

io_uring_sqe* Reactor::next_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    // Submission queue full: hand what we have to the kernel and take a fresh entry.
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;  // non-null: after a submit the SQ has room
}

void Reactor::accept_multishot(int listen_fd, Tag tag) {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_multishot_accept(sqe, listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, tag.encode());
}

void Reactor::recv_multishot(int fd, Tag tag) { prepare_buffered_recv(fd, tag, /*multishot=*/true); }

void Reactor::recv_once(int fd, Tag tag) { prepare_buffered_recv(fd, tag, /*multishot=*/false); }

void Reactor::prepare_buffered_recv(int fd, Tag tag, bool multishot) {
  io_uring_sqe* sqe = next_sqe();
  if (multishot) io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
  else io_uring_prep_recv(sqe, fd, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = kBufferGroup;
  io_uring_sqe_set_data64(sqe, tag.encode());
}

void Reactor::sendmsg(int fd, const msghdr* message, Tag tag) {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_sendmsg(sqe, fd, message, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, tag.encode());
}

void Reactor::send(int fd, const void* data, size_t size, Tag tag) {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_send(sqe, fd, data, size, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, tag.encode());
}

void Reactor::connect(int fd, const sockaddr* address, socklen_t length, Tag tag) {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_connect(sqe, fd, address, length);
  io_uring_sqe_set_data64(sqe, tag.encode());
}

void Reactor::close(int fd) {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_close(sqe, fd);
  io_uring_sqe_set_data64(sqe, Tag{OpKind::close}.encode());
}

void Reactor::cancel(Tag target) {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_cancel64(sqe, target.encode(), 0);
  io_uring_sqe_set_data64(sqe, Tag{OpKind::cancel}.encode());
}

void Reactor::tick_after(uint32_t milliseconds) {
  tick_.tv_sec = milliseconds / 1000;
  tick_.tv_nsec = (milliseconds % 1000) * 1'000'000L;
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_timeout(sqe, &tick_, 0, 0);
  io_uring_sqe_set_data64(sqe, Tag{OpKind::tick}.encode());
}

void Reactor::read_eventfd(int fd, uint64_t* value, Tag tag) {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_read(sqe, fd, value, sizeof *value, 0);
  io_uring_sqe_set_data64(sqe, tag.encode());
}

void Reactor::msg_ring(int target_ring_fd, int32_t result, Tag tag_for_target) {
  io_uring_sqe* sqe = next_sqe();
  io_uring_prep_msg_ring(sqe, target_ring_fd, static_cast<unsigned>(result), tag_for_target.encode(), 0);
  io_uring_sqe_set_data64(sqe, Tag{OpKind::msg_sent}.encode());
}

}  // namespace sluice::core
