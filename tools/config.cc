// The sluice configuration loader: TOML text -> core::toml tree -> protocol::Settings,
// plus the policy sections handed to policy/config. A Loader walks the tree once,
// section by section, checking every key against the list of known keys and every
// value against its type and bounds, and keeps going after a problem so that one run
// reports all of them.
#include "tools/config.h"

#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/config_values.h"
#include "core/small_file.h"
#include "core/toml.h"
#include "policy/config.h"
#include "protocol/jwt.h"
#include "protocol/scram.h"

namespace sluice::tools {
namespace {

using core::toml::Type;
using core::toml::Value;
using std::chrono::milliseconds;
using core::closest;
using core::did_you_mean;
using core::format_size;
using core::has_control_character;
using core::kGiB;
using core::kKiB;
using core::kMiB;
using core::quote;
using core::quote_key;
namespace jwt = protocol::jwt;

constexpr int64_t kSecond = 1000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;

// PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes.
constexpr size_t kMaxNameBytes = 63;
// A password file holds one line; anything bigger is the wrong file.
constexpr size_t kMaxPasswordFileBytes = 64 * 1024;
constexpr const char* kDefaultListen = "127.0.0.1:6432";

// Paths are shown whole (up to PATH_MAX): a cut path is no help.
std::string quote_path(std::string_view path) { return quote(path, 4096); }

// Reads `fd` into `out` until end of file or `limit` bytes, retrying on EINTR. Returns
// "" or the reason a read failed; `out` holds what was read either way.
std::string format_duration(int64_t ms) {
  if (ms == 0) return "0s";
  if (ms % kDay == 0) return std::to_string(ms / kDay) + "d";
  if (ms % kHour == 0) return std::to_string(ms / kHour) + "h";
  if (ms % kMinute == 0) return std::to_string(ms / kMinute) + "m";
  if (ms % kSecond == 0) return std::to_string(ms / kSecond) + "s";
  return std::to_string(ms) + "ms";
}

// Parses "10s", "250ms", "5m", "2h", "30d". On failure, `problem` says why.
std::optional<int64_t> parse_duration(std::string_view text, std::string& problem) {
  uint64_t number;
  std::string_view unit;
  bool too_large;
  if (!core::split_quantity(text, number, unit, too_large)) {
    problem = "a duration is a whole number followed by a unit, e.g. \"10s\" (units: ms, s, m, h, d)";
    return std::nullopt;
  }
  if (!unit.empty() && (unit[0] == '.' || unit[0] == ',')) {
    problem = "durations take whole numbers: use a smaller unit (e.g. \"1500ms\" for 1.5s)";
    return std::nullopt;
  }
  static constexpr core::UnitFactor kDurationUnits[] = {{"ms", 1}, {"s", kSecond}, {"m", kMinute}, {"h", kHour}, {"d", kDay}};
  const int64_t factor = core::unit_factor(kDurationUnits, unit);
  if (factor == 0) {
    problem = unit.empty() ? "missing unit: write e.g. \"10s\" (units: ms, s, m, h, d)"
                           : "unknown unit " + quote(unit) + ": use ms, s, m, h or d";
    return std::nullopt;
  }
  if (too_large || number > static_cast<uint64_t>(INT64_MAX / factor)) {
    problem = "the duration is far too large";
    return std::nullopt;
  }
  return static_cast<int64_t>(number) * factor;
}

// 1..65535, digits only.
std::optional<uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value < 1 || value > 65535) return std::nullopt;
  return static_cast<uint16_t>(value);
}

// Resolves host + port into `out` (a numeric host never touches DNS). Returns the
// reason on failure, "" on success.
std::string resolve(const std::string& host, uint16_t port, bool ipv6_only, bool passive,
                    protocol::SocketAddress& out) {
  if (host.empty() || host.size() > 253 || has_control_character(host)) return "not a valid host name";
  addrinfo hints{};
  hints.ai_family = ipv6_only ? AF_INET6 : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0) | (ipv6_only ? AI_NUMERICHOST : 0);
  addrinfo* results = nullptr;
  std::string port_text = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), port_text.c_str(), &hints, &results);
  if (rc != 0) {
    if (ipv6_only) return "not a numeric IPv6 address";
    std::string reason = rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc);
    return "cannot resolve host " + quote(host) + ": " + reason;
  }
  bool copied = false;
  for (addrinfo* ai = results; ai != nullptr && !copied; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof out.storage) continue;
    std::memcpy(&out.storage, ai->ai_addr, ai->ai_addrlen);
    out.length = static_cast<socklen_t>(ai->ai_addrlen);
    copied = true;
  }
  freeaddrinfo(results);
  return copied ? "" : "host " + quote(host) + " resolved to no usable address";
}

// "IPv4:port", "[IPv6]:port" or "hostname:port" -> out. Returns the reason on failure.
std::string parse_listen_address(const std::string& text, protocol::SocketAddress& out) {
  std::string host;
  std::string_view port_text;
  bool bracketed = !text.empty() && text[0] == '[';
  if (bracketed) {
    size_t close = text.find(']');
    if (close == std::string::npos) return "missing ']' after the IPv6 address";
    host = text.substr(1, close - 1);
    std::string_view rest = std::string_view(text).substr(close + 1);
    if (rest.empty() || rest[0] != ':') return "missing port: write [IPv6]:port, e.g. [::1]:6432";
    port_text = rest.substr(1);
    if (host.empty()) return "empty IPv6 address between '[' and ']'";
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) return "missing port: write host:port, e.g. 127.0.0.1:6432";
    host = text.substr(0, colon);
    port_text = std::string_view(text).substr(colon + 1);
    if (host.find(':') != std::string::npos) return "an IPv6 address must be in brackets, e.g. [::1]:6432";
    if (host.empty()) return "missing host: write 0.0.0.0:PORT for every IPv4 address or [::]:PORT for IPv6";
  }
  auto port = parse_port(port_text);
  if (!port) return "invalid port " + quote(port_text) + ": expected a number from 1 to 65535";
  out.text = text;
  return resolve(host, *port, bracketed, /*passive=*/true, out);
}

struct Section {
  std::string_view name;   // "gateway"
  std::string_view label;  // "[gateway]", as the operator writes the header
};
constexpr Section kGateway{"gateway", "[gateway]"};
constexpr Section kTarget{"target", "[[target]]"};
constexpr Section kUser{"user", "[[user]]"};
constexpr Section kAudit{"audit", "[audit]"};
constexpr Section kTls{"tls", "[tls]"};
constexpr Section kOidc{"oidc", "[oidc]"};
constexpr Section kOidcIssuer{"oidc.issuer", "[[oidc.issuer]]"};
constexpr Section kAuditSink{"audit.sink", "[audit.sink]"};

// "policy" and "groups" are policy::kPolicyTopLevelKeys, loaded by policy/config;
// "mask" is mask::kMaskTopLevelKeys, loaded by mask/config.
constexpr std::string_view kTopLevelKeys[] = {"gateway", "tls", "oidc", "target", "user", "audit", "policy", "groups", "mask"};
constexpr std::string_view kAuditKeys[] = {"enabled",     "directory",   "mode",      "segment_size",    "segment_age",
                                           "retain_age",  "retain_size", "ring_size", "max_param_bytes", "async_flush",
                                           "sink"};
constexpr std::string_view kAuditSinkKeys[] = {"enabled",       "host",  "port",    "database", "user",
                                               "password_file", "table", "gateway", "sslmode",  "batch_records",
                                               "interval"};
// libpq's sslmode values.
constexpr std::string_view kSslModes[] = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"};
constexpr std::string_view kGatewayKeys[] = {"listen",
                                             "shards",
                                             "max_client_connections",
                                             "max_message_bytes",
                                             "handshake_timeout",
                                             "connect_timeout",
                                             "idle_timeout",
                                             "write_stall_timeout",
                                             "shutdown_grace",
                                             "send_queue_bytes",
                                             "recv_buffer_bytes",
                                             "recv_buffers_per_shard",
                                             "log_level",
                                             "require_tls"};
constexpr std::string_view kTlsKeys[] = {"cert_file", "key_file", "min_version", "kernel_tls"};
constexpr std::string_view kOidcKeys[] = {"issuer", "allow_cleartext_on_loopback", "user_must_match", "at_expiry"};
constexpr std::string_view kOidcIssuerKeys[] = {"issuer",         "audience",     "jwks_file",          "jwks_uri",
                                                "ca_file",        "algorithms",   "identity_claim",     "groups_claim",
                                                "max_token_lifetime", "clock_leeway", "refresh",        "refresh_cooldown"};
constexpr std::string_view kTargetKeys[] = {"name", "host",          "port",         "database",
                                            "user", "password_file", "password_env", "search_path",
                                            "sslmode", "sslrootcert", "sslcert", "sslkey"};
constexpr std::string_view kUserKeys[] = {"name", "password", "groups"};

bool is_known(std::string_view key, std::span<const std::string_view> known) {
  return std::find(known.begin(), known.end(), key) != known.end();
}

class Loader : private core::ValueChecker {
 public:
  Loader(std::string file, std::string base_dir) : file_(std::move(file)), base_dir_(std::move(base_dir)) {}

  LoadedConfig load(std::string_view text) {
    auto parsed = core::toml::parse(text);
    for (const auto& e : parsed.errors) {
      std::string message = e.message;
      if (e.column > 0) message += " (column " + std::to_string(e.column) + ")";
      error(e.line, std::move(message));
    }
    // Structure errors leave statements out of the tree; checking it would report
    // their keys as missing. Syntax first, then the rest.
    if (parsed.ok()) load_document(parsed.root);
    std::stable_sort(result_.diagnostics.begin(), result_.diagnostics.end(),
                     [](const ConfigDiagnostic& a, const ConfigDiagnostic& b) { return a.line < b.line; });
    return std::move(result_);
  }

 private:
  void error(int line, std::string message) override { add(line, std::move(message), true); }
  void warning(int line, std::string message) { add(line, std::move(message), false); }
  void add(int line, std::string message, bool is_error) {
    result_.diagnostics.push_back(ConfigDiagnostic{file_, line, std::move(message), is_error});
  }

  // --- the document --------------------------------------------------------------------

  void load_document(const Value& root) {
    const Value* gateway = nullptr;
    const Value* targets = nullptr;
    const Value* users = nullptr;
    const Value* audit = nullptr;
    const Value* tls = nullptr;
    const Value* oidc = nullptr;
    for (const auto& [key, value] : root.entries) {
      if (key == "gateway") {
        if (value.type == Type::table)
          gateway = &value;
        else if (value.type == Type::array && value.defined_by_header)
          error(value.line, "[[gateway]] is not allowed: write [gateway] (there is one gateway section)");
        else
          error(value.line, "'gateway' must be a table: write a [gateway] section, not " +
                                std::string(core::toml::type_name(value.type)));
      } else if (key == "oidc") {
        if (value.type == Type::table)
          oidc = &value;
        else
          error(value.line, "'oidc' must be an [oidc] section, not " + std::string(core::toml::type_name(value.type)));
      } else if (key == "tls") {
        if (value.type == Type::table)
          tls = &value;
        else
          error(value.line, "'tls' must be one [tls] section, not " + std::string(core::toml::type_name(value.type)));
      } else if (key == "audit") {
        if (value.type == Type::table)
          audit = &value;
        else
          error(value.line, "'audit' must be one [audit] section, not " + std::string(core::toml::type_name(value.type)));
      } else if (key == "target" || key == "user") {
        if (value.type == Type::array && value.defined_by_header) {
          (key == "target" ? targets : users) = &value;
        } else if (value.type == Type::table) {
          error(value.line,
                "write [[" + key + "]], not [" + key + "]: there is one [[" + key + "]] section per " + key);
        } else {
          error(value.line, "'" + key + "' must be [[" + key + "]] sections, not " +
                                std::string(core::toml::type_name(value.type)));
        }
      } else if (!is_known(key, policy::kPolicyTopLevelKeys) && !is_known(key, mask::kMaskTopLevelKeys)) {
        unknown_top_level(key, value);
      }
    }

    load_gateway(gateway);
    if (tls != nullptr) load_tls(*tls);
    decide_listener_tls();
    if (oidc != nullptr) load_oidc(*oidc);
    if (targets == nullptr || targets->array.empty()) {
      error(0, "no [[target]] is defined: at least one is required");
    } else {
      for (const auto& table : targets->array) load_target(table);
    }
    if (users == nullptr || users->array.empty()) {
      warning(0, "no [[user]] is defined: no one can log in");
    } else {
      for (const auto& table : users->array) load_user(table);
    }
    load_policy(root);
    load_masking(root);
    if (audit != nullptr) load_audit(*audit);
  }

  // --- [tls] and require_tls ------------------------------------------------------------

  void load_tls(const Value& table) {
    protocol::TlsSettings& t = result_.settings.tls;
    const Section& s = kTls;
    check_keys(table, s, kTlsKeys);
    const Value* cert = require(table, "cert_file", Type::string, s);
    const Value* key = require(table, "key_file", Type::string, s);
    if (cert == nullptr || key == nullptr) return;
    for (const Value* path : {cert, key}) {
      if (path->string.empty() || has_control_character(path->string)) {
        error(path->line, where(path == cert ? "cert_file" : "key_file", s) + " must be a file path");
        return;
      }
    }
    t.cert_file = resolve_path(cert->string);
    t.key_file = resolve_path(key->string);
    if (const Value* version = get(table, "min_version", Type::string, s)) {
      if (version->string == "1.2" || version->string == "1.3")
        t.min_version = version->string;
      else
        error(version->line, where("min_version", s) + " must be \"1.2\" or \"1.3\", not " + quote(version->string));
    }
    if (const Value* kernel = get(table, "kernel_tls", Type::string, s)) {
      if (kernel->string == "auto" || kernel->string == "on" || kernel->string == "off")
        t.kernel_tls = kernel->string;
      else
        error(kernel->line, where("kernel_tls", s) + " must be \"auto\", \"on\" or \"off\", not " + quote(kernel->string));
    }
  }

  static bool is_loopback(const protocol::SocketAddress& address) {
    if (address.storage.ss_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(&address.storage);
      return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (address.storage.ss_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
      if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
      return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
  }

  // require_tls: as configured, else on for every listener not on loopback. A listener
  // that requires TLS needs a certificate to offer.
  void decide_listener_tls() {
    const bool tls = result_.settings.tls.enabled();
    for (auto& listener : result_.settings.gateway.listen) {
      listener.loopback = is_loopback(listener);
      listener.require_tls = require_tls_.value_or(!listener.loopback);
      if (listener.require_tls && !tls)
        error(require_tls_line_,
              "listener " + quote(listener.text) + " requires TLS (" +
                  (require_tls_ ? std::string("require_tls = true in [gateway]")
                                : std::string("the default for an address other than loopback")) +
                  ") but no [tls] cert_file and key_file are configured: add them, or set require_tls = false in "
                  "[gateway] to accept plaintext logins (passwords and tokens would cross the network in the clear)");
    }
  }

  // --- [oidc] and [[oidc.issuer]] ---------------------------------------------------------

  void load_oidc(const Value& table) {
    protocol::OidcSettings& o = result_.settings.oidc;
    check_keys(table, kOidc, kOidcKeys);
    if (const Value* v = get(table, "allow_cleartext_on_loopback", Type::boolean, kOidc))
      o.allow_cleartext_on_loopback = v->boolean;
    if (const Value* v = get(table, "user_must_match", Type::boolean, kOidc)) o.user_must_match = v->boolean;
    if (const Value* v = get(table, "at_expiry", Type::string, kOidc)) {
      if (v->string == "close" || v->string == "finish-transaction")
        o.finish_transaction_at_expiry = v->string == "finish-transaction";
      else
        error(v->line, where("at_expiry", kOidc) + " must be \"close\" or \"finish-transaction\", not " + quote(v->string));
    }
    const Value* issuers = table.find("issuer");
    if (issuers == nullptr || issuers->type != Type::array || !issuers->defined_by_header || issuers->array.empty()) {
      error(issuers != nullptr ? issuers->line : table.line,
            "[oidc] needs at least one [[oidc.issuer]] section (the identity providers whose tokens are accepted)");
      return;
    }
    for (const auto& issuer : issuers->array) load_oidc_issuer(issuer);
  }

  static bool is_https_url(std::string_view text) { return text.size() > 8 && text.substr(0, 8) == "https://"; }

  void load_oidc_issuer(const Value& table) {
    const Section& s = kOidcIssuer;
    check_keys(table, s, kOidcIssuerKeys);
    protocol::OidcIssuer issuer;
    jwt::IssuerSettings& v = issuer.verify;
    bool valid = true;
    auto text = [&](std::string_view key, std::string& out) {
      if (const Value* value = get(table, key, Type::string, s)) {
        if (value->string.empty() || value->string.size() > 2048 || has_control_character(value->string)) {
          error(value->line, where(key, s) + " must be 1 to 2048 characters without control characters");
          valid = false;
        } else {
          out = value->string;
        }
        return value;
      }
      return static_cast<const Value*>(nullptr);
    };
    const Value* name = require(table, "issuer", Type::string, s);
    if (name != nullptr) text("issuer", v.issuer);
    if (require(table, "audience", Type::string, s) != nullptr) text("audience", v.audience);
    valid = valid && name != nullptr && !v.audience.empty();
    const Value* file = text("jwks_file", issuer.jwks_file);
    const Value* uri = text("jwks_uri", issuer.jwks_uri);
    if (file != nullptr) issuer.jwks_file = resolve_path(issuer.jwks_file);
    if (text("ca_file", issuer.ca_file) != nullptr) issuer.ca_file = resolve_path(issuer.ca_file);
    if (file != nullptr && uri != nullptr) {
      error(uri->line, "jwks_file and jwks_uri in [[oidc.issuer]] exclude each other: keys come from one place");
      valid = false;
    } else if (uri != nullptr && !is_https_url(issuer.jwks_uri)) {
      error(uri->line, where("jwks_uri", s) + " must be an https:// URL: keys fetched in the clear could be forged");
      valid = false;
    } else if (file == nullptr && uri == nullptr && name != nullptr && !is_https_url(v.issuer)) {
      error(name->line, "issuer " + quote(v.issuer) +
                            " is not an https:// URL, so its keys cannot be discovered: set jwks_file or jwks_uri");
      valid = false;
    }
    if (const Value* algorithms = table.find("algorithms")) {
      v.algorithms.clear();
      if (algorithms->type != Type::array || algorithms->array.empty()) {
        error(algorithms->line, where("algorithms", s) + " must be a non-empty array, e.g. [\"RS256\", \"ES256\"]");
        valid = false;
      } else {
        for (const auto& element : algorithms->array) {
          const auto algorithm = element.type == Type::string ? jwt::algorithm_from_name(element.string) : std::nullopt;
          if (!algorithm) {
            error(element.line, where("algorithms", s) + ": " +
                                    (element.type == Type::string ? quote(element.string) : std::string("a non-string")) +
                                    " is not accepted: use RS256, PS256, ES256 or EdDSA (symmetric algorithms and "
                                    "\"none\" never are)");
            valid = false;
          } else if (std::find(v.algorithms.begin(), v.algorithms.end(), *algorithm) == v.algorithms.end()) {
            v.algorithms.push_back(*algorithm);
          }
        }
      }
    }
    text("identity_claim", v.identity_claim);
    if (const Value* groups = get(table, "groups_claim", Type::string, s)) v.groups_claim = groups->string;
    milliseconds lifetime{v.max_lifetime_seconds * 1000}, leeway{v.leeway_seconds * 1000};
    milliseconds refresh{issuer.refresh_seconds * 1000}, cooldown{issuer.cooldown_seconds * 1000};
    valid = duration(table, "max_token_lifetime", kMinute, 30 * kDay, false, s, lifetime) && valid;
    valid = duration(table, "clock_leeway", 0, 10 * kMinute, false, s, leeway) && valid;
    valid = duration(table, "refresh", kMinute, 7 * kDay, false, s, refresh) && valid;
    valid = duration(table, "refresh_cooldown", kSecond, kHour, false, s, cooldown) && valid;
    v.max_lifetime_seconds = lifetime.count() / 1000;
    v.leeway_seconds = leeway.count() / 1000;
    issuer.refresh_seconds = refresh.count() / 1000;
    issuer.cooldown_seconds = cooldown.count() / 1000;
    for (const auto& other : result_.settings.oidc.issuers) {
      if (name != nullptr && other.verify.issuer == v.issuer) {
        error(name->line, "issuer " + quote(v.issuer) + " is configured twice in [[oidc.issuer]]");
        valid = false;
      }
    }
    if (valid) result_.settings.oidc.issuers.push_back(std::move(issuer));
  }

  // --- [audit] -----------------------------------------------------------------------

  void load_audit(const Value& table) {
    audit::Config& a = result_.audit;
    const Section& s = kAudit;
    check_keys(table, s, kAuditKeys);
    if (const Value* enabled = get(table, "enabled", Type::boolean, s)) a.enabled = enabled->boolean;
    if (const Value* directory = get(table, "directory", Type::string, s)) {
      if (directory->string.empty() || has_control_character(directory->string))
        error(directory->line, where("directory", s) + " must be a directory path");
      else
        a.directory = resolve_path(directory->string);
    }
    if (const Value* mode = get(table, "mode", Type::string, s)) {
      if (mode->string == "strict")
        a.mode = audit::Durability::strict;
      else if (mode->string == "async")
        a.mode = audit::Durability::async;
      else
        error(mode->line, where("mode", s) + " must be \"strict\" (a statement runs only once its record is on disk) or "
                                             "\"async\", not " + quote(mode->string));
    }
    size(table, "segment_size", kMiB, 64 * kGiB, s, a.segment_bytes);
    size(table, "retain_size", 0, int64_t{1} << 50, s, a.retain_bytes);
    size(table, "ring_size", 64 * kKiB, kGiB, s, a.ring_bytes);
    size(table, "max_param_bytes", 64, 64 * kMiB, s, a.max_param_bytes);
    milliseconds age{std::chrono::duration_cast<milliseconds>(a.segment_age)};
    if (duration(table, "segment_age", kMinute, 30 * kDay, false, s, age))
      a.segment_age = std::chrono::duration_cast<std::chrono::seconds>(age);
    milliseconds retain{std::chrono::duration_cast<milliseconds>(a.retain_age)};
    if (duration(table, "retain_age", kHour, 100 * 365 * kDay, true, s, retain))
      a.retain_age = std::chrono::duration_cast<std::chrono::seconds>(retain);
    duration(table, "async_flush", 1, 10 * kSecond, false, s, a.async_flush);
    if (a.retain_bytes != 0 && a.retain_bytes < 2 * a.segment_bytes) {
      const Value* at = table.find("retain_size");
      error(at != nullptr ? at->line : table.line,
            "retain_size (" + format_size(static_cast<int64_t>(a.retain_bytes)) +
                ") in [audit] must be 0 (no limit) or at least twice segment_size (" +
                format_size(static_cast<int64_t>(a.segment_bytes)) + ")");
    }
    if (const Value* sink = table.find("sink")) {
      if (sink->type != Type::table)
        error(sink->line, "'sink' in [audit] must be an [audit.sink] section, not " +
                              std::string(core::toml::type_name(sink->type)));
      else
        load_audit_sink(*sink);
      if (a.sink.enabled && !a.enabled)
        warning(sink->line, "[audit.sink] is ignored: [audit] enabled = false, so there are no records to ship");
    }
  }

  // [audit.sink]: where and how to ship the records to a central table (audit/sink.h).
  void load_audit_sink(const Value& table) {
    audit::SinkConfig& k = result_.audit.sink;
    const Section& s = kAuditSink;
    check_keys(table, s, kAuditSinkKeys);
    k.enabled = true;
    if (const Value* enabled = get(table, "enabled", Type::boolean, s)) k.enabled = enabled->boolean;
    if (const Value* host = require(table, "host", Type::string, s)) {
      if (host->string.empty() || host->string.size() > 253 || has_control_character(host->string))
        error(host->line, where("host", s) + " must be a host name, an IP address or a Unix socket directory");
      else
        k.host = host->string;
    }
    integer(table, "port", 1, 65535, s, k.port);
    if (const Value* database = require(table, "database", Type::string, s)) {
      if (check_name(*database, "database", s)) k.database = database->string;
    }
    if (const Value* user = require(table, "user", Type::string, s)) {
      if (check_name(*user, "user", s)) k.user = user->string;
    }
    if (const Value* file = get(table, "password_file", Type::string, s))
      read_password_file(*file, s, "[audit.sink]", k.password);
    if (const Value* name = get(table, "table", Type::string, s)) {
      const std::string& t = name->string;
      const bool valid = !t.empty() && t.size() <= audit::kMaxSinkTableBytes && !(t[0] >= '0' && t[0] <= '9') &&
                         std::all_of(t.begin(), t.end(), [](char c) {
                           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
                         });
      if (valid)
        k.table = t;
      else
        error(name->line, where("table", s) + " must be 1 to " + std::to_string(audit::kMaxSinkTableBytes) +
                              " characters from a-z 0-9 _, not starting with a digit, not " + quote(t));
    }
    if (const Value* gateway = get(table, "gateway", Type::string, s)) {
      if (check_name(*gateway, "gateway", s)) k.gateway = gateway->string;
    } else if (table.find("gateway") == nullptr) {
      char host[256] = {};
      if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
        error(table.line, "[audit.sink] has no gateway and the host name cannot be read: set gateway = \"NAME\"");
      else
        k.gateway = host;
    }
    if (const Value* mode = get(table, "sslmode", Type::string, s)) {
      if (is_known(mode->string, kSslModes))
        k.sslmode = mode->string;
      else
        error(mode->line, where("sslmode", s) +
                              " must be one of disable, allow, prefer, require, verify-ca, verify-full, not " +
                              quote(mode->string) + did_you_mean(mode->string, kSslModes));
    }
    integer(table, "batch_records", 1, 100'000, s, k.batch_records);
    duration(table, "interval", 10, kMinute, false, s, k.interval);
  }

  void load_policy(const Value& root) {
    policy::LoadedPolicy loaded = policy::load_policy(root);
    for (auto& problem : loaded.problems) add(problem.line, std::move(problem.message), problem.is_error);
    result_.policy = std::move(loaded.policy);
  }

  void load_masking(const Value& root) {
    mask::LoadedMasking loaded = mask::load_masking(root, base_dir_);
    for (auto& problem : loaded.problems) add(problem.line, std::move(problem.message), problem.is_error);
    result_.masking = std::move(loaded.masking);
    if (result_.masking) check_column_rules(*result_.masking);
  }

  // Column rules hold only with the statement policy judging every statement: without
  // it `SELECT ssn || ''` would carry a masked column's value out unmasked.
  void check_column_rules(const mask::Masking& masking) {
    if (!masking.config.enabled) return;
    for (const mask::ColumnRule& rule : masking.config.column_rules) {
      if (result_.policy && !result_.policy->enabled) {
        error(rule.line, "[[mask.column]] rules need the statement policy: with [policy] enabled = false, "
                         "expressions such as ssn || '' would return a masked column unmasked (remove "
                         "'enabled = false' from [policy])");
        return;
      }
      for (const std::string& target : rule.targets)
        if (!std::any_of(result_.settings.targets.begin(), result_.settings.targets.end(),
                         [&](const protocol::Target& t) { return t.name == target; }))
          error(rule.line, "[[mask.column]] names unknown target " + quote(target));
    }
  }

  void unknown_top_level(const std::string& key, const Value& value) {
    if (value.type == Type::table || (value.type == Type::array && value.defined_by_header)) {
      bool array = value.type == Type::array;
      error(value.line, std::string("unknown table ") + (array ? "[[" : "[") + core::toml::format_key(key) +
                            (array ? "]]" : "]") + did_you_mean(key, kTopLevelKeys));
      return;
    }
    if (is_known(key, kGatewayKeys)) {
      error(value.line, "key '" + key + "' belongs in the [gateway] section: put it after the [gateway] line");
      return;
    }
    std::string hint = did_you_mean(key, kTopLevelKeys);
    if (hint.empty()) {
      if (auto match = closest(key, kGatewayKeys)) hint = " (did you mean '" + std::string(*match) + "' in [gateway]?)";
    }
    error(value.line, "unknown key " + quote_key(key) + " at the top level" + hint);
  }

  // Reports every key of `table` that `known` does not list.
  void check_keys(const Value& table, const Section& section, std::span<const std::string_view> known) {
    ValueChecker::check_keys(table, std::string(section.label), std::string(section.name), known);
  }

  // --- typed access ----------------------------------------------------------------------

  // core::ValueChecker's typed access, labelled by a Section.
  static std::string where(std::string_view key, const Section& section) {
    return ValueChecker::where(key, section.label);
  }
  const Value* get(const Value& table, std::string_view key, Type type, const Section& section) {
    return ValueChecker::get(table, key, type, section.label);
  }
  const Value* require(const Value& table, std::string_view key, Type type, const Section& section) {
    return ValueChecker::require(table, key, type, section.label);
  }
  template <typename T>
  bool integer(const Value& table, std::string_view key, int64_t low, int64_t high, const Section& section, T& out) {
    return ValueChecker::integer(table, key, low, high, section.label, out);
  }
  template <typename T>
  bool size(const Value& table, std::string_view key, int64_t low, int64_t high, const Section& section, T& out) {
    return ValueChecker::size(table, key, low, high, section.label, out);
  }

  // Duration in [low, high]; allow_off also accepts "0s" (feature off).
  bool duration(const Value& table, std::string_view key, int64_t low, int64_t high, bool allow_off,
                const Section& section, milliseconds& out) {
    const Value* value = table.find(key);
    if (value == nullptr) return true;
    if (value->type != Type::string) {
      error(value->line, where(key, section) +
                             " must be a duration string such as \"10s\" (units: ms, s, m, h, d), not " +
                             core::toml::type_name(value->type));
      return false;
    }
    std::string problem;
    auto ms = parse_duration(value->string, problem);
    if (!ms) {
      error(value->line, where(key, section) + ": invalid duration " + quote(value->string) + ": " + problem);
      return false;
    }
    if ((*ms < low || *ms > high) && !(allow_off && *ms == 0)) {
      std::string range = "between " + format_duration(low) + " and " + format_duration(high);
      if (allow_off) range = "0s (off) or " + range;
      error(value->line, where(key, section) + " must be " + range + ", not " + core::toml::printable(value->string));
      return false;
    }
    out = milliseconds(*ms);
    return true;
  }

  // A name as PostgreSQL takes it (role, database, user): 1..63 bytes, no control characters.
  bool check_name(const Value& value, std::string_view key, const Section& section) {
    if (value.string.empty() || value.string.size() > kMaxNameBytes) {
      error(value.line, where(key, section) + " must be 1 to " + std::to_string(kMaxNameBytes) + " bytes long, not " +
                            std::to_string(value.string.size()));
      return false;
    }
    if (has_control_character(value.string)) {
      error(value.line, where(key, section) + " must not contain control characters");
      return false;
    }
    return true;
  }

  using NameLines = std::map<std::string, int, std::less<>>;  // name -> line of its first definition

  // Records where `name` is first defined; reports any later definition. `kind`: "target" or "user".
  bool first_definition(const Value& name, std::string_view kind, NameLines& lines) {
    auto [first, inserted] = lines.emplace(name.string, name.line);
    if (!inserted)
      error(name.line, "duplicate " + std::string(kind) + " name " + quote(name.string) + " (first defined on line " +
                           std::to_string(first->second) + ")");
    return inserted;
  }

  // --- [gateway] ---------------------------------------------------------------------

  void load_gateway(const Value* table) {
    auto& g = result_.settings.gateway;
    if (table == nullptr) {
      load_default_listen();
      return;
    }
    const Section& s = kGateway;
    check_keys(*table, s, kGatewayKeys);
    load_listen(*table);
    integer(*table, "shards", 0, 256, s, g.shards);
    integer(*table, "max_client_connections", 1, 1'000'000, s, g.max_client_connections);
    size(*table, "max_message_bytes", 64 * kKiB, kGiB, s, g.max_message_bytes);
    duration(*table, "handshake_timeout", 100, 10 * kMinute, false, s, g.handshake_timeout);
    duration(*table, "connect_timeout", 100, 10 * kMinute, false, s, g.connect_timeout);
    duration(*table, "idle_timeout", kSecond, 30 * kDay, true, s, g.idle_timeout);
    duration(*table, "write_stall_timeout", kSecond, kHour, false, s, g.write_stall_timeout);
    duration(*table, "shutdown_grace", 0, kHour, false, s, g.shutdown_grace);
    bool queue_ok = size(*table, "send_queue_bytes", 16 * kKiB, 64 * kMiB, s, g.send_queue_bytes);
    bool buffer_ok = size(*table, "recv_buffer_bytes", 4 * kKiB, kMiB, s, g.recv_buffer_bytes);
    if (queue_ok && buffer_ok && g.send_queue_bytes < g.recv_buffer_bytes) {
      const Value* at = table->find("send_queue_bytes");
      if (at == nullptr) at = table->find("recv_buffer_bytes");
      error(at != nullptr ? at->line : table->line,
            "send_queue_bytes (" + format_size(g.send_queue_bytes) + ") must be at least recv_buffer_bytes (" +
                format_size(g.recv_buffer_bytes) + ") in [gateway]: one received buffer must fit in the send queue");
    }
    uint32_t buffers = g.recv_buffers_per_shard;
    const Value* buffers_value = table->find("recv_buffers_per_shard");
    if (buffers_value != nullptr && integer(*table, "recv_buffers_per_shard", 64, 32768, s, buffers)) {
      if ((buffers & (buffers - 1)) != 0) {
        error(buffers_value->line, where("recv_buffers_per_shard", s) +
                                       " must be a power of two (64, 128, ..., 32768), not " + std::to_string(buffers));
      } else {
        g.recv_buffers_per_shard = buffers;
      }
    }
    if (const Value* require_tls = get(*table, "require_tls", Type::boolean, s)) {
      require_tls_ = require_tls->boolean;
      require_tls_line_ = require_tls->line;
    }
    if (const Value* level = get(*table, "log_level", Type::string, s)) {
      if (!core::parse_log_level(level->string, g.log_level))
        error(level->line, where("log_level", s) + ": unknown level " + quote(level->string) +
                               ": use debug, info, warning or error");
    }
  }

  void load_default_listen() {
    protocol::ListenAddress address;
    std::string problem = parse_listen_address(kDefaultListen, address);
    if (!problem.empty())
      error(0, std::string("default listen address ") + kDefaultListen + ": " + problem);
    else
      result_.settings.gateway.listen.push_back(std::move(address));
  }

  void load_listen(const Value& table) {
    const Value* value = table.find("listen");
    if (value == nullptr) {
      load_default_listen();
      return;
    }
    std::vector<const Value*> items;
    bool strings = value->type == Type::string;
    if (value->type == Type::array) {
      strings = true;
      for (const auto& element : value->array) {
        strings = strings && element.type == Type::string;
        items.push_back(&element);
      }
      if (strings && items.empty()) {
        error(value->line, where("listen", kGateway) + " must name at least one address");
        return;
      }
    } else {
      items.push_back(value);
    }
    if (!strings) {
      error(value->line, where("listen", kGateway) + " must be a string or an array of strings, not " +
                             (value->type == Type::array ? std::string("an array holding other values")
                                                         : std::string(core::toml::type_name(value->type))));
      return;
    }
    auto& listen = result_.settings.gateway.listen;
    for (const Value* item : items) {
      protocol::ListenAddress address;
      std::string problem = parse_listen_address(item->string, address);
      if (!problem.empty()) {
        error(item->line, where("listen", kGateway) + ": invalid address " + quote(item->string) + ": " + problem);
        continue;
      }
      bool duplicate = std::any_of(listen.begin(), listen.end(),
                                   [&](const protocol::ListenAddress& a) { return a.text == address.text; });
      if (duplicate) {
        error(item->line, where("listen", kGateway) + ": address " + quote(item->string) + " is listed twice");
        continue;
      }
      listen.push_back(std::move(address));
    }
  }

  // --- [[target]] --------------------------------------------------------------------

  static bool valid_target_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxNameBytes) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
      return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
             c == '-';
    });
  }

  void load_target(const Value& table) {
    const Section& s = kTarget;
    check_keys(table, s, kTargetKeys);
    protocol::Target target;
    bool valid = true;

    if (const Value* name = require(table, "name", Type::string, s)) {
      target.name = name->string;
      if (!valid_target_name(name->string)) {
        error(name->line,
              where("name", s) + " must be 1 to 63 characters from A-Z a-z 0-9 _ . -, not " + quote(name->string));
        valid = false;
      } else if (!first_definition(*name, "target", target_lines_)) {
        valid = false;
      }
    } else {
      valid = false;
    }
    std::string label = target.name.empty() ? "[[target]]" : "target " + quote(target.name);

    valid = integer(table, "port", 1, 65535, s, target.port) && valid;
    const Value* host = require(table, "host", Type::string, s);
    if (host != nullptr) {
      std::string problem = resolve_target(*host, target.port, target);
      if (!problem.empty()) {
        error(host->line, where("host", s) + ": " + problem);
        valid = false;
      }
    } else {
      valid = false;
    }

    target.database = target.name;
    if (const Value* database = get(table, "database", Type::string, s)) {
      if (check_name(*database, "database", s))
        target.database = database->string;
      else
        valid = false;
    } else {
      valid = valid && table.find("database") == nullptr;
    }
    if (const Value* user = require(table, "user", Type::string, s)) {
      if (check_name(*user, "user", s))
        target.user = user->string;
      else
        valid = false;
    } else {
      valid = false;
    }
    valid = load_search_path(table, target) && valid;
    valid = load_target_tls(table, target) && valid;
    valid = load_target_password(table, label, target) && valid;
    if (valid) result_.settings.targets.push_back(std::move(target));
  }

  // sslmode with libpq's names and meanings; the files it needs.
  bool load_target_tls(const Value& table, protocol::Target& target) {
    using Mode = protocol::Target::SslMode;
    const Section& s = kTarget;
    bool valid = true;
    const Value* mode = get(table, "sslmode", Type::string, s);
    if (mode != nullptr) {
      static constexpr std::pair<std::string_view, Mode> kModes[] = {{"disable", Mode::disable},
                                                                      {"prefer", Mode::prefer},
                                                                      {"require", Mode::require},
                                                                      {"verify-ca", Mode::verify_ca},
                                                                      {"verify-full", Mode::verify_full}};
      const auto* found = std::find_if(std::begin(kModes), std::end(kModes),
                                       [&](const auto& m) { return m.first == mode->string; });
      if (found == std::end(kModes)) {
        error(mode->line, where("sslmode", s) + " must be disable, prefer, require, verify-ca or verify-full, not " +
                              quote(mode->string) + (mode->string == "allow" ? " (allow is not offered: use prefer)" : ""));
        valid = false;
      } else {
        target.sslmode = found->second;
      }
    }
    for (auto [key, out] : {std::pair{"sslrootcert", &target.sslrootcert}, std::pair{"sslcert", &target.sslcert},
                            std::pair{"sslkey", &target.sslkey}}) {
      if (const Value* path = get(table, key, Type::string, s)) {
        if (path->string.empty() || has_control_character(path->string)) {
          error(path->line, where(key, s) + " must be a file path");
          valid = false;
        } else {
          *out = resolve_path(path->string);
        }
      }
    }
    const bool verifies = target.sslmode == Mode::verify_ca || target.sslmode == Mode::verify_full;
    if (verifies && target.sslrootcert.empty()) {
      error(mode->line, where("sslmode", s) + " " + quote(mode->string) +
                            " needs sslrootcert: the CA file that signed the server's certificate");
      valid = false;
    }
    if (target.sslcert.empty() != target.sslkey.empty()) {
      error(table.line, "sslcert and sslkey in [[target]] go together: give both or neither");
      valid = false;
    }
    if (target.sslmode == Mode::disable && (!target.sslrootcert.empty() || !target.sslcert.empty()))
      warning(mode->line, where("sslmode", s) + " is disable: sslrootcert, sslcert and sslkey are not used");
    return valid;
  }

  // Schema names as the catalog spells them; "$user" is PostgreSQL's own placeholder.
  bool load_search_path(const Value& table, protocol::Target& target) {
    const Value* value = table.find("search_path");
    if (value == nullptr) return true;
    bool strings = value->type == Type::array && std::all_of(value->array.begin(), value->array.end(),
                                                             [](const Value& v) { return v.type == Type::string; });
    if (!strings) {
      error(value->line,
            where("search_path", kTarget) + " must be an array of schema names, e.g. search_path = [\"public\"]");
      return false;
    }
    bool valid = true;
    target.search_path.clear();
    for (const auto& schema : value->array) {
      if (check_name(schema, "search_path", kTarget))
        target.search_path.push_back(schema.string);
      else
        valid = false;
    }
    return valid;
  }

  // `host` (no port) + port -> target.address. Returns the reason on failure.
  std::string resolve_target(const Value& host, uint16_t port, protocol::Target& target) {
    std::string name = host.string;
    bool ipv6 = false;
    if (name.size() >= 2 && name.front() == '[' && name.back() == ']') {
      name = name.substr(1, name.size() - 2);
      ipv6 = true;
    } else if (size_t colon = name.find(':'); colon != std::string::npos) {
      if (name.find(':', colon + 1) == std::string::npos)
        return "host " + quote(host.string) + " must not include a port: set port = " + name.substr(colon + 1) +
               " instead";
      ipv6 = true;
    }
    target.host = name;
    target.address.text = (ipv6 ? "[" + name + "]" : name) + ":" + std::to_string(port);
    std::string problem = resolve(name, port, ipv6, /*passive=*/false, target.address);
    if (!problem.empty() && ipv6) return "invalid host " + quote(host.string) + ": " + problem;
    return problem;
  }

  bool load_target_password(const Value& table, const std::string& label, protocol::Target& target) {
    const Section& s = kTarget;
    const Value* file = get(table, "password_file", Type::string, s);
    const Value* env = get(table, "password_env", Type::string, s);
    bool file_present = table.find("password_file") != nullptr;
    bool env_present = table.find("password_env") != nullptr;
    if (file_present && env_present) {
      error(table.find("password_env")->line, label + " sets both password_file and password_env: keep one of them");
      return false;
    }
    if (!file_present && !env_present) {
      warning(table.line, label +
                              " has no password_file or password_env: sluice will log in without a password, "
                              "which works only if the server trusts it (e.g. 'trust' in pg_hba.conf)");
      return true;
    }
    if (file != nullptr) return read_password_file(*file, s, label, target.password);
    if (env != nullptr) return read_password_env(*env, label, target);
    return false;  // present with the wrong type, already reported
  }

  // A relative path in the file is relative to the file's directory.
  std::string resolve_path(const std::string& path) const {
    return path[0] != '/' && !base_dir_.empty() ? base_dir_ + "/" + path : path;
  }

  // The first line of a password file (of a target or of [audit.sink]) -> out.
  bool read_password_file(const Value& value, const Section& section, const std::string& label,
                          protocol::Secret& out) {
    const std::string& written = value.string;
    if (written.empty() || written.find('\0') != std::string::npos) {
      error(value.line, where("password_file", section) + " must be a file path");
      return false;
    }
    const std::string path = resolve_path(written);
    core::SmallFile file = core::read_small_file(path, kMaxPasswordFileBytes);
    if (file.status == core::SmallFile::Status::cannot_open) {
      error(value.line, "cannot open password_file " + quote_path(path) + " of " + label + ": " + file.problem);
      return false;
    }
    if (file.status == core::SmallFile::Status::cannot_read) {
      if (file.problem.starts_with("larger than")) file.problem += "; it should hold only the password";
      error(value.line, "cannot read password_file " + quote_path(path) + " of " + label + ": " + file.problem);
      return false;
    }
    if ((file.mode & (S_IRWXG | S_IRWXO)) != 0) {
      char mode[12];
      std::snprintf(mode, sizeof mode, "%04o", file.mode);
      warning(value.line, "password_file " + quote_path(path) + " of " + label +
                              " is accessible by group or others (mode " + mode + "); run: chmod 600 " +
                              core::toml::printable(path, 4096));
    }
    const std::string& content = file.content;
    std::string password = content.substr(0, content.find('\n'));
    if (!password.empty() && password.back() == '\r') password.pop_back();
    if (password.empty()) {
      error(value.line,
            "password_file " + quote_path(path) + " of " + label + " is empty: its first line is the password");
      return false;
    }
    if (password.find('\0') != std::string::npos) {
      error(value.line, "password_file " + quote_path(path) + " of " + label + " contains a NUL byte");
      return false;
    }
    out = protocol::Secret(std::move(password));
    return true;
  }

  bool read_password_env(const Value& value, const std::string& label, protocol::Target& target) {
    const std::string& name = value.string;
    if (name.empty() || name.find('=') != std::string::npos || name.find('\0') != std::string::npos) {
      error(value.line, where("password_env", kTarget) + " must be the name of an environment variable");
      return false;
    }
    const char* password = std::getenv(name.c_str());
    if (password == nullptr) {
      error(value.line, "environment variable " + quote(name) + " (password_env of " + label + ") is not set");
      return false;
    }
    if (*password == '\0') {
      error(value.line, "environment variable " + quote(name) + " (password_env of " + label + ") is empty");
      return false;
    }
    target.password = protocol::Secret(password);
    return true;
  }

  // --- [[user]] ----------------------------------------------------------------------

  void load_user(const Value& table) {
    const Section& s = kUser;
    check_keys(table, s, kUserKeys);
    protocol::GatewayUser user;
    bool valid = true;
    if (const Value* name = require(table, "name", Type::string, s)) {
      if (check_name(*name, "name", s) && first_definition(*name, "user", user_lines_))
        user.name = name->string;
      else
        valid = false;
    } else {
      valid = false;
    }
    std::string label = user.name.empty() ? "[[user]]" : "user " + quote(user.name);
    if (const Value* password = require(table, "password", Type::string, s)) {
      valid = load_verifier(*password, label, user) && valid;
    } else {
      valid = false;
    }
    valid = load_groups(table, user) && valid;
    if (valid) result_.settings.users.push_back(std::move(user));
  }

  // Messages here never include the value: it is a password or a verifier.
  bool load_verifier(const Value& value, const std::string& label, protocol::GatewayUser& user) {
    const std::string& text = value.string;
    constexpr std::string_view kScramPrefix = "SCRAM-SHA-256$";
    if (text.starts_with(kScramPrefix)) {
      auto verifier = protocol::scram::parse_verifier(text);
      if (!verifier) {
        error(value.line, label +
                              ": password starts with SCRAM-SHA-256$ but is not a valid verifier "
                              "(expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>)");
        return false;
      }
      user.verifier = std::move(*verifier);
      return true;
    }
    bool md5 = text.size() == 35 && text.starts_with("md5") && std::all_of(text.begin() + 3, text.end(), [](char c) {
                 return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
               });
    if (md5) {
      error(value.line, label +
                            ": password is an md5 hash, which cannot be used for SCRAM-SHA-256 "
                            "authentication; give a SCRAM-SHA-256 verifier (sluicectl scram-verifier)");
      return false;
    }
    if (text.empty()) {
      error(value.line, label + ": password is empty");
      return false;
    }
    warning(value.line, label + ": password is in plaintext; store a verifier instead: sluicectl scram-verifier");
    user.verifier = protocol::scram::make_verifier(text);
    return true;
  }

  bool load_groups(const Value& table, protocol::GatewayUser& user) {
    const Value* groups = table.find("groups");
    if (groups == nullptr) return true;
    bool strings = groups->type == Type::array && std::all_of(groups->array.begin(), groups->array.end(),
                                                              [](const Value& v) { return v.type == Type::string; });
    if (!strings) {
      error(groups->line, where("groups", kUser) + " must be an array of strings, e.g. groups = [\"dev\"]");
      return false;
    }
    bool valid = true;
    for (const auto& group : groups->array) {
      if (!check_name(group, "groups", kUser)) {
        valid = false;
      } else if (std::find(user.groups.begin(), user.groups.end(), group.string) != user.groups.end()) {
        warning(group.line, where("groups", kUser) + ": group " + quote(group.string) + " is listed twice");
      } else {
        user.groups.push_back(group.string);
      }
    }
    return valid;
  }

  std::string file_;
  std::string base_dir_;
  std::optional<bool> require_tls_;  // [gateway] require_tls, when written
  int require_tls_line_ = 0;
  LoadedConfig result_;
  NameLines target_lines_;  // for duplicates
  NameLines user_lines_;
};

LoadedConfig whole_file_error(const std::string& path, std::string message) {
  LoadedConfig result;
  result.diagnostics.push_back(ConfigDiagnostic{path, 0, std::move(message), true});
  return result;
}

}  // namespace

bool LoadedConfig::ok() const {
  return std::none_of(diagnostics.begin(), diagnostics.end(), [](const ConfigDiagnostic& d) { return d.is_error; });
}

LoadedConfig load_config_text(std::string_view text, const std::string& file_name, const std::string& base_dir) {
  return Loader(file_name, base_dir).load(text);
}

LoadedConfig load_config_file(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string base_dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const core::SmallFile file = core::read_small_file(path, core::toml::kMaxInputBytes);
  if (file.status == core::SmallFile::Status::cannot_open) {
    return whole_file_error(path, "cannot open the configuration file: " + file.problem);
  }
  if (file.status == core::SmallFile::Status::cannot_read) {
    return whole_file_error(path, "cannot read the configuration file: " + file.problem);
  }
  return Loader(path, base_dir).load(file.content);
}

std::string format_diagnostic(const ConfigDiagnostic& diagnostic) {
  std::string out = diagnostic.file;
  if (diagnostic.line > 0) out += ":" + std::to_string(diagnostic.line);
  out += diagnostic.is_error ? ": error: " : ": warning: ";
  out += diagnostic.message;
  return out;
}

}  // namespace sluice::tools
