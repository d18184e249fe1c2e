// What the operator configured for the protocol layer: listeners, limits, targets
// (the databases clients reach) and gateway users. Filled by tools/config; read-only
// after boot (each shard gets a pointer to one immutable Settings).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/log.h"
#include "protocol/jwt.h"
#include "protocol/scram.h"

namespace sluice::protocol {

// A resolved socket address plus the text the operator wrote (for messages).
struct SocketAddress {
  std::string text;
  sockaddr_storage storage{};
  socklen_t length = 0;
};

// A value that must never be logged or sent to a client (backend passwords).
// It has no stream operator on purpose.
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  const std::string& reveal() const { return value_; }
  bool empty() const { return value_.empty(); }

 private:
  std::string value_;
};

// A listening address. require_tls: a StartupMessage that did not come over TLS is
// refused (before any password is asked).
struct ListenAddress : SocketAddress {
  bool loopback = false;     // 127.0.0.0/8 or ::1: reachable from this machine only
  bool require_tls = false;
};

// The certificate sluice presents to clients. Empty cert_file: TLS is not offered
// (SSLRequest is answered 'N').
struct TlsSettings {
  std::string cert_file;
  std::string key_file;
  std::string min_version = "1.2";  // "1.2" or "1.3"
  // Offer each connection's record layer to the kernel: "auto" when the startup probe
  // finds kernel TLS (CONFIG_TLS), "on" always (a kernel that refuses leaves that
  // connection in userspace), "off" never.
  std::string kernel_tls = "auto";
  bool enabled() const { return !cert_file.empty(); }
};

struct GatewaySettings {
  std::vector<ListenAddress> listen;  // at least one
  unsigned shards = 0;                // 0 = one per online CPU
  uint32_t max_client_connections = 1000;
  // Cap on any single message in either direction (DataRow, Query, Bind, CopyData...).
  uint32_t max_message_bytes = 64u << 20;
  std::chrono::milliseconds handshake_timeout{10'000};     // startup + auth, whole phase
  std::chrono::milliseconds connect_timeout{5'000};        // TCP connect + login to the target
  std::chrono::milliseconds idle_timeout{0};               // 0 = never close idle sessions
  std::chrono::milliseconds write_stall_timeout{60'000};   // client not reading its results
  std::chrono::milliseconds shutdown_grace{30'000};        // SIGTERM: time given to running transactions
  // Per direction: stop reading from the source once this many bytes wait to be sent.
  uint32_t send_queue_bytes = 256u << 10;
  uint32_t recv_buffer_bytes = 16u << 10;   // size of one provided receive buffer
  uint32_t recv_buffers_per_shard = 4096;   // power of two, <= 32768
  core::LogLevel log_level = core::LogLevel::info;
};

// A database clients reach by asking for `name` as their dbname.
struct Target {
  std::string name;
  std::string host;
  uint16_t port = 5432;
  std::string database;
  std::string user;
  Secret password;         // from password_file or password_env; may be empty (trust auth)
  SocketAddress address;   // host:port resolved at config load
  // The backend session's search_path, pinned by sluice when policy is enabled so that
  // policy knows which schema an unqualified table name means. Schema names as the
  // catalog spells them; "$user" stands for the target's `user`.
  std::vector<std::string> search_path{"public"};
  // TLS toward the target, with libpq's sslmode meanings: disable (never), prefer (if
  // the server offers it, unverified), require (always, unverified), verify-ca (the
  // certificate chains to sslrootcert), verify-full (and names `host`).
  enum class SslMode : uint8_t { disable, prefer, require, verify_ca, verify_full };
  SslMode sslmode = SslMode::prefer;
  std::string sslrootcert;  // CA file; required for verify-ca and verify-full
  std::string sslcert;      // optional client certificate (with sslkey)
  std::string sslkey;
};

// A user sluice itself authenticates with SCRAM-SHA-256.
struct GatewayUser {
  std::string name;
  scram::Verifier verifier;
  std::vector<std::string> groups;
};

// One identity provider whose tokens clients may send as their password.
struct OidcIssuer {
  jwt::IssuerSettings verify;  // issuer, audience, algorithms, claims, lifetime, leeway
  // Where its keys come from: a local JWKS file, an HTTPS jwks_uri, or else OIDC
  // discovery (issuer + "/.well-known/openid-configuration", then its jwks_uri).
  std::string jwks_file;
  std::string jwks_uri;
  std::string ca_file;  // trust for the HTTPS fetches; "" = the system's CA store
  int64_t refresh_seconds = 3600;  // fetch again when the keys are this old
  int64_t cooldown_seconds = 30;   // at most one fetch per cooldown for unknown kids
};

// Token logins. A client whose user name is not a [[user]] is asked for a password
// (only over TLS, or on a loopback listener when allowed), which must be a token of
// one of the issuers.
struct OidcSettings {
  std::vector<OidcIssuer> issuers;
  bool allow_cleartext_on_loopback = false;
  // The startup user must equal the token's identity (true), or is replaced by it.
  bool user_must_match = true;
  // At the token's exp: close the session at once (false), or when its transaction ends.
  bool finish_transaction_at_expiry = false;
  bool enabled() const { return !issuers.empty(); }
};

struct Settings {
  GatewaySettings gateway;
  TlsSettings tls;
  OidcSettings oidc;
  std::vector<Target> targets;
  std::vector<GatewayUser> users;

  const Target* find_target(std::string_view name) const {
    for (const auto& t : targets)
      if (t.name == name) return &t;
    return nullptr;
  }
  const GatewayUser* find_user(std::string_view name) const {
    for (const auto& u : users)
      if (u.name == name) return &u;
    return nullptr;
  }
};

}  // namespace sluice::protocol
