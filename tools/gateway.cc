#include "tools/gateway.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <utility>

#include "core/log.h"

namespace sluice::tools {
namespace {

using core::OpKind;
using core::Tag;
using protocol::Side;

// Array index of each side of a connection; matches protocol::Side's values.
constexpr int kClient = static_cast<int>(Side::client);
constexpr int kBackend = static_cast<int>(Side::backend);
Side side_of(int index) { return static_cast<Side>(index); }
constexpr uint32_t kTickMs = 50;
constexpr uint64_t kFinishGraceMs = 2000;   // time to flush a final error before closing
constexpr int kMaxCancelForwarders = 64;

int64_t monotonic_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
}

std::string peer_name(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "client";
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}

void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace

// One client connection and its backend connection.
//
// Ops in the kernel are tracked exactly: recv_armed[s] is true exactly when a
// multishot recv on side s has not yet posted its final completion; send_in_flight[s]
// exactly when a sendmsg is in the kernel; connecting exactly when a connect is. A
// slot is freed only when none is, because the kernel may still read the iovecs and
// the buffers those ops point to.
struct Shard::Connection final : protocol::SessionHost {
  enum class Phase {
    active,      // session running
    finishing,   // session over: flushing its last bytes (bounded by finish_timer)
    tearing_down,  // sockets shut down: waiting for in-flight ops to complete
  };

  Shard& shard;
  uint32_t slot;
  uint32_t generation;
  Phase phase = Phase::active;
  int fd[2] = {-1, -1};
  bool recv_armed[2] = {false, false};
  bool recv_wanted[2] = {true, true};
  bool send_in_flight[2] = {false, false};
  bool connecting = false;
  bool peer_gone[2] = {false, false};  // EOF or error seen: never send or recv again
  bool queued_for_reap = false;
  bool waiting_for_audit = false;  // in shard.audit_waiters_
  bool counted = false;  // holds one unit of the global connection count
  msghdr message[2]{};
  iovec iov[2][16];
  uint64_t last_client_progress_tick = 0;
  uint32_t listener = 0;  // index into settings.gateway.listen
  // TLS per side (null: plaintext). With TLS, session->out(side) holds plaintext that
  // send_tls encrypts into tls[side]'s output, and the socket sees only ciphertext.
  std::unique_ptr<core::tls::Stream> tls[2];
  bool tls_direct = false;           // the client opened with a ClientHello (no SSLRequest)
  bool client_bytes_seen = false;    // direct TLS is recognised by the first byte only
  bool close_notify_queued = false;
  // Kernel TLS: the send in flight is a control record (its message lives here until done).
  bool control_in_flight[2] = {false, false};
  core::tls::RecordTypeControl record_type_control[2];
  core::TimerNode stall_timer;
  core::TimerNode finish_timer;
  std::unique_ptr<protocol::Session> session;

  Connection(Shard& s, uint32_t sl, uint32_t gen) : shard(s), slot(sl), generation(gen) {
    stall_timer.on_expire = [this] { on_stall_timer(); };
    finish_timer.on_expire = [this] { shard.begin_teardown(*this); };
  }
  ~Connection() override {
    session.reset();  // first: the session's own timer is disarmed through this host
    if (stall_timer.armed()) shard.timers_.disarm(stall_timer);
    if (finish_timer.armed()) shard.timers_.disarm(finish_timer);
  }

  Tag tag(OpKind op, int side) const { return Tag{op, static_cast<uint8_t>(side), slot, generation}; }
  bool ops_in_flight() const {
    return recv_armed[0] || recv_armed[1] || send_in_flight[0] || send_in_flight[1] || connecting;
  }

  void on_stall_timer() {
    if (phase != Phase::active || !session || session->out(Side::client).empty()) return;
    const uint64_t idle_ticks = shard.timers_.now_tick() - last_client_progress_tick;
    const uint64_t limit_ms = static_cast<uint64_t>(shard.settings_.gateway.write_stall_timeout.count());
    const uint64_t idle_ms = idle_ticks * shard.timers_.tick_ms();
    if (idle_ms < limit_ms) {
      shard.timers_.arm(stall_timer, limit_ms - idle_ms);
      return;
    }
    session->on_write_stalled();
  }

  // --- SessionHost ---
  void flush(Side side) override {
    const int s = static_cast<int>(side);
    if (s == kClient && !send_in_flight[kClient] && !session->out(Side::client).empty()) {
      // A new burst toward an idle client: the stall clock starts now. The timer is
      // left armed between bursts (on_stall_timer re-checks progress), so the hot path
      // does no timer-list work per reply.
      last_client_progress_tick = shard.timers_.now_tick();
      if (!stall_timer.armed())
        shard.timers_.arm(stall_timer, static_cast<uint64_t>(shard.settings_.gateway.write_stall_timeout.count()));
    }
    shard.start_send(*this, s);
  }
  void set_reading(Side side, bool enabled) override {
    const int s = static_cast<int>(side);
    recv_wanted[s] = enabled;
    if (enabled) {
      shard.arm_recv(*this, s);
    } else if (recv_armed[s]) {
      shard.reactor_.cancel(tag(OpKind::recv, s));  // its final completion clears recv_armed
    }
  }
  void connect_backend(const protocol::Target& target) override {
    const sockaddr* address = reinterpret_cast<const sockaddr*>(&target.address.storage);
    const int backend = ::socket(address->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (backend < 0) {
      session->on_backend_connected(-errno);
      return;
    }
    set_nodelay(backend);
    fd[kBackend] = backend;
    connecting = true;
    shard.reactor_.connect(backend, address, target.address.length, tag(OpKind::connect, kBackend));
  }
  void finish() override {
    if (phase != Phase::active) return;
    phase = Phase::finishing;
    shard.timers_.arm(finish_timer, kFinishGraceMs);
    shard.queue_for_reap(*this);
  }
  void route_cancel(uint32_t pid, uint32_t secret) override {
    const uint32_t target_shard = pid >> kSlotBits;
    const uint32_t target_slot = pid & ((1u << kSlotBits) - 1);
    if (target_shard >= shard.shared_.ring_fds.size()) return;  // forged: drop silently, like PostgreSQL
    if (static_cast<int>(target_shard) == shard.index_) {
      shard.deliver_cancel(target_slot, secret);
    } else {
      shard.reactor_.msg_ring(shard.shared_.ring_fds[target_shard], static_cast<int32_t>(secret),
                              Tag{OpKind::cross_shard, 0, target_slot, 0});
    }
  }
  void cancel_backend_query(const protocol::Target& target, uint32_t pid, uint32_t secret) override {
    if (!shard.forward_cancel(target, pid, secret, this)) session->on_backend_cancel_done();
  }
  core::BufferPool* buffer_pool() override { return &shard.reactor_; }
  core::TimerWheel& timers() override { return shard.timers_; }
  protocol::StatementGateFactory* statement_gates() override {
    return shard.gates_ && shard.gates_->enabled() ? shard.gates_.get() : nullptr;
  }
  protocol::ResultFilterFactory* result_filters() override { return shard.masking_.get(); }
  audit::ShardLog* audit_log() override { return shard.audit_log_; }
  bool start_client_tls() override {
    if (!shard.tls_context_) return false;
    shard.start_client_tls(*this, /*direct=*/false);
    return true;
  }
  bool client_tls_required() const override { return shard.settings_.gateway.listen[listener].require_tls; }
  const char* client_tls_records() const override { return tls[kClient] ? tls[kClient]->records_path() : "none"; }
  bool start_backend_tls(const protocol::Target& target) override { return shard.start_backend_tls(*this, target); }
  protocol::oidc::TokenAuthenticator* token_authenticator() override { return shard.tokens_.get(); }
  bool client_on_loopback() const override { return shard.settings_.gateway.listen[listener].loopback; }
  void wait_for_audit() override {
    if (waiting_for_audit) return;
    waiting_for_audit = true;
    shard.audit_waiters_.push_back(this);
    shard.audit_log_->request_wake();
  }
};

// Sends one CancelRequest to a backend: connect, write 16 bytes, close.
struct Shard::CancelForwarder {
  bool busy = false;
  int fd = -1;
  std::vector<uint8_t> packet;
  const protocol::Target* target = nullptr;
  // The session that sent it itself (an oversized row), told when it was processed;
  // generation 0: a client's cancel, nobody waits.
  uint32_t session_slot = 0;
  uint32_t session_generation = 0;
};

Shard::Shard(int index, GatewayShared& shared)
    : index_(index), shared_(shared), settings_(*shared.settings), timers_(kTickMs, 4096) {
  drain_deadline_.on_expire = [this] {
    LOG_WARN("shutdown_grace elapsed with %u session(s) still busy; closing them", live_connections_);
    for (auto& conn : slots_)
      if (conn) begin_teardown(*conn);
  };
}

Shard::~Shard() {
  close_listeners();
  if (wake_fd_ >= 0) ::close(wake_fd_);
  for (auto& f : forwarders_)
    if (f && f->fd >= 0) ::close(f->fd);
}

bool Shard::init(std::string& problem) {
  install_policy_if_changed();
  install_masking_if_changed();
  install_tls_if_changed();
  tls_plaintext_.resize(16 * 1024);
  if (!shared_.issuers.empty()) tokens_ = std::make_unique<protocol::oidc::TokenAuthenticator>(shared_.issuers);
  tls_record_.reserve(32 * 1024);
  core::Reactor::Options options;
  options.buffer_size = settings_.gateway.recv_buffer_bytes;
  options.buffer_count = settings_.gateway.recv_buffers_per_shard;
  if (!reactor_.init(options, problem)) return false;
  wake_fd_ = eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    problem = std::string("eventfd: ") + std::strerror(errno);
    return false;
  }
  if (static_cast<size_t>(index_) < shared_.audit_logs.size()) {
    audit_log_ = shared_.audit_logs[static_cast<size_t>(index_)];
    audit_wake_fd_ = shared_.audit_wake_fds[static_cast<size_t>(index_)];
  }
  for (const auto& address : settings_.gateway.listen) {
    const auto* sa = reinterpret_cast<const sockaddr*>(&address.storage);
    const int fd = ::socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 || bind(fd, sa, address.length) != 0 ||
        listen(fd, 4096) != 0) {
      problem = "cannot listen on " + address.text + ": " + std::strerror(errno);
      if (fd >= 0) ::close(fd);
      return false;
    }
    listen_fds_.push_back(fd);
    accept_armed_.push_back(false);
  }
  slots_.resize(shared_.slots_per_shard);
  generations_.assign(shared_.slots_per_shard, 0);
  free_slots_.reserve(shared_.slots_per_shard);
  for (uint32_t i = shared_.slots_per_shard; i-- > 0;) free_slots_.push_back(i);
  for (int i = 0; i < kMaxCancelForwarders; ++i) forwarders_.push_back(std::make_unique<CancelForwarder>());
  return true;
}

void Shard::arm_listeners() {
  for (size_t i = 0; i < listen_fds_.size(); ++i) {
    if (listen_fds_[i] >= 0 && !accept_armed_[i]) {
      reactor_.accept_multishot(listen_fds_[i], Tag{OpKind::accept, 0, static_cast<uint32_t>(i), 0});
      accept_armed_[i] = true;
    }
  }
}

void Shard::close_listeners() {
  for (size_t i = 0; i < listen_fds_.size(); ++i) {
    if (listen_fds_[i] < 0) continue;
    // shutdown() ends the multishot accept (its final completion arrives); then close.
    ::shutdown(listen_fds_[i], SHUT_RDWR);
    ::close(listen_fds_[i]);
    listen_fds_[i] = -1;
  }
}

void Shard::run() {
  core::set_log_shard(index_);
  arm_listeners();
  reactor_.read_eventfd(wake_fd_, &wake_value_, Tag{OpKind::wake});
  if (audit_log_ != nullptr) reactor_.read_eventfd(audit_wake_fd_, &audit_wake_value_, Tag{OpKind::audit_wake});
  reactor_.tick_after(kTickMs);
  last_tick_ms_ = monotonic_ms();
  while (!stop_) {
    reactor_.wait([this](const core::Completion& c) { dispatch(c); });
    // Also here, not only on audit_wake: a session may have started waiting after the
    // writer's last wake-up (request_wake and the writer's fence order the two).
    if (!audit_waiters_.empty()) service_audit_waiters();
    reap();
    // Receives stopped for lack of buffers resume once a good share is free again.
    if (!starved_.empty() && reactor_.buffers_free() > settings_.gateway.recv_buffers_per_shard / 8) {
      std::vector<Connection*>& starved = reap_scratch_;
      starved.swap(starved_);
      for (Connection* conn : starved) {
        if (conn->phase != Connection::Phase::active) continue;
        for (int s = 0; s < 2; ++s) arm_recv(*conn, s);
      }
      starved.clear();
    }
    if (draining_ && live_connections_ == 0) stop_ = true;
  }
  LOG_DEBUG("shard %d stopped", index_);
}

Shard::Connection* Shard::lookup(const Tag& tag) {
  if (tag.slot >= slots_.size()) return nullptr;
  Connection* conn = slots_[tag.slot].get();
  if (conn == nullptr || conn->generation != tag.generation) return nullptr;  // stale completion
  return conn;
}

void Shard::dispatch(const core::Completion& c) {
  switch (c.tag.op) {
    case OpKind::accept:
      on_accept(c);
      return;
    case OpKind::recv:
      if (Connection* conn = lookup(c.tag)) on_recv(*conn, c.tag.side, c);
      return;
    case OpKind::send:
      if (Connection* conn = lookup(c.tag)) on_send(*conn, c.tag.side, c);
      return;
    case OpKind::connect:
      if (Connection* conn = lookup(c.tag)) on_connect(*conn, c);
      return;
    case OpKind::tick:
      on_tick();
      return;
    case OpKind::wake:
      on_wake(wake_value_);
      return;
    case OpKind::audit_wake:
      reactor_.read_eventfd(audit_wake_fd_, &audit_wake_value_, Tag{OpKind::audit_wake});
      return;  // the waiters are serviced after this batch of completions
    case OpKind::cross_shard:
      deliver_cancel(c.tag.slot, static_cast<uint32_t>(c.result));
      return;
    case OpKind::msg_sent:
      if (c.result < 0) LOG_WARN("relaying a cancel request to another shard failed: %s", std::strerror(-c.result));
      return;
    case OpKind::cancel_connect:
    case OpKind::cancel_send:
    case OpKind::cancel_wait:
      on_cancel_forwarder(c);
      return;
    case OpKind::close:
    case OpKind::cancel:
    case OpKind::none:
      return;  // results deliberately ignored
  }
}

void Shard::on_accept(const core::Completion& c) {
  const uint32_t listener = c.tag.slot;
  if (!c.more()) accept_armed_[listener] = false;
  if (c.result < 0) {
    // EMFILE/ENFILE/ENOBUFS/ENOMEM: out of resources; the listener stays armed (or is
    // re-armed below) and the kernel queue holds the client until we can take it.
    if (c.result != -ECANCELED && c.result != -EINVAL && (accept_errors_logged_++ % 1000) == 0)
      LOG_WARN("accept failed: %s", std::strerror(-c.result));
  } else {
    const int fd = c.result;
    if (draining_ || free_slots_.empty()) {
      // The table is full even for rejections: close without a word (bounded memory wins).
      ::close(fd);
    } else {
      const uint32_t slot = free_slots_.back();
      free_slots_.pop_back();
      const uint32_t generation = ++generations_[slot];
      auto conn = std::make_unique<Connection>(*this, slot, generation);
      conn->fd[kClient] = fd;
      conn->listener = listener;
      set_nodelay(fd);
      const uint32_t count = shared_.client_connections.fetch_add(1, std::memory_order_relaxed) + 1;
      conn->counted = true;
      std::string reject;
      if (count > settings_.gateway.max_client_connections) reject = "53300";
      uint32_t secret = 0;
      protocol::scram::random_bytes({reinterpret_cast<uint8_t*>(&secret), sizeof secret});
      const uint32_t pid = (static_cast<uint32_t>(index_) << kSlotBits) | slot;
      conn->session = std::make_unique<protocol::Session>(settings_, *conn, shared_.mock_secret, pid, secret,
                                                          peer_name(fd), std::move(reject));
      Connection& ref = *conn;
      slots_[slot] = std::move(conn);
      ++live_connections_;
      arm_recv(ref, kClient);
    }
  }
  if (!draining_) arm_listeners();
}

void Shard::arm_recv(Connection& conn, int side) {
  if (conn.phase != Connection::Phase::active || conn.recv_armed[side] || !conn.recv_wanted[side] ||
      conn.peer_gone[side] || conn.fd[side] < 0 || (side == kBackend && conn.connecting))
    return;
  conn.recv_armed[side] = true;
  // While a handshake may still move the receive direction to the kernel, one receive
  // at a time: the kernel must find every record after the handshake's last still in
  // the socket, which an armed multishot receive could already have taken.
  const core::tls::Stream* tls = conn.tls[side].get();
  if (tls != nullptr && tls->receive_may_move_to_kernel())
    reactor_.recv_once(conn.fd[side], conn.tag(OpKind::recv, side));
  else
    reactor_.recv_multishot(conn.fd[side], conn.tag(OpKind::recv, side));
}

void Shard::on_recv(Connection& conn, int side, const core::Completion& c) {
  if (!c.more()) conn.recv_armed[side] = false;
  if (conn.phase != Connection::Phase::active) return;  // buffer (if any) is released by the reactor
  protocol::Session& session = *conn.session;
  if (c.result > 0) {
    if (!c.has_buffer()) return;
    const core::Chunk chunk{reactor_.buffer_data(c.buffer()), static_cast<uint32_t>(c.result), c.buffer()};
    if (side == kClient && !conn.client_bytes_seen) {
      conn.client_bytes_seen = true;
      // A TLS handshake record where a startup packet's length should be: direct TLS.
      constexpr uint8_t kTlsHandshakeRecord = 0x16;
      if (chunk.data[0] == kTlsHandshakeRecord && tls_context_) start_client_tls(conn, /*direct=*/true);
    }
    // A receive direction the kernel took delivers plaintext, like a plaintext socket.
    if (conn.tls[side] && !conn.tls[side]->kernel_receive()) receive_tls(conn, side, chunk);
    else if (side == kClient) session.on_client_data(chunk);
    else session.on_backend_data(chunk);
    if (conn.phase != Connection::Phase::active) return;
  } else if (c.result == -EIO && conn.tls[side] && conn.tls[side]->kernel_receive()) {
    // Kernel TLS: a control record (an alert) is next; a plain receive cannot take it.
    if (!receive_kernel_control_record(conn, side)) return;
  } else if (c.result == 0 || (c.result != -ENOBUFS && c.result != -ECANCELED)) {
    peer_closed(conn, side, c.result);  // EOF, or a socket error (ECONNRESET, ETIMEDOUT...)
    return;
  } else if (c.result == -ENOBUFS) {
    starved_.push_back(&conn);  // the shard's buffers are all in use: retry when some return
    return;
  }
  if (!conn.recv_armed[side]) arm_recv(conn, side);  // multishot ended (or was cancelled): re-arm if wanted
}

void Shard::start_client_tls(Connection& conn, bool direct) {
  conn.tls[kClient] = std::make_unique<core::tls::Stream>(tls_context_, core::tls::Stream::Role::server);
  conn.tls_direct = direct;
  if (shared_.kernel_tls) {
    conn.tls[kClient]->offer_kernel_tls(conn.fd[kClient]);
    // The armed multishot receive ends; arm_recv re-arms one receive at a time.
    if (conn.recv_armed[kClient] && conn.tls[kClient]->receive_may_move_to_kernel())
      reactor_.cancel(conn.tag(OpKind::recv, kClient));
  }
  if (!direct) {
    const uint8_t willing = 'S';  // the answer to SSLRequest, the last plaintext byte
    conn.tls[kClient]->queue_plain_prefix({&willing, 1});
    start_send(conn, kClient);
  }
}

bool Shard::start_backend_tls(Connection& conn, const protocol::Target& target) {
  const size_t index = static_cast<size_t>(&target - settings_.targets.data());
  if (index >= shared_.backend_tls.size() || !shared_.backend_tls[index]) return false;
  // verify-full checks the name sluice connects to; verify-ca only the chain.
  const std::string name = target.sslmode == protocol::Target::SslMode::verify_full ? target.host : std::string();
  conn.tls[kBackend] = std::make_unique<core::tls::Stream>(shared_.backend_tls[index], core::tls::Stream::Role::client, name);
  if (conn.tls[kBackend]->start_handshake() == core::tls::Stream::Status::failed) return false;
  start_send(conn, kBackend);  // the ClientHello
  return true;
}

// Invariant: every byte of `chunk` is consumed by the read loop (the stream keeps a
// partial record itself), so the receive buffer can go back once this returns.
void Shard::receive_tls(Connection& conn, int side, const core::Chunk& chunk) {
  core::tls::Stream& tls = *conn.tls[side];
  tls.feed({chunk.data, chunk.size}, /*socket_idle=*/!conn.recv_armed[side]);
  // The receive buffer goes back after this call: the stream must not keep pointing
  // into it, whichever way the loop ends (a session that finished stops it early).
  struct ForgetInput {
    core::tls::Stream& tls;
    ~ForgetInput() { tls.feed({}); }
  } forget_input{tls};
  for (;;) {
    size_t got = 0;
    const core::tls::Stream::Status status = tls.read(tls_plaintext_, got);
    if (tls.take_handshake_completed()) {
      LOG_DEBUG("%s: TLS established (%s, %s records%s%s)", conn.session->peer().c_str(), tls.describe().c_str(),
                tls.records_path(), tls.kernel_tls_problem().empty() ? "" : ": ", tls.kernel_tls_problem().c_str());
      if (side == kClient) conn.session->on_client_tls_established(conn.tls_direct, tls.alpn());
      else conn.session->on_backend_tls_established();
      if (conn.phase != Connection::Phase::active) return;
    }
    if (status == core::tls::Stream::Status::ok) {
      if (got == 0) continue;
      const core::Chunk plain{tls_plaintext_.data(), static_cast<uint32_t>(got), core::kNoBuffer};
      if (side == kClient) conn.session->on_client_data(plain);
      else conn.session->on_backend_data(plain);
      if (conn.phase != Connection::Phase::active) return;
      continue;
    }
    if (status == core::tls::Stream::Status::need_input) break;
    if (status == core::tls::Stream::Status::closed) {
      peer_closed(conn, side, 0);
      return;
    }
    // A failed handshake or a bad record: send OpenSSL's alert, then end the session.
    start_send(conn, side);
    if (side == kClient) {
      LOG_INFO("%s: %s", conn.session->peer().c_str(), tls.error().c_str());
      conn.session->on_client_closed(-EPROTO);
    } else if (!tls.handshake_done()) {
      conn.session->on_backend_tls_failed(tls.error());
    } else {
      LOG_WARN("%s: connection to the target: %s", conn.session->peer().c_str(), tls.error().c_str());
      conn.session->on_backend_closed(-EPROTO);
    }
    return;
  }
  // The handshake (or a key update) may have produced bytes for the peer.
  if (tls.output_bytes() > 0) start_send(conn, side);
}

// A receive on a kernel TLS direction failed with EIO: a control record waits. False
// when the connection ends here.
bool Shard::receive_kernel_control_record(Connection& conn, int side) {
  core::tls::Stream& tls = *conn.tls[side];
  size_t got = 0;
  const core::tls::Stream::Status status = tls.read_kernel_control_record(tls_plaintext_, got);
  if (status == core::tls::Stream::Status::ok || status == core::tls::Stream::Status::need_input) {
    if (got > 0) {
      const core::Chunk plain{tls_plaintext_.data(), static_cast<uint32_t>(got), core::kNoBuffer};
      if (side == kClient) conn.session->on_client_data(plain);
      else conn.session->on_backend_data(plain);
    }
    return conn.phase == Connection::Phase::active;
  }
  if (status == core::tls::Stream::Status::failed)
    LOG_INFO("%s: %s", conn.session->peer().c_str(), tls.error().c_str());
  peer_closed(conn, side, status == core::tls::Stream::Status::closed ? 0 : -EPROTO);
  return false;
}

// Encrypts queued plaintext while the ciphertext waiting to go out is small (so the
// plaintext queue stays the backpressure point), then sends the ciphertext.
void Shard::send_tls(Connection& conn, int side) {
  core::tls::Stream& tls = *conn.tls[side];
  core::OutQueue& queue = conn.session->out(side_of(side));
  constexpr size_t kCiphertextHighWater = 64 * 1024;
  constexpr size_t kRecordBytes = 16 * 1024;  // TLS's largest record
  if (tls.handshake_done()) {
    while (!queue.empty() && tls.output_bytes() < kCiphertextHighWater) {
      iovec iov[16];
      const int count = queue.prepare_iovecs(iov, 16);
      uint64_t taken = 0;
      bool ok = true;
      // Small segments (a row here, a CommandComplete there) are gathered so that each
      // record is full: fewer records, less framing and fewer cipher calls.
      tls_record_.clear();
      for (int i = 0; i < count && ok; ++i) {
        const auto* data = static_cast<const uint8_t*>(iov[i].iov_base);
        const size_t size = iov[i].iov_len;
        if (tls_record_.empty() && size >= kRecordBytes) {
          ok = tls.write({data, size});
        } else {
          tls_record_.insert(tls_record_.end(), data, data + size);
          if (tls_record_.size() >= kRecordBytes) {
            ok = tls.write(tls_record_);
            tls_record_.clear();
          }
        }
        taken += size;
      }
      if (ok && !tls_record_.empty()) ok = tls.write(tls_record_);
      if (!ok) {
        LOG_INFO("%s: %s", conn.session->peer().c_str(), tls.error().c_str());
        queue.clear();
        break;
      }
      queue.consume(taken);
    }
  }
  const std::span<const uint8_t> out = tls.pending_output();
  if (out.empty()) return;
  conn.send_in_flight[side] = true;
  reactor_.send(conn.fd[side], out.data(), out.size(), conn.tag(OpKind::send, side));
}

bool Shard::nothing_to_send(const Connection& conn, int side) const {
  return conn.session->out(side_of(side)).empty() && (!conn.tls[side] || conn.tls[side]->output_bytes() == 0);
}

void Shard::peer_closed(Connection& conn, int side, int error) {
  conn.peer_gone[side] = true;
  if (side == kClient) conn.session->on_client_closed(error);
  else conn.session->on_backend_closed(error);
}

void Shard::start_send(Connection& conn, int side) {
  if (conn.send_in_flight[side] || conn.fd[side] < 0 || conn.peer_gone[side] || conn.phase == Connection::Phase::tearing_down)
    return;
  if (side == kBackend && conn.connecting) return;
  // A send direction the kernel took is sent like plaintext: the kernel frames it.
  if (conn.tls[side] && !conn.tls[side]->kernel_send()) {
    send_tls(conn, side);
    return;
  }
  core::OutQueue& queue = conn.session->out(side_of(side));
  if (queue.empty()) {
    if (conn.tls[side]) send_kernel_control_record(conn, side);
    return;
  }
  const int iov_count = queue.prepare_iovecs(conn.iov[side], 16);
  conn.send_in_flight[side] = true;
  if (iov_count == 1) {  // the common case (one reply, one buffer): plain send, no msghdr to import
    reactor_.send(conn.fd[side], conn.iov[side][0].iov_base, conn.iov[side][0].iov_len, conn.tag(OpKind::send, side));
    return;
  }
  msghdr& message = conn.message[side];
  message = msghdr{};
  message.msg_iov = conn.iov[side];
  message.msg_iovlen = static_cast<size_t>(iov_count);
  reactor_.sendmsg(conn.fd[side], &message, conn.tag(OpKind::send, side));
}

// Kernel TLS: a control record (close_notify) the socket could not take at once goes
// out after the queued plaintext, naming its record type.
void Shard::send_kernel_control_record(Connection& conn, int side) {
  uint8_t record_type = 0;
  const std::span<const uint8_t> record = conn.tls[side]->pending_control_record(record_type);
  if (record.empty()) return;
  const msghdr& message = conn.record_type_control[side].for_send(record, record_type);
  conn.send_in_flight[side] = true;
  conn.control_in_flight[side] = true;
  reactor_.sendmsg(conn.fd[side], &message, conn.tag(OpKind::send, side));
}

void Shard::on_send(Connection& conn, int side, const core::Completion& c) {
  conn.send_in_flight[side] = false;
  const bool control_record = std::exchange(conn.control_in_flight[side], false);
  if (c.result < 0) {
    // EPIPE/ECONNRESET: the peer is gone. Anything queued for it is dropped with the session.
    if (conn.phase == Connection::Phase::active) peer_closed(conn, side, c.result);
    else conn.peer_gone[side] = true;
    if (conn.phase == Connection::Phase::finishing) queue_for_reap(conn);
    return;
  }
  if (side == kClient) conn.last_client_progress_tick = timers_.now_tick();
  if (control_record) {
    conn.tls[side]->control_record_sent(static_cast<size_t>(c.result));
    start_send(conn, side);
  } else if (conn.tls[side] && !conn.tls[side]->kernel_send()) {
    conn.tls[side]->output_sent(static_cast<size_t>(c.result));
    start_send(conn, side);  // encrypts more of the queue: the session then sees it shrink
    if (conn.phase == Connection::Phase::active) conn.session->on_sent(side_of(side));
  } else {
    core::OutQueue& queue = conn.session->out(side_of(side));
    queue.consume(static_cast<uint64_t>(c.result));
    if (conn.phase == Connection::Phase::active) conn.session->on_sent(side_of(side));
    if (!queue.empty()) start_send(conn, side);
  }
  if (conn.phase == Connection::Phase::finishing) queue_for_reap(conn);
}

void Shard::on_connect(Connection& conn, const core::Completion& c) {
  conn.connecting = false;
  if (conn.phase != Connection::Phase::active) {
    queue_for_reap(conn);
    return;
  }
  if (c.result < 0) {
    conn.peer_gone[kBackend] = true;
    conn.session->on_backend_connected(c.result);
    return;
  }
  arm_recv(conn, kBackend);
  conn.session->on_backend_connected(0);
}

void Shard::begin_teardown(Connection& conn) {
  if (conn.phase == Connection::Phase::tearing_down) return;
  conn.phase = Connection::Phase::tearing_down;
  if (conn.stall_timer.armed()) timers_.disarm(conn.stall_timer);
  if (conn.finish_timer.armed()) timers_.disarm(conn.finish_timer);
  // shutdown() completes pending recvs (EOF) and sends (EPIPE) promptly.
  for (int s = 0; s < 2; ++s) {
    if (conn.fd[s] >= 0) ::shutdown(conn.fd[s], SHUT_RDWR);
    if (conn.recv_armed[s]) reactor_.cancel(conn.tag(OpKind::recv, s));
  }
  queue_for_reap(conn);
}

// Moves finishing connections along once their last bytes are out, and frees torn-down
// connections once the kernel holds no op of theirs.
void Shard::reap() {
  if (to_reap_.empty()) return;
  // Swap with a kept scratch list: both keep their capacity, so reaping allocates nothing.
  std::vector<Connection*>& pending = reap_scratch_;
  pending.swap(to_reap_);
  for (Connection* conn : pending) {
    conn->queued_for_reap = false;
    if (conn->phase == Connection::Phase::finishing) {
      // A TLS client is told the stream ends (close_notify) once its last bytes are queued.
      core::tls::Stream* client_tls = conn->tls[kClient].get();
      if (client_tls != nullptr && !conn->close_notify_queued && !conn->peer_gone[kClient] &&
          conn->session->out(Side::client).empty()) {
        conn->close_notify_queued = true;
        client_tls->shutdown();
      }
      const bool client_done = conn->peer_gone[kClient] || nothing_to_send(*conn, kClient);
      const bool backend_done = conn->peer_gone[kBackend] || conn->fd[kBackend] < 0 || conn->connecting ||
                                nothing_to_send(*conn, kBackend);
      if (client_done && backend_done && !conn->send_in_flight[kClient] && !conn->send_in_flight[kBackend]) {
        begin_teardown(*conn);
      } else {
        start_send(*conn, kClient);
        start_send(*conn, kBackend);
        continue;  // re-queued by the send completion (or finish_timer forces teardown)
      }
    }
    if (conn->phase == Connection::Phase::tearing_down) {
      if (conn->ops_in_flight()) {
        queue_for_reap(*conn);  // still waiting for completions; re-checked after each batch
      } else {
        free_slot(*conn);
      }
    }
  }
  pending.clear();
}

void Shard::queue_for_reap(Connection& conn) {
  if (conn.queued_for_reap) return;
  conn.queued_for_reap = true;
  to_reap_.push_back(&conn);
}

void Shard::free_slot(Connection& conn) {
  for (int s = 0; s < 2; ++s) {
    if (conn.fd[s] >= 0) ::close(conn.fd[s]);
    conn.fd[s] = -1;
  }
  if (conn.counted) shared_.client_connections.fetch_sub(1, std::memory_order_relaxed);
  // No list may keep a pointer to a destroyed connection.
  std::erase(starved_, &conn);
  std::erase(to_reap_, &conn);
  if (conn.waiting_for_audit) std::erase(audit_waiters_, &conn);
  const uint32_t slot = conn.slot;
  slots_[slot].reset();
  free_slots_.push_back(slot);
  --live_connections_;
}

void Shard::on_tick() {
  // Advance by elapsed time, not by tick count, so a busy loop does not slow timers.
  const int64_t now = monotonic_ms();
  while (now - last_tick_ms_ >= static_cast<int64_t>(kTickMs)) {
    last_tick_ms_ += kTickMs;
    timers_.advance();
  }
  install_policy_if_changed();
  install_masking_if_changed();
  install_tls_if_changed();
  // Records that did not fit in the ring (session ends, say) move on even when no
  // session is waiting for the writer.
  if (audit_log_ != nullptr && audit_log_->congested()) {
    audit_log_->pump();
    audit_log_->request_wake();
  }
  reactor_.tick_after(kTickMs);
}

void Shard::install_policy_if_changed() {
  std::shared_ptr<const policy::Policy> policy = shared_.policy.take_if_changed(policy_version_, !gates_);
  if (!policy) return;
  if (gates_) {
    gates_->install(std::move(policy));
  } else {
    gates_ = std::make_unique<policy::PolicyGates>(std::move(policy));
    gates_->set_protected_columns_source(shared_.catalog);
  }
}

void Shard::install_masking_if_changed() {
  std::shared_ptr<const mask::Masking> masking = shared_.masking.take_if_changed(masking_version_, !masking_);
  if (masking) masking_ = std::make_unique<mask::ShardMasking>(std::move(masking), shared_.catalog);
}

void Shard::install_tls_if_changed() {
  // Open connections keep the context their handshake used (their SSL holds it).
  if (auto context = shared_.tls.take_if_changed(tls_version_, tls_version_ == 0)) tls_context_ = std::move(context);
}

void Shard::on_wake(uint64_t value) {
  if (value >= kTerminate) {
    draining_ = true;
    close_listeners();
    for (auto& conn : slots_)
      if (conn) begin_teardown(*conn);
    if (live_connections_ == 0) stop_ = true;
  } else if (!draining_) {
    draining_ = true;
    close_listeners();
    LOG_INFO("draining %u session(s) (up to shutdown_grace)", live_connections_);
    for (auto& conn : slots_)
      if (conn && conn->phase == Connection::Phase::active) conn->session->begin_shutdown();
    timers_.arm(drain_deadline_, static_cast<uint64_t>(settings_.gateway.shutdown_grace.count()));
  }
  reactor_.read_eventfd(wake_fd_, &wake_value_, Tag{OpKind::wake});
}

void Shard::service_audit_waiters() {
  audit_log_->pump();
  std::vector<Connection*>& waiters = audit_scratch_;
  waiters.swap(audit_waiters_);
  for (Connection* conn : waiters) {
    conn->waiting_for_audit = false;
    if (conn->phase == Connection::Phase::active && conn->session) conn->session->on_audit_progress();
  }
  waiters.clear();
}

void Shard::deliver_cancel(uint32_t slot, uint32_t secret) {
  if (slot >= slots_.size() || !slots_[slot]) return;
  Connection& conn = *slots_[slot];
  uint32_t pid = 0, backend_secret = 0;
  if (conn.phase != Connection::Phase::active || !conn.session->accept_cancel(secret, pid, backend_secret)) {
    LOG_DEBUG("cancel request with a key that matches no session dropped");
    return;
  }
  forward_cancel(*conn.session->target(), pid, backend_secret, nullptr);
}

bool Shard::forward_cancel(const protocol::Target& target, uint32_t pid, uint32_t secret, const Connection* waiter) {
  for (size_t i = 0; i < forwarders_.size(); ++i) {
    CancelForwarder& f = *forwarders_[i];
    if (f.busy) continue;
    const auto* address = reinterpret_cast<const sockaddr*>(&target.address.storage);
    f.fd = ::socket(address->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (f.fd < 0) return false;
    f.busy = true;
    f.target = &target;
    f.packet = protocol::cancel_request(pid, secret);
    f.session_slot = waiter ? waiter->slot : 0;
    f.session_generation = waiter ? waiter->generation : 0;
    reactor_.connect(f.fd, address, target.address.length, Tag{OpKind::cancel_connect, 0, static_cast<uint32_t>(i), 0});
    return true;
  }
  LOG_WARN("too many cancel requests in flight; one was dropped");
  return false;
}

void Shard::on_cancel_forwarder(const core::Completion& c) {
  if (c.tag.slot >= forwarders_.size()) return;
  CancelForwarder& f = *forwarders_[c.tag.slot];
  if (c.tag.op == OpKind::cancel_connect && c.result == 0) {
    reactor_.send(f.fd, f.packet.data(), f.packet.size(), Tag{OpKind::cancel_send, 0, c.tag.slot, 0});
    return;
  }
  if (c.tag.op == OpKind::cancel_send && c.result > 0 && f.session_generation != 0) {
    // PostgreSQL closes the connection once it has processed the request: wait for that.
    reactor_.recv_multishot(f.fd, Tag{OpKind::cancel_wait, 0, c.tag.slot, 0});
    return;
  }
  if (c.tag.op == OpKind::cancel_wait && c.more()) return;  // more completions follow; the last one ends it
  if (c.result < 0 && c.tag.op != OpKind::cancel_wait)
    LOG_WARN("forwarding a cancel request to target \"%s\" failed: %s", f.target->name.c_str(), std::strerror(-c.result));
  ::close(f.fd);
  f.fd = -1;
  f.busy = false;
  if (f.session_generation != 0) {
    Connection* conn = lookup(Tag{OpKind::none, 0, f.session_slot, f.session_generation});
    f.session_generation = 0;
    if (conn != nullptr && conn->phase == Connection::Phase::active && conn->session) conn->session->on_backend_cancel_done();
  }
}

}  // namespace sluice::tools
