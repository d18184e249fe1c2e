// Tests for tools/config: a full file maps to Settings, defaults apply, every class of
// mistake is reported with file:line (all of them, in one run), and no diagnostic
// ever shows a password or a verifier.
#include "tools/config.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/unit/test_support.h"

namespace sluice::tools {
namespace {

using std::chrono::milliseconds;

// A SCRAM-SHA-256 verifier of the password "test-password" (4096 iterations).
constexpr const char* kVerifier =
    "SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$XsoIrEz3gOmu+XcvpRftNyw7YjWgMXEz5g8RraEbTnA=:"
    "DTFCY+oAenPTZMp1/UJOFpa3b3zkRTB749eMDPNiFV0=";

using testing_support::TempDir;

// Sets an environment variable for the scope of one test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (value)
      setenv(name, value, 1);
    else
      unsetenv(name);
  }
  ~ScopedEnv() { unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

constexpr const char* kFile = "sluice.toml";

LoadedConfig load(const std::string& text, const std::string& base_dir = "/nonexistent") {
  return load_config_text(text, kFile, base_dir);
}

using testing_support::count_errors;
using testing_support::report;

// A target that loads without a file: its password comes from this variable.
constexpr const char* kPasswordVariable = "SLUICE_CONFIG_TEST_PASSWORD";
constexpr const char* kMinimalTarget =
    "[[target]]\n"
    "name = \"app\"\n"
    "host = \"127.0.0.1\"\n"
    "user = \"sluice_app\"\n"
    "password_env = \"SLUICE_CONFIG_TEST_PASSWORD\"\n";

// Policy wants every user in a defined group: alice is in dev, and dev is defined
// right after her (so a file can hold minimal_user() only once).
constexpr const char* kMinimalGroup = "[groups.dev]\ntargets = [\"*\"]\n";
std::string minimal_user() {
  return std::string("[[user]]\nname = \"alice\"\npassword = \"") + kVerifier + "\"\ngroups = [\"dev\"]\n" +
         kMinimalGroup;
}

// A valid config with `gateway` as the [gateway] body (lines 2..), then the target and user.
std::string with_gateway(const std::string& gateway) {
  return "[gateway]\n" + gateway + "\n" + kMinimalTarget + minimal_user();
}

// `text` with every VERIFIER replaced by kVerifier.
std::string with_verifier(std::string text) {
  for (size_t at = text.find("VERIFIER"); at != std::string::npos; at = text.find("VERIFIER", at))
    text.replace(at, 8, kVerifier);
  return text;
}

uint16_t port_of(const protocol::SocketAddress& address) {
  if (address.storage.ss_family == AF_INET)
    return ntohs(reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_port);
  if (address.storage.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&address.storage)->sin6_port);
  return 0;
}

std::string ipv4_of(const protocol::SocketAddress& address) {
  if (address.storage.ss_family != AF_INET) return "";
  char buffer[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_addr, buffer, sizeof buffer);
  return buffer;
}

TEST(Config, FullConfigMapsToSettings) {
  TempDir dir;
  dir.write("reports.password", "s3cret-file-pw\r\nsecond line ignored\n");
  ScopedEnv env(kPasswordVariable, "s3cret-env-pw");
  auto config = load(with_verifier(R"(# sluice
[gateway]
listen = ["127.0.0.1:7000", "[::1]:7001", "localhost:7002"]
shards = 4
max_client_connections = 5000
max_message_bytes = "128MiB"
handshake_timeout = "15s"
connect_timeout = "2500ms"
idle_timeout = "1h"
write_stall_timeout = "2m"
shutdown_grace = "0s"
send_queue_bytes = 1048576
recv_buffer_bytes = "32 KiB"
recv_buffers_per_shard = 8192
log_level = "debug"

[[target]]
name = "app"
host = "127.0.0.1"
port = 6543
database = "app_db"
user = "sluice_app"
password_env = "SLUICE_CONFIG_TEST_PASSWORD"

[[target]]
name = "reports.v2"
host = "::1"
user = "sluice_reports"
password_file = "reports.password"

[[user]]
name = "alice"
password = "VERIFIER"
groups = ["dev", "oncall"]

[[user]]
name = "bob"
password = "VERIFIER"
groups = ["oncall"]

[groups.dev]
targets = ["app"]

[groups.oncall]
targets = ["*"]
access = "admin"
)"),
                     dir.path());
  ASSERT_TRUE(config.ok()) << report(config);
  EXPECT_TRUE(config.diagnostics.empty()) << report(config);

  const auto& g = config.settings.gateway;
  ASSERT_EQ(g.listen.size(), 3u);
  EXPECT_EQ(g.listen[0].text, "127.0.0.1:7000");
  EXPECT_EQ(ipv4_of(g.listen[0]), "127.0.0.1");
  EXPECT_EQ(port_of(g.listen[0]), 7000);
  EXPECT_EQ(g.listen[0].length, sizeof(sockaddr_in));
  EXPECT_EQ(g.listen[1].storage.ss_family, AF_INET6);
  EXPECT_EQ(g.listen[1].length, sizeof(sockaddr_in6));
  EXPECT_EQ(port_of(g.listen[1]), 7001);
  EXPECT_EQ(port_of(g.listen[2]), 7002);
  EXPECT_EQ(g.shards, 4u);
  EXPECT_EQ(g.max_client_connections, 5000u);
  EXPECT_EQ(g.max_message_bytes, 128u << 20);
  EXPECT_EQ(g.handshake_timeout, milliseconds(15'000));
  EXPECT_EQ(g.connect_timeout, milliseconds(2'500));
  EXPECT_EQ(g.idle_timeout, milliseconds(3'600'000));
  EXPECT_EQ(g.write_stall_timeout, milliseconds(120'000));
  EXPECT_EQ(g.shutdown_grace, milliseconds(0));
  EXPECT_EQ(g.send_queue_bytes, 1u << 20);
  EXPECT_EQ(g.recv_buffer_bytes, 32u << 10);
  EXPECT_EQ(g.recv_buffers_per_shard, 8192u);
  EXPECT_EQ(g.log_level, core::LogLevel::debug);

  ASSERT_EQ(config.settings.targets.size(), 2u);
  const auto* app = config.settings.find_target("app");
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(app->host, "127.0.0.1");
  EXPECT_EQ(app->port, 6543);
  EXPECT_EQ(app->database, "app_db");
  EXPECT_EQ(app->user, "sluice_app");
  EXPECT_EQ(app->password.reveal(), "s3cret-env-pw");
  EXPECT_EQ(app->address.text, "127.0.0.1:6543");
  EXPECT_EQ(ipv4_of(app->address), "127.0.0.1");
  EXPECT_EQ(port_of(app->address), 6543);
  const auto* reports = config.settings.find_target("reports.v2");
  ASSERT_NE(reports, nullptr);
  EXPECT_EQ(reports->port, 5432);
  EXPECT_EQ(reports->database, "reports.v2");               // defaults to the name
  EXPECT_EQ(reports->password.reveal(), "s3cret-file-pw");  // first line, \r\n stripped
  EXPECT_EQ(reports->address.text, "[::1]:5432");
  EXPECT_EQ(reports->address.storage.ss_family, AF_INET6);

  ASSERT_EQ(config.settings.users.size(), 2u);
  const auto* alice = config.settings.find_user("alice");
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(alice->groups, (std::vector<std::string>{"dev", "oncall"}));
  EXPECT_EQ(alice->verifier.iterations, 4096u);
  EXPECT_EQ(protocol::scram::format_verifier(alice->verifier), kVerifier);
  EXPECT_EQ(config.settings.find_user("bob")->groups, (std::vector<std::string>{"oncall"}));
  ASSERT_NE(config.policy, nullptr);
  EXPECT_EQ(config.policy->groups.size(), 2u);
}

TEST(Config, DefaultsApplyWhenKeysAreAbsent) {
  ScopedEnv env(kPasswordVariable, "pw");
  auto config = load(std::string(kMinimalTarget) + minimal_user());
  ASSERT_TRUE(config.ok()) << report(config);
  EXPECT_TRUE(config.diagnostics.empty()) << report(config);
  const auto& g = config.settings.gateway;
  const protocol::GatewaySettings defaults;
  ASSERT_EQ(g.listen.size(), 1u);
  EXPECT_EQ(g.listen[0].text, "127.0.0.1:6432");
  EXPECT_EQ(ipv4_of(g.listen[0]), "127.0.0.1");
  EXPECT_EQ(port_of(g.listen[0]), 6432);
  EXPECT_EQ(g.shards, defaults.shards);
  EXPECT_EQ(g.max_client_connections, defaults.max_client_connections);
  EXPECT_EQ(g.max_message_bytes, defaults.max_message_bytes);
  EXPECT_EQ(g.handshake_timeout, defaults.handshake_timeout);
  EXPECT_EQ(g.connect_timeout, defaults.connect_timeout);
  EXPECT_EQ(g.idle_timeout, defaults.idle_timeout);
  EXPECT_EQ(g.write_stall_timeout, defaults.write_stall_timeout);
  EXPECT_EQ(g.shutdown_grace, defaults.shutdown_grace);
  EXPECT_EQ(g.send_queue_bytes, defaults.send_queue_bytes);
  EXPECT_EQ(g.recv_buffer_bytes, defaults.recv_buffer_bytes);
  EXPECT_EQ(g.recv_buffers_per_shard, defaults.recv_buffers_per_shard);
  EXPECT_EQ(g.log_level, defaults.log_level);
  ASSERT_EQ(config.settings.targets.size(), 1u);
  EXPECT_EQ(config.settings.targets[0].port, 5432);
  EXPECT_EQ(config.settings.targets[0].database, "app");

  // An empty [gateway] section means the same.
  auto empty_gateway = load("[gateway]\n" + std::string(kMinimalTarget) + minimal_user());
  ASSERT_TRUE(empty_gateway.ok()) << report(empty_gateway);
  EXPECT_EQ(empty_gateway.settings.gateway.listen.at(0).text, "127.0.0.1:6432");
}

TEST(Config, UnknownKeysSuggestTheClosestKnownKey) {
  ScopedEnv env(kPasswordVariable, "pw");
  auto config = load(
      "[gateway]\n"
      "lisen = \"127.0.0.1:1\"\n"  // 2
      "shard = 2\n"                // 3
      "frobnicate = true\n"        // 4
      "[[target]]\n"
      "name = \"app\"\n"
      "hots = \"127.0.0.1\"\n"  // 7
      "host = \"127.0.0.1\"\n"
      "user = \"u\"\n"
      "password_env = \"SLUICE_CONFIG_TEST_PASSWORD\"\n"
      "[[user]]\n"
      "name = \"alice\"\n"
      "pasword = \"x\"\n"  // 13
      "[gateways]\n");     // 14
  EXPECT_FALSE(config.ok());
  EXPECT_DIAGNOSTIC(config, "sluice.toml:2: error: unknown key 'lisen' in [gateway] (did you mean 'listen'?)");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:3: error: unknown key 'shard' in [gateway] (did you mean 'shards'?)");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:4: error: unknown key 'frobnicate' in [gateway]\n");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:7: error: unknown key 'hots' in [[target]] (did you mean 'host'?)");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:13: error: unknown key 'pasword' in [[user]] (did you mean 'password'?)");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:11: error: missing required key 'password' in [[user]]");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:14: error: unknown table [gateways] (did you mean 'gateway'?)");

  auto nested = load(with_gateway("shards = 1\n[gateway.tls]\n[[gateway.listeners]]"));
  EXPECT_DIAGNOSTIC(nested, "sluice.toml:3: error: unknown table [gateway.tls]\n");
  EXPECT_DIAGNOSTIC(nested, "sluice.toml:4: error: unknown table [[gateway.listeners]]\n");
}

TEST(Config, TopLevelMistakes) {
  ScopedEnv env(kPasswordVariable, "pw");
  auto config = load(
      "listen = \"127.0.0.1:1\"\n"  // 1: a gateway key outside [gateway]
      "colour = 1\n"                // 2
      "[target]\n"                  // 3: a table where [[target]] is expected
      "name = \"x\"\n"
      "[[gateway]]\n");  // 5
  EXPECT_DIAGNOSTIC(config, "sluice.toml:1: error: key 'listen' belongs in the [gateway] section");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:2: error: unknown key 'colour' at the top level\n");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:3: error: write [[target]], not [target]");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:5: error: [[gateway]] is not allowed: write [gateway]");
  EXPECT_DIAGNOSTIC(config, "sluice.toml: error: no [[target]] is defined: at least one is required");
  EXPECT_DIAGNOSTIC(config, "sluice.toml: warning: no [[user]] is defined: no one can log in");
  // Whole-file diagnostics come first.
  EXPECT_EQ(config.diagnostics.front().line, 0);
}

TEST(Config, WrongTypesNameTheExpectedType) {
  ScopedEnv env(kPasswordVariable, "pw");
  auto config = load(
      "[gateway]\n"
      "shards = \"4\"\n"            // 2
      "listen = 6432\n"             // 3
      "handshake_timeout = 10\n"    // 4
      "max_message_bytes = true\n"  // 5
      "log_level = 1\n"             // 6
      "[[target]]\n"
      "name = 7\n"  // 8
      "host = \"127.0.0.1\"\n"
      "port = \"5432\"\n"  // 10
      "user = \"u\"\n"
      "password_env = [\"X\"]\n"  // 12
      "[[user]]\n"
      "name = \"alice\"\n"
      "password = 123\n"      // 15
      "groups = \"dev\"\n");  // 16
  EXPECT_DIAGNOSTIC(config, "sluice.toml:2: error: 'shards' in [gateway] must be an integer, not a string");
  EXPECT_DIAGNOSTIC(
      config, "sluice.toml:3: error: 'listen' in [gateway] must be a string or an array of strings, not an integer");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:4: error: 'handshake_timeout' in [gateway] must be a duration string such as \"10s\"");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:5: error: 'max_message_bytes' in [gateway] must be a size");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:6: error: 'log_level' in [gateway] must be a string, not an integer");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:8: error: 'name' in [[target]] must be a string, not an integer");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:10: error: 'port' in [[target]] must be an integer, not a string");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:12: error: 'password_env' in [[target]] must be a string, not an array");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:15: error: 'password' in [[user]] must be a string, not an integer");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:16: error: 'groups' in [[user]] must be an array of strings");
  auto mixed = load(with_gateway("listen = [\"127.0.0.1:1\", 2]"));
  EXPECT_DIAGNOSTIC(mixed,
                    "sluice.toml:2: error: 'listen' in [gateway] must be a string or an array of strings, not an "
                    "array holding other values");
}

TEST(Config, BadListenAddresses) {
  ScopedEnv env(kPasswordVariable, "pw");
  auto config =
      load(with_gateway("listen = [\n"
                        "  \"127.0.0.1\",\n"                  // 3
                        "  \"127.0.0.1:0\",\n"                // 4
                        "  \"127.0.0.1:70000\",\n"            // 5
                        "  \"::1:6432\",\n"                   // 6
                        "  \"[::1]6432\",\n"                  // 7
                        "  \"[not-v6]:6432\",\n"              // 8
                        "  \":6432\",\n"                      // 9
                        "  \"no-such-host.invalid:6432\",\n"  // 10
                        "  \"127.0.0.1:6432\",\n"             // 11
                        "  \"127.0.0.1:6432\",\n"             // 12
                        "  \"[::1\",\n"                       // 13
                        "]"));
  EXPECT_DIAGNOSTIC(config, "sluice.toml:3: error: 'listen' in [gateway]: invalid address '127.0.0.1': missing port");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:4: error: 'listen' in [gateway]: invalid address '127.0.0.1:0': invalid port '0'");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:5: error: 'listen' in [gateway]: invalid address '127.0.0.1:70000': invalid port");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:6: error: 'listen' in [gateway]: invalid address '::1:6432': an IPv6 address must "
                    "be in brackets");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:7: error: 'listen' in [gateway]: invalid address '[::1]6432': missing port");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:8: error: 'listen' in [gateway]: invalid address '[not-v6]:6432': not a numeric "
                    "IPv6 address");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:9: error: 'listen' in [gateway]: invalid address ':6432': missing host");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:10: error: 'listen' in [gateway]: invalid address 'no-such-host.invalid:6432': "
                    "cannot resolve host 'no-such-host.invalid'");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:12: error: 'listen' in [gateway]: address '127.0.0.1:6432' is listed twice");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:13: error: 'listen' in [gateway]: invalid address '[::1': missing ']'");
  EXPECT_EQ(count_errors(config), 10u) << report(config);

  auto empty = load(with_gateway("listen = []"));
  EXPECT_DIAGNOSTIC(empty, "sluice.toml:2: error: 'listen' in [gateway] must name at least one address");
}

TEST(Config, TlsSectionAndRequireTls) {
  ScopedEnv env(kPasswordVariable, "pw");
  // Loopback listeners accept plaintext unless told otherwise; TLS is off without [tls].
  auto plain = load(with_gateway("listen = [\"127.0.0.1:7000\", \"[::1]:7001\"]"));
  ASSERT_TRUE(plain.ok()) << report(plain);
  EXPECT_FALSE(plain.settings.tls.enabled());
  for (const auto& l : plain.settings.gateway.listen) {
    EXPECT_TRUE(l.loopback) << l.text;
    EXPECT_FALSE(l.require_tls) << l.text;
  }

  // Other addresses require TLS by default, so they need a certificate.
  auto exposed = load(with_gateway("listen = [\"127.0.0.1:7000\", \"0.0.0.0:7001\"]"));
  EXPECT_DIAGNOSTIC(exposed,
                    "sluice.toml: error: listener '0.0.0.0:7001' requires TLS (the default for an address other than "
                    "loopback) but no [tls] cert_file and key_file are configured");
  EXPECT_EQ(count_errors(exposed), 1u) << report(exposed);

  auto opted_out = load(with_gateway("listen = \"0.0.0.0:7001\"\nrequire_tls = false"));
  ASSERT_TRUE(opted_out.ok()) << report(opted_out);
  EXPECT_FALSE(opted_out.settings.gateway.listen[0].require_tls);
  EXPECT_FALSE(opted_out.settings.gateway.listen[0].loopback);

  auto forced = load(with_gateway("require_tls = true"));
  EXPECT_DIAGNOSTIC(forced, "sluice.toml:2: error: listener '127.0.0.1:6432' requires TLS (require_tls = true in "
                            "[gateway])");

  auto with_tls = load("[tls]\ncert_file = \"certs/gw.crt\"\nkey_file = \"/etc/sluice/gw.key\"\n"
                       "min_version = \"1.3\"\n" + with_gateway("listen = \"0.0.0.0:7001\""),
                       "/etc/sluice");
  ASSERT_TRUE(with_tls.ok()) << report(with_tls);
  EXPECT_EQ(with_tls.settings.tls.cert_file, "/etc/sluice/certs/gw.crt") << "relative to the config file";
  EXPECT_EQ(with_tls.settings.tls.key_file, "/etc/sluice/gw.key");
  EXPECT_EQ(with_tls.settings.tls.min_version, "1.3");
  EXPECT_TRUE(with_tls.settings.gateway.listen[0].require_tls);

  auto bad = load("[tls]\ncert_file = \"gw.crt\"\nmin_version = \"1.1\"\nciphers = \"x\"\n" + with_gateway(""));
  EXPECT_DIAGNOSTIC(bad, "sluice.toml:1: error: missing required key 'key_file' in [tls]");
  EXPECT_DIAGNOSTIC(bad, "sluice.toml:4: error: unknown key 'ciphers' in [tls]");
  auto bad_version = load("[tls]\ncert_file = \"a\"\nkey_file = \"b\"\nmin_version = \"1.1\"\n" + with_gateway(""));
  EXPECT_DIAGNOSTIC(bad_version, "sluice.toml:4: error: 'min_version' in [tls] must be \"1.2\" or \"1.3\", not '1.1'");

  EXPECT_EQ(with_tls.settings.tls.kernel_tls, "auto") << "the kernel takes records where it can";
  auto kernel_off = load("[tls]\ncert_file = \"a\"\nkey_file = \"b\"\nkernel_tls = \"off\"\n" + with_gateway(""));
  ASSERT_TRUE(kernel_off.ok()) << report(kernel_off);
  EXPECT_EQ(kernel_off.settings.tls.kernel_tls, "off");
  auto bad_kernel = load("[tls]\ncert_file = \"a\"\nkey_file = \"b\"\nkernel_tls = \"yes\"\n" + with_gateway(""));
  EXPECT_DIAGNOSTIC(bad_kernel,
                    "sluice.toml:4: error: 'kernel_tls' in [tls] must be \"auto\", \"on\" or \"off\", not 'yes'");
}

TEST(Config, TargetSslmodes) {
  ScopedEnv env(kPasswordVariable, "pw");
  auto target = [](const std::string& keys) {
    return std::string("[[target]]\nname = \"app\"\nhost = \"127.0.0.1\"\nuser = \"u\"\n"
                       "password_env = \"SLUICE_CONFIG_TEST_PASSWORD\"\n") +
           keys + minimal_user();
  };
  auto defaults = load(target(""));
  ASSERT_TRUE(defaults.ok()) << report(defaults);
  EXPECT_EQ(defaults.settings.targets[0].sslmode, protocol::Target::SslMode::prefer) << "libpq's default";

  auto full = load(target("sslmode = \"verify-full\"\nsslrootcert = \"ca.crt\"\n"), "/etc/sluice");
  ASSERT_TRUE(full.ok()) << report(full);
  EXPECT_EQ(full.settings.targets[0].sslmode, protocol::Target::SslMode::verify_full);
  EXPECT_EQ(full.settings.targets[0].sslrootcert, "/etc/sluice/ca.crt");

  auto no_ca = load(target("sslmode = \"verify-ca\"\n"));
  EXPECT_DIAGNOSTIC(no_ca, "sluice.toml:6: error: 'sslmode' in [[target]] 'verify-ca' needs sslrootcert");
  auto allow = load(target("sslmode = \"allow\"\n"));
  EXPECT_DIAGNOSTIC(allow, "sluice.toml:6: error: 'sslmode' in [[target]] must be disable, prefer, require, verify-ca or "
                           "verify-full, not 'allow' (allow is not offered: use prefer)");
  auto half = load(target("sslmode = \"require\"\nsslcert = \"c.crt\"\n"));
  EXPECT_DIAGNOSTIC(half, "sluice.toml:1: error: sslcert and sslkey in [[target]] go together: give both or neither");
}

TEST(Config, OidcIssuers) {
  ScopedEnv env(kPasswordVariable, "pw");
  auto good = load(with_gateway("") +
                       "[oidc]\nuser_must_match = false\nat_expiry = \"finish-transaction\"\n"
                       "[[oidc.issuer]]\nissuer = \"https://token.actions.githubusercontent.com\"\naudience = \"sluice\"\n"
                       "algorithms = [\"RS256\"]\ngroups_claim = \"repository_owner\"\nidentity_claim = \"repository\"\n"
                       "max_token_lifetime = \"1h\"\nclock_leeway = \"30s\"\n"
                       "[[oidc.issuer]]\nissuer = \"internal\"\naudience = \"db\"\njwks_file = \"keys/jwks.json\"\n",
                   "/etc/sluice");
  ASSERT_TRUE(good.ok()) << report(good);
  const auto& o = good.settings.oidc;
  ASSERT_EQ(o.issuers.size(), 2u);
  EXPECT_FALSE(o.user_must_match);
  EXPECT_TRUE(o.finish_transaction_at_expiry);
  EXPECT_EQ(o.issuers[0].verify.algorithms, std::vector<protocol::jwt::Algorithm>{protocol::jwt::Algorithm::rs256});
  EXPECT_EQ(o.issuers[0].verify.identity_claim, "repository");
  EXPECT_EQ(o.issuers[0].verify.groups_claim, "repository_owner");
  EXPECT_EQ(o.issuers[0].verify.max_lifetime_seconds, 3600);
  EXPECT_EQ(o.issuers[0].verify.leeway_seconds, 30);
  EXPECT_EQ(o.issuers[1].jwks_file, "/etc/sluice/keys/jwks.json");

  auto bad = load(with_gateway("") +
                  "[oidc]\n"                                                         // line 14
                  "[[oidc.issuer]]\nissuer = \"http://idp.example\"\naudience = \"x\"\n"  // 15-17
                  "[[oidc.issuer]]\nissuer = \"https://a.example\"\naudience = \"x\"\n"   // 18-20
                  "algorithms = [\"HS256\", \"none\"]\njwks_uri = \"http://a.example/jwks\"\n"  // 21-22
                  "[[oidc.issuer]]\nissuer = \"https://b.example\"\n");           // 23-24
  EXPECT_DIAGNOSTIC(bad, "sluice.toml:16: error: issuer 'http://idp.example' is not an https:// URL, so its keys cannot "
                         "be discovered");
  EXPECT_DIAGNOSTIC(bad, "sluice.toml:21: error: 'algorithms' in [[oidc.issuer]]: 'HS256' is not accepted");
  EXPECT_DIAGNOSTIC(bad, "sluice.toml:21: error: 'algorithms' in [[oidc.issuer]]: 'none' is not accepted");
  EXPECT_DIAGNOSTIC(bad, "sluice.toml:22: error: 'jwks_uri' in [[oidc.issuer]] must be an https:// URL");
  EXPECT_DIAGNOSTIC(bad, "sluice.toml:23: error: missing required key 'audience' in [[oidc.issuer]]");

  auto empty = load(with_gateway("") + "[oidc]\nuser_must_match = true\n");
  EXPECT_DIAGNOSTIC(empty, "sluice.toml:14: error: [oidc] needs at least one [[oidc.issuer]] section");
}

TEST(Config, BadTargetHostsAndPorts) {
  ScopedEnv env(kPasswordVariable, "pw");
  std::string user = minimal_user();
  auto target = [](const std::string& name, const std::string& lines) {
    return "[[target]]\nname = \"" + name + "\"\nuser = \"u\"\npassword_env = \"SLUICE_CONFIG_TEST_PASSWORD\"\n" +
           lines;
  };
  auto config = load(target("a", "host = \"127.0.0.1\"\nport = 0\n") +      // port on line 6
                     target("b", "host = \"127.0.0.1\"\nport = 65536\n") +  // 12
                     target("c", "host = \"127.0.0.1:5432\"\n") +           // 17
                     target("d", "host = \"no-such-host.invalid\"\n") +     // 22
                     target("e", "host = \"[::1\"\n") +                     // 27
                     target("f", "port = 1\n") +                            // header on 28
                     target("g", "host = \"\"\n") +                         // 37
                     user);
  EXPECT_DIAGNOSTIC(config, "sluice.toml:6: error: 'port' in [[target]] must be between 1 and 65535, not 0");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:12: error: 'port' in [[target]] must be between 1 and 65535, not 65536");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:17: error: 'host' in [[target]]: host '127.0.0.1:5432' must not include a port: "
                    "set port = 5432 instead");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:22: error: 'host' in [[target]]: cannot resolve host 'no-such-host.invalid'");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:27: error: 'host' in [[target]]: invalid host '[::1'");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:28: error: missing required key 'host' in [[target]]");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:37: error: 'host' in [[target]]: not a valid host name");
  EXPECT_EQ(count_errors(config), 7u) << report(config);
  EXPECT_TRUE(config.settings.targets.empty());
}

TEST(Config, TargetNamesAndIdentifiers) {
  ScopedEnv env(kPasswordVariable, "pw");
  std::string long_name(64, 'x');
  auto config = load(
      "[[target]]\n"
      "name = \"my app\"\n"  // 2
      "host = \"127.0.0.1\"\n"
      "user = \"u\"\n"
      "password_env = \"SLUICE_CONFIG_TEST_PASSWORD\"\n"
      "[[target]]\n"
      "name = \"" +
      long_name +
      "\"\n"  // 7
      "host = \"127.0.0.1\"\n"
      "user = \"\"\n"  // 9
      "database = \"" +
      long_name +
      "\"\n"  // 10
      "password_env = \"SLUICE_CONFIG_TEST_PASSWORD\"\n"
      "[[target]]\n"  // 12
      "name = \"ok\"\n"
      "host = \"127.0.0.1\"\n"
      "password_env = \"SLUICE_CONFIG_TEST_PASSWORD\"\n" +
      minimal_user());
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:2: error: 'name' in [[target]] must be 1 to 63 characters from A-Z a-z 0-9 _ . -, "
                    "not 'my app'");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:7: error: 'name' in [[target]] must be 1 to 63 characters");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:9: error: 'user' in [[target]] must be 1 to 63 bytes long, not 0");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:10: error: 'database' in [[target]] must be 1 to 63 bytes long, not 64");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:12: error: missing required key 'user' in [[target]]");
}

TEST(Config, DuplicateTargetAndUserNames) {
  ScopedEnv env(kPasswordVariable, "pw");
  auto config = load(std::string(kMinimalTarget) + kMinimalTarget + minimal_user() +  // alice: 11-14
                     "[[user]]\nname = \"alice\"\npassword = \"" + kVerifier + "\"\ngroups = [\"dev\"]\n");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:7: error: duplicate target name 'app' (first defined on line 2)");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:18: error: duplicate user name 'alice' (first defined on line 12)");
  EXPECT_EQ(count_errors(config), 2u) << report(config);
  EXPECT_EQ(config.settings.targets.size(), 1u);
  EXPECT_EQ(config.settings.users.size(), 1u);
}

TEST(Config, SizesTakeBinaryUnits) {
  ScopedEnv env(kPasswordVariable, "pw");
  auto config =
      load(with_gateway("max_message_bytes = \"64MB\"\n"   // 2
                        "send_queue_bytes = \"256kb\"\n"   // 3
                        "recv_buffer_bytes = \"16kib\"\n"  // 4
                        "[other]"));
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:2: error: 'max_message_bytes' in [gateway]: invalid size '64MB': unit 'MB' is "
                    "ambiguous: sizes use binary units, write 64MiB");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:3: error: 'send_queue_bytes' in [gateway]: invalid size '256kb': unit 'kb' is "
                    "ambiguous: sizes use binary units, write 256KiB");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:4: error: 'recv_buffer_bytes' in [gateway]: invalid size '16kib': units are "
                    "case-sensitive: write 'KiB'");

  auto more =
      load(with_gateway("max_message_bytes = \"64\"\n"       // 2
                        "send_queue_bytes = \"1.5MiB\"\n"    // 3
                        "recv_buffer_bytes = \"16 XB\"\n"))  // 4
      ;
  EXPECT_DIAGNOSTIC(more, "sluice.toml:2: error: 'max_message_bytes' in [gateway]: invalid size '64': missing unit");
  EXPECT_DIAGNOSTIC(more,
                    "sluice.toml:3: error: 'send_queue_bytes' in [gateway]: invalid size '1.5MiB': sizes take whole "
                    "numbers");
  EXPECT_DIAGNOSTIC(more,
                    "sluice.toml:4: error: 'recv_buffer_bytes' in [gateway]: invalid size '16 XB': unknown unit 'XB'");

  auto range =
      load(with_gateway("max_message_bytes = \"32KiB\"\n"   // 2
                        "send_queue_bytes = 99999999999\n"  // 3
                        "recv_buffer_bytes = \"2GiB\"\n"))  // 4
      ;
  EXPECT_DIAGNOSTIC(range,
                    "sluice.toml:2: error: 'max_message_bytes' in [gateway] must be between 64KiB and 1GiB, not 32KiB");
  EXPECT_DIAGNOSTIC(range,
                    "sluice.toml:3: error: 'send_queue_bytes' in [gateway] must be between 16KiB and 64MiB, not "
                    "99999999999");
  EXPECT_DIAGNOSTIC(range,
                    "sluice.toml:4: error: 'recv_buffer_bytes' in [gateway] must be between 4KiB and 1MiB, not 2GiB");

  auto order = load(with_gateway("send_queue_bytes = \"16KiB\"\nrecv_buffer_bytes = \"64KiB\""));
  EXPECT_DIAGNOSTIC(order, "sluice.toml:2: error: send_queue_bytes (16KiB) must be at least recv_buffer_bytes (64KiB)");

  auto fine = load(with_gateway("max_message_bytes = 65536\nsend_queue_bytes = \"1GiB\"\n"));
  EXPECT_DIAGNOSTIC(fine,
                    "sluice.toml:3: error: 'send_queue_bytes' in [gateway] must be between 16KiB and 64MiB, not 1GiB");
  auto exact = load(with_gateway("max_message_bytes = 65536\nrecv_buffer_bytes = \"4096B\""));
  ASSERT_TRUE(exact.ok()) << report(exact);
  EXPECT_EQ(exact.settings.gateway.max_message_bytes, 65536u);
  EXPECT_EQ(exact.settings.gateway.recv_buffer_bytes, 4096u);
}

TEST(Config, DurationsTakeWholeNumbersAndUnits) {
  ScopedEnv env(kPasswordVariable, "pw");
  auto config =
      load(with_gateway("handshake_timeout = \"10\"\n"       // 2
                        "connect_timeout = \"1.5s\"\n"       // 3
                        "write_stall_timeout = \"10sec\"\n"  // 4
                        "shutdown_grace = \"-1s\"\n"         // 5
                        "idle_timeout = \"500ms\"\n"));      // 6
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:2: error: 'handshake_timeout' in [gateway]: invalid duration '10': missing unit");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:3: error: 'connect_timeout' in [gateway]: invalid duration '1.5s': durations take "
                    "whole numbers");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:4: error: 'write_stall_timeout' in [gateway]: invalid duration '10sec': unknown "
                    "unit 'sec': use ms, s, m, h or d");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:5: error: 'shutdown_grace' in [gateway]: invalid duration '-1s'");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:6: error: 'idle_timeout' in [gateway] must be 0s (off) or between 1s and 30d, not "
                    "500ms");

  auto range =
      load(with_gateway("handshake_timeout = \"50ms\"\n"                   // 2
                        "connect_timeout = \"11m\"\n"                      // 3
                        "write_stall_timeout = \"2h\"\n"                   // 4
                        "idle_timeout = \"31d\"\n"                         // 5
                        "shutdown_grace = \"99999999999999999999d\"\n"));  // 6
  EXPECT_DIAGNOSTIC(range,
                    "sluice.toml:2: error: 'handshake_timeout' in [gateway] must be between 100ms and 10m, not 50ms");
  EXPECT_DIAGNOSTIC(range,
                    "sluice.toml:3: error: 'connect_timeout' in [gateway] must be between 100ms and 10m, not 11m");
  EXPECT_DIAGNOSTIC(range,
                    "sluice.toml:4: error: 'write_stall_timeout' in [gateway] must be between 1s and 1h, not 2h");
  EXPECT_DIAGNOSTIC(range,
                    "sluice.toml:5: error: 'idle_timeout' in [gateway] must be 0s (off) or between 1s and 30d, not "
                    "31d");
  EXPECT_DIAGNOSTIC(range,
                    "sluice.toml:6: error: 'shutdown_grace' in [gateway]: invalid duration '99999999999999999999d': "
                    "the duration is far too large");

  auto fine = load(with_gateway("idle_timeout = \"30d\"\nshutdown_grace = \"1h\"\nhandshake_timeout = \"100ms\""));
  ASSERT_TRUE(fine.ok()) << report(fine);
  EXPECT_EQ(fine.settings.gateway.idle_timeout, milliseconds(30LL * 24 * 3600 * 1000));
  EXPECT_EQ(fine.settings.gateway.handshake_timeout, milliseconds(100));
}

TEST(Config, OutOfRangeIntegersAndLogLevel) {
  ScopedEnv env(kPasswordVariable, "pw");
  auto config =
      load(with_gateway("shards = 300\n"                   // 2
                        "max_client_connections = 0\n"     // 3
                        "recv_buffers_per_shard = 1000\n"  // 4
                        "log_level = \"verbose\"\n"));     // 5
  EXPECT_DIAGNOSTIC(config, "sluice.toml:2: error: 'shards' in [gateway] must be between 0 and 256, not 300");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:3: error: 'max_client_connections' in [gateway] must be between 1 and 1000000, not 0");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:4: error: 'recv_buffers_per_shard' in [gateway] must be a power of two (64, 128, "
                    "..., 32768), not 1000");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:5: error: 'log_level' in [gateway]: unknown level 'verbose': use debug, info, "
                    "warning or error");
  auto low = load(with_gateway("recv_buffers_per_shard = 32\nshards = -1"));
  EXPECT_DIAGNOSTIC(low,
                    "sluice.toml:2: error: 'recv_buffers_per_shard' in [gateway] must be between 64 and 32768, not 32");
  EXPECT_DIAGNOSTIC(low, "sluice.toml:3: error: 'shards' in [gateway] must be between 0 and 256, not -1");
}

TEST(Config, MultipleErrorsAreReportedTogetherInLineOrder) {
  auto config = load(
      "[gateway]\n"
      "shards = 1000\n"                 // 2
      "listen = \"nowhere\"\n"          // 3
      "idle_timeout = \"5 minutes\"\n"  // 4
      "[[target]]\n"                    // 5: no host, no user
      "name = \"app\"\n"
      "password_file = \"missing.password\"\n"  // 7
      "password_env = \"X\"\n"                  // 8
      "[[user]]\n"
      "name = \"alice\"\n"
      "password = \"md5"
      "0123456789abcdef0123456789abcdef\"\n"  // 11
      "grups = []\n");                        // 12
  EXPECT_FALSE(config.ok());
  std::vector<int> lines;
  for (const auto& d : config.diagnostics) lines.push_back(d.line);
  // 0: no [groups.NAME] is defined while there is a user.
  EXPECT_EQ(lines, (std::vector<int>{0, 2, 3, 4, 5, 5, 8, 11, 12})) << report(config);
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:8: error: target 'app' sets both password_file and password_env: keep one of them");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:11: error: user 'alice': password is an md5 hash, which cannot be used for "
                    "SCRAM-SHA-256 authentication");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:12: error: unknown key 'grups' in [[user]] (did you mean 'groups'?)");
}

TEST(Config, PasswordFiles) {
  TempDir dir;
  dir.write("good.password", "pw-from-file\n");
  dir.write("empty.password", "");
  dir.write("blank.password", "\nsecond\n");
  dir.write("open.password", "pw-open\n", 0644);
  std::filesystem::create_directory(dir.path() + "/a-directory");
  std::string absolute = dir.write("absolute.password", "pw-absolute");
  auto target = [](const std::string& name, const std::string& file) {
    return "[[target]]\nname = \"" + name + "\"\nhost = \"127.0.0.1\"\nuser = \"u\"\npassword_file = \"" + file +
           "\"\n";
  };
  auto config = load(target("good", "good.password") +            // password_file on line 5
                         target("missing", "missing.password") +  // 10
                         target("empty", "empty.password") +      // 15
                         target("blank", "blank.password") +      // 20
                         target("open", "open.password") +        // 25
                         target("dir", "a-directory") +           // 30
                         target("absolute", absolute) +           // 35
                         minimal_user(),
                     dir.path());
  const std::string d = dir.path();
  EXPECT_DIAGNOSTIC(config, "sluice.toml:10: error: cannot open password_file '" + d +
                                "/missing.password' of target 'missing': No such file or directory");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:15: error: password_file '" + d +
                                "/empty.password' of target 'empty' is empty: its first line is the password");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:20: error: password_file '" + d + "/blank.password' of target 'blank' is empty");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:25: warning: password_file '" + d +
                                "/open.password' of target 'open' is accessible by group or others (mode 0644); run: "
                                "chmod 600 " +
                                d + "/open.password");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:30: error: cannot read password_file '" + d +
                                "/a-directory' of target 'dir': not a regular file");
  EXPECT_EQ(count_errors(config), 4u) << report(config);
  ASSERT_NE(config.settings.find_target("good"), nullptr);
  EXPECT_EQ(config.settings.find_target("good")->password.reveal(), "pw-from-file");
  EXPECT_EQ(config.settings.find_target("open")->password.reveal(), "pw-open");          // a warning, still loaded
  EXPECT_EQ(config.settings.find_target("absolute")->password.reveal(), "pw-absolute");  // no newline at all
}

TEST(Config, PasswordEnvironmentVariables) {
  ScopedEnv set(kPasswordVariable, "pw");
  ScopedEnv unset("SLUICE_CONFIG_TEST_UNSET", nullptr);
  ScopedEnv empty("SLUICE_CONFIG_TEST_EMPTY", "");
  auto target = [](const std::string& name, const std::string& lines) {
    return "[[target]]\nname = \"" + name + "\"\nhost = \"127.0.0.1\"\nuser = \"u\"\n" + lines;
  };
  auto config = load(target("unset", "password_env = \"SLUICE_CONFIG_TEST_UNSET\"\n") +  // 5
                     target("empty", "password_env = \"SLUICE_CONFIG_TEST_EMPTY\"\n") +  // 10
                     target("both",
                            "password_env = \"SLUICE_CONFIG_TEST_PASSWORD\"\n"  // 15
                            "password_file = \"x\"\n") +
                     target("none", "") +  // header on 17
                     minimal_user());
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:5: error: environment variable 'SLUICE_CONFIG_TEST_UNSET' (password_env of target "
                    "'unset') is not set");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:10: error: environment variable 'SLUICE_CONFIG_TEST_EMPTY' (password_env of target "
                    "'empty') is empty");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:15: error: target 'both' sets both password_file and password_env");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:17: warning: target 'none' has no password_file or password_env: sluice will log "
                    "in without a password");
  EXPECT_EQ(count_errors(config), 3u) << report(config);
  ASSERT_NE(config.settings.find_target("none"), nullptr);
  EXPECT_TRUE(config.settings.find_target("none")->password.empty());
}

TEST(Config, GatewayUserPasswords) {
  ScopedEnv env(kPasswordVariable, "pw");
  auto user = [](const std::string& name, const std::string& password) {
    return "[[user]]\nname = \"" + name + "\"\npassword = \"" + password + "\"\n";
  };
  std::string broken = std::string(kVerifier).substr(0, 40);
  auto config = load(std::string(kMinimalTarget) +     // lines 1-5
                     user("plain", "correct horse") +  // password on 8
                     user("broken", broken) +          // 11
                     user("md5",
                          "md5"
                          "0123456789abcdef0123456789ABCDEF") +  // 14
                     user("empty", "") +                         // 17
                     user("md5ish", "md5-not-a-hash") +          // 20: plaintext that starts with md5
                     kMinimalGroup);                             // users in no group are only warned about
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:8: warning: user 'plain': password is in plaintext; store a verifier instead: "
                    "sluicectl scram-verifier");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:11: error: user 'broken': password starts with SCRAM-SHA-256$ but is not a valid "
                    "verifier");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:14: error: user 'md5': password is an md5 hash, which cannot be used for "
                    "SCRAM-SHA-256 authentication");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:17: error: user 'empty': password is empty");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:20: warning: user 'md5ish': password is in plaintext");
  EXPECT_EQ(count_errors(config), 3u) << report(config);

  const auto* plain = config.settings.find_user("plain");
  ASSERT_NE(plain, nullptr);
  EXPECT_EQ(plain->verifier.iterations, 4096u);
  EXPECT_FALSE(plain->verifier.salt.empty());
  // The derived verifier authenticates the plaintext password.
  auto expected = protocol::scram::make_verifier("correct horse", plain->verifier.iterations, plain->verifier.salt);
  EXPECT_EQ(plain->verifier.stored_key, expected.stored_key);
  EXPECT_EQ(plain->verifier.server_key, expected.server_key);
}

TEST(Config, UserNamesAndGroups) {
  ScopedEnv env(kPasswordVariable, "pw");
  auto config = load(std::string(kMinimalTarget) +
                     "[[user]]\n"
                     "name = \"bad\\u0007name\"\n"  // 7
                     "password = \"" +
                     kVerifier +
                     "\"\n"
                     "[[user]]\n"
                     "name = \"carol\"\n"
                     "password = \"" +
                     kVerifier +
                     "\"\n"
                     "groups = [\"dev\", \"\", \"dev\"]\n"  // 12
                     "[[user]]\n"                           // 13
                     "password = \"" +
                     kVerifier + "\"\n");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:7: error: 'name' in [[user]] must not contain control characters");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:12: error: 'groups' in [[user]] must be 1 to 63 bytes long, not 0");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:12: warning: 'groups' in [[user]]: group 'dev' is listed twice");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:13: error: missing required key 'name' in [[user]]");
}

TEST(Config, SecretsNeverAppearInDiagnostics) {
  TempDir dir;
  dir.write("open.password", "FILESECRET-41\n", 0644);
  ScopedEnv env("SLUICE_CONFIG_TEST_SECRET", "ENVSECRET-42");
  std::string broken_verifier = "SCRAM-SHA-256$4096:VERIFIERSECRET43$x:y";
  auto config = load(
      "[[target]]\n"
      "name = \"a\"\n"
      "host = \"127.0.0.1\"\n"
      "user = \"u\"\n"
      "password_file = \"open.password\"\n"
      "[[target]]\n"
      "name = \"b\"\n"
      "host = \"127.0.0.1\"\n"
      "user = \"u\"\n"
      "password_env = \"SLUICE_CONFIG_TEST_SECRET\"\n"
      "password_file = \"open.password\"\n"
      "[[user]]\n"
      "name = \"plain\"\n"
      "password = \"PLAINSECRET-44\"\n"
      "[[user]]\n"
      "name = \"broken\"\n"
      "password = \"" +
          broken_verifier +
          "\"\n"
          "[[user]]\n"
          "name = \"md5\"\n"
          "password = \"md5"
          "5ec2e75ec2e75ec2e75ec2e75ec2e7ab\"\n"
          "[[user]]\n"
          "name = \"typo\"\n"
          "pasword = \"TYPOSECRET-45\"\n"
          "password = \"x\"\n",
      dir.path());
  EXPECT_GE(config.diagnostics.size(), 6u) << report(config);
  std::string all = report(config);
  for (const char* secret : {"FILESECRET", "ENVSECRET", "VERIFIERSECRET", "PLAINSECRET", "5ec2e7", "TYPOSECRET"})
    EXPECT_EQ(all.find(secret), std::string::npos) << secret << " leaked:\n" << all;

  // Nor in syntax errors: a bad escape or stray text after a password.
  auto syntax =
      load("[[user]]\nname = \"a\"\npassword = \"SYNTAXSECRET\\q\"\n[[user]]\npassword = \"x\" SYNTAXSECRET\n");
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(report(syntax).find("SYNTAXSECRET"), std::string::npos) << report(syntax);
}

TEST(Config, TomlSyntaxErrorsAreReportedWithFileAndLine) {
  auto config = load("[gateway]\nshards = 4\nshards = 5\nlisten = \"127.0.0.1:1\nlog_level = info\n");
  EXPECT_FALSE(config.ok());
  EXPECT_DIAGNOSTIC(config, "sluice.toml:3: error: duplicate key shards in [gateway] (first defined on line 2)");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:4: error: unterminated string");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:5: error: expected a value");
  EXPECT_NE(report(config).find("(column 13)"), std::string::npos) << report(config);
  // Only the syntax is reported: the missing [[target]] waits until it parses.
  EXPECT_EQ(config.diagnostics.size(), 3u) << report(config);
}

TEST(Config, LoadConfigFileReadsRelativeToTheFile) {
  TempDir dir;
  dir.write("app.password", "from-file\n");
  std::string path = dir.write("sluice.toml",
                               "[[target]]\nname = \"app\"\nhost = \"127.0.0.1\"\nuser = \"u\"\n"
                               "password_file = \"app.password\"\n" +
                                   minimal_user());
  auto config = load_config_file(path);
  ASSERT_TRUE(config.ok()) << report(config);
  EXPECT_EQ(config.settings.targets.at(0).password.reveal(), "from-file");

  auto missing = load_config_file(dir.path() + "/nope.toml");
  ASSERT_EQ(missing.diagnostics.size(), 1u);
  EXPECT_EQ(format_diagnostic(missing.diagnostics[0]),
            dir.path() + "/nope.toml: error: cannot open the configuration file: No such file or directory");

  std::string big = dir.write("big.toml", std::string((1 << 20) + 1, '#'));
  auto too_big = load_config_file(big);
  ASSERT_EQ(too_big.diagnostics.size(), 1u);
  EXPECT_EQ(format_diagnostic(too_big.diagnostics[0]),
            big + ": error: cannot read the configuration file: larger than 1 MiB");
}

TEST(Config, FormatDiagnostic) {
  EXPECT_EQ(format_diagnostic({"a.toml", 12, "bad", true}), "a.toml:12: error: bad");
  EXPECT_EQ(format_diagnostic({"a.toml", 3, "meh", false}), "a.toml:3: warning: meh");
  EXPECT_EQ(format_diagnostic({"a.toml", 0, "whole", true}), "a.toml: error: whole");
}

TEST(Config, ExampleFileLoads) {
#ifdef SLUICE_SOURCE_DIR
  ScopedEnv env("SLUICE_APP_PASSWORD", "example-password");
  auto config = load_config_file(std::string(SLUICE_SOURCE_DIR) + "/tools/sluice.example.toml");
  EXPECT_TRUE(config.ok()) << report(config);
  EXPECT_TRUE(config.diagnostics.empty()) << report(config);  // not even a warning
  EXPECT_FALSE(config.settings.targets.empty());
  EXPECT_FALSE(config.settings.users.empty());
#else
  GTEST_SKIP() << "SLUICE_SOURCE_DIR is not defined";
#endif
}

}  // namespace
}  // namespace sluice::tools
