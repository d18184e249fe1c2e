// Integration-test fixture: a real PostgreSQL cluster (one per test process, copied
// from an initdb'd template built once), the sluiced gateway under test (one per test),
// libpq helpers, child-process helpers for psql/pgbench, and a raw-socket wire-protocol
// client with its own SCRAM-SHA-256 implementation (independent of protocol/scram.h,
// so the gateway's SCRAM is checked against a second implementation).
// Environment: SLUICE_IT_KEEP=1 keeps temp dirs and logs; SLUICE_IT_TMPDIR chooses
// where clusters are copied.
#pragma once

#include <libpq-fe.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace sluice::it {

using namespace std::chrono_literals;

// ---------------------------------------------------------------------------
// Small utilities.

// Random [a-zA-Z0-9] string from the CSPRNG.
std::string random_token(size_t length);
std::string read_file(const std::string& path);
// Writes (truncating) with the given mode; throws std::runtime_error on failure.
void write_file(const std::string& path, std::string_view data, mode_t mode = 0644);
// A port that was free on 127.0.0.1 a moment ago (bind to :0, read it back, close).
uint16_t free_tcp_port();
// A socket bound to 127.0.0.1 on a free port (set in `port`), listening when backlog > 0
// (a test's own fake server). Throws std::runtime_error on failure.
int listen_on_loopback(uint16_t& port, int backlog);
// mkdtemp under base; when running as root the directory is handed to the
// `postgres` OS user when for_postgres is true.
std::string make_temp_dir(std::string_view prefix, bool for_postgres, const std::string& base = "/tmp");
// Where per-process clusters live: $SLUICE_IT_TMPDIR if set, else /dev/shm when it is
// a tmpfs with room (copying a cluster there is ~10x faster than to a disk-backed
// /tmp), else /tmp.
std::string cluster_scratch_root();
// rm -rf, unless SLUICE_IT_KEEP is set in the environment (for post-mortems).
void remove_tree(const std::string& path);
// True if a TCP connect to 127.0.0.1:port succeeds.
bool port_accepts(uint16_t port);
// Resident set size of a process in KiB (VmRSS in /proc/PID/status), -1 if unknown.
long vm_rss_kib(pid_t pid);

// ---------------------------------------------------------------------------
// Child processes.

struct ProgramOptions {
  std::vector<std::string> env;       // "NAME=value" added to (or replacing in) our environment
  std::string cwd;                    // empty: inherit
  std::string stdin_data;             // fed through a file
  std::chrono::milliseconds timeout = 120s;
  bool as_postgres = false;           // when root: setgid/setuid to the postgres OS user
};

struct ProgramResult {
  int exit_code = -1;     // exit status, or 128+signal, or -1 if it could not run
  bool timed_out = false;
  std::string out;
  std::string err;
};

// fork/exec argv[0] (a path), capturing stdout and stderr (through files, so a chatty
// child never blocks on a full pipe). Kills the child on timeout.
ProgramResult run_program(const std::vector<std::string>& argv, const ProgramOptions& options = {});

// A started background process (postgres, sluiced) with stdout+stderr going to a file.
// It receives `death_signal` if the test process dies first.
pid_t spawn_background(const std::vector<std::string>& argv, const std::string& log_path,
                       bool as_postgres, int death_signal);
// waitpid with a deadline; returns the raw wait status, or nullopt on timeout.
std::optional<int> wait_for_exit(pid_t pid, std::chrono::milliseconds timeout);

// ---------------------------------------------------------------------------
// libpq helpers.

struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, PgResultDeleter>;

// RAII over PGconn. Connecting never throws; check ok() / error().
class Conn {
 public:
  Conn() = default;
  explicit Conn(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {}
  Conn(Conn&& other) noexcept : conn_(other.conn_) { other.conn_ = nullptr; }
  Conn& operator=(Conn&& other) noexcept;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() { reset(); }

  bool ok() const { return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK; }
  std::string error() const { return conn_ ? PQerrorMessage(conn_) : "no connection"; }
  PGconn* get() const { return conn_; }
  operator PGconn*() const { return conn_; }
  void reset() {
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
  }

 private:
  PGconn* conn_ = nullptr;
};

using Row = std::vector<std::optional<std::string>>;
using Rows = std::vector<Row>;

// Runs sql, records a test failure if it does not return COMMAND_OK/TUPLES_OK.
Rows query(PGconn* conn, const std::string& sql);
// First column of the first row ("" and a failure if there is none).
std::string query_value(PGconn* conn, const std::string& sql);
// All text of a result that matters for comparing two servers' answers: status,
// command tag, columns (name, type, format), values, and every error field.
std::string describe_result(const PGresult* result);
// For two byte strings that should be equal: sizes, the first differing offset and
// a little escaped context around it ("" when equal).
std::string explain_difference(std::string_view actual, std::string_view expected);
// Every diagnostic field PostgreSQL can send, as "X=value" lines (absent ones skipped).
std::string error_fields(const PGresult* result);

// ---------------------------------------------------------------------------
// PostgreSQL.

// One cluster, copied from a template built once per machine (see fixture.cc). Roles:
//   postgres    superuser, reachable over the Unix socket with trust
//   sluice_app  SCRAM (random password), owns database app: tables items, accounts,
//               orders, function noisy(int) that raises a NOTICE
//   md5_user    password stored as md5, pg_hba method md5
//   plain_user  pg_hba method password (cleartext over the wire)
class PgCluster {
 public:
  // The process's cluster: created on first use, stopped by a gtest Environment at
  // the end of the run. Throws std::runtime_error (with the server log) if it cannot
  // be started; gtest then fails the test that asked.
  static PgCluster& shared();

  PgCluster();
  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  uint16_t port() const { return port_; }
  const std::string& dir() const { return dir_; }
  const std::string& socket_dir() const { return dir_; }
  pid_t postmaster_pid() const { return pid_; }
  const std::string& app_password() const { return app_password_; }
  const std::string& md5_password() const { return md5_password_; }
  const std::string& plain_password() const { return plain_password_; }
  std::string log() const;

  // Over the Unix socket as postgres (trust).
  std::string superuser_conninfo(const std::string& dbname = "app") const;
  // Over TCP to 127.0.0.1:port() with a password.
  std::string tcp_conninfo(const std::string& user, const std::string& password,
                           const std::string& dbname = "app") const;
  // tcp_conninfo for sluice_app: what a client sees when it bypasses sluice.
  std::string direct_conninfo() const { return tcp_conninfo("sluice_app", app_password_); }
  // Runs SQL as the superuser; records a failure if it errors.
  void superuser_exec(const std::string& sql, const std::string& dbname = "app") const;

  std::string bin(const std::string& program) const;
  // The CA that signed the server's certificate (ssl = on; names 127.0.0.1, localhost).
  std::string ca_file() const;
  // A client certificate for the role cert_user (CN=cert_user), signed by ca_file().
  // cert_user (password: app_password()) logs in only over TLS with it
  // (clientcert=verify-full).
  std::string client_cert_file() const;
  std::string client_key_file() const;

 private:
  void stop();

  std::string dir_;
  std::string data_dir_;
  std::string log_path_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  std::string app_password_;
  std::string md5_password_;
  std::string plain_password_;
};

// ---------------------------------------------------------------------------
// sluiced.

struct GatewayTarget {
  std::string name;       // dbname clients ask for
  std::string database;   // database on the cluster
  std::string user;       // role sluice logs in as
  std::string password;   // written to a 0600 password_file
  uint16_t port = 0;          // 0: the shared cluster's port
  std::string sslmode{};      // empty: not written (sluice's default, prefer)
  std::string sslrootcert{};  // empty: not written
  std::string sslcert{};      // with sslkey: a client certificate toward the target
  std::string sslkey{};
};

struct GatewayUser {
  std::string name;
  std::string password;         // what clients type
  bool store_verifier = false;  // config holds a SCRAM verifier instead of the plaintext
  std::vector<std::string> groups;
};

// Every member has an initializer, so a fixture can name only what it changes:
// return {.idle_timeout = "1s"};
struct SluicedOptions {
  unsigned shards = 2;
  uint32_t max_client_connections = 1000;
  std::string handshake_timeout = "10s";
  std::string idle_timeout = "0s";
  std::string write_stall_timeout = "60s";
  std::string send_queue_bytes = "256KiB";
  std::string log_level = "info";
  std::string shutdown_grace{};           // empty: not written (gateway default)
  std::string connect_timeout{};          // empty: not written (gateway default, 5 s)
  std::string max_message_bytes{};        // empty: not written (gateway default, 64 MiB)
  std::vector<GatewayTarget> targets{};   // empty: default_targets()
  std::vector<GatewayUser> users{};       // empty: default_users()
  // Statement policy. Empty: every group the users name gets admin access on every
  // target (tests about the protocol, not policy). Otherwise this TOML text is written
  // as is (it must define the users' groups); it may hold a [policy] table.
  std::string policy_toml{};
  // Keys of the [audit] section besides `directory` (always dir()/audit), e.g.
  // "mode = \"async\"\n". The default is strict mode: every integration test runs
  // with the audit trail on, as users do.
  std::string audit_toml{};
  // Masking: empty means the defaults (secrets and PII scanned, as users run it);
  // otherwise this TOML text (a [mask] section, [[mask.pattern]]s...) is written as is.
  std::string mask_toml{};
  // A [tls] section's keys (cert_file, key_file...), written as is; empty: no TLS.
  std::string tls_toml{};
  // [gateway] require_tls: "true" or "false"; empty: not written (the listener is on
  // loopback, so TLS is then optional).
  std::string require_tls{};
  // Any other sections ([oidc], [[oidc.issuer]]...), written as is.
  std::string extra_toml{};
};

// app -> sluice_app (SCRAM), app_md5 -> md5_user (md5), app_plain -> plain_user (password).
std::vector<GatewayTarget> default_targets();
// alice (plaintext in config), bob (SCRAM verifier in config); both in group dev.
std::vector<GatewayUser> default_users();
inline constexpr const char* kAlicePassword = "alice-secret";
inline constexpr const char* kBobPassword = "bob-secret-pw";

class Sluiced {
 public:
  explicit Sluiced(SluicedOptions options = {});
  ~Sluiced();
  Sluiced(const Sluiced&) = delete;
  Sluiced& operator=(const Sluiced&) = delete;

  // Writes the config, starts SLUICED_PATH and waits (30 s) until the port accepts.
  // On failure the message includes the log.
  testing::AssertionResult start();
  // SIGTERM, then waits up to `timeout`; returns the exit code (128+signal if it died
  // of a signal, -1 if it had to be killed after the timeout or was not running).
  int stop(std::chrono::milliseconds timeout = 15s);
  // Sends a signal without waiting. SIGTERM/SIGINT count as stopping on purpose.
  void signal(int sig);
  // Waits (without signalling) for sluiced to exit; its exit code, nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  // Still running (reaps it if it exited; exit_status() then holds the status).
  bool running();
  std::optional<int> exit_status() const { return exit_status_; }

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string log() const;
  const std::string& config_path() const { return config_path_; }
  const std::string& dir() const { return dir_; }
  std::string audit_dir() const { return dir_ + "/audit"; }
  const SluicedOptions& options() const { return options_; }
  long rss_kib() const { return vm_rss_kib(pid_); }

  std::string conninfo(const std::string& user = "alice", const std::string& password = kAlicePassword,
                       const std::string& dbname = "app") const;
  // True once stop() was called (a test that stops sluiced on purpose).
  bool stopped_on_purpose() const { return stopped_on_purpose_; }

 private:
  std::string render_config() const;

  SluicedOptions options_;
  std::string dir_;
  std::string config_path_;
  std::string log_path_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
  bool stopped_on_purpose_ = false;
};

// ---------------------------------------------------------------------------
// SCRAM-SHA-256 client side, written for the tests with OpenSSL.

std::string base64_encode(std::string_view data);
std::optional<std::string> base64_decode(std::string_view text);
// "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>" for a password.
std::string scram_verifier(std::string_view password, int iterations = 4096);

class ScramClient {
 public:
  explicit ScramClient(std::string password);
  std::string client_first();
  // Returns the client-final-message, or nullopt if server-first is malformed.
  std::optional<std::string> client_final(std::string_view server_first);
  bool verify_server_final(std::string_view server_final) const;

 private:
  std::string password_;
  std::string nonce_;
  std::string client_first_bare_;
  std::string server_signature_;
};

// ---------------------------------------------------------------------------
// Raw wire protocol.

struct Message {
  char type = 0;
  std::string body;
  std::string wire() const;  // type + length + body
};

// Frontend message builders (protocol 3.0).
namespace wire {
std::string startup(const std::vector<std::pair<std::string, std::string>>& params,
                    uint32_t version = 0x00030000);
std::string ssl_request();
std::string cancel_request(int32_t pid, int32_t key);
std::string message(char type, std::string_view body);
std::string query(std::string_view sql);
std::string parse(std::string_view name, std::string_view sql, const std::vector<uint32_t>& param_types = {});
// Text-format parameters (nullopt = NULL), result formats as given.
std::string bind(std::string_view portal, std::string_view statement,
                 const std::vector<std::optional<std::string>>& params,
                 const std::vector<int16_t>& result_formats = {},
                 const std::vector<int16_t>& param_formats = {});
std::string describe(char kind, std::string_view name);
std::string execute(std::string_view portal, int32_t max_rows = 0);
std::string close(char kind, std::string_view name);
std::string sync();
std::string flush();
std::string terminate();
std::string copy_data(std::string_view data);
std::string copy_done();
std::string copy_fail(std::string_view reason);
std::string function_call(uint32_t oid, const std::vector<std::optional<std::string>>& args,
                          int16_t result_format = 0);
std::string be32(int32_t v);
std::string be16(int16_t v);
}  // namespace wire

// ErrorResponse/NoticeResponse body -> field code -> value.
std::map<char, std::string> parse_fields(std::string_view body);
// Readable one-line rendering of a backend message (for diffs).
std::string render(const Message& m);

enum class ReadStatus { message, timeout, closed };

class RawClient {
 public:
  RawClient() = default;
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  // recv_buffer > 0 sets SO_RCVBUF before connecting.
  bool connect(uint16_t port, int recv_buffer = 0);
  void close();
  int fd() const { return fd_; }

  bool send(std::string_view bytes);
  ReadStatus read_message(Message& out, std::chrono::milliseconds timeout = 10s);
  // One raw byte (the answer to SSLRequest).
  ReadStatus read_byte(char& out, std::chrono::milliseconds timeout = 10s);
  // Messages up to and including the count-th ReadyForQuery (stops early on close/timeout).
  std::vector<Message> read_until_ready(int count = 1, std::chrono::milliseconds timeout = 10s);
  // Messages until nothing arrives for `quiet`.
  std::vector<Message> read_until_quiet(std::chrono::milliseconds quiet = 500ms,
                                        std::chrono::milliseconds timeout = 10s);
  // Discards input until EOF/reset; true if the peer closed within the timeout.
  bool wait_closed(std::chrono::milliseconds timeout = 10s);
  bool last_read_closed() const { return closed_; }

  struct StartupResult {
    bool ready = false;                      // ReadyForQuery received
    std::vector<int32_t> auth_requests;      // codes of Authentication messages, in order
    bool sasl_final_seen = false;            // AuthenticationSASLFinal received and verified
    bool server_signature_ok = false;
    std::map<char, std::string> error;       // ErrorResponse fields if one came
    std::vector<Message> messages;           // everything after authentication
    bool closed = false;
  };
  // Sends a StartupMessage and answers SASL (SCRAM-SHA-256), md5 or cleartext requests.
  StartupResult startup(const std::string& user, const std::string& database,
                        const std::string& password,
                        const std::vector<std::pair<std::string, std::string>>& extra = {});

  // Every byte received on this connection, in order.
  const std::string& received() const { return received_; }
  int32_t backend_pid() const { return backend_pid_; }
  int32_t backend_key() const { return backend_key_; }

 private:
  ReadStatus fill(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::string buffer_;
  size_t pos_ = 0;
  std::string received_;
  bool closed_ = false;
  int32_t backend_pid_ = 0;
  int32_t backend_key_ = 0;
};

// Connects `client` to port and logs in; failure text names what was received.
testing::AssertionResult login(RawClient& client, uint16_t port, const std::string& user,
                               const std::string& password, const std::string& database, int recv_buffer = 0);

// Base for tests that talk through a fresh sluiced (one per test: starting it is cheap
// and a crash then blames exactly one test). Override options() to change its config.
class GatewayTest : public testing::Test {
 protected:
  virtual SluicedOptions options() { return {}; }
  void SetUp() override;
  void TearDown() override;

  PgCluster& pg() { return PgCluster::shared(); }
  Sluiced& gw() { return *gw_; }
  // libpq through sluice (default alice -> target app) and directly (as sluice_app).
  Conn gateway_conn(const std::string& user = "alice", const std::string& password = kAlicePassword,
                    const std::string& dbname = "app") {
    return Conn(gw_->conninfo(user, password, dbname));
  }
  Conn direct_conn() { return Conn(pg().direct_conninfo()); }
  // sluiced is alive and a new client can log in and run a query.
  testing::AssertionResult gateway_serves();

  std::unique_ptr<Sluiced> gw_;
};

// Sends a simple Query and collects the reply up to ReadyForQuery.
std::vector<Message> simple_query(RawClient& client, std::string_view sql);
// The SQLSTATE of the first ErrorResponse in msgs ("" if none).
std::string first_error_code(const std::vector<Message>& msgs);

}  // namespace sluice::it
