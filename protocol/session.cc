#include "protocol/session.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

#include "core/log.h"

namespace sluice::protocol {
namespace {

// PostgreSQL's limit on authentication messages (PG_MAX_AUTH_TOKEN_LENGTH).
constexpr uint32_t kMaxAuthMessage = 65535;

// Client messages that may arrive while sluice logs in to the target are held, up to this.
constexpr size_t kMaxHeldClientBytes = 64 * 1024;
// Login-phase messages from the backend (auth requests, errors, notices, parameters).
constexpr uint32_t kMaxBackendLoginMessage = 1 << 20;
constexpr size_t kMaxForwardedParameterValue = 1024;

// Startup parameters passed on to PostgreSQL. Anything else (notably `options`, which
// can set any GUC) is dropped: nothing from the client is ever spliced into a
// connection string or SQL, and only known session settings travel.
constexpr const char* kForwardedParameters[] = {
    "application_name", "client_encoding", "datestyle", "timezone", "intervalstyle", "extra_float_digits",
    "search_path", "bytea_output", "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout",
    "default_transaction_isolation", "standard_conforming_strings",
};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

bool is_forwarded_parameter(std::string_view key) {
  for (const char* allowed : kForwardedParameters)
    if (iequals(key, allowed)) return true;
  return false;
}

bool truthy(std::string_view v) {
  return !(v == "false" || v == "0" || v == "off" || v == "no" || v == "f" || v == "n");
}

uint32_t load_be32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return ntohl(v);
}

// Messages a client sends expecting a ReadyForQuery in the end: they count as in flight.
bool awaits_ready_for_query(uint8_t type) { return type == 'Q' || type == 'S' || type == 'F'; }

// Messages that carry SQL (or call a function) and so pass the statement gate.
bool is_statement_message(uint8_t type) { return type == 'Q' || type == 'P' || type == 'F'; }

// Messages the audit trail reads: those that run a statement, and the extended
// protocol's bookkeeping (prepared statements, portals, Sync).
bool is_audited_message(uint8_t type) {
  return type == 'Q' || type == 'P' || type == 'B' || type == 'E' || type == 'F' || type == 'C' || type == 'S';
}

// Messages that make PostgreSQL run something: refused while the trail cannot be written.
bool runs_statement(uint8_t type) { return type == 'Q' || type == 'E' || type == 'F'; }

ErrorInfo audit_unavailable() {
  ErrorInfo e;
  e.sqlstate = "53100";
  e.message = "statement refused: sluice cannot write its audit trail, and runs no statement it cannot record";
  e.hint = "the audit directory is full or not writable; the gateway's log names the error. Statements are accepted "
           "again as soon as it can be written; this session stays open";
  return e;
}

// A captured message body with its header again, to queue or hold whole.
std::vector<uint8_t> reframe(uint8_t type, std::span<const uint8_t> body) {
  return MessageBuilder(static_cast<char>(type)).bytes(body).finish();
}

// Queues a captured message for the client as it came: its header rebuilt, the body
// copied once.
void relay_unchanged(core::OutQueue& out, uint8_t type, std::span<const uint8_t> body) {
  uint8_t header[5] = {type};
  const uint32_t length = htonl(static_cast<uint32_t>(body.size() + 4));
  std::memcpy(header + 1, &length, 4);
  out.push_copy(header, body);
}

ErrorInfo fatal(const char* sqlstate, std::string message, std::string hint = {}) {
  ErrorInfo e;
  e.severity = "FATAL";
  e.sqlstate = sqlstate;
  e.message = std::move(message);
  e.hint = std::move(hint);
  return e;
}

// What a session whose token expired is closed with.
ErrorInfo token_expired_error() {
  return fatal("28000", "the token this session logged in with has expired",
               "get a new token from your identity provider and reconnect");
}

}  // namespace

struct Session::ClientSink {
  Session& s;
  Disposition on_header(uint8_t type, uint32_t body_length) { return s.client_header(type, body_length); }
  void on_forward(const uint8_t* data, uint32_t size, core::BufferIndex buffer) {
    if (buffer == core::kNoBuffer) s.to_backend_.push_copy({data, size});
    else s.to_backend_.push_buffer_slice(data, size, buffer);
  }
  bool on_message(uint8_t type, std::span<const uint8_t> body) { return s.client_message(type, body); }
};

struct Session::BackendSink {
  Session& s;
  Disposition on_header(uint8_t type, uint32_t body_length) { return s.backend_header(type, body_length); }
  void on_forward(const uint8_t* data, uint32_t size, core::BufferIndex buffer) {
    if (buffer == core::kNoBuffer) s.to_client_.push_copy({data, size});
    else s.to_client_.push_buffer_slice(data, size, buffer);
  }
  bool on_message(uint8_t type, std::span<const uint8_t> body) { return s.backend_message(type, body); }
};

Session::Session(const Settings& settings, SessionHost& host, const scram::Key& mock_secret, uint32_t cancel_pid,
                 uint32_t cancel_secret, std::string peer, std::string reject_sqlstate)
    : settings_(settings),
      host_(host),
      mock_secret_(mock_secret),
      cancel_pid_(cancel_pid),
      cancel_secret_(cancel_secret),
      peer_(std::move(peer)),
      reject_sqlstate_(std::move(reject_sqlstate)),
      to_client_(host.buffer_pool(), settings.gateway.send_queue_bytes),
      to_backend_(host.buffer_pool(), settings.gateway.send_queue_bytes) {
  deadline_.on_expire = [this] { on_deadline(); };
  expiry_timer_.on_expire = [this] { on_token_expired(); };
  arm_deadline(settings_.gateway.handshake_timeout);
  audit_log_ = host.audit_log();
}

Session::~Session() {
  if (deadline_.armed()) host_.timers().disarm(deadline_);
  if (expiry_timer_.armed()) host_.timers().disarm(expiry_timer_);
}

// ---------------------------------------------------------------------------
// Client bytes
// ---------------------------------------------------------------------------

void Session::on_client_data(core::Chunk chunk) {
  if (state_ == State::closing) return;
  if (state_ == State::awaiting_startup) {
    handle_startup_bytes(chunk);
    if (state_ == State::awaiting_startup || state_ == State::closing || chunk.size == 0) return;
  }
  if (state_ == State::ready && deadline_.armed()) host_.timers().disarm(deadline_);  // no longer idle
  if (audit_) audit_->add_client_bytes(chunk.size);
  ClientSink sink{*this};
  client_reader_.feed(chunk, sink);
  if (state_ == State::closing) return;
  client_reader_.trim();
  if (client_terminated_) {
    if (audit_holding()) {  // the held statements still go first
      end_reason_ = "client terminated";
      terminate_after_release_ = true;
      pause_client_for_audit(true);
      wait_for_audit();
      return;
    }
    end_reason_ = "client terminated";
    host_.flush(Side::backend);
    close_quietly();
    return;
  }
  if (!to_backend_.empty()) host_.flush(Side::backend);
  apply_backpressure();
  if (audit_log_ != nullptr && (audit_holding() || audit_log_->congested())) {
    if (audit_held_.size() > settings_.gateway.send_queue_bytes || audit_log_->congested()) pause_client_for_audit(true);
    wait_for_audit();
  }
}

void Session::handle_startup_bytes(core::Chunk& chunk) {
  while (chunk.size > 0 && state_ == State::awaiting_startup) {
    // Assemble the length word, check it at once, then take exactly that many bytes.
    const size_t want = startup_buffer_.size() < 4 ? 4 : load_be32(startup_buffer_.data());
    const size_t take = std::min<size_t>(want - startup_buffer_.size(), chunk.size);
    startup_buffer_.insert(startup_buffer_.end(), chunk.data, chunk.data + take);
    chunk.data += take;
    chunk.size -= static_cast<uint32_t>(take);
    if (startup_buffer_.size() == 4) {
      const uint32_t length = load_be32(startup_buffer_.data());
      if (length < 8 || length > kMaxStartupPacketLength) {
        // PostgreSQL closes without a reply ("invalid length of startup packet").
        LOG_INFO("%s: invalid startup packet length %u; closing", peer_.c_str(), length);
        ++counters_.protocol_violations;
        close_quietly();
        return;
      }
    } else if (startup_buffer_.size() == want) {
      std::vector<uint8_t> packet;
      packet.swap(startup_buffer_);
      if (!handle_startup_packet(std::span<const uint8_t>(packet).subspan(4), chunk.size > 0)) return;
    }
  }
}

bool Session::handle_startup_packet(std::span<const uint8_t> body, bool more_bytes_follow) {
  const uint32_t code = load_be32(body.data());
  if (code == kCancelRequestCode) {
    if (body.size() == 12) host_.route_cancel(load_be32(body.data() + 4), load_be32(body.data() + 8));
    close_quietly();  // PostgreSQL never answers a CancelRequest
    return false;
  }
  if (code == kSslRequestCode || code == kGssEncRequestCode) {
    const bool ssl = code == kSslRequestCode;
    bool& answered = ssl ? ssl_answered_ : gss_answered_;
    if (answered || body.size() != 4) {
      fail(fatal("08P01", ssl ? "duplicate SSL negotiation request" : "duplicate GSSAPI negotiation request"));
      return false;
    }
    answered = true;
    if (more_bytes_follow) {
      // CVE-2021-23214: bytes sent before our answer could be injected by a MITM, and
      // would otherwise be read as if they had come over TLS.
      ++counters_.protocol_violations;
      fail(fatal("08P01", ssl ? "received unencrypted data after SSL request"
                              : "received unencrypted data after GSSAPI encryption request"));
      return false;
    }
    // The host answers 'S' and takes the connection into a TLS handshake; the
    // StartupMessage then arrives decrypted. Otherwise the client goes on in plaintext.
    if (ssl && !client_tls_ && host_.start_client_tls()) return true;
    send_to_client({'N'});
    host_.flush(Side::client);
    return true;
  }
  const uint32_t major = code >> 16;
  const uint32_t minor = code & 0xffff;
  if (major != 3) {
    fail(fatal("0A000", "unsupported frontend protocol " + std::to_string(major) + "." + std::to_string(minor) +
                            ": server supports 3.0 to 3.0"));
    return false;
  }
  StartupPacket packet;
  switch (parse_startup_packet(body, packet)) {
    case StartupParse::ok: break;
    case StartupParse::malformed:
      ++counters_.protocol_violations;
      fail(fatal("08P01", "invalid startup packet layout: expected terminator as last byte"));
      return false;
    case StartupParse::too_many_parameters:
      ++counters_.protocol_violations;
      fail(fatal("08P01", "too many startup parameters (sluice accepts " + std::to_string(kMaxStartupParameters) + ")"));
      return false;
  }
  if (!client_tls_ && host_.client_tls_required()) {
    // Before any password is asked, so none crosses the network in the clear.
    fail(fatal("28000", "sluice requires TLS on this listener; connect with sslmode=require (or verify-full)",
               "this listener's [gateway] require_tls is on (the default for addresses other than loopback)"));
    return false;
  }
  std::vector<std::string> unrecognized;
  for (const auto& [key, value] : packet.parameters) {
    if (key.rfind("_pq_.", 0) == 0) unrecognized.push_back(key);
  }
  if (minor > 0 || !unrecognized.empty()) send_to_client(negotiate_protocol_version(0, unrecognized));

  const std::string* user = packet.find("user");
  if (user == nullptr || user->empty()) {
    fail(fatal("28000", "no PostgreSQL user name specified in startup packet"));
    return false;
  }
  user_ = *user;
  const std::string* database = packet.find("database");
  database_ = (database != nullptr && !database->empty()) ? *database : user_;
  if (const std::string* replication = packet.find("replication"); replication != nullptr && truthy(*replication)) {
    fail(fatal("0A000", "replication connections are not supported through sluice"));
    return false;
  }
  for (auto& [key, value] : packet.parameters) {
    if (key == "user" || key == "database" || key == "replication" || key.rfind("_pq_.", 0) == 0) continue;
    if (is_forwarded_parameter(key) && value.size() <= kMaxForwardedParameterValue) {
      forwarded_parameters_.emplace_back(std::move(key), std::move(value));
    } else {
      LOG_DEBUG("%s: startup parameter '%.64s' is not forwarded", peer_.c_str(), key.c_str());
    }
  }
  if (!reject_sqlstate_.empty()) {
    fail(fatal(reject_sqlstate_.c_str(), "sorry, too many clients already",
               "sluice is at [gateway] max_client_connections; retry later or raise the limit"));
    return false;
  }
  gateway_user_ = settings_.find_user(user_);
  if (gateway_user_ == nullptr && settings_.oidc.enabled() && host_.token_authenticator() != nullptr)
    return start_token_login();
  if (gateway_user_ != nullptr) groups_ = gateway_user_->groups;
  scram_server_ = std::make_unique<scram::ServerExchange>(gateway_user_ ? &gateway_user_->verifier : nullptr, user_,
                                                          mock_secret_);
  state_ = State::authenticating;
  send_to_client(authentication_sasl("SCRAM-SHA-256"));
  host_.flush(Side::client);
  return true;
}

Disposition Session::client_header(uint8_t type, uint32_t body_length) {
  switch (state_) {
    case State::authenticating:
      if (type != 'p') {
        if (type == 'X') {
          close_quietly();
          return Disposition::violation;
        }
        ++counters_.protocol_violations;
        fail(fatal("08P01", "expected SASL response, got message type " + std::to_string(type)));
        return Disposition::violation;
      }
      if (body_length > kMaxAuthMessage) {
        ++counters_.protocol_violations;
        fail(fatal("08P01", "invalid message length"));
        return Disposition::violation;
      }
      return Disposition::capture;
    case State::connecting:
    case State::ready: {
      if (!is_frontend_message_type(type)) {
        ++counters_.protocol_violations;
        fail(fatal("08P01", "invalid frontend message type " + std::to_string(type)));
        return Disposition::violation;
      }
      const uint32_t limit = frontend_body_limit(type, settings_.gateway.max_message_bytes);
      if (body_length > limit) {
        reject_length(Side::client, type, body_length, limit);
        return Disposition::violation;
      }
      if (state_ == State::connecting) return Disposition::capture;  // held until the backend is ready
      if (type == 'X') return audit_holding() ? Disposition::capture : Disposition::forward_and_peek;
      if (gate_ && is_statement_message(type)) {
        // Judged whole in client_message, so held in memory: bounded by the gate.
        if (body_length > gate_->max_statement_message_bytes()) {
          ++counters_.protocol_violations;
          fail(fatal("54000",
                     std::string(frontend_message_name(type)) + " message of " + std::to_string(body_length) +
                         " bytes is longer than any statement sluice's policy accepts",
                     "raise [policy] max_statement_bytes in sluice's configuration, or send a shorter statement"));
          return Disposition::violation;
        }
        return Disposition::capture;
      }
      // The audit trail reads these; and while messages are held, everything queues behind them.
      if (audit_ && (is_audited_message(type) || audit_holding())) return Disposition::capture;
      if (awaits_ready_for_query(type)) {
        ++in_flight_;
        ++requests_sent_;
      }
      return Disposition::forward;
    }
    case State::awaiting_startup:
    case State::closing:
      return Disposition::violation;
  }
  return Disposition::violation;
}

void Session::reject_length(Side from, uint8_t type, uint32_t body_length, uint32_t limit) {
  ++counters_.protocol_violations;
  const bool client = from == Side::client;
  // Within PostgreSQL's own 1 GB limit the message could be real: say it is too large
  // for the configured cap (54000). Beyond it, or below 4, the length is malformed (08P01).
  if (limit == settings_.gateway.max_message_bytes && body_length <= kLargeMessageLimit) {
    const std::string what = client ? std::string(frontend_message_name(type)) + " message"
                                     : "the server's " + std::string(backend_message_name(type));
    fail(fatal("54000",
               what + " of " + std::to_string(body_length) + " bytes exceeds the gateway's limit of " +
                   std::to_string(limit) + " bytes",
               "raise [gateway] max_message_bytes in sluice's configuration"));
  } else {
    fail(fatal("08P01", client ? "invalid message length"
                               : "the server sent a message with an invalid length; sluice closed the session"));
  }
}

// A row (or COPY row) larger than max_message_bytes can be neither held to be masked
// nor cut short: it is dropped unread, the query is cancelled the way a client cancels
// one, and the client gets an error; the session goes on with its next statement.
bool Session::cancel_oversized_row(uint8_t type, uint32_t body_length, uint32_t limit) {
  if ((type != 'D' && type != 'd') || limit != settings_.gateway.max_message_bytes ||
      body_length > kLargeMessageLimit || !have_backend_key_)
    return false;
  ErrorInfo e;
  e.sqlstate = "54000";
  e.message = std::string(type == 'D' ? "a row" : "a COPY row") + " of " + std::to_string(body_length) +
              " bytes exceeds the gateway's limit of " + std::to_string(limit) +
              " bytes; sluice cancelled the query rather than send the row unmasked or cut short";
  e.hint = "select fewer or smaller columns, or raise [gateway] max_message_bytes in sluice's configuration";
  to_client_.push_copy(error_response(e));
  if (audit_) audit_->on_error(e.sqlstate);
  LOG_WARN("%s: target \"%s\" sent a %u-byte %s over max_message_bytes; cancelling the query", peer_.c_str(),
           target_->name.c_str(), body_length, backend_message_name(type));
  // Until PostgreSQL has processed the cancel, the client's next statement waits in
  // its socket: a cancel that arrived late would otherwise hit that statement.
  cancel_paused_ = true;
  update_client_reading();
  host_.cancel_backend_query(*target_, backend_pid_, backend_secret_);
  discarding_result_ = true;
  return true;
}

bool Session::client_message(uint8_t type, std::span<const uint8_t> body) {
  if (state_ == State::authenticating) return handle_client_auth_message(type, body);
  if (type == 'X') {
    client_terminated_ = true;
    if (audit_holding()) audit_held_.insert(audit_held_.end(), {'X', 0, 0, 0, 4});  // after the held statements
    return false;
  }
  if (state_ != State::connecting && state_ != State::ready) return false;
  // A message captured while logging in to the target (completed before or after the
  // switch to ready) is kept in order behind the login.
  if (awaits_ready_for_query(type)) {
    ++in_flight_;
    ++requests_sent_;
  }
  ErrorInfo refusal;
  Verdict verdict;
  Judged judged = Judged::allowed;
  if (gate_ && is_statement_message(type)) {
    judged = judge_statement_message(type, body, refusal, verdict);
    if (judged == Judged::malformed) return false;
  }
  // The record of a statement refused for want of an audit trail waits in the writer
  // for the disk like any other, but its refusal need not: nothing of it runs.
  const bool refused_for_audit =
      judged == Judged::allowed && audit_log_ != nullptr && runs_statement(type) && audit_log_->failing();
  if (refused_for_audit) {
    judged = Judged::refused;
    refusal = audit_unavailable();
  }
  const uint64_t ticket = audit_ ? audit_->on_client_message(type, body, verdict) : 0;
  queue_for_backend(judged == Judged::allowed ? reframe(type, body) : substitute_for_refused(type, body, std::move(refusal)),
                    refused_for_audit ? 0 : ticket);
  return state_ != State::closing;
}

void Session::queue_for_backend(std::vector<uint8_t> message, uint64_t ticket) {
  if (ticket != 0 && audit_log_->strict() && !audit_log_->durable(ticket)) audit_hold_ticket_ = ticket;
  if (state_ == State::connecting) {
    if (held_client_bytes_.size() + message.size() > kMaxHeldClientBytes) {
      ++counters_.protocol_violations;
      fail(fatal("08P01", "too much data sent before the session was ready"));
      return;
    }
    held_client_bytes_.insert(held_client_bytes_.end(), message.begin(), message.end());
  } else if (audit_holding()) {
    audit_held_.insert(audit_held_.end(), message.begin(), message.end());
  } else {
    to_backend_.push_copy(message);
  }
}

bool Session::start_token_login() {
  if (!client_tls_ && !(settings_.oidc.allow_cleartext_on_loopback && host_.client_on_loopback())) {
    // Never ask for a token that would cross the network in the clear.
    if (audit_log_) SessionAudit::auth_failed(*audit_log_, peer_, user_, database_, "token login without TLS", "oidc");
    fail(fatal("28000", "sluice accepts tokens only over TLS; connect with sslmode=require (or verify-full)",
               "\"" + user_ + "\" is not a gateway user, so sluice would ask for a token as the password"));
    return false;
  }
  token_login_ = true;
  state_ = State::authenticating;
  send_to_client(authentication_cleartext_password());
  host_.flush(Side::client);
  return true;
}

bool Session::handle_token_password(std::span<const uint8_t> body) {
  // PasswordMessage: the token, NUL-terminated. It is never logged or echoed.
  if (body.empty() || body.back() != 0 || std::find(body.begin(), body.end() - 1, 0) != body.end() - 1) {
    ++counters_.protocol_violations;
    fail(fatal("08P01", "malformed password message"));
    return false;
  }
  const std::string_view token(reinterpret_cast<const char*>(body.data()), body.size() - 1);
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  const oidc::TokenLogin login = host_.token_authenticator()->authenticate(token, now);
  std::string refusal;
  if (!login.verdict.ok()) {
    refusal = login.verdict.reason;
  } else if (login.verdict.identity.name != user_ && settings_.oidc.user_must_match) {
    refusal = "the token is for \"" + login.verdict.identity.name + "\", not for user \"" + user_ + "\"";
  }
  if (!refusal.empty()) {
    ++counters_.auth_failures;
    LOG_WARN("%s: token login as \"%s\" refused: %s", peer_.c_str(), user_.c_str(), refusal.c_str());
    if (audit_log_) SessionAudit::auth_failed(*audit_log_, peer_, user_, database_, refusal, "oidc");
    fail(fatal("28P01", "token authentication failed for user \"" + user_ + "\": " + refusal));
    return false;
  }
  user_ = login.verdict.identity.name;
  groups_ = login.verdict.identity.groups;
  const int64_t expires_at = login.verdict.identity.expires_at;
  LOG_DEBUG("%s: token of issuer \"%s\" accepted for \"%s\"%s", peer_.c_str(), login.issuer.c_str(), user_.c_str(),
            login.cached ? " (cached)" : "");
  client_authenticated();  // AuthenticationOk follows once the target is logged in to
  if (state_ == State::closing || expires_at == 0) return state_ != State::closing;
  const int64_t seconds_left = std::max<int64_t>(expires_at - now, 0);
  host_.timers().arm(expiry_timer_, static_cast<uint64_t>(seconds_left) * 1000);
  return true;
}

void Session::on_token_expired() {
  if (state_ == State::closing) return;
  token_expired_ = true;
  LOG_INFO("%s: the token of \"%s\" expired; closing the session", peer_.c_str(), user_.c_str());
  if (end_reason_.empty()) end_reason_ = "token expired";
  if (idle() || !settings_.oidc.finish_transaction_at_expiry || state_ != State::ready) {
    if (idle()) end_idle_session(token_expired_error());
    else fail(token_expired_error());
  }
  // finish-transaction: closed by maybe_close_for_shutdown at the next idle ReadyForQuery.
}

bool Session::handle_client_auth_message(uint8_t type, std::span<const uint8_t> body) {
  (void)type;  // only 'p' reaches here
  if (token_login_) return handle_token_password(body);
  std::string output;
  scram::Step step;
  if (client_auth_step_ == 0) {
    BodyReader reader(body);
    std::string_view mechanism;
    int32_t length = 0;
    std::span<const uint8_t> data;
    if (!reader.cstring(mechanism) || !reader.int32(length) || length < 0 ||
        !reader.bytes(static_cast<size_t>(length), data) || !reader.at_end()) {
      ++counters_.protocol_violations;
      fail(fatal("08P01", "malformed SASLInitialResponse message"));
      return false;
    }
    if (mechanism != "SCRAM-SHA-256") {
      ++counters_.protocol_violations;
      fail(fatal("08P01", "client selected an invalid SASL authentication mechanism"));
      return false;
    }
    step = scram_server_->on_client_first(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()), output);
    if (step == scram::Step::continue_exchange) {
      client_auth_step_ = 1;
      send_to_client(authentication_sasl_continue(output));
      host_.flush(Side::client);
      return true;
    }
  } else {
    step = scram_server_->on_client_final(std::string_view(reinterpret_cast<const char*>(body.data()), body.size()), output);
    if (step == scram::Step::success) {
      send_to_client(authentication_sasl_final(output));
      client_authenticated();
      return state_ != State::closing;
    }
  }
  if (step == scram::Step::failure) {
    ++counters_.auth_failures;
    LOG_WARN("%s: authentication failed for user \"%s\"%s", peer_.c_str(), user_.c_str(),
             gateway_user_ ? "" : " (no such gateway user)");
    if (audit_log_)
      SessionAudit::auth_failed(*audit_log_, peer_, user_, database_,
                                gateway_user_ ? "wrong password" : "no such gateway user");
    fail(fatal("28P01", "password authentication failed for user \"" + user_ + "\""));
  } else {
    ++counters_.protocol_violations;
    fail(fatal("08P01", "malformed SCRAM message"));
  }
  return false;
}

void Session::client_authenticated() {
  scram_server_.reset();
  target_ = settings_.find_target(database_);
  if (target_ == nullptr) {
    if (audit_log_)
      SessionAudit::auth_failed(*audit_log_, peer_, user_, database_, "no such target", auth_method());
    fail(fatal("3D000", "database \"" + database_ + "\" does not exist",
               "sluice has no target of that name; connect with dbname set to one of the gateway's targets"));
    return;
  }
  if (StatementGateFactory* gates = host_.statement_gates()) {
    ErrorInfo refusal;
    gate_ = gates->open(user_, groups_, *target_, refusal);
    if (!gate_) {
      LOG_WARN("%s: user \"%s\" refused on target \"%s\": %s", peer_.c_str(), user_.c_str(), target_->name.c_str(),
               refusal.message.c_str());
      if (audit_log_)
        SessionAudit::auth_failed(*audit_log_, peer_, user_, database_, refusal.message,
                                  auth_method());
      fail(refusal);
      return;
    }
  }
  ResultFilterFactory* filters = host_.result_filters();
  if (filters != nullptr) {
    filter_ = filters->open(user_, groups_, *target_);
  }
  if (audit_log_) {
    audit_ = std::make_unique<SessionAudit>(*audit_log_, peer_);
    audit_->set_parameter_masker(filter_.get());
    audit_->session_started(user_, groups_, target_->name, client_tls_,
                            /*clear_text=*/filters != nullptr && !filter_, auth_method(), host_.client_tls_records());
  }
  LOG_DEBUG("%s: user \"%s\" authenticated; connecting to target \"%s\"", peer_.c_str(), user_.c_str(),
            target_->name.c_str());
  state_ = State::connecting;
  backend_login_ = BackendLogin::tcp;
  arm_deadline(settings_.gateway.connect_timeout);
  host_.flush(Side::client);
  host_.connect_backend(*target_);
}

// ---------------------------------------------------------------------------
// Backend bytes
// ---------------------------------------------------------------------------

void Session::on_backend_connected(int error) {
  if (state_ != State::connecting || backend_login_ != BackendLogin::tcp) return;
  if (error != 0) {
    fail_backend_login(std::string("could not connect to ") + target_->address.text + ": " + std::strerror(-error));
    return;
  }
  if (target_->sslmode != Target::SslMode::disable) {
    backend_login_ = BackendLogin::ssl_answer;
    send_to_backend(ssl_request());
    host_.flush(Side::backend);
    return;
  }
  send_backend_startup();
}

void Session::handle_backend_ssl_answer(core::Chunk chunk) {
  const uint8_t answer = chunk.data[0];
  const bool tls_required = target_->sslmode != Target::SslMode::prefer;
  if (answer == 'S') {
    if (chunk.size > 1) {
      // Bytes behind the 'S' came before any handshake: injected, not from the server.
      ++counters_.protocol_violations;
      fail_backend_login("the server sent unencrypted data after accepting TLS (a man in the middle?)");
      return;
    }
    if (!host_.start_backend_tls(*target_)) {
      fail_backend_login("TLS toward targets is not available in this sluice");
      return;
    }
    backend_login_ = BackendLogin::tls_handshake;
    return;
  }
  if (answer == 'N' && chunk.size == 1 && !tls_required) {
    send_backend_startup();  // prefer: the server has no TLS, so the login goes on in plaintext
    return;
  }
  if (answer == 'N' && chunk.size == 1) {
    fail_backend_login("the server does not accept TLS, and the target's sslmode requires it");
    return;
  }
  ++counters_.protocol_violations;
  fail_backend_login("the server did not answer the TLS request with 'S' or 'N'");
}

void Session::on_backend_tls_established() {
  if (state_ != State::connecting || backend_login_ != BackendLogin::tls_handshake) return;
  send_backend_startup();
}

void Session::on_backend_tls_failed(const std::string& why) {
  if (state_ != State::connecting) return;
  LOG_WARN("%s: TLS with target \"%s\" failed: %s", peer_.c_str(), target_->name.c_str(), why.c_str());
  fail_backend_login("TLS with the server failed (sluice's log says why)");
}

void Session::send_backend_startup() {
  std::vector<std::pair<std::string, std::string>> parameters;
  parameters.emplace_back("user", target_->user);
  parameters.emplace_back("database", target_->database);
  for (const auto& p : forwarded_parameters_) parameters.push_back(p);
  forwarded_parameters_.clear();
  if (gate_) {
    std::vector<std::pair<std::string, std::string>> pinned;
    gate_->backend_parameters(pinned);
    for (const auto& pin : pinned) {
      std::erase_if(parameters, [&](const auto& p) { return iequals(p.first, pin.first); });
      parameters.push_back(pin);
    }
  }
  backend_login_ = BackendLogin::awaiting_auth;
  send_to_backend(startup_message(parameters));
  host_.flush(Side::backend);
}

void Session::on_backend_data(core::Chunk chunk) {
  if (state_ == State::closing) return;
  if (backend_login_ == BackendLogin::ssl_answer && state_ == State::connecting) {
    handle_backend_ssl_answer(chunk);
    if (!to_backend_.empty()) host_.flush(Side::backend);
    return;
  }
  if (backend_login_ == BackendLogin::tls_handshake) {
    // Plaintext from the server before the handshake finished: the host decrypts
    // everything after the 'S', so this cannot be the server speaking.
    ++counters_.protocol_violations;
    fail_backend_login("the server sent unencrypted data during the TLS handshake");
    return;
  }
  BackendSink sink{*this};
  backend_reader_.feed(chunk, sink);
  if (state_ == State::closing) return;
  backend_reader_.trim();
  if (!to_client_.empty()) host_.flush(Side::client);
  if (!to_backend_.empty()) host_.flush(Side::backend);
  apply_backpressure();
}

Disposition Session::backend_header(uint8_t type, uint32_t body_length) {
  if (state_ == State::connecting) {
    if (body_length > kMaxBackendLoginMessage) {
      fail_backend_login("the server sent an oversized or malformed message during login");
      return Disposition::violation;
    }
    return Disposition::capture;
  }
  if (state_ != State::ready) return Disposition::violation;
  if (!is_backend_message_type(type)) {
    ++counters_.protocol_violations;
    LOG_WARN("%s: target \"%s\" sent unexpected message type %u; closing the session", peer_.c_str(),
             target_->name.c_str(), type);
    fail(fatal("08P01", "the server sent an unexpected message (type " + std::to_string(type) + "); sluice closed the session"));
    return Disposition::violation;
  }
  const uint32_t limit = backend_body_limit(type, settings_.gateway.max_message_bytes);
  if (discarding_result_) {
    // What is left of a cancelled result: dropped. ReadyForQuery ends it; status,
    // notification and notice messages are not part of it and pass as usual.
    if (type == 'Z') discarding_result_ = false;
    else if (type != 'S' && type != 'A' && type != 'N') return Disposition::skip;
  }
  if (body_length > limit) {
    if (cancel_oversized_row(type, body_length, limit)) return Disposition::skip;
    reject_length(Side::backend, type, body_length, limit);
    return Disposition::violation;
  }
  last_backend_message_fatal_ = false;
  capturing_backend_error_ = type == 'E' && !refusals_.empty();
  if (capturing_backend_error_) return Disposition::capture;  // counted as relayed: relay_backend_error
  if (filter_) {
    filtering_backend_message_ = filter_->inspects(type);
    if (filtering_backend_message_) return Disposition::capture;  // counted as relayed: relay_filtered
    filter_->passed(type);
  }
  if (audit_) audit_->on_server_header(type, body_length);
  if (type == 'Z' || type == 'E') return Disposition::forward_and_peek;
  if (audit_ && (type == 'C' || type == 'I' || type == 's')) return Disposition::forward_and_peek;
  return Disposition::forward;
}

bool Session::backend_message(uint8_t type, std::span<const uint8_t> body) {
  if (state_ == State::connecting) return handle_backend_login_message(type, body);
  if (state_ != State::ready) return false;
  if (filtering_backend_message_) {
    filtering_backend_message_ = false;
    if (!relay_filtered(type, body)) return false;
  }
  if (type == 'Z') {
    transaction_status_ = body.empty() ? 'I' : static_cast<char>(body[0]);
    if (in_flight_ > 0) --in_flight_;
    ++readies_seen_;
    if (!refusals_.empty()) forget_finished_refusals();
    if (audit_) audit_->on_ready_for_query();
    if (idle()) {
      if (shutting_down_ || token_expired_) {
        maybe_close_for_shutdown();
        return false;
      }
      arm_idle_deadline();
    }
  } else if (type == 'E') {
    if (capturing_backend_error_) {
      capturing_backend_error_ = false;
      relay_backend_error(body);
    } else {
      note_backend_error(body);
    }
  } else if (audit_) {
    if (type == 'C') audit_->on_command_complete(body);
    if (type == 'I' || type == 's') audit_->on_execute_ended();
  }
  return true;
}

void Session::note_backend_error(std::span<const uint8_t> body) {
  std::vector<ErrorField> fields;
  if (parse_error_fields(body, fields)) {
    std::string_view severity = error_field(fields, 'V');
    if (severity.empty()) severity = error_field(fields, 'S');
    last_backend_message_fatal_ = severity == "FATAL" || severity == "PANIC";
    if (audit_) audit_->on_error(error_field(fields, 'C'));
  }
}

// ---------------------------------------------------------------------------
// Statement policy
// ---------------------------------------------------------------------------

Session::Judged Session::judge_statement_message(uint8_t type, std::span<const uint8_t> body, ErrorInfo& refusal,
                                                 Verdict& verdict) {
  bool allowed = false;
  if (type == 'F') {
    allowed = gate_->allow_function_call(refusal, verdict);
  } else {
    BodyReader reader(body);
    std::string_view statement_name, sql;
    const bool well_formed = type == 'Q' ? reader.cstring(sql) && reader.at_end()
                                         : reader.cstring(statement_name) && reader.cstring(sql);
    if (!well_formed) {
      ++counters_.protocol_violations;
      fail(fatal("08P01", std::string("invalid ") + frontend_message_name(type) + " message format"));
      return Judged::malformed;
    }
    allowed = gate_->judge(sql, refusal, verdict);
  }
  if (allowed) return Judged::allowed;
  ++counters_.statements_blocked;
  return Judged::refused;
}

std::vector<uint8_t> Session::substitute_for_refused(uint8_t type, std::span<const uint8_t> body, ErrorInfo refusal) {
  if (refusal_marker_.empty()) {
    uint8_t nonce[6];
    if (RAND_bytes(nonce, sizeof nonce) != 1) std::memset(nonce, 0, sizeof nonce);
    static constexpr char kHex[] = "0123456789abcdef";
    refusal_marker_ = "sluice: statement blocked by policy (ref ";
    for (uint8_t b : nonce) {
      refusal_marker_ += kHex[b >> 4];
      refusal_marker_ += kHex[b & 15];
    }
    refusal_marker_ += '-';
  }
  const uint32_t ref = next_refusal_ref_++;
  // A Query or FunctionCall earns its own ReadyForQuery (already counted); a Parse's
  // or Execute's segment ends at the next Sync.
  const bool extended = type == 'P' || type == 'E';
  refusals_.push_back({ref, extended ? requests_sent_ + 1 : requests_sent_, std::move(refusal)});
  const std::string marked = refusal_marker_ + std::to_string(ref) + ")";
  if (type == 'E') {
    // Binding a prepared statement that does not exist fails with its name (our
    // marker) in the message, and skips to Sync as the refused Execute would.
    return MessageBuilder('B').cstring("").cstring(marked).int16(0).int16(0).int16(0).finish();
  }
  // Fails in parse analysis (the literal is cast at once), in any transaction state
  // that accepts statements, with a message that carries our marker verbatim.
  const std::string substitute = "SELECT '" + marked + "'::pg_catalog.int4";
  if (type == 'P') {
    BodyReader reader(body);
    std::string_view statement_name;
    (void)reader.cstring(statement_name);  // well-formed: judged before
    return MessageBuilder('P').cstring(statement_name).cstring(substitute).int16(0).finish();
  }
  return MessageBuilder('Q').cstring(substitute).finish();
}

void Session::relay_backend_error(std::span<const uint8_t> body) {
  if (filter_ && !filter_->inspects('E')) filter_->passed('E');
  std::vector<ErrorField> fields;
  if (parse_error_fields(body, fields)) {
    const std::string_view message = error_field(fields, 'M');
    const size_t at = message.find(refusal_marker_);
    if (at != std::string_view::npos) {
      uint32_t ref = 0;
      const char* digits = message.data() + at + refusal_marker_.size();
      const auto [end, ec] = std::from_chars(digits, message.data() + message.size(), ref);
      (void)end;
      if (ec == std::errc()) {
        for (size_t i = 0; i < refusals_.size(); ++i) {
          if (refusals_[i].ref != ref) continue;
          const std::vector<uint8_t> ours = error_response(refusals_[i].error);
          to_client_.push_copy(ours);
          if (audit_) {
            audit_->on_server_header('E', static_cast<uint32_t>(ours.size() - 5));
            audit_->on_error(refusals_[i].error.sqlstate);
          }
          refusals_.erase(refusals_.begin(), refusals_.begin() + static_cast<std::ptrdiff_t>(i) + 1);
          return;
        }
      }
    }
  }
  // Not ours (an earlier error, 25P02 in an aborted transaction...): pass it on.
  if (filter_ && filter_->inspects('E')) {
    if (!relay_filtered('E', body)) return;
  } else {
    relay_unchanged(to_client_, 'E', body);
    if (audit_) audit_->on_server_header('E', static_cast<uint32_t>(body.size()));
  }
  note_backend_error(body);
}

bool Session::relay_filtered(uint8_t type, std::span<const uint8_t> body) {
  std::vector<uint8_t>& replacement = filtered_scratch_;  // reused: a rewritten row per message
  ErrorInfo refusal;
  const ResultFilter::Action action = filter_->filter(type, body, replacement, refusal);
  if (audit_ && action != ResultFilter::Action::refuse) {
    if (auto clear = filter_->take_clear_counts(); !clear.empty()) audit_->on_clear(clear);
  }
  switch (action) {
    case ResultFilter::Action::forward:
      if (const core::BufferIndex buffer = backend_reader_.message_buffer(); buffer != core::kNoBuffer) {
        // Still where it was received: forward it as a slice of that buffer, no copy.
        to_client_.push_buffer_slice(body.data() - 5, static_cast<uint32_t>(body.size() + 5), buffer);
      } else {
        relay_unchanged(to_client_, type, body);
      }
      if (audit_) audit_->on_server_header(type, static_cast<uint32_t>(body.size()));
      return true;
    case ResultFilter::Action::replace:
      to_client_.push_copy(replacement);
      if (replacement.capacity() > (1u << 20)) std::vector<uint8_t>().swap(replacement);  // a huge row: let it go
      if (audit_) {
        audit_->on_server_header(type, static_cast<uint32_t>(replacement.size() - 5));
        audit_->on_masked(filter_->take_masked_counts());
      }
      return true;
    case ResultFilter::Action::refuse:
      break;
  }
  refusal.severity = "FATAL";
  // Nothing of the message reached the client; the rest of its result would follow
  // it, so the session ends here rather than forward anything it could not judge.
  LOG_WARN("%s: %s from target \"%s\" could not be masked; closing the session: %s", peer_.c_str(),
           backend_message_name(type), target_->name.c_str(), refusal.message.c_str());
  if (audit_) audit_->on_error(refusal.sqlstate);
  fail(refusal);
  return false;
}

void Session::forget_finished_refusals() {
  std::erase_if(refusals_, [&](const PendingRefusal& r) { return r.ends_at <= readies_seen_; });
}

bool Session::handle_backend_login_message(uint8_t type, std::span<const uint8_t> body) {
  switch (type) {
    case 'R':
      return answer_backend_auth(body);
    case 'S':
    case 'N': {
      std::vector<uint8_t> message = reframe(type, body);
      login_replay_.insert(login_replay_.end(), message.begin(), message.end());
      return true;
    }
    case 'K': {
      BodyReader reader(body);
      if (!reader.uint32(backend_pid_) || !reader.uint32(backend_secret_) || !reader.at_end()) {
        fail_backend_login("the server sent a malformed BackendKeyData message");
        return false;
      }
      have_backend_key_ = true;
      return true;
    }
    case 'E': {
      std::vector<ErrorField> fields;
      if (!parse_error_fields(body, fields)) {
        fail_backend_login("the server sent a malformed error during login");
        return false;
      }
      std::string sqlstate(error_field(fields, 'C'));
      std::string message(error_field(fields, 'M'));
      // A rejected login of sluice's own role is a gateway configuration problem, not
      // the client's: say so rather than passing on "password authentication failed".
      if (sqlstate.rfind("28", 0) == 0 || sqlstate.size() != 5) sqlstate = "08006";
      fail_backend_login("the server refused the login: " + message, sqlstate.c_str());
      return false;
    }
    case 'Z':
      if (backend_login_ != BackendLogin::awaiting_ready || body.size() != 1) {
        fail_backend_login("the server sent ReadyForQuery before completing authentication");
        return false;
      }
      backend_ready(static_cast<char>(body[0]));
      return state_ == State::ready;
    default:
      fail_backend_login(std::string("the server sent an unexpected ") + backend_message_name(type) +
                         " message during login");
      return false;
  }
}

bool Session::answer_backend_auth(std::span<const uint8_t> body) {
  BodyReader reader(body);
  int32_t code = -1;
  if (!reader.int32(code)) {
    fail_backend_login("the server sent a malformed authentication request");
    return false;
  }
  // Each request is legal only at its point of the exchange: a server cannot skip
  // SCRAM's final signature check, nor restart authentication once it succeeded.
  const bool expected = code == 0    ? (backend_login_ == BackendLogin::awaiting_auth || backend_login_ == BackendLogin::awaiting_ok)
                        : code == 11 || code == 12 ? backend_login_ == BackendLogin::scram
                                                   : backend_login_ == BackendLogin::awaiting_auth;
  if (!expected) {
    fail_backend_login("the server sent an authentication request out of order (code " + std::to_string(code) + ")");
    return false;
  }
  const std::string& password = target_->password.reveal();
  std::span<const uint8_t> rest;
  reader.bytes(reader.remaining(), rest);
  const std::string_view data(reinterpret_cast<const char*>(rest.data()), rest.size());
  switch (code) {
    case 0:  // AuthenticationOk
      backend_login_ = BackendLogin::awaiting_ready;
      return true;
    case 3:  // cleartext password
    case 5: {  // md5
      if (password.empty()) {
        fail_backend_login("the server asks for a password but the target has none configured (password_file or password_env)");
        return false;
      }
      if (code == 3) {
        send_to_backend(password_message(password));
      } else {
        if (rest.size() != 4) {
          fail_backend_login("the server sent a malformed MD5 authentication request");
          return false;
        }
        send_to_backend(password_message(scram::md5_password_response(target_->user, password, rest.first<4>())));
      }
      host_.flush(Side::backend);
      return true;
    }
    case 10: {  // SASL: list of mechanisms
      bool offered = false;
      BodyReader mechanisms(rest);
      std::string_view mechanism;
      while (mechanisms.cstring(mechanism) && !mechanism.empty()) offered |= mechanism == "SCRAM-SHA-256";
      if (!offered) {
        fail_backend_login("the server offers no SASL mechanism sluice supports (SCRAM-SHA-256)");
        return false;
      }
      scram_client_ = std::make_unique<scram::ClientExchange>(password);
      backend_login_ = BackendLogin::scram;
      send_to_backend(sasl_initial_response("SCRAM-SHA-256", scram_client_->client_first()));
      host_.flush(Side::backend);
      return true;
    }
    case 11: {  // SASLContinue
      std::string output;
      if (!scram_client_ || scram_client_->on_server_first(data, output) != scram::Step::continue_exchange) {
        fail_backend_login("the server's SCRAM challenge is malformed");
        return false;
      }
      send_to_backend(sasl_response(output));
      host_.flush(Side::backend);
      return true;
    }
    case 12:  // SASLFinal
      if (!scram_client_ || scram_client_->on_server_final(data) != scram::Step::success) {
        fail_backend_login("the server's SCRAM signature did not verify: it may not be the server this target names");
        return false;
      }
      scram_client_.reset();
      backend_login_ = BackendLogin::awaiting_ok;
      return true;
    default:
      fail_backend_login("the server asks for an authentication method sluice does not support (code " +
                         std::to_string(code) + "); allow scram-sha-256, md5 or password for the target's role");
      return false;
  }
}

void Session::backend_ready(char status) {
  if (!have_backend_key_) LOG_DEBUG("%s: target sent no BackendKeyData; cancel requests cannot be forwarded", peer_.c_str());
  state_ = State::ready;
  transaction_status_ = status;
  host_.timers().disarm(deadline_);
  send_to_client(authentication_ok());
  to_client_.push_copy(login_replay_);
  std::vector<uint8_t>().swap(login_replay_);
  send_to_client(backend_key_data(cancel_pid_, cancel_secret_));
  send_to_client(ready_for_query(status));
  host_.flush(Side::client);
  LOG_DEBUG("%s: session ready (user \"%s\", target \"%s\")", peer_.c_str(), user_.c_str(), target_->name.c_str());
  if (!held_client_bytes_.empty()) {
    if (audit_holding()) {  // a statement among them waits for its audit record
      audit_held_.swap(held_client_bytes_);
      wait_for_audit();
    } else {
      to_backend_.push_copy(held_client_bytes_);
      host_.flush(Side::backend);
    }
    std::vector<uint8_t>().swap(held_client_bytes_);
  }
  if (shutting_down_ || token_expired_) {
    maybe_close_for_shutdown();
  } else {
    arm_idle_deadline();  // idle from the first moment
  }
}

// ---------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------

void Session::on_client_tls_established(bool direct, std::string_view alpn) {
  if (state_ != State::awaiting_startup) return;
  client_tls_ = true;
  ssl_answered_ = true;  // a later SSLRequest is a duplicate
  if (direct && alpn != "postgresql") {
    ++counters_.protocol_violations;
    fail(fatal("08P01", "received direct TLS connection request without ALPN protocol \"postgresql\"",
               "direct TLS (sslnegotiation=direct) needs a PostgreSQL 17 or newer client"));
  }
}

void Session::on_client_closed(int error) {
  if (state_ == State::closing) return;
  end_reason_ = error == 0 ? "client closed the connection" : std::string("client connection error: ") + std::strerror(-error);
  if (error != 0) LOG_DEBUG("%s: client connection error: %s", peer_.c_str(), std::strerror(-error));
  close_quietly();
}

void Session::on_backend_closed(int error) {
  if (state_ == State::closing) return;
  const std::string reason = error == 0 ? "server closed the connection unexpectedly" : std::strerror(-error);
  if (state_ != State::ready) {
    fail_backend_login(reason);
    return;
  }
  if (last_backend_message_fatal_) {  // the server already told the client why
    end_reason_ = "server ended the session";
    close_quietly();
    return;
  }
  LOG_INFO("%s: lost the connection to target \"%s\": %s", peer_.c_str(), target_->name.c_str(), reason.c_str());
  fail(fatal("08006", "lost the connection to target \"" + target_->name + "\": " + reason,
             "the server may have restarted or terminated this session; reconnect to get a new session"));
}

void Session::on_sent(Side side) {
  if (side == Side::client && backend_paused_ && to_client_.below_resume_mark()) {
    backend_paused_ = false;
    host_.set_reading(Side::backend, true);
  }
  if (side == Side::backend && client_paused_ && to_backend_.below_resume_mark()) {
    client_paused_ = false;
    update_client_reading();
  }
}

// The client is read unless something holds it: backpressure, the audit writer, or a
// cancel sluice sent that PostgreSQL has not processed yet.
void Session::update_client_reading() {
  host_.set_reading(Side::client, !(client_paused_ || audit_paused_ || cancel_paused_));
}

void Session::on_backend_cancel_done() {
  if (!cancel_paused_) return;
  cancel_paused_ = false;
  if (state_ != State::closing) update_client_reading();
}

void Session::apply_backpressure() {
  if (!backend_paused_ && to_client_.over_limit()) {
    backend_paused_ = true;
    host_.set_reading(Side::backend, false);
  }
  if (!client_paused_ && to_backend_.over_limit()) {
    client_paused_ = true;
    update_client_reading();
  }
}

bool Session::accept_cancel(uint32_t secret, uint32_t& backend_pid, uint32_t& backend_secret) const {
  const bool match = CRYPTO_memcmp(&secret, &cancel_secret_, sizeof secret) == 0;
  if (!match || !have_backend_key_ || state_ != State::ready) return false;
  backend_pid = backend_pid_;
  backend_secret = backend_secret_;
  return true;
}

void Session::begin_shutdown() {
  if (shutting_down_ || state_ == State::closing) return;
  shutting_down_ = true;
  if (state_ == State::ready) {
    maybe_close_for_shutdown();
  } else if (state_ != State::connecting) {
    fail(fatal("57P01", "terminating connection because the gateway is shutting down"));
  }
  // connecting: backend_ready() closes once the login completes (or the login fails).
}

void Session::maybe_close_for_shutdown() {
  if (!idle()) return;
  if (token_expired_) {
    end_idle_session(token_expired_error());
    return;
  }
  end_idle_session(fatal("57P01", "terminating connection because the gateway is shutting down",
                         "reconnect: another sluice instance or the restarted gateway will serve you"));
}

void Session::end_idle_session(const ErrorInfo& why) {
  send_to_backend(MessageBuilder('X').finish());  // end the backend session cleanly, not by EOF
  host_.flush(Side::backend);
  fail(why);
}

void Session::on_write_stalled() {
  if (state_ == State::closing) return;
  LOG_WARN("%s: the client did not read its results for %lld ms (write_stall_timeout); closing the session",
           peer_.c_str(), static_cast<long long>(settings_.gateway.write_stall_timeout.count()));
  end_reason_ = "client stopped reading (write_stall_timeout)";
  close_quietly();
}

void Session::arm_idle_deadline() {
  if (idle() && settings_.gateway.idle_timeout.count() > 0) arm_deadline(settings_.gateway.idle_timeout);
}

void Session::arm_deadline(std::chrono::milliseconds delay) {
  host_.timers().arm(deadline_, static_cast<uint64_t>(delay.count()));
}

void Session::on_deadline() {
  switch (state_) {
    case State::awaiting_startup:
    case State::authenticating:
      LOG_INFO("%s: startup and authentication did not finish within handshake_timeout; closing", peer_.c_str());
      fail(fatal("57014", "canceling authentication due to timeout",
                 "sluice allows [gateway] handshake_timeout for startup and authentication"));
      return;
    case State::connecting:
      fail_backend_login("the login did not finish within connect_timeout");
      return;
    case State::ready:
      if (idle()) {
        end_idle_session(fatal("57P05", "terminating connection due to idle-session timeout",
                               "sluice closes sessions idle for longer than [gateway] idle_timeout"));
      }
      return;
    case State::closing:
      return;
  }
}

// ---------------------------------------------------------------------------
// Output helpers
// ---------------------------------------------------------------------------

void Session::send_to_client(const std::vector<uint8_t>& bytes) { to_client_.push_copy(bytes); }
void Session::send_to_backend(const std::vector<uint8_t>& bytes) { to_backend_.push_copy(bytes); }

void Session::fail(const ErrorInfo& error) {
  if (state_ == State::closing) return;
  // An error can only be spliced in between whole messages toward the client.
  if (backend_reader_.at_boundary()) {
    send_to_client(error_response(error));
  }
  LOG_DEBUG("%s: closing: %s %s", peer_.c_str(), error.sqlstate.c_str(), error.message.c_str());
  if (end_reason_.empty()) end_reason_ = error.message;
  host_.flush(Side::client);
  close_quietly();
}

void Session::fail_backend_login(const std::string& why, const char* sqlstate) {
  const std::string name = target_ ? target_->name : std::string("?");
  LOG_WARN("%s: cannot log in to target \"%s\": %s", peer_.c_str(), name.c_str(), why.c_str());
  fail(fatal(sqlstate, "sluice could not log in to target \"" + name + "\": " + why,
             "this is a problem between the gateway and the database, not with your credentials; "
             "the gateway's log has details"));
}

void Session::close_quietly() {
  if (state_ == State::closing) return;
  state_ = State::closing;
  if (deadline_.armed()) host_.timers().disarm(deadline_);
  if (audit_) audit_->session_ended(end_reason_.empty() ? "closed" : end_reason_);
  host_.finish();
}

// ---------------------------------------------------------------------------
// Audit trail
// ---------------------------------------------------------------------------

bool Session::audit_holding() const {
  return !audit_held_.empty() || (audit_hold_ticket_ != 0 && !audit_log_->durable(audit_hold_ticket_));
}

void Session::wait_for_audit() {
  if (waiting_for_audit_) return;
  waiting_for_audit_ = true;
  host_.wait_for_audit();
}

void Session::pause_client_for_audit(bool pause) {
  if (pause == audit_paused_) return;
  audit_paused_ = pause;
  update_client_reading();
}

void Session::on_audit_progress() {
  waiting_for_audit_ = false;
  if (state_ == State::closing || audit_log_ == nullptr) return;
  if (!audit_held_.empty() && audit_log_->durable(audit_hold_ticket_)) {
    to_backend_.push_copy(audit_held_);
    std::vector<uint8_t>().swap(audit_held_);
    host_.flush(Side::backend);
    if (terminate_after_release_) {
      close_quietly();
      return;
    }
    apply_backpressure();
  }
  const bool congested = audit_log_->congested();
  if (audit_holding() || congested) wait_for_audit();
  if (!terminate_after_release_ && !congested && audit_held_.size() <= settings_.gateway.send_queue_bytes)
    pause_client_for_audit(false);
}

}  // namespace sluice::protocol
