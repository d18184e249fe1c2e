// One client session: the client connection, sluice's own authentication of the
// client (SCRAM-SHA-256), the login to the target PostgreSQL with the credential
// sluice holds, and header-driven forwarding in both directions.
//
// The session does no I/O itself. Its host (tools/gateway.cc on io_uring, or a
// deterministic fake in the tests) feeds it received bytes and events and carries
// out what it asks through SessionHost. That is what lets tests inject short reads,
// short writes, errors and timeouts at any byte.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/buffer_pool.h"
#include "core/out_queue.h"
#include "core/timer_wheel.h"
#include "protocol/frame_reader.h"
#include "protocol/oidc.h"
#include "protocol/result_filter.h"
#include "protocol/scram.h"
#include "protocol/session_audit.h"
#include "protocol/settings.h"
#include "protocol/statement_gate.h"
#include "protocol/wire.h"

namespace sluice::protocol {

enum class Side : uint8_t { client = 0, backend = 1 };

// What a session needs from the shard that hosts it.
class SessionHost {
 public:
  virtual ~SessionHost() = default;
  // Bytes were queued on the session's out(side): send them when possible. The host
  // calls Session::on_sent(side) after progress.
  virtual void flush(Side side) = 0;
  // Backpressure: stop (false) or resume (true) reading from `side`.
  virtual void set_reading(Side side, bool enabled) = 0;
  // Open a TCP connection to the target; the outcome arrives via on_backend_connected.
  virtual void connect_backend(const Target& target) = 0;
  // The session is over: flush what is queued for the client (bounded in time by the
  // host), then close both connections and destroy the session. No call after this.
  virtual void finish() = 0;
  // A CancelRequest arrived on this (fresh) connection with this key.
  virtual void route_cancel(uint32_t pid, uint32_t secret) = 0;
  // Cancel the query running on this session's backend connection (key from its
  // BackendKeyData), as a client's CancelRequest would; then call
  // Session::on_backend_cancel_done() once PostgreSQL closed the cancel connection
  // (it has then processed it), or sending it failed.
  virtual void cancel_backend_query(const Target& target, uint32_t pid, uint32_t secret) = 0;
  virtual core::BufferPool* buffer_pool() = 0;
  virtual core::TimerWheel& timers() = 0;
  // Statement policy for this shard; nullptr: statements are forwarded unjudged.
  virtual StatementGateFactory* statement_gates() { return nullptr; }
  // Result masking for this shard; nullptr: results are forwarded untouched.
  virtual ResultFilterFactory* result_filters() { return nullptr; }
  // The shard's audit log; nullptr: nothing is recorded.
  virtual audit::ShardLog* audit_log() { return nullptr; }
  // The session waits for the audit writer (a record to become durable, or room in
  // the ring): call Session::on_audit_progress() once it has made progress.
  virtual void wait_for_audit() {}
  // An SSLRequest arrived with nothing behind it: when this listener offers TLS, the
  // host sends the 'S' itself, runs the handshake, reports it through
  // Session::on_client_tls_established() and returns true. False: no TLS here (the
  // session answers 'N').
  virtual bool start_client_tls() { return false; }
  // This listener refuses a StartupMessage that did not come over TLS.
  virtual bool client_tls_required() const { return false; }
  // Who frames the client's TLS records once the handshake is done: "kernel",
  // "kernel send, userspace receive" or "userspace" (for the audit record).
  virtual const char* client_tls_records() const { return "userspace"; }
  // The target answered our SSLRequest with 'S': start a TLS handshake as its client
  // (with the target's sslmode checks) and report through on_backend_tls_established()
  // or on_backend_tls_failed(). False: TLS toward targets is unavailable here.
  virtual bool start_backend_tls(const Target&) { return false; }
  // Token (OIDC) logins: this shard's verifier; nullptr when no issuer is configured.
  virtual oidc::TokenAuthenticator* token_authenticator() { return nullptr; }
  // The client came in on a loopback listener (token logins may then skip TLS when
  // [oidc] allow_cleartext_on_loopback says so).
  virtual bool client_on_loopback() const { return false; }
};

struct SessionCounters {
  uint64_t auth_failures = 0;
  uint64_t protocol_violations = 0;
  uint64_t statements_blocked = 0;
};

class Session {
 public:
  enum class State {
    awaiting_startup,  // nothing but SSLRequest/GSSENCRequest/CancelRequest seen; no StartupMessage yet
    authenticating,    // StartupMessage accepted; SCRAM exchange with the client under way
    connecting,        // client authenticated; connecting and logging in to the target
    ready,             // logged in on both sides: forwarding messages both ways
    closing,           // finish() requested: nothing more is read or forwarded
  };

  // cancel_pid/secret: the BackendKeyData sluice gives this client (the host encodes
  // its shard and slot in pid so a CancelRequest can be routed without shared state).
  // reject_sqlstate non-empty: the connection is over a limit; it is answered with
  // that error after its StartupMessage (53300 for too many clients).
  Session(const Settings& settings, SessionHost& host, const scram::Key& mock_secret, uint32_t cancel_pid,
          uint32_t cancel_secret, std::string peer, std::string reject_sqlstate = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // --- events from the host ---
  void on_client_data(core::Chunk chunk);
  void on_backend_data(core::Chunk chunk);
  // error: 0 for an orderly EOF, else a negative errno.
  void on_client_closed(int error);
  void on_backend_closed(int error);
  void on_backend_connected(int error);
  // The host made progress sending out(side); may resume reading the other side.
  void on_sent(Side side);
  // A CancelRequest for this session (possibly relayed from another shard). Returns
  // the backend key to forward, or false if the secret does not match (constant time).
  bool accept_cancel(uint32_t secret, uint32_t& backend_pid, uint32_t& backend_secret) const;
  // The cancel sluice sent for this session (SessionHost::cancel_backend_query) was
  // processed by PostgreSQL, or could not be sent: the client is read again.
  void on_backend_cancel_done();
  // Graceful shutdown: close when the session is idle (now, or when the running
  // transaction and queries finish).
  void begin_shutdown();
  // The client's TLS handshake completed. `direct`: the client began with a TLS
  // ClientHello instead of an SSLRequest (sslnegotiation=direct), which PostgreSQL
  // accepts only with ALPN "postgresql". `alpn`: the protocol agreed ("" for none).
  void on_client_tls_established(bool direct, std::string_view alpn);
  // TLS with the target is up: the login goes on inside it.
  void on_backend_tls_established();
  // The TLS handshake with the target failed (`why`: OpenSSL's reason, for the log).
  void on_backend_tls_failed(const std::string& why);
  // The host's write-stall timer fired: the client stopped reading its results.
  void on_write_stalled();
  // The audit writer made progress (after wait_for_audit()): forward what waited for
  // its records to become durable, resume reading the client.
  void on_audit_progress();

  core::OutQueue& out(Side side) { return side == Side::client ? to_client_ : to_backend_; }
  State state() const { return state_; }
  const Target* target() const { return target_; }
  const std::string& user() const { return user_; }
  const std::string& peer() const { return peer_; }
  // True when the client is between transactions and nothing is in flight.
  bool idle() const { return state_ == State::ready && in_flight_ == 0 && transaction_status_ == 'I'; }
  const SessionCounters& counters() const { return counters_; }

  // Frame-reader sinks (public for the template; not an API).
  struct ClientSink;
  struct BackendSink;

 private:
  // Login to the target: tcp connect -> [SSLRequest sent (ssl_answer) -> 'S' -> TLS
  // handshake (tls_handshake)] -> StartupMessage sent (awaiting_auth) -> [SCRAM
  // exchange (scram) -> server signature verified (awaiting_ok)] -> AuthenticationOk
  // (awaiting_ready: ParameterStatus/BackendKeyData until ReadyForQuery).
  enum class BackendLogin { none, tcp, ssl_answer, tls_handshake, awaiting_auth, scram, awaiting_ok, awaiting_ready };

  // Client side, before `ready`.
  void handle_startup_bytes(core::Chunk& chunk);
  bool handle_startup_packet(std::span<const uint8_t> body, bool more_bytes_follow);
  bool handle_client_auth_message(uint8_t type, std::span<const uint8_t> body);
  // A client that is not a gateway user: asks for its token as a cleartext password.
  bool start_token_login();
  bool handle_token_password(std::span<const uint8_t> body);
  void on_token_expired();
  void client_authenticated();
  void send_backend_startup();
  // The one-byte answer to our SSLRequest (and anything after it, which must be nothing).
  void handle_backend_ssl_answer(core::Chunk chunk);
  // Backend side, before `ready`.
  bool handle_backend_login_message(uint8_t type, std::span<const uint8_t> body);
  bool answer_backend_auth(std::span<const uint8_t> body);
  void backend_ready(char status);
  // Forwarding.
  Disposition client_header(uint8_t type, uint32_t body_length);
  Disposition backend_header(uint8_t type, uint32_t body_length);
  bool client_message(uint8_t type, std::span<const uint8_t> body);
  // A message from `from` declared a body longer than its limit: answer and close.
  void reject_length(Side from, uint8_t type, uint32_t body_length, uint32_t limit);
  bool cancel_oversized_row(uint8_t type, uint32_t body_length, uint32_t limit);
  void update_client_reading();
  bool backend_message(uint8_t type, std::span<const uint8_t> body);
  void apply_backpressure();
  // Statement policy: a Query, Parse or FunctionCall to forward, judged by the gate.
  // A refused one is replaced by a statement that fails harmlessly in PostgreSQL, so
  // the server aborts the transaction or skips to Sync exactly as for any error.
  enum class Judged { allowed, refused, malformed };
  Judged judge_statement_message(uint8_t type, std::span<const uint8_t> body, ErrorInfo& refusal, Verdict& verdict);
  // What replaces a refused Query, Parse, Execute or FunctionCall: a message that
  // fails in PostgreSQL with our marker, which relay_backend_error swaps for `refusal`.
  std::vector<uint8_t> substitute_for_refused(uint8_t type, std::span<const uint8_t> body, ErrorInfo refusal);
  // Queues a judged client message for the backend, behind any held for the audit
  // trail; `ticket` is the audit record it must wait for in strict mode (0: none).
  void queue_for_backend(std::vector<uint8_t> message, uint64_t ticket);
  // Messages are held because a statement record is not yet durable.
  bool audit_holding() const;
  void wait_for_audit();
  void pause_client_for_audit(bool pause);
  // A backend ErrorResponse while refusals are pending: ours replaces the server's
  // error for the substitute statement; anything else passes through.
  void relay_backend_error(std::span<const uint8_t> body);
  void note_backend_error(std::span<const uint8_t> body);
  // A held backend message: sends the client what the result filter makes of it.
  // False when it could not be made safe (the session is then failing).
  bool relay_filtered(uint8_t type, std::span<const uint8_t> body);
  void forget_finished_refusals();

  void send_to_client(const std::vector<uint8_t>& bytes);
  void send_to_backend(const std::vector<uint8_t>& bytes);
  // Sends a FATAL error to the client (if the client stream is at a message boundary)
  // and finishes the session.
  void fail(const ErrorInfo& error);
  void fail_backend_login(const std::string& why, const char* sqlstate = "08006");
  void close_quietly();
  void arm_deadline(std::chrono::milliseconds delay);
  void arm_idle_deadline();  // when idle and [gateway] idle_timeout is set
  void on_deadline();
  void maybe_close_for_shutdown();
  // Sends Terminate to the backend and `why` to the client, then closes (idle sessions only).
  void end_idle_session(const ErrorInfo& why);

  const Settings& settings_;
  SessionHost& host_;
  const scram::Key& mock_secret_;
  const uint32_t cancel_pid_;
  const uint32_t cancel_secret_;
  const std::string peer_;
  const std::string reject_sqlstate_;

  State state_ = State::awaiting_startup;
  BackendLogin backend_login_ = BackendLogin::none;

  // Startup packet assembly (untyped: a length word, then the body).
  std::vector<uint8_t> startup_buffer_;
  bool ssl_answered_ = false;
  bool gss_answered_ = false;
  bool client_tls_ = false;  // the client connection is encrypted (handshake done)

  std::string user_;
  std::string database_;
  std::vector<std::pair<std::string, std::string>> forwarded_parameters_;
  const GatewayUser* gateway_user_ = nullptr;
  // Who the client is once authenticated: its groups (from [[user]] or the token), and
  // how it authenticated (the audit's "auth").
  std::vector<std::string> groups_;
  bool token_login_ = false;
  const char* auth_method() const { return token_login_ ? "oidc" : "scram-sha-256"; }
  bool token_expired_ = false;  // closing once the running transaction ends
  core::TimerNode expiry_timer_;
  const Target* target_ = nullptr;
  std::unique_ptr<scram::ServerExchange> scram_server_;
  std::unique_ptr<scram::ClientExchange> scram_client_;
  int client_auth_step_ = 0;  // 0: expect SASLInitialResponse, 1: expect SASLResponse

  // Messages the backend sent during login (ParameterStatus, NoticeResponse), replayed
  // to the client after AuthenticationOk.
  std::vector<uint8_t> login_replay_;
  // Client messages that arrived while sluice was still logging in to the target.
  std::vector<uint8_t> held_client_bytes_;
  uint32_t backend_pid_ = 0;
  uint32_t backend_secret_ = 0;
  bool have_backend_key_ = false;

  FrameReader client_reader_;
  FrameReader backend_reader_;
  core::OutQueue to_client_;
  core::OutQueue to_backend_;
  bool client_paused_ = false;   // we stopped reading the client (backend queue full)
  bool backend_paused_ = false;  // we stopped reading the backend (client queue full)

  // Queries and Syncs sent but not yet answered by ReadyForQuery.
  uint32_t in_flight_ = 0;
  char transaction_status_ = 'I';
  bool last_backend_message_fatal_ = false;
  bool client_terminated_ = false;
  bool shutting_down_ = false;

  // Statement policy (null when the host has none).
  std::unique_ptr<StatementGate> gate_;
  // A refusal waiting for the server's error on its substitute statement. Invariant:
  // ordered by ref; an entry is dropped when its error arrives or when the
  // ReadyForQuery that ends its Query or pipeline segment (number ends_at) does.
  struct PendingRefusal {
    uint32_t ref;
    uint64_t ends_at;
    ErrorInfo error;
  };
  std::vector<PendingRefusal> refusals_;
  uint64_t requests_sent_ = 0;  // Query, Sync, FunctionCall sent to the backend (each earns one ReadyForQuery)
  uint64_t readies_seen_ = 0;   // ReadyForQuery received in state ready
  uint32_t next_refusal_ref_ = 0;
  std::string refusal_marker_;  // "sluice: statement blocked by policy (ref <random>-", made on first use
  bool capturing_backend_error_ = false;

  // Result masking (null when nothing is masked for this identity and target).
  std::unique_ptr<ResultFilter> filter_;
  bool filtering_backend_message_ = false;  // the message being read is held for filter_
  // A row too large to hold was dropped and its query cancelled: the rest of the
  // result, up to ReadyForQuery, is dropped too (the client already has the error).
  bool discarding_result_ = false;
  bool cancel_paused_ = false;  // the client is not read until that cancel was processed
  std::vector<uint8_t> filtered_scratch_;   // filter_'s replacement, reused from message to message

  // Audit trail (null when the host has none). Invariant: audit_held_ holds, in order,
  // every client message after the first one whose statement record
  // (audit_hold_ticket_) was not yet durable; nothing behind them reached to_backend_.
  audit::ShardLog* audit_log_ = nullptr;
  std::unique_ptr<SessionAudit> audit_;
  std::vector<uint8_t> audit_held_;
  uint64_t audit_hold_ticket_ = 0;
  bool waiting_for_audit_ = false;
  bool audit_paused_ = false;              // we stopped reading the client for the audit writer
  bool terminate_after_release_ = false;   // Terminate arrived while messages were held
  std::string end_reason_;                 // why the session ended, for its session_end record

  core::TimerNode deadline_;
  SessionCounters counters_;
};

}  // namespace sluice::protocol
