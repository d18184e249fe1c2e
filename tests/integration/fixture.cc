// Implementation of the integration-test fixture (see fixture.h): processes, the
// PostgreSQL cluster, sluiced, libpq helpers and the raw wire-protocol client.
#include "tests/integration/fixture.h"

#include "tests/test_pki.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/magic.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#ifndef PG_BIN_DIR
#define PG_BIN_DIR "/usr/lib/postgresql/15/bin"
#endif
#ifndef SLUICED_PATH
#define SLUICED_PATH "sluiced"
#endif

extern char** environ;

namespace sluice::it {
namespace {

using Clock = std::chrono::steady_clock;

struct PostgresIds {
  bool switch_user = false;  // true when we are root and must become postgres
  uid_t uid = 0;
  gid_t gid = 0;
};

PostgresIds postgres_ids() {
  PostgresIds ids;
  if (geteuid() != 0) return ids;
  const passwd* pw = getpwnam("postgres");
  if (pw == nullptr) throw std::runtime_error("running as root but there is no `postgres` OS user");
  ids.switch_user = true;
  ids.uid = pw->pw_uid;
  ids.gid = pw->pw_gid;
  return ids;
}

// Child side of a fork: become postgres if asked. Only async-signal-safe calls.
void child_drop_privileges(const PostgresIds& ids) {
  if (!ids.switch_user) return;
  if (setgroups(0, nullptr) != 0 || setgid(ids.gid) != 0 || setuid(ids.uid) != 0) _exit(126);
}

std::vector<std::string> merged_environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    const auto eq = entry.find('=');
    bool overridden = false;
    for (const auto& x : extra) {
      const auto xeq = x.find('=');
      if (eq != std::string_view::npos && xeq == eq && entry.substr(0, eq) == std::string_view(x).substr(0, xeq))
        overridden = true;
    }
    if (!overridden) env.emplace_back(entry);
  }
  for (const auto& x : extra) env.push_back(x);
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int decode_wait_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string temp_file_path(std::string_view prefix) {
  std::string path = "/tmp/" + std::string(prefix) + "XXXXXX";
  const int fd = mkstemp(path.data());
  if (fd < 0) throw std::runtime_error("mkstemp failed: " + std::string(strerror(errno)));
  ::close(fd);
  return path;
}

std::string tail_lines(const std::string& text, size_t lines) {
  size_t pos = text.size();
  size_t count = 0;
  while (pos > 0) {
    --pos;
    if (text[pos] == '\n' && ++count > lines) return text.substr(pos + 1);
  }
  return text;
}

std::string quote_conninfo(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string toml_string(const std::string& value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// --- Crypto helpers (OpenSSL) ---------------------------------------------

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string digest(const EVP_MD* md, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, md, nullptr);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string hex(std::string_view data) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : data) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string salted_password(std::string_view password, std::string_view salt, int iterations) {
  unsigned char out[32];
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                    iterations, EVP_sha256(), sizeof out, out);
  return std::string(reinterpret_cast<char*>(out), sizeof out);
}

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1)
    throw std::runtime_error("RAND_bytes failed");
  return out;
}

int32_t read_be32(std::string_view s, size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data() + at);
  return static_cast<int32_t>((uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]);
}

// --- The shared cluster's lifetime -----------------------------------------

std::unique_ptr<PgCluster>& cluster_slot() {
  static std::unique_ptr<PgCluster> slot;
  return slot;
}

class ClusterEnvironment : public testing::Environment {
 public:
  void TearDown() override { cluster_slot().reset(); }
};

[[maybe_unused]] testing::Environment* const g_cluster_environment =
    testing::AddGlobalTestEnvironment(new ClusterEnvironment);

}  // namespace

// ===========================================================================
// Utilities

std::string random_token(size_t length) {
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  const std::string bytes = random_bytes(length);
  std::string out;
  for (unsigned char c : bytes) out += alphabet[c % 62];
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, std::string_view data, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw std::runtime_error("cannot write " + path + ": " + strerror(errno));
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      throw std::runtime_error("short write to " + path);
    }
    done += static_cast<size_t>(n);
  }
  fchmod(fd, mode);
  ::close(fd);
}

int listen_on_loopback(uint16_t& port, int backlog) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      (backlog > 0 && ::listen(fd, backlog) != 0) || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot bind a TCP socket on 127.0.0.1");
  }
  port = ntohs(addr.sin_port);
  return fd;
}

uint16_t free_tcp_port() {
  uint16_t port = 0;
  ::close(listen_on_loopback(port, 0));
  return port;
}

std::string make_temp_dir(std::string_view prefix, bool for_postgres, const std::string& base) {
  std::string path = base + "/" + std::string(prefix) + "XXXXXX";
  if (mkdtemp(path.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  if (for_postgres) {
    const PostgresIds ids = postgres_ids();
    if (ids.switch_user && chown(path.c_str(), ids.uid, ids.gid) != 0)
      throw std::runtime_error("chown " + path + " failed");
  }
  return path;
}

std::string cluster_scratch_root() {
  if (const char* configured = getenv("SLUICE_IT_TMPDIR"); configured != nullptr && *configured != '\0')
    return configured;
  struct statfs fs{};
  constexpr unsigned long long kNeeded = 1ull << 30;
  if (statfs("/dev/shm", &fs) == 0 && fs.f_type == TMPFS_MAGIC &&
      static_cast<unsigned long long>(fs.f_bavail) * static_cast<unsigned long long>(fs.f_bsize) >= kNeeded &&
      access("/dev/shm", W_OK) == 0)
    return "/dev/shm";
  return "/tmp";
}

void remove_tree(const std::string& path) {
  if (path.empty() || getenv("SLUICE_IT_KEEP") != nullptr) return;
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

bool port_accepts(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

long vm_rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

// ===========================================================================
// Child processes

ProgramResult run_program(const std::vector<std::string>& argv, const ProgramOptions& options) {
  ProgramResult result;
  const PostgresIds ids = options.as_postgres ? postgres_ids() : PostgresIds{};
  const std::string out_path = temp_file_path("sluice-it-out-");
  const std::string err_path = temp_file_path("sluice-it-err-");
  const std::string in_path = temp_file_path("sluice-it-in-");
  write_file(in_path, options.stdin_data, 0644);
  const int out_fd = ::open(out_path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  const int err_fd = ::open(err_path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  const int in_fd = ::open(in_path.c_str(), O_RDONLY | O_CLOEXEC);

  std::vector<std::string> args = argv;
  std::vector<std::string> env = merged_environment(options.env);
  std::vector<char*> c_args = c_strings(args);
  std::vector<char*> c_env = c_strings(env);
  const char* cwd = options.cwd.empty() ? nullptr : options.cwd.c_str();

  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    child_drop_privileges(ids);
    if (cwd != nullptr && chdir(cwd) != 0) _exit(125);
    dup2(in_fd, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    execve(c_args[0], c_args.data(), c_env.data());
    _exit(127);
  }
  ::close(out_fd);
  ::close(err_fd);
  ::close(in_fd);
  if (pid > 0) {
    std::optional<int> status = wait_for_exit(pid, options.timeout);
    if (!status) {
      result.timed_out = true;
      kill(pid, SIGKILL);
      status = wait_for_exit(pid, 10s);
    }
    result.exit_code = status ? decode_wait_status(*status) : -1;
  }
  result.out = read_file(out_path);
  result.err = read_file(err_path);
  unlink(out_path.c_str());
  unlink(err_path.c_str());
  unlink(in_path.c_str());
  return result;
}

pid_t spawn_background(const std::vector<std::string>& argv, const std::string& log_path, bool as_postgres,
                       int death_signal) {
  const PostgresIds ids = as_postgres ? postgres_ids() : PostgresIds{};
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw std::runtime_error("cannot open " + log_path);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::vector<std::string> args = argv;
  std::vector<char*> c_args = c_strings(args);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    child_drop_privileges(ids);
    // After the credential change: it clears the parent-death signal.
    prctl(PR_SET_PDEATHSIG, death_signal);
    if (getppid() != parent) _exit(124);
    dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    execve(c_args[0], c_args.data(), environ);
    _exit(127);
  }
  ::close(log_fd);
  ::close(null_fd);
  if (pid < 0) throw std::runtime_error("fork failed");
  return pid;
}

std::optional<int> wait_for_exit(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
}

// ===========================================================================
// libpq helpers

Conn& Conn::operator=(Conn&& other) noexcept {
  if (this != &other) {
    reset();
    conn_ = other.conn_;
    other.conn_ = nullptr;
  }
  return *this;
}

Rows query(PGconn* conn, const std::string& sql) {
  Rows rows;
  Result r(PQexec(conn, sql.c_str()));
  const ExecStatusType st = PQresultStatus(r.get());
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    ADD_FAILURE() << "query failed: " << sql << "\n" << PQerrorMessage(conn);
    return rows;
  }
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    Row row;
    for (int j = 0; j < PQnfields(r.get()); ++j) {
      if (PQgetisnull(r.get(), i, j)) row.emplace_back(std::nullopt);
      else row.emplace_back(std::string(PQgetvalue(r.get(), i, j), PQgetlength(r.get(), i, j)));
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string query_value(PGconn* conn, const std::string& sql) {
  const Rows rows = query(conn, sql);
  if (rows.empty() || rows[0].empty() || !rows[0][0]) {
    ADD_FAILURE() << "no value from: " << sql;
    return "";
  }
  return *rows[0][0];
}

// SQLSTATEs of the errors sluice's policy answers without the server (see error_fields).
bool answered_by_sluice(std::string_view sqlstate) { return sqlstate == "42601" || sqlstate == "22021"; }

std::string error_fields(const PGresult* result) {
  static const std::pair<int, const char*> fields[] = {
      {PG_DIAG_SEVERITY, "S"},
      {PG_DIAG_SEVERITY_NONLOCALIZED, "V"},
      {PG_DIAG_SQLSTATE, "C"},
      {PG_DIAG_MESSAGE_PRIMARY, "M"},
      {PG_DIAG_MESSAGE_DETAIL, "D"},
      {PG_DIAG_MESSAGE_HINT, "H"},
      {PG_DIAG_STATEMENT_POSITION, "P"},
      {PG_DIAG_INTERNAL_POSITION, "p"},
      {PG_DIAG_INTERNAL_QUERY, "q"},
      {PG_DIAG_CONTEXT, "W"},
      {PG_DIAG_SCHEMA_NAME, "s"},
      {PG_DIAG_TABLE_NAME, "t"},
      {PG_DIAG_COLUMN_NAME, "c"},
      {PG_DIAG_DATATYPE_NAME, "d"},
      {PG_DIAG_CONSTRAINT_NAME, "n"},
      {PG_DIAG_SOURCE_FILE, "F"},
      {PG_DIAG_SOURCE_LINE, "L"},
      {PG_DIAG_SOURCE_FUNCTION, "R"},
  };
  // sluice answers syntax errors and invalid UTF-8 itself (policy's parser and guard):
  // PostgreSQL's message and position, but not the server's source location.
  const char* sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  const bool syntax_error = sqlstate != nullptr && answered_by_sluice(sqlstate);
  std::string out;
  for (const auto& [code, name] : fields) {
    if (syntax_error && (code == PG_DIAG_SOURCE_FILE || code == PG_DIAG_SOURCE_LINE || code == PG_DIAG_SOURCE_FUNCTION))
      continue;
    const char* v = PQresultErrorField(result, code);
    if (v != nullptr) out += std::string(name) + "=" + v + "\n";
  }
  return out;
}

std::string describe_result(const PGresult* result) {
  if (result == nullptr) return "<null result>\n";
  std::ostringstream out;
  out << "status=" << PQresStatus(PQresultStatus(result)) << " tag=" << PQcmdStatus(const_cast<PGresult*>(result))
      << " rows=" << PQntuples(result) << " cols=" << PQnfields(result) << "\n";
  for (int j = 0; j < PQnfields(result); ++j) {
    out << "  col " << PQfname(result, j) << " type=" << PQftype(result, j) << " mod=" << PQfmod(result, j)
        << " fmt=" << PQfformat(result, j) << " table=" << PQftable(result, j)
        << " attnum=" << PQftablecol(result, j) << "\n";
  }
  for (int i = 0; i < PQntuples(result); ++i) {
    out << "  row";
    for (int j = 0; j < PQnfields(result); ++j) {
      if (PQgetisnull(result, i, j)) {
        out << " NULL";
        continue;
      }
      std::string_view v(PQgetvalue(result, i, j), static_cast<size_t>(PQgetlength(result, i, j)));
      out << " " << (PQfformat(result, j) == 1 ? "0x" + hex(v) : "'" + std::string(v) + "'");
    }
    out << "\n";
  }
  if (PQresultStatus(result) == PGRES_FATAL_ERROR || PQresultStatus(result) == PGRES_NONFATAL_ERROR)
    out << error_fields(result);
  return out.str();
}

std::string explain_difference(std::string_view actual, std::string_view expected) {
  if (actual == expected) return "";
  size_t at = 0;
  while (at < actual.size() && at < expected.size() && actual[at] == expected[at]) ++at;
  const auto context = [&](std::string_view s) {
    const size_t from = at > 40 ? at - 40 : 0;
    return render(Message{'|', std::string(s.substr(from, 80))}).substr(2);
  };
  std::ostringstream out;
  out << "actual " << actual.size() << " bytes, expected " << expected.size() << " bytes, first difference at "
      << at << "\n  actual:   ..." << context(actual) << "...\n  expected: ..." << context(expected) << "...";
  return out.str();
}

// ===========================================================================
// PgCluster
//
// initdb plus loading the schema costs seconds, and ctest runs every test in its own
// process, so a fully set-up cluster is built once into a template directory (keyed
// by everything that shapes it) and each process copies it, starts it on a free port
// and gives the roles fresh random passwords.

namespace {

std::string pg_bin(const std::string& program) { return std::string(PG_BIN_DIR) + "/" + program; }

const char* const kPostgresqlConf =
    "\n# sluice integration tests (port and socket directory are given on the command line)\n"
    "listen_addresses = '127.0.0.1'\n"
    "max_connections = 450\n"
    "log_statement = 'all'\n"
    "log_line_prefix = '%m [%p] %q%u@%d/%a '\n"
    "logging_collector = off\n"
    "fsync = off\n"  // speed; commits still reach the OS, so a backend crash loses nothing
    "full_page_writes = off\n"
    "shared_buffers = 64MB\n"
    // TLS with a CA the tests trust (files written by build_template): sluice's
    // targets default to sslmode=prefer, so every session's backend side is TLS.
    "ssl = on\n"
    "ssl_cert_file = 'server.crt'\n"
    "ssl_key_file = 'server.key'\n"
    "ssl_ca_file = 'ca.crt'\n";

// md5 and password methods for their roles, before the catch-all SCRAM line.
const char* const kPgHba =
    "local all all trust\n"
    "host all md5_user 127.0.0.1/32 md5\n"
    "host all plain_user 127.0.0.1/32 password\n"
    // cert_user must also present a certificate for its name (a target's sslcert/sslkey).
    "hostssl all cert_user 127.0.0.1/32 scram-sha-256 clientcert=verify-full\n"
    "host all cert_user 127.0.0.1/32 reject\n"
    "host all all 127.0.0.1/32 scram-sha-256\n";

const char* const kRoles =
    "CREATE ROLE sluice_app LOGIN; CREATE ROLE md5_user LOGIN; CREATE ROLE plain_user LOGIN; "
    "CREATE ROLE cert_user LOGIN;";
const char* const kDatabase = "CREATE DATABASE app OWNER sluice_app";

const char* const kSchema = R"sql(
SET ROLE sluice_app;
CREATE TABLE items (
  id int PRIMARY KEY,
  name text NOT NULL,
  price numeric(10,2) NOT NULL CONSTRAINT items_price_nonnegative CHECK (price >= 0),
  created date NOT NULL DEFAULT DATE '2024-01-01'
);
COMMENT ON TABLE items IS 'things for sale';
INSERT INTO items SELECT g, 'item ' || g, (g % 100) + 0.99, DATE '2024-01-01' + g
  FROM generate_series(1, 1000) g;
CREATE TABLE accounts (
  id serial PRIMARY KEY,
  email text NOT NULL UNIQUE,
  owner text,
  balance bigint NOT NULL DEFAULT 0
);
INSERT INTO accounts (email, owner, balance)
  SELECT 'user' || g || '@example.com', 'owner ' || g, g * 100 FROM generate_series(1, 100) g;
CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  item_id int NOT NULL REFERENCES items(id),
  account_id int NOT NULL REFERENCES accounts(id),
  qty int NOT NULL CHECK (qty > 0)
);
CREATE INDEX orders_item_idx ON orders (item_id);
INSERT INTO orders (item_id, account_id, qty) SELECT 1 + g % 1000, 1 + g % 100, 1 + g % 5
  FROM generate_series(1, 500) g;
CREATE FUNCTION noisy(n int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  RAISE NOTICE 'noisy %', n USING DETAIL = 'detail ' || n, HINT = 'a hint';
  RETURN n;
END $$;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO md5_user, plain_user;
RESET ROLE;
)sql";

std::string socket_conninfo(const std::string& socket_dir, uint16_t port, const std::string& dbname) {
  return "host=" + quote_conninfo(socket_dir) + " port=" + std::to_string(port) + " user=postgres dbname=" +
         quote_conninfo(dbname);
}

// Starts postgres on a free port (retrying when a port is lost to a race) and waits
// until it accepts connections. Returns the postmaster's pid, or -1.
pid_t start_server(const std::string& data_dir, const std::string& socket_dir, const std::string& log_path,
                   uint16_t& port) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    port = free_tcp_port();
    const pid_t pid = spawn_background(
        {pg_bin("postgres"), "-D", data_dir, "-p", std::to_string(port), "-k", socket_dir}, log_path,
        /*as_postgres=*/true, SIGINT);
    const std::string conninfo = socket_conninfo(socket_dir, port, "postgres") + " connect_timeout=2";
    const auto deadline = Clock::now() + 30s;
    bool exited = false;
    while (Clock::now() < deadline && !exited) {
      if (PQping(conninfo.c_str()) == PQPING_OK) return pid;
      int status = 0;
      exited = waitpid(pid, &status, WNOHANG) == pid;
      if (!exited) std::this_thread::sleep_for(20ms);
    }
    if (!exited) {
      kill(pid, SIGKILL);
      wait_for_exit(pid, 5s);
      return -1;
    }
  }
  return -1;
}

void stop_server(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGINT);  // fast shutdown, what `pg_ctl stop -m fast` sends
  if (wait_for_exit(pid, 30s)) return;
  kill(pid, SIGQUIT);
  if (wait_for_exit(pid, 5s)) return;
  kill(pid, SIGKILL);
  wait_for_exit(pid, 5s);
}

void exec_or_throw(PGconn* conn, const char* sql, const char* what) {
  Result r(PQexec(conn, sql));
  if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
    throw std::runtime_error(std::string(what) + ": " + PQerrorMessage(conn));
}

// Builds the template cluster in a scratch directory (initdb, configuration, roles,
// database, schema, clean shutdown). Returns the scratch directory.
std::string build_template() {
  const std::string dir = make_temp_dir("sluice-it-template-build-", /*for_postgres=*/true);
  const std::string data = dir + "/data";
  ProgramOptions as_pg;
  as_pg.as_postgres = true;
  const ProgramResult init = run_program({pg_bin("initdb"), "-D", data, "--auth-local=trust",
                                          "--auth-host=scram-sha-256", "-U", "postgres", "--no-sync", "-E", "UTF8",
                                          "--locale=C"},
                                         as_pg);
  if (init.exit_code != 0) {
    remove_tree(dir);
    throw std::runtime_error("initdb failed:\n" + init.out + init.err);
  }
  std::ofstream(data + "/postgresql.conf", std::ios::app) << kPostgresqlConf;
  write_file(data + "/pg_hba.conf", kPgHba, 0600);
  // The server's certificate names 127.0.0.1 and localhost; its key must belong to
  // the user PostgreSQL runs as.
  test_pki::Pki pki(data, "sluice test PostgreSQL CA");
  pki.issue("client", "cert_user", "");  // client.crt/.key: what cert_user's logins present
  if (geteuid() == 0) {
    if (const passwd* pg = getpwnam("postgres")) {
      for (const std::string& file : {pki.ca_file, pki.cert_file, pki.key_file})
        if (chown(file.c_str(), pg->pw_uid, pg->pw_gid) != 0) throw std::runtime_error("cannot chown " + file);
    }
  }

  uint16_t port = 0;
  const pid_t pid = start_server(data, dir, dir + "/postgres.log", port);
  if (pid < 0) {
    const std::string log_text = read_file(dir + "/postgres.log");
    remove_tree(dir);
    throw std::runtime_error("postgres did not start:\n" + log_text);
  }
  try {
    Conn su(socket_conninfo(dir, port, "postgres"));
    if (!su.ok()) throw std::runtime_error("superuser connection failed: " + su.error());
    exec_or_throw(su, kRoles, "roles");
    exec_or_throw(su, kDatabase, "createdb");
    Conn app(socket_conninfo(dir, port, "app"));
    if (!app.ok()) throw std::runtime_error("superuser connection to app failed: " + app.error());
    exec_or_throw(app, kSchema, "schema");
  } catch (...) {
    stop_server(pid);
    remove_tree(dir);
    throw;
  }
  stop_server(pid);
  std::remove((dir + "/postgres.log").c_str());
  return dir;
}

// The template's data directory, built on first use. An exclusive flock serializes
// test processes that race to build it; a rename makes it appear complete or not at all.
std::string template_data_dir() {
  const std::string key_source = std::string(PG_BIN_DIR) + kPostgresqlConf + kPgHba + kRoles + kDatabase + kSchema;
  char key[17];
  std::snprintf(key, sizeof key, "%016zx", std::hash<std::string>{}(key_source));
  const std::string base = "/tmp/sluice-it-template-" + std::to_string(geteuid()) + "-" + key;
  const int lock = ::open((base + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (lock < 0 || flock(lock, LOCK_EX) != 0) throw std::runtime_error("cannot lock " + base + ".lock");
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }
  } unlock{lock};
  if (access((base + "/data/PG_VERSION").c_str(), F_OK) != 0) {
    // Templates of other fixture versions are stale: remove them (40 MB each).
    const std::string prefix = "sluice-it-template-" + std::to_string(geteuid()) + "-";
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/tmp", ec)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind(prefix, 0) == 0 && name.size() == prefix.size() + 16) std::filesystem::remove_all(entry.path(), ec);
    }
    std::filesystem::remove_all(base, ec);
    const std::string built = build_template();
    if (rename(built.c_str(), base.c_str()) != 0) {
      remove_tree(built);
      throw std::runtime_error("cannot move the template cluster to " + base);
    }
  }
  return base + "/data";
}

}  // namespace

PgCluster& PgCluster::shared() {
  auto& slot = cluster_slot();
  if (!slot) slot = std::make_unique<PgCluster>();
  return *slot;
}

std::string PgCluster::bin(const std::string& program) const { return pg_bin(program); }
std::string PgCluster::ca_file() const { return data_dir_ + "/ca.crt"; }
std::string PgCluster::client_cert_file() const { return data_dir_ + "/client.crt"; }
std::string PgCluster::client_key_file() const { return data_dir_ + "/client.key"; }

PgCluster::PgCluster() {
  const std::string template_data = template_data_dir();
  dir_ = make_temp_dir("sluice-it-pg-", /*for_postgres=*/true, cluster_scratch_root());
  data_dir_ = dir_ + "/data";
  log_path_ = dir_ + "/postgres.log";
  app_password_ = "app-" + random_token(24);
  md5_password_ = "md5-" + random_token(24);
  plain_password_ = "plain-" + random_token(24);

  // cp -a keeps the postgres ownership and the 0700 mode postgres insists on.
  const ProgramResult copy = run_program({"/bin/cp", "-a", template_data, data_dir_});
  if (copy.exit_code != 0) {
    remove_tree(dir_);
    throw std::runtime_error("copying the template cluster failed: " + copy.err);
  }
  pid_ = start_server(data_dir_, dir_, log_path_, port_);
  if (pid_ < 0) {
    const std::string log_text = log();
    remove_tree(dir_);
    throw std::runtime_error("postgres did not start:\n" + log_text);
  }
  Conn su(superuser_conninfo("postgres"));
  if (!su.ok()) throw std::runtime_error("superuser connection failed: " + su.error());
  const std::string passwords = "ALTER ROLE sluice_app PASSWORD '" + app_password_ + "';"
                                "SET password_encryption = 'md5';"
                                "ALTER ROLE md5_user PASSWORD '" + md5_password_ + "';"
                                "RESET password_encryption;"
                                "ALTER ROLE plain_user PASSWORD '" + plain_password_ + "';"
                                "ALTER ROLE cert_user PASSWORD '" + app_password_ + "';";
  exec_or_throw(su, passwords.c_str(), "passwords");
}

void PgCluster::stop() {
  stop_server(pid_);
  pid_ = -1;
}

PgCluster::~PgCluster() {
  stop();
  remove_tree(dir_);
}

std::string PgCluster::log() const { return read_file(log_path_); }

std::string PgCluster::superuser_conninfo(const std::string& dbname) const {
  return "host=" + quote_conninfo(dir_) + " port=" + std::to_string(port_) + " user=postgres dbname=" +
         quote_conninfo(dbname);
}

std::string PgCluster::tcp_conninfo(const std::string& user, const std::string& password,
                                    const std::string& dbname) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=" + quote_conninfo(user) +
         " password=" + quote_conninfo(password) + " dbname=" + quote_conninfo(dbname) + " connect_timeout=10";
}

void PgCluster::superuser_exec(const std::string& sql, const std::string& dbname) const {
  Conn su(superuser_conninfo(dbname));
  if (!su.ok()) {
    ADD_FAILURE() << "superuser connection: " << su.error();
    return;
  }
  query(su, sql);
}

// ===========================================================================
// Sluiced

std::vector<GatewayTarget> default_targets() {
  const PgCluster& pg = PgCluster::shared();
  return {
      {"app", "app", "sluice_app", pg.app_password()},
      {"app_md5", "app", "md5_user", pg.md5_password()},
      {"app_plain", "app", "plain_user", pg.plain_password()},
  };
}

std::vector<GatewayUser> default_users() {
  return {
      {"alice", kAlicePassword, false, {"dev"}},
      {"bob", kBobPassword, true, {"dev"}},
  };
}

Sluiced::Sluiced(SluicedOptions options) : options_(std::move(options)) {
  if (options_.targets.empty()) options_.targets = default_targets();
  if (options_.users.empty()) options_.users = default_users();
  dir_ = make_temp_dir("sluice-it-gw-", false);
  config_path_ = dir_ + "/sluice.toml";
  log_path_ = dir_ + "/sluiced.log";
}

constexpr std::chrono::seconds kStartTimeout{30};

std::string Sluiced::render_config() const {
  const PgCluster& pg = PgCluster::shared();
  std::ostringstream c;
  c << "[gateway]\n"
    << "listen = \"127.0.0.1:" << port_ << "\"\n"
    << "shards = " << options_.shards << "\n"
    << "max_client_connections = " << options_.max_client_connections << "\n"
    << "handshake_timeout = " << toml_string(options_.handshake_timeout) << "\n"
    << "idle_timeout = " << toml_string(options_.idle_timeout) << "\n"
    << "write_stall_timeout = " << toml_string(options_.write_stall_timeout) << "\n"
    << "send_queue_bytes = " << toml_string(options_.send_queue_bytes) << "\n"
    << "log_level = " << toml_string(options_.log_level) << "\n";
  if (!options_.shutdown_grace.empty()) c << "shutdown_grace = " << toml_string(options_.shutdown_grace) << "\n";
  if (!options_.connect_timeout.empty()) c << "connect_timeout = " << toml_string(options_.connect_timeout) << "\n";
  if (!options_.max_message_bytes.empty())
    c << "max_message_bytes = " << toml_string(options_.max_message_bytes) << "\n";
  if (!options_.require_tls.empty()) c << "require_tls = " << options_.require_tls << "\n";
  if (!options_.tls_toml.empty()) c << "\n[tls]\n" << options_.tls_toml << "\n";
  for (const auto& t : options_.targets) {
    const std::string password_file = dir_ + "/" + t.name + ".password";
    write_file(password_file, t.password, 0600);
    c << "\n[[target]]\n"
      << "name = " << toml_string(t.name) << "\n"
      << "host = \"127.0.0.1\"\n"
      << "port = " << (t.port != 0 ? t.port : pg.port()) << "\n"
      << "database = " << toml_string(t.database) << "\n"
      << "user = " << toml_string(t.user) << "\n"
      << "password_file = " << toml_string(password_file) << "\n";
    if (!t.sslmode.empty()) c << "sslmode = " << toml_string(t.sslmode) << "\n";
    if (!t.sslrootcert.empty()) c << "sslrootcert = " << toml_string(t.sslrootcert) << "\n";
    if (!t.sslcert.empty()) c << "sslcert = " << toml_string(t.sslcert) << "\nsslkey = " << toml_string(t.sslkey) << "\n";
  }
  for (const auto& u : options_.users) {
    c << "\n[[user]]\n"
      << "name = " << toml_string(u.name) << "\n"
      << "password = " << toml_string(u.store_verifier ? scram_verifier(u.password) : u.password) << "\n"
      << "groups = [";
    for (size_t i = 0; i < u.groups.size(); ++i) c << (i ? ", " : "") << toml_string(u.groups[i]);
    c << "]\n";
  }
  c << "\n[audit]\ndirectory = " << toml_string(audit_dir()) << "\n" << options_.audit_toml << "\n";
  if (!options_.mask_toml.empty()) c << "\n" << options_.mask_toml << "\n";
  if (!options_.extra_toml.empty()) c << "\n" << options_.extra_toml << "\n";
  if (!options_.policy_toml.empty()) {
    c << "\n" << options_.policy_toml << "\n";
    return c.str();
  }
  // Policy refuses a user whose groups are not defined. These tests are about the
  // protocol, not policy: every group the users name may do anything on any target,
  // and statements up to 16 MiB are judged (the large-message tests send 12 MB).
  c << "\n[policy]\nmax_statement_bytes = \"16MiB\"\n";
  std::set<std::string> groups;
  for (const auto& u : options_.users) groups.insert(u.groups.begin(), u.groups.end());
  for (const auto& g : groups)
    c << "\n[groups." << toml_string(g) << "]\n"
      << "targets = [\"*\"]\n"
      << "access = \"admin\"\n";
  return c.str();
}

testing::AssertionResult Sluiced::start() {
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = free_tcp_port();
    write_file(config_path_, render_config(), 0600);
    write_file(log_path_, "", 0644);
    exit_status_.reset();
    pid_ = spawn_background({SLUICED_PATH, "--config", config_path_}, log_path_, false, SIGKILL);
    // Generous: under ASan, loading the config compiles the masking patterns (about
    // 2 s alone, more when the machine is busy).
    const auto deadline = Clock::now() + kStartTimeout;
    bool exited = false;
    while (Clock::now() < deadline) {
      if (port_accepts(port_)) return testing::AssertionSuccess();
      if (!running()) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    const std::string text = log();
    if (exited && text.find("in use") != std::string::npos) continue;  // lost a port race: retry
    if (!exited) {
      kill(pid_, SIGKILL);
      wait_for_exit(pid_, 5s);
    }
    pid_ = -1;
    return testing::AssertionFailure() << "sluiced did not accept on port " << port_ << " within "
                                       << kStartTimeout.count() << " s"
                                       << (exited ? " (it exited)" : "") << "\nconfig:\n"
                                       << read_file(config_path_) << "\nlog:\n"
                                       << text;
  }
  return testing::AssertionFailure() << "sluiced could not bind a port after 3 attempts:\n" << log();
}

bool Sluiced::running() {
  if (pid_ <= 0 || exit_status_) return false;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_status_ = decode_wait_status(status);
    return false;
  }
  return r == 0;
}

void Sluiced::signal(int sig) {
  if (sig == SIGTERM || sig == SIGINT) stopped_on_purpose_ = true;
  if (pid_ > 0 && !exit_status_) kill(pid_, sig);
}

std::optional<int> Sluiced::wait_exit(std::chrono::milliseconds timeout) {
  if (exit_status_) return exit_status_;
  if (pid_ <= 0) return std::nullopt;
  const std::optional<int> status = wait_for_exit(pid_, timeout);
  if (status) exit_status_ = decode_wait_status(*status);
  return exit_status_;
}

int Sluiced::stop(std::chrono::milliseconds timeout) {
  stopped_on_purpose_ = true;
  if (pid_ <= 0) return -1;
  if (!exit_status_) {
    kill(pid_, SIGTERM);
    const std::optional<int> status = wait_for_exit(pid_, timeout);
    if (!status) {
      kill(pid_, SIGKILL);
      wait_for_exit(pid_, 5s);
      exit_status_ = -1;
    } else {
      exit_status_ = decode_wait_status(*status);
    }
  }
  return *exit_status_;
}

Sluiced::~Sluiced() {
  if (pid_ > 0 && !exit_status_) stop(5s);
  const std::string text = log();
  // A sanitizer report anywhere in the log is a gateway bug, whatever the test checked.
  for (const char* marker : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"}) {
    const auto at = text.find(marker);
    if (at != std::string::npos)
      ADD_FAILURE() << "sanitizer report in the sluiced log:\n" << text.substr(at > 2000 ? at - 2000 : 0, 8000);
  }
  if (testing::Test::HasFailure())
    std::fprintf(stderr, "---- last lines of %s ----\n%s---- end of sluiced log ----\n", log_path_.c_str(),
                 tail_lines(text, 60).c_str());
  remove_tree(dir_);
}

std::string Sluiced::log() const { return read_file(log_path_); }

std::string Sluiced::conninfo(const std::string& user, const std::string& password, const std::string& dbname) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=" + quote_conninfo(user) +
         " password=" + quote_conninfo(password) + " dbname=" + quote_conninfo(dbname) + " connect_timeout=10";
}

// ===========================================================================
// SCRAM

std::string base64_encode(std::string_view data) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    const uint32_t v = (uint32_t{static_cast<unsigned char>(data[i])} << 16) |
                       (uint32_t{static_cast<unsigned char>(data[i + 1])} << 8) |
                       static_cast<unsigned char>(data[i + 2]);
    out += table[v >> 18];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += table[v & 63];
  }
  if (i + 1 == data.size()) {
    const uint32_t v = uint32_t{static_cast<unsigned char>(data[i])} << 16;
    out += table[v >> 18];
    out += table[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == data.size()) {
    const uint32_t v = (uint32_t{static_cast<unsigned char>(data[i])} << 16) |
                       (uint32_t{static_cast<unsigned char>(data[i + 1])} << 8);
    out += table[v >> 18];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < text.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + k];
      if (c == '=' && i + 4 == text.size() && k >= 2) {
        v[k] = 0;
        ++pad;
      } else if (pad > 0 || (v[k] = value(c)) < 0) {
        return std::nullopt;
      }
    }
    const uint32_t n = (uint32_t(v[0]) << 18) | (uint32_t(v[1]) << 12) | (uint32_t(v[2]) << 6) | uint32_t(v[3]);
    out += static_cast<char>(n >> 16);
    if (pad < 2) out += static_cast<char>((n >> 8) & 255);
    if (pad < 1) out += static_cast<char>(n & 255);
  }
  return out;
}

std::string scram_verifier(std::string_view password, int iterations) {
  const std::string salt = random_bytes(16);
  const std::string salted = salted_password(password, salt, iterations);
  const std::string stored_key = digest(EVP_sha256(), hmac_sha256(salted, "Client Key"));
  const std::string server_key = hmac_sha256(salted, "Server Key");
  return "SCRAM-SHA-256$" + std::to_string(iterations) + ":" + base64_encode(salt) + "$" +
         base64_encode(stored_key) + ":" + base64_encode(server_key);
}

ScramClient::ScramClient(std::string password) : password_(std::move(password)), nonce_(random_token(24)) {}

std::string ScramClient::client_first() {
  client_first_bare_ = "n=,r=" + nonce_;
  return "n,," + client_first_bare_;
}

std::optional<std::string> ScramClient::client_final(std::string_view server_first) {
  std::string nonce, salt_b64;
  int iterations = 0;
  size_t pos = 0;
  while (pos <= server_first.size()) {
    size_t end = server_first.find(',', pos);
    if (end == std::string_view::npos) end = server_first.size();
    const std::string_view attr = server_first.substr(pos, end - pos);
    if (attr.size() >= 2 && attr[1] == '=') {
      const std::string value(attr.substr(2));
      if (attr[0] == 'r') nonce = value;
      if (attr[0] == 's') salt_b64 = value;
      if (attr[0] == 'i') iterations = std::atoi(value.c_str());
    }
    pos = end + 1;
  }
  if (nonce.rfind(nonce_, 0) != 0 || nonce.size() == nonce_.size() || iterations <= 0 || iterations > 1000000)
    return std::nullopt;
  const std::optional<std::string> salt = base64_decode(salt_b64);
  if (!salt || salt->empty()) return std::nullopt;

  const std::string salted = salted_password(password_, *salt, iterations);
  const std::string client_key = hmac_sha256(salted, "Client Key");
  const std::string stored_key = digest(EVP_sha256(), client_key);
  const std::string without_proof = "c=biws,r=" + nonce;
  const std::string auth_message = client_first_bare_ + "," + std::string(server_first) + "," + without_proof;
  const std::string signature = hmac_sha256(stored_key, auth_message);
  std::string proof = client_key;
  for (size_t i = 0; i < proof.size(); ++i) proof[i] = static_cast<char>(proof[i] ^ signature[i]);
  server_signature_ = base64_encode(hmac_sha256(hmac_sha256(salted, "Server Key"), auth_message));
  return without_proof + ",p=" + base64_encode(proof);
}

bool ScramClient::verify_server_final(std::string_view server_final) const {
  return !server_signature_.empty() && server_final == "v=" + server_signature_;
}

// ===========================================================================
// Wire protocol

std::string Message::wire() const { return wire::message(type, body); }

namespace wire {

std::string be32(int32_t v) {
  const auto u = static_cast<uint32_t>(v);
  return {static_cast<char>(u >> 24), static_cast<char>((u >> 16) & 255), static_cast<char>((u >> 8) & 255),
          static_cast<char>(u & 255)};
}

std::string be16(int16_t v) {
  const auto u = static_cast<uint16_t>(v);
  return {static_cast<char>(u >> 8), static_cast<char>(u & 255)};
}

std::string startup(const std::vector<std::pair<std::string, std::string>>& params, uint32_t version) {
  std::string body = be32(static_cast<int32_t>(version));
  for (const auto& [k, v] : params) {
    body += k;
    body += '\0';
    body += v;
    body += '\0';
  }
  body += '\0';
  return be32(static_cast<int32_t>(body.size() + 4)) + body;
}

std::string ssl_request() { return be32(8) + be32(80877103); }

std::string cancel_request(int32_t pid, int32_t key) { return be32(16) + be32(80877102) + be32(pid) + be32(key); }

std::string message(char type, std::string_view body) {
  std::string out(1, type);
  out += be32(static_cast<int32_t>(body.size() + 4));
  out += body;
  return out;
}

namespace {
std::string cstr(std::string_view s) {
  std::string out(s);
  out += '\0';
  return out;
}
}  // namespace

std::string query(std::string_view sql) { return message('Q', cstr(sql)); }

std::string parse(std::string_view name, std::string_view sql, const std::vector<uint32_t>& param_types) {
  std::string body = cstr(name) + cstr(sql) + be16(static_cast<int16_t>(param_types.size()));
  for (uint32_t t : param_types) body += be32(static_cast<int32_t>(t));
  return message('P', body);
}

std::string bind(std::string_view portal, std::string_view statement,
                 const std::vector<std::optional<std::string>>& params, const std::vector<int16_t>& result_formats,
                 const std::vector<int16_t>& param_formats) {
  std::string body = cstr(portal) + cstr(statement);
  body += be16(static_cast<int16_t>(param_formats.size()));
  for (int16_t f : param_formats) body += be16(f);
  body += be16(static_cast<int16_t>(params.size()));
  for (const auto& p : params) {
    if (!p) {
      body += be32(-1);
    } else {
      body += be32(static_cast<int32_t>(p->size()));
      body += *p;
    }
  }
  body += be16(static_cast<int16_t>(result_formats.size()));
  for (int16_t f : result_formats) body += be16(f);
  return message('B', body);
}

std::string describe(char kind, std::string_view name) { return message('D', std::string(1, kind) + cstr(name)); }
std::string execute(std::string_view portal, int32_t max_rows) { return message('E', cstr(portal) + be32(max_rows)); }
std::string close(char kind, std::string_view name) { return message('C', std::string(1, kind) + cstr(name)); }
std::string sync() { return message('S', ""); }
std::string flush() { return message('H', ""); }
std::string terminate() { return message('X', ""); }
std::string copy_data(std::string_view data) { return message('d', data); }
std::string copy_done() { return message('c', ""); }
std::string copy_fail(std::string_view reason) { return message('f', cstr(reason)); }

std::string function_call(uint32_t oid, const std::vector<std::optional<std::string>>& args, int16_t result_format) {
  std::string body = be32(static_cast<int32_t>(oid));
  body += be16(1);
  body += be16(0);  // all arguments in text format
  body += be16(static_cast<int16_t>(args.size()));
  for (const auto& a : args) {
    if (!a) {
      body += be32(-1);
    } else {
      body += be32(static_cast<int32_t>(a->size()));
      body += *a;
    }
  }
  body += be16(result_format);
  return message('F', body);
}

}  // namespace wire

std::map<char, std::string> parse_fields(std::string_view body) {
  std::map<char, std::string> fields;
  size_t pos = 0;
  while (pos < body.size() && body[pos] != '\0') {
    const char code = body[pos++];
    const size_t end = body.find('\0', pos);
    if (end == std::string_view::npos) break;
    fields[code] = std::string(body.substr(pos, end - pos));
    pos = end + 1;
  }
  return fields;
}

std::string render(const Message& m) {
  std::string out(1, m.type);
  if (m.type == 'E' || m.type == 'N') {
    out += " {";
    const auto fields = parse_fields(m.body);
    // As in error_fields(): no server source location on errors sluice answers itself.
    const auto code = fields.find('C');
    const bool syntax_error = code != fields.end() && answered_by_sluice(code->second);
    for (const auto& [k, v] : fields) {
      if (syntax_error && (k == 'F' || k == 'L' || k == 'R')) continue;
      out += std::string(" ") + k + "=" + v;
    }
    return out + " }";
  }
  out += " ";
  for (unsigned char c : m.body) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

RawClient::~RawClient() { close(); }

bool RawClient::connect(uint16_t port, int recv_buffer) {
  close();
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return false;
  if (recv_buffer > 0) setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &recv_buffer, sizeof recv_buffer);
  const int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close();
    return false;
  }
  return true;
}

void RawClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  buffer_.clear();
  pos_ = 0;
  closed_ = false;
}

bool RawClient::send(std::string_view bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

ReadStatus RawClient::fill(Clock::time_point deadline) {
  if (closed_ || fd_ < 0) return ReadStatus::closed;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return ReadStatus::timeout;
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) return ReadStatus::timeout;
    char chunk[65536];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      closed_ = true;
      return ReadStatus::closed;
    }
    if (pos_ > (1u << 20)) {
      buffer_.erase(0, pos_);
      pos_ = 0;
    }
    buffer_.append(chunk, static_cast<size_t>(n));
    received_.append(chunk, static_cast<size_t>(n));
    return ReadStatus::message;
  }
}

ReadStatus RawClient::read_message(Message& out, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const size_t avail = buffer_.size() - pos_;
    if (avail >= 5) {
      const int32_t len = read_be32(buffer_, pos_ + 1);
      if (len < 4) {  // garbage from the peer: report it as a closed stream
        closed_ = true;
        return ReadStatus::closed;
      }
      if (avail >= static_cast<size_t>(len) + 1) {
        out.type = buffer_[pos_];
        out.body = buffer_.substr(pos_ + 5, static_cast<size_t>(len) - 4);
        pos_ += static_cast<size_t>(len) + 1;
        return ReadStatus::message;
      }
    }
    const ReadStatus st = fill(deadline);
    if (st != ReadStatus::message) return st;
  }
}

ReadStatus RawClient::read_byte(char& out, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (buffer_.size() == pos_) {
    const ReadStatus st = fill(deadline);
    if (st != ReadStatus::message) return st;
  }
  out = buffer_[pos_++];
  return ReadStatus::message;
}

std::vector<Message> RawClient::read_until_ready(int count, std::chrono::milliseconds timeout) {
  std::vector<Message> out;
  const auto deadline = Clock::now() + timeout;
  int seen = 0;
  while (seen < count) {
    Message m;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (read_message(m, std::max(left, 1ms)) != ReadStatus::message) break;
    if (m.type == 'Z') ++seen;
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<Message> RawClient::read_until_quiet(std::chrono::milliseconds quiet, std::chrono::milliseconds timeout) {
  std::vector<Message> out;
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    Message m;
    if (read_message(m, quiet) != ReadStatus::message) break;
    out.push_back(std::move(m));
  }
  return out;
}

bool RawClient::wait_closed(std::chrono::milliseconds timeout) {
  // Discards without capturing: a gateway that keeps streaming must not make the
  // test hold gigabytes.
  buffer_.clear();
  pos_ = 0;
  if (closed_ || fd_ < 0) return true;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) return false;
    char chunk[65536];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      closed_ = true;
      return true;
    }
  }
}

RawClient::StartupResult RawClient::startup(const std::string& user, const std::string& database,
                                            const std::string& password,
                                            const std::vector<std::pair<std::string, std::string>>& extra) {
  StartupResult result;
  std::vector<std::pair<std::string, std::string>> params = {{"user", user}, {"database", database}};
  params.insert(params.end(), extra.begin(), extra.end());
  if (!send(wire::startup(params))) {
    result.closed = true;
    return result;
  }
  ScramClient scram(password);
  for (;;) {
    Message m;
    const ReadStatus st = read_message(m, 15s);
    if (st != ReadStatus::message) {
      result.closed = true;
      return result;
    }
    if (m.type == 'R' && m.body.size() >= 4) {
      const int32_t code = read_be32(m.body, 0);
      result.auth_requests.push_back(code);
      const std::string_view data = std::string_view(m.body).substr(4);
      if (code == 3) {  // AuthenticationCleartextPassword
        send(wire::message('p', password + '\0'));
      } else if (code == 5 && data.size() >= 4) {  // AuthenticationMD5Password
        const std::string inner = hex(digest(EVP_md5(), password + user));
        send(wire::message('p', "md5" + hex(digest(EVP_md5(), inner + std::string(data.substr(0, 4)))) + '\0'));
      } else if (code == 10) {  // AuthenticationSASL
        const std::string first = scram.client_first();
        send(wire::message('p', std::string("SCRAM-SHA-256") + '\0' + wire::be32(static_cast<int32_t>(first.size())) +
                                    first));
      } else if (code == 11) {  // AuthenticationSASLContinue
        const std::optional<std::string> final_message = scram.client_final(data);
        if (!final_message) {
          result.error['M'] = "test client: malformed SCRAM server-first-message";
          return result;
        }
        send(wire::message('p', *final_message));
      } else if (code == 12) {  // AuthenticationSASLFinal
        result.sasl_final_seen = true;
        result.server_signature_ok = scram.verify_server_final(data);
      }
      continue;
    }
    if (m.type == 'E') {
      result.error = parse_fields(m.body);
      result.messages.push_back(std::move(m));
      return result;
    }
    if (m.type == 'K' && m.body.size() == 8) {
      backend_pid_ = read_be32(m.body, 0);
      backend_key_ = read_be32(m.body, 4);
    }
    const bool ready = m.type == 'Z';
    result.messages.push_back(std::move(m));
    if (ready) {
      result.ready = true;
      return result;
    }
  }
}

testing::AssertionResult login(RawClient& client, uint16_t port, const std::string& user,
                               const std::string& password, const std::string& database, int recv_buffer) {
  if (!client.connect(port, recv_buffer)) return testing::AssertionFailure() << "cannot connect to port " << port;
  const RawClient::StartupResult r = client.startup(user, database, password);
  if (r.ready) return testing::AssertionSuccess();
  testing::AssertionResult failure = testing::AssertionFailure();
  failure << "login as " << user << " to " << database << " failed:";
  if (r.closed) failure << " connection closed/timed out;";
  for (const auto& [k, v] : r.error) failure << " " << k << "=" << v;
  return failure;
}

void GatewayTest::SetUp() {
  PgCluster::shared();
  gw_ = std::make_unique<Sluiced>(options());
  ASSERT_TRUE(gw_->start());
}

void GatewayTest::TearDown() {
  if (gw_ && !gw_->stopped_on_purpose() && gw_->pid() > 0 && !gw_->running())
    ADD_FAILURE() << "sluiced exited during the test with status " << gw_->exit_status().value_or(-1);
  gw_.reset();
}

testing::AssertionResult GatewayTest::gateway_serves() {
  if (!gw_->running()) return testing::AssertionFailure() << "sluiced is not running";
  Conn c = gateway_conn();
  if (!c.ok()) return testing::AssertionFailure() << "new client cannot log in: " << c.error();
  Result r(PQexec(c, "SELECT 6 * 7"));
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || std::string(PQgetvalue(r.get(), 0, 0)) != "42")
    return testing::AssertionFailure() << "query through sluice failed: " << PQerrorMessage(c);
  return testing::AssertionSuccess();
}

std::vector<Message> simple_query(RawClient& client, std::string_view sql) {
  client.send(wire::query(sql));
  return client.read_until_ready();
}

std::string first_error_code(const std::vector<Message>& msgs) {
  for (const auto& m : msgs)
    if (m.type == 'E') return parse_fields(m.body)['C'];
  return "";
}

}  // namespace sluice::it
