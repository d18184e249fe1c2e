// A shard of the gateway: one thread, one io_uring, its own SO_REUSEPORT listeners,
// a fixed table of connection slots and a timer wheel. A client connection and its
// backend connection live on one shard for their whole life; shards share nothing
// on the data path (the global connection counter is touched at accept and close
// only; cancel requests cross shards as MSG_RING messages).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/reactor.h"
#include "core/tls.h"
#include "core/timer_wheel.h"
#include "audit/writer.h"
#include "mask/filter.h"
#include "policy/gate.h"
#include "protocol/oidc.h"
#include "protocol/scram.h"
#include "protocol/session.h"
#include "protocol/settings.h"

namespace sluice::tools {

// A value the shards pick up on their next tick: publish() replaces it and bumps the
// version; a shard takes it when the version moved since the one it holds.
template <typename T>
class Reloadable {
 public:
  void publish(std::shared_ptr<const T> value) {
    {
      std::lock_guard lock(mutex_);
      value_ = std::move(value);
    }
    version_.fetch_add(1, std::memory_order_release);
  }
  // The value when its version differs from `held` (then updated), or when `first`;
  // otherwise null.
  std::shared_ptr<const T> take_if_changed(uint64_t& held, bool first) const {
    const uint64_t version = version_.load(std::memory_order_acquire);
    if (!first && version == held) return nullptr;
    held = version;
    std::lock_guard lock(mutex_);
    return value_;
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const T> value_;
  std::atomic<uint64_t> version_{0};
};

// Set up before the shards start; read-only afterwards (but for the Reloadables).
struct GatewayShared {
  const protocol::Settings* settings = nullptr;
  protocol::scram::Key mock_secret{};   // salts mock SCRAM exchanges for unknown users
  std::vector<int> ring_fds;            // every shard's ring, for MSG_RING
  std::atomic<uint32_t> client_connections{0};
  uint32_t slots_per_shard = 0;

  // What a reload (SIGHUP) replaces; each shard installs it on its next tick, and open
  // sessions keep what they started with.
  Reloadable<policy::Policy> policy;
  Reloadable<mask::Masking> masking;
  // The certificate offered to clients (null: TLS off); new handshakes use the latest.
  Reloadable<core::tls::Context> tls;
  // Client handshakes offer the kernel the record layer (the probe found kernel TLS and
  // [tls] kernel_tls is not "off").
  bool kernel_tls = false;
  // Per target (same index as settings->targets): the client context for TLS toward
  // it; null when its sslmode is disable.
  std::vector<std::shared_ptr<const core::tls::Context>> backend_tls;
  // Token logins: each [[oidc.issuer]]'s keys, kept current by sluiced's fetcher thread
  // (empty when OIDC is off). Each shard verifies with its own TokenAuthenticator.
  std::vector<std::shared_ptr<protocol::oidc::IssuerKeys>> issuers;
  // Which columns the column rules mask, per target (kept current by its own thread).
  mask::Catalog* catalog = nullptr;

  // The audit trail: one log and one wake eventfd per shard (empty when audit is off).
  std::vector<audit::ShardLog*> audit_logs;
  std::vector<int> audit_wake_fds;
};

class Shard {
 public:
  // Wake-up codes written to wake_fd().
  static constexpr uint64_t kDrain = 1;      // graceful shutdown
  static constexpr uint64_t kTerminate = 2;  // immediate shutdown

  // Cancel keys carry the shard in bits 20..30 of the pid and the slot below.
  static constexpr uint32_t kSlotBits = 20;

  Shard(int index, GatewayShared& shared);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  // Creates the ring, the buffer ring and the listeners. false + problem on failure.
  bool init(std::string& problem);
  int ring_fd() const { return reactor_.ring_fd(); }
  int wake_fd() const { return wake_fd_; }
  // Runs the event loop until shutdown completes.
  void run();

 private:
  struct Connection;
  struct CancelForwarder;

  void dispatch(const core::Completion& c);
  void on_accept(const core::Completion& c);
  void on_recv(Connection& conn, int side, const core::Completion& c);
  void on_send(Connection& conn, int side, const core::Completion& c);
  void on_connect(Connection& conn, const core::Completion& c);
  void on_tick();
  void install_policy_if_changed();
  void install_masking_if_changed();
  void install_tls_if_changed();
  // TLS on one side of a connection: decrypt what arrived and hand it to the session;
  // encrypt what the session queued and send it.
  void start_client_tls(Connection& conn, bool direct);
  bool start_backend_tls(Connection& conn, const protocol::Target& target);
  void receive_tls(Connection& conn, int side, const core::Chunk& chunk);
  bool receive_kernel_control_record(Connection& conn, int side);
  void send_kernel_control_record(Connection& conn, int side);
  void send_tls(Connection& conn, int side);
  bool nothing_to_send(const Connection& conn, int side) const;
  void on_wake(uint64_t value);
  // The audit writer made progress: move waiting records into the ring, and let the
  // sessions that wait for it go on.
  void service_audit_waiters();
  void deliver_cancel(uint32_t slot, uint32_t secret);
  // Sends a CancelRequest to the target; `waiter` (may be null) is told through
  // Session::on_backend_cancel_done() once PostgreSQL processed it. False: not sent.
  bool forward_cancel(const protocol::Target& target, uint32_t pid, uint32_t secret, const Connection* waiter);
  void on_cancel_forwarder(const core::Completion& c);

  Connection* lookup(const core::Tag& tag);
  void start_send(Connection& conn, int side);
  // A side hit EOF or a socket error: never use it again, and tell the session.
  void peer_closed(Connection& conn, int side, int error);
  void arm_recv(Connection& conn, int side);
  void begin_teardown(Connection& conn);
  void queue_for_reap(Connection& conn);
  void reap();
  void free_slot(Connection& conn);
  void arm_listeners();
  void close_listeners();

  int index_;
  GatewayShared& shared_;
  const protocol::Settings& settings_;
  core::Reactor reactor_;
  core::TimerWheel timers_;
  std::vector<int> listen_fds_;
  std::vector<bool> accept_armed_;
  int wake_fd_ = -1;
  uint64_t wake_value_ = 0;

  std::vector<std::unique_ptr<Connection>> slots_;
  std::vector<uint32_t> free_slots_;
  std::vector<uint32_t> generations_;
  std::vector<Connection*> to_reap_;          // finishing or torn down: checked after each batch
  std::vector<Connection*> starved_;          // recv stopped by ENOBUFS: re-armed when buffers return
  std::vector<Connection*> reap_scratch_;     // swapped with the two lists above while they are walked
  uint32_t live_connections_ = 0;
  std::vector<std::unique_ptr<CancelForwarder>> forwarders_;

  bool draining_ = false;
  bool stop_ = false;
  core::TimerNode drain_deadline_;
  int64_t last_tick_ms_ = 0;
  uint64_t accept_errors_logged_ = 0;

  audit::ShardLog* audit_log_ = nullptr;     // null when audit is off
  int audit_wake_fd_ = -1;
  uint64_t audit_wake_value_ = 0;
  std::vector<Connection*> audit_waiters_;   // sessions that called wait_for_audit()
  std::vector<Connection*> audit_scratch_;   // swapped with audit_waiters_ while it is walked

  std::unique_ptr<policy::PolicyGates> gates_;  // this shard's policy engine
  uint64_t policy_version_ = 0;                  // of the policy gates_ holds
  std::unique_ptr<mask::ShardMasking> masking_;  // this shard's scanner; null until installed
  uint64_t masking_version_ = 0;                 // of the masking masking_ holds
  std::shared_ptr<const core::tls::Context> tls_context_;  // null: TLS not offered
  std::unique_ptr<protocol::oidc::TokenAuthenticator> tokens_;  // null: no token logins
  uint64_t tls_version_ = 0;
  std::vector<uint8_t> tls_plaintext_;  // decrypted bytes, handed to the session at once
  std::vector<uint8_t> tls_record_;     // small queued segments gathered into one record
};

}  // namespace sluice::tools
