// TLS between clients and sluice, driven by real clients: libpq in every sslmode, psql,
// pgbench, openssl s_client, and a direct-TLS client (PostgreSQL 17's
// sslnegotiation=direct) written here against OpenSSL. Also: require_tls, bytes
// stuffed behind an SSLRequest, large results both ways, and a certificate reload
// while sessions run.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <thread>

#include "core/tls.h"
#include "tests/integration/fixture.h"
#include "tests/test_pki.h"

namespace sluice::it {
namespace {

std::string field(const std::map<char, std::string>& fields, char code) {
  auto it = fields.find(code);
  return it == fields.end() ? std::string() : it->second;
}

class Tls : public GatewayTest {
 protected:
  std::string pki_dir_ = make_temp_dir("sluice-it-pki-", false);
  test_pki::Pki pki_{pki_dir_};

  ~Tls() override { remove_tree(pki_dir_); }

  std::string tls_toml() const {
    return "cert_file = \"" + pki_.cert_file + "\"\nkey_file = \"" + pki_.key_file + "\"\n";
  }
  SluicedOptions options() override { return {.tls_toml = tls_toml()}; }

  std::string conninfo(const std::string& sslmode, const std::string& extra = "") {
    return gw().conninfo() + " sslmode=" + sslmode + " sslrootcert=" + pki_.ca_file + " " + extra;
  }

  // The subject CN of the certificate the server presented on this libpq connection.
  static std::string peer_common_name(PGconn* conn) {
    auto* ssl = static_cast<SSL*>(PQsslStruct(conn, "OpenSSL"));
    if (ssl == nullptr) return "(no TLS)";
    X509* cert = SSL_get0_peer_certificate(ssl);
    char name[256] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name, sizeof name);
    return name;
  }

  // pgbench over verify-full TLS: 4 clients, prepared, a script that needs no tables;
  // `connection_per_transaction` (-C) makes every transaction a new TLS handshake.
  void run_pgbench(int transactions_per_client, bool connection_per_transaction) {
    const std::string script = pki_dir_ + "/select.sql";
    write_file(script, "\\set n random(1, 1000)\nSELECT :n + 1;\n");
    ProgramOptions pgbench_options;
    pgbench_options.env = {"PGPASSWORD=" + std::string(kAlicePassword), "PGSSLMODE=verify-full",
                           "PGSSLROOTCERT=" + pki_.ca_file};
    std::vector<std::string> args = {pg().bin("pgbench"), "-n", "-f", script, "-c", "4",
                                     "-t", std::to_string(transactions_per_client), "-M", "prepared",
                                     "-h", "127.0.0.1", "-p", std::to_string(gw().port()), "-U", "alice", "app"};
    if (connection_per_transaction) args.insert(args.begin() + 1, "-C");
    const ProgramResult r = run_program(args, pgbench_options);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const std::string total = std::to_string(4 * transactions_per_client);
    EXPECT_NE(r.out.find("number of transactions actually processed: " + total + "/" + total), std::string::npos)
        << r.out << r.err;
  }

  // The session_start audit records written so far, as text.
  std::string audit_session_starts() {
    std::string out;
    for (const auto& entry : std::filesystem::directory_iterator(gw().audit_dir())) {
      const std::string text = read_file(entry.path());
      size_t at = 0;
      while ((at = text.find("\"session_start\"", at)) != std::string::npos) {
        const size_t begin = text.rfind('\n', at);
        const size_t end = text.find('\n', at);
        out += text.substr(begin == std::string::npos ? 0 : begin + 1, end - (begin == std::string::npos ? 0 : begin + 1));
        out += "\n";
        at = end;
      }
    }
    return out;
  }
};

TEST_F(Tls, LibpqEverySslmode) {
  struct Case {
    const char* sslmode;
    bool encrypted;
  };
  for (const Case& c : {Case{"disable", false}, Case{"allow", false}, Case{"prefer", true}, Case{"require", true},
                        Case{"verify-ca", true}, Case{"verify-full", true}}) {
    SCOPED_TRACE(c.sslmode);
    Conn conn(conninfo(c.sslmode));
    ASSERT_TRUE(conn.ok()) << conn.error();
    EXPECT_EQ(PQsslInUse(conn) == 1, c.encrypted);
    EXPECT_EQ(query_value(conn, "SELECT 'through ' || current_user"), "through sluice_app");
  }
  // verify-full checks the name: 127.0.0.1 is in the certificate, another name is not.
  Conn wrong_name("hostaddr=127.0.0.1 host=db.example.com port=" + std::to_string(gw().port()) +
                  " user=alice password=" + std::string(kAlicePassword) + " dbname=app sslmode=verify-full sslrootcert=" +
                  pki_.ca_file);
  EXPECT_FALSE(wrong_name.ok());
  EXPECT_NE(wrong_name.error().find("does not match host name"), std::string::npos) << wrong_name.error();
  // A CA that did not sign sluice's certificate.
  const std::string other_dir = make_temp_dir("sluice-it-pki-", false);
  test_pki::Pki other(other_dir, "another CA");
  Conn untrusted(gw().conninfo() + " sslmode=verify-ca sslrootcert=" + other.ca_file);
  remove_tree(other_dir);
  EXPECT_FALSE(untrusted.ok());
  EXPECT_NE(untrusted.error().find("certificate verify failed"), std::string::npos) << untrusted.error();
  // The audit trail says which sessions were encrypted.
  const std::string starts = audit_session_starts();
  EXPECT_NE(starts.find("\"tls\":true"), std::string::npos) << starts;
  EXPECT_NE(starts.find("\"tls\":false"), std::string::npos) << starts;
}

TEST_F(Tls, LargeResultsAndCopyBothWays) {
  Conn conn(conninfo("verify-full"));
  ASSERT_TRUE(conn.ok()) << conn.error();
  // Backend to client: many records, more than the send queue holds (backpressure).
  EXPECT_EQ(query_value(conn, "SELECT length(string_agg(md5(i::text), '')) FROM generate_series(1, 200000) i"),
            "6400000");
  Result rows(PQexec(conn, "SELECT i, md5(i::text) FROM generate_series(1, 100000) i"));
  ASSERT_EQ(PQresultStatus(rows.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn);
  ASSERT_EQ(PQntuples(rows.get()), 100000);
  EXPECT_EQ(query_value(conn, "SELECT md5(100000::text)"), PQgetvalue(rows.get(), 99999, 1));
  // Client to backend: a COPY of ~8 MB, decrypted record by record.
  query(conn, "CREATE TEMP TABLE copied (line text)");
  Result started(PQexec(conn, "COPY copied FROM STDIN"));
  ASSERT_EQ(PQresultStatus(started.get()), PGRES_COPY_IN) << PQerrorMessage(conn);
  std::string chunk;
  for (int i = 0; i < 1000; ++i) chunk += std::string(79, static_cast<char>('a' + i % 26)) + "\n";
  for (int i = 0; i < 100; ++i) ASSERT_EQ(PQputCopyData(conn, chunk.data(), static_cast<int>(chunk.size())), 1);
  ASSERT_EQ(PQputCopyEnd(conn, nullptr), 1);
  Result finished(PQgetResult(conn));
  ASSERT_EQ(PQresultStatus(finished.get()), PGRES_COMMAND_OK) << PQerrorMessage(conn);
  EXPECT_STREQ(PQcmdTuples(finished.get()), "100000");
  EXPECT_EQ(query_value(conn, "SELECT sum(length(line)) FROM copied"), "7900000");
}

TEST_F(Tls, PsqlAndPgbenchOverVerifiedTls) {
  const std::string psql = pg().bin("psql");
  ProgramResult r = run_program({psql, "-X", "-A", "-t", "-c", "\\conninfo", "-c", "SELECT 40 + 2",
                                 conninfo("verify-full")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("SSL connection (protocol: TLSv1.3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("42"), std::string::npos) << r.out;

  run_pgbench(/*transactions_per_client=*/200, /*connection_per_transaction=*/false);
}

TEST_F(Tls, OpensslSClientSeesTheCertificate) {
  ProgramOptions quick;
  quick.timeout = 20s;
  const ProgramResult r = run_program({"/usr/bin/openssl", "s_client", "-starttls", "postgres", "-connect",
                                       "127.0.0.1:" + std::to_string(gw().port()), "-CAfile", pki_.ca_file,
                                       "-verify_return_error", "-verify_hostname", "localhost", "-brief"},
                                      quick);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string all = r.out + r.err;
  EXPECT_NE(all.find("Verification: OK"), std::string::npos) << all;
  EXPECT_NE(all.find("Protocol version: TLSv1.3"), std::string::npos) << all;
}

TEST_F(Tls, BytesStuffedBehindSslRequestAreRejectedBeforeTheHandshake) {
  RawClient c;
  ASSERT_TRUE(c.connect(gw().port()));
  // CVE-2021-23214: a StartupMessage written with the SSLRequest, before the answer.
  c.send(wire::ssl_request() + wire::startup({{"user", "alice"}, {"database", "app"}}));
  Message m;
  ASSERT_EQ(c.read_message(m), ReadStatus::message) << "no answer";
  ASSERT_EQ(m.type, 'E') << "sluice must not answer 'S' and read the stuffed bytes as TLS or as plaintext";
  const auto error = parse_fields(m.body);
  EXPECT_EQ(field(error, 'C'), "08P01");
  EXPECT_NE(field(error, 'M').find("unencrypted data after SSL request"), std::string::npos) << field(error, 'M');
  EXPECT_TRUE(c.wait_closed(5s));
  EXPECT_TRUE(gateway_serves());
}

TEST_F(Tls, PlaintextBytesAfterTheAnswerAreNotAClientHello) {
  RawClient c;
  ASSERT_TRUE(c.connect(gw().port()));
  c.send(wire::ssl_request());
  char answer = 0;
  ASSERT_EQ(c.read_byte(answer), ReadStatus::message);
  ASSERT_EQ(answer, 'S');
  // A client (or a man in the middle) that goes on in plaintext gets a TLS alert.
  c.send(wire::startup({{"user", "alice"}, {"database", "app"}}));
  EXPECT_TRUE(c.wait_closed(5s));
  EXPECT_EQ(c.received().find("R"), std::string::npos) << "authentication must not start";
  EXPECT_TRUE(gateway_serves());
}

// A blocking OpenSSL client that starts with a ClientHello, as PostgreSQL 17's libpq
// does with sslnegotiation=direct.
struct DirectTlsClient {
  int fd = -1;
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  ~DirectTlsClient() {
    if (ssl) SSL_free(ssl);
    if (ctx) SSL_CTX_free(ctx);
    if (fd >= 0) ::close(fd);
  }
  bool connect(uint16_t port, const std::string& ca_file, bool offer_alpn) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return false;
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (offer_alpn) {
      static const unsigned char kAlpn[] = {10, 'p', 'o', 's', 't', 'g', 'r', 'e', 's', 'q', 'l'};
      SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof kAlpn);
    }
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set1_host(ssl, "localhost");
    return SSL_connect(ssl) == 1;
  }
  bool send(const std::string& bytes) { return SSL_write(ssl, bytes.data(), static_cast<int>(bytes.size())) > 0; }
  // One message (type, body), or nullopt at EOF/error.
  std::optional<Message> read_message() {
    auto read_exact = [&](char* out, size_t n) {
      size_t got = 0;
      while (got < n) {
        const int rc = SSL_read(ssl, out + got, static_cast<int>(n - got));
        if (rc <= 0) return false;
        got += static_cast<size_t>(rc);
      }
      return true;
    };
    char header[5];
    if (!read_exact(header, 5)) return std::nullopt;
    uint32_t length = 0;
    std::memcpy(&length, header + 1, 4);
    length = ntohl(length);
    if (length < 4 || length > (1u << 20)) return std::nullopt;
    Message m;
    m.type = header[0];
    m.body.resize(length - 4);
    if (!read_exact(m.body.data(), m.body.size())) return std::nullopt;
    return m;
  }
};

TEST_F(Tls, DirectTlsNeedsAlpnPostgresql) {
  DirectTlsClient with_alpn;
  ASSERT_TRUE(with_alpn.connect(gw().port(), pki_.ca_file, true)) << ERR_reason_error_string(ERR_peek_last_error());
  ASSERT_TRUE(with_alpn.send(wire::startup({{"user", "alice"}, {"database", "app"}})));
  std::optional<Message> m = with_alpn.read_message();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->type, 'R') << "authentication request over direct TLS";

  DirectTlsClient without_alpn;
  ASSERT_TRUE(without_alpn.connect(gw().port(), pki_.ca_file, false));
  m = without_alpn.read_message();
  ASSERT_TRUE(m.has_value());
  ASSERT_EQ(m->type, 'E');
  const auto error = parse_fields(m->body);
  EXPECT_EQ(field(error, 'C'), "08P01");
  EXPECT_NE(field(error, 'M').find("ALPN"), std::string::npos) << field(error, 'M');
}

TEST_F(Tls, CertificateReloadKeepsRunningSessions) {
  std::vector<Conn> sessions;
  for (int i = 0; i < 4; ++i) {
    sessions.emplace_back(conninfo("verify-full"));
    ASSERT_TRUE(sessions.back().ok()) << sessions.back().error();
    EXPECT_EQ(peer_common_name(sessions.back()), "localhost");
  }
  // Load on the open sessions while the certificate is renewed and reloaded.
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, queries{0};
  std::vector<std::thread> load;
  for (auto& conn : sessions) {
    load.emplace_back([&, c = conn.get()] {
      while (!stop) {
        Result r(PQexec(c, "SELECT count(*) FROM generate_series(1, 1000)"));
        if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) ++failures;
        ++queries;
      }
    });
  }
  pki_.issue("server", "renewed.localhost", "DNS:localhost,IP:127.0.0.1");
  gw().signal(SIGHUP);
  Conn renewed;
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::this_thread::sleep_for(100ms);
    renewed = Conn(conninfo("verify-full"));
    if (renewed.ok() && peer_common_name(renewed) == "renewed.localhost") break;
  }
  stop = true;
  for (auto& t : load) t.join();
  ASSERT_TRUE(renewed.ok()) << renewed.error();
  EXPECT_EQ(peer_common_name(renewed), "renewed.localhost") << gw().log();
  EXPECT_EQ(failures.load(), 0) << "a running session was disturbed by the reload";
  EXPECT_GT(queries.load(), 0);
  for (auto& conn : sessions) EXPECT_EQ(query_value(conn, "SELECT 'still here'"), "still here");
  EXPECT_NE(gw().log().find("TLS certificate /CN=renewed.localhost"), std::string::npos) << gw().log();

  // A broken certificate file on reload keeps the one in use.
  write_file(pki_.cert_file, "not a certificate\n");
  gw().signal(SIGHUP);
  for (int attempt = 0; attempt < 50 && gw().log().find("the certificate in use is kept") == std::string::npos; ++attempt)
    std::this_thread::sleep_for(100ms);
  EXPECT_NE(gw().log().find("the certificate in use is kept"), std::string::npos) << gw().log();
  Conn after(conninfo("verify-full"));
  ASSERT_TRUE(after.ok()) << after.error();
  EXPECT_EQ(peer_common_name(after), "renewed.localhost");
}

// [tls] kernel_tls = "on": every client handshake offers its record layer to the
// kernel (one receive at a time until the handshake ends). On a kernel with TLS the
// sessions then run on kernel records; on one without (this CI machine), each refusal
// leaves the connection in userspace, and the session must not notice either way.
class KernelTls : public Tls {
 protected:
  SluicedOptions options() override { return {.tls_toml = tls_toml() + "kernel_tls = \"on\"\n"}; }

  // Every session_start so far names its TLS path: the kernel's (both ways, or sends
  // only where OpenSSL hands over send keys only) or userspace.
  void expect_records_path(bool kernel) {
    const std::string starts = audit_session_starts();
    size_t at = 0, count = 0;
    while ((at = starts.find("\"tls_records\":\"", at)) != std::string::npos) {
      at += std::strlen("\"tls_records\":\"");
      const std::string path = starts.substr(at, starts.find('"', at) - at);
      if (kernel) {
        EXPECT_EQ(path.rfind("kernel", 0), 0u) << starts;
      } else {
        EXPECT_EQ(path, "userspace") << starts;
      }
      ++count;
    }
    EXPECT_GT(count, 0u) << starts;
  }

  // libpq (verify-full), a large result, a COPY in, then pgbench with a new connection
  // per transaction (200 handshakes): the session
  // works whoever frames the records.
  void run_sessions() {
    Conn conn(conninfo("verify-full"));
    ASSERT_TRUE(conn.ok()) << conn.error();
    EXPECT_EQ(query_value(conn, "SELECT length(string_agg(md5(i::text), '')) FROM generate_series(1, 100000) i"),
              "3200000");
    query(conn, "CREATE TEMP TABLE copied (line text)");
    Result started(PQexec(conn, "COPY copied FROM STDIN"));
    ASSERT_EQ(PQresultStatus(started.get()), PGRES_COPY_IN) << PQerrorMessage(conn);
    const std::string chunk(64 * 1024 - 1, 'k');
    for (int i = 0; i < 32; ++i) ASSERT_EQ(PQputCopyData(conn, (chunk + "\n").data(), static_cast<int>(chunk.size() + 1)), 1);
    ASSERT_EQ(PQputCopyEnd(conn, nullptr), 1);
    Result finished(PQgetResult(conn));
    ASSERT_EQ(PQresultStatus(finished.get()), PGRES_COMMAND_OK) << PQerrorMessage(conn);
    EXPECT_EQ(query_value(conn, "SELECT sum(length(line)) FROM copied"), std::to_string(32 * (64 * 1024 - 1)));

    run_pgbench(/*transactions_per_client=*/50, /*connection_per_transaction=*/true);
  }
};

TEST_F(KernelTls, EveryConnectionOffersTheKernelAndSessionsWorkEitherWay) {
  run_sessions();
  std::string why;
  const bool kernel = core::tls::probe_kernel_tls(why);
  EXPECT_NE(gw().log().find(kernel ? "kernel TLS available" : "kernel TLS offered on every connection"),
            std::string::npos)
      << gw().log();
  expect_records_path(kernel);
}

// The kernel path proper; reported as skipped where the kernel has no TLS.
TEST_F(KernelTls, SessionsRunOnKernelRecordsWhereTheKernelHasTls) {
  std::string why;
  if (!core::tls::probe_kernel_tls(why)) GTEST_SKIP() << "kernel TLS unavailable here: " << why;
  run_sessions();
  // psql ends with close_notify: a control record the kernel hands over separately.
  ProgramResult r = run_program({pg().bin("psql"), "-X", "-A", "-t", "-c", "SELECT 40 + 2", conninfo("verify-full")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("42"), std::string::npos) << r.out;
  expect_records_path(/*kernel=*/true);
}

class RequireTls : public Tls {
 protected:
  SluicedOptions options() override { return {.tls_toml = tls_toml(), .require_tls = "true"}; }
};

TEST_F(RequireTls, PlaintextLoginIsRefusedBeforeAnyPassword) {
  Conn plain(conninfo("disable"));
  EXPECT_FALSE(plain.ok());
  EXPECT_NE(plain.error().find("sluice requires TLS on this listener"), std::string::npos) << plain.error();

  RawClient raw;
  ASSERT_TRUE(raw.connect(gw().port()));
  raw.send(wire::startup({{"user", "alice"}, {"database", "app"}}));
  Message m;
  ASSERT_EQ(raw.read_message(m), ReadStatus::message);
  ASSERT_EQ(m.type, 'E') << "no authentication request may come before the refusal";
  EXPECT_EQ(field(parse_fields(m.body), 'C'), "28000");

  Conn encrypted(conninfo("require"));
  ASSERT_TRUE(encrypted.ok()) << encrypted.error();
  EXPECT_EQ(query_value(encrypted, "SELECT 1"), "1");
}

TEST_F(RequireTls, CancelRequestsStillReachATlsSession) {
  // libpq 15 sends its CancelRequest on a new plaintext connection: it carries only the
  // cancel key, and must work on a listener that requires TLS for logins.
  Conn conn(conninfo("verify-full"));
  ASSERT_TRUE(conn.ok()) << conn.error();
  ASSERT_EQ(PQsendQuery(conn, "SELECT pg_sleep(30)"), 1);
  std::this_thread::sleep_for(300ms);
  PGcancel* cancel = PQgetCancel(conn);
  char error[256] = "";
  EXPECT_EQ(PQcancel(cancel, error, sizeof error), 1) << error;
  PQfreeCancel(cancel);
  Result r(PQgetResult(conn));
  EXPECT_EQ(PQresultStatus(r.get()), PGRES_FATAL_ERROR);
  const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
  EXPECT_STREQ(state != nullptr ? state : "", "57014") << PQerrorMessage(conn);
  while (PGresult* rest = PQgetResult(conn)) PQclear(rest);
  EXPECT_EQ(query_value(conn, "SELECT 'after cancel'"), "after cancel");
}

}  // namespace
}  // namespace sluice::it

namespace sluice::it {
namespace {

// TLS from sluice to PostgreSQL (the shared cluster runs with ssl = on and a test CA).
class BackendTls : public GatewayTest {
 protected:
  static GatewayTarget target(const std::string& name, const std::string& sslmode, const std::string& ca = "") {
    GatewayTarget t{name, "app", "sluice_app", PgCluster::shared().app_password()};
    t.sslmode = sslmode;
    t.sslrootcert = ca;
    return t;
  }
  SluicedOptions options() override {
    const std::string ca = PgCluster::shared().ca_file();
    return {.targets = {target("app", ""), target("plain", "disable"), target("required", "require"),
                        target("chain", "verify-ca", ca), target("full", "verify-full", ca)}};
  }
  // Whether the backend connection serving this session is encrypted, as PostgreSQL sees it.
  std::string backend_ssl(const std::string& dbname) {
    Conn conn(gw().conninfo("alice", kAlicePassword, dbname));
    if (!conn.ok()) return "login failed: " + conn.error();
    return query_value(conn, "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
  }
};

TEST_F(BackendTls, EverySslmodeAgainstRealPostgres) {
  EXPECT_EQ(backend_ssl("app"), "true") << "prefer (the default) uses TLS when the server offers it";
  EXPECT_EQ(backend_ssl("plain"), "false");
  EXPECT_EQ(backend_ssl("required"), "true");
  EXPECT_EQ(backend_ssl("chain"), "true");
  EXPECT_EQ(backend_ssl("full"), "true");
  // A large result through backend TLS (decrypted record by record) arrives whole.
  Conn conn(gw().conninfo("alice", kAlicePassword, "full"));
  ASSERT_TRUE(conn.ok()) << conn.error();
  EXPECT_EQ(query_value(conn, "SELECT sum(length(md5(i::text) || repeat('x', 100))) FROM generate_series(1, 50000) i"),
            "6600000");
  Result rows(PQexec(conn, "SELECT i, repeat('y', 200) FROM generate_series(1, 50000) i"));
  ASSERT_EQ(PQresultStatus(rows.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn);
  EXPECT_EQ(PQntuples(rows.get()), 50000);
  EXPECT_STREQ(PQgetvalue(rows.get(), 49999, 0), "50000");
}

// Optional client certificates toward the backend: the cluster lets cert_user in only
// with a certificate naming it (pg_hba clientcert=verify-full).
class BackendTlsClientCertificate : public BackendTls {
 protected:
  SluicedOptions options() override {
    const PgCluster& pg = PgCluster::shared();
    GatewayTarget with_cert{"with_cert", "app", "cert_user", pg.app_password()};
    with_cert.sslmode = "verify-full";
    with_cert.sslrootcert = pg.ca_file();
    with_cert.sslcert = pg.client_cert_file();
    with_cert.sslkey = pg.client_key_file();
    GatewayTarget without_cert = with_cert;
    without_cert.name = "without_cert";
    without_cert.sslcert.clear();
    without_cert.sslkey.clear();
    return {.targets = {with_cert, without_cert}};
  }
};

TEST_F(BackendTlsClientCertificate, TheTargetsCertificateIsPresented) {
  Conn conn(gw().conninfo("alice", kAlicePassword, "with_cert"));
  ASSERT_TRUE(conn.ok()) << conn.error() << gw().log();
  EXPECT_EQ(query_value(conn, "SELECT current_user"), "cert_user");
  EXPECT_EQ(query_value(conn, "SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), "/CN=cert_user");

  Conn refused(gw().conninfo("alice", kAlicePassword, "without_cert"));
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(gw().log().find("connection requires a valid client certificate"), std::string::npos) << gw().log();
}

class BackendTlsUntrusted : public BackendTls {
 protected:
  std::string other_dir_ = make_temp_dir("sluice-it-pki-", false);
  test_pki::Pki other_{other_dir_, "not the server's CA"};
  ~BackendTlsUntrusted() override { remove_tree(other_dir_); }
  SluicedOptions options() override {
    return {.targets = {target("app", "verify-full", other_.ca_file)}};
  }
};

TEST_F(BackendTlsUntrusted, AnUnverifiableServerIsNotLoggedInto) {
  Conn conn(gw().conninfo());
  EXPECT_FALSE(conn.ok());
  EXPECT_NE(conn.error().find("TLS with the server failed"), std::string::npos) << conn.error();
  EXPECT_NE(gw().log().find("certificate verify failed"), std::string::npos) << gw().log();
}

// A fake "server" that answers the SSLRequest with `answer` and keeps the socket open.
class FakeServer {
 public:
  explicit FakeServer(std::string answer) : answer_(std::move(answer)) {
    listener_ = listen_on_loopback(port_, 8);
    thread_ = std::thread([this] {
      for (;;) {
        const int fd = accept(listener_, nullptr, nullptr);
        if (fd < 0) return;
        char request[8];
        if (recv(fd, request, sizeof request, MSG_WAITALL) == 8) {
          requests_ += 1;
          ::send(fd, answer_.data(), answer_.size(), MSG_NOSIGNAL);
        }
        std::this_thread::sleep_for(300ms);
        ::close(fd);
      }
    });
  }
  ~FakeServer() {
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    thread_.join();
  }
  uint16_t port() const { return port_; }
  int requests() const { return requests_; }

 private:
  std::string answer_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

class BackendTlsHostile : public GatewayTest {
 protected:
  FakeServer stuffing_{"S\x16\x03\x01 injected"};
  FakeServer refusing_{"N"};
  SluicedOptions options() override {
    GatewayTarget stuffed{"stuffed", "app", "sluice_app", "pw"};
    stuffed.port = stuffing_.port();
    GatewayTarget refused{"refused", "app", "sluice_app", "pw"};
    refused.port = refusing_.port();
    refused.sslmode = "require";
    return {.targets = {stuffed, refused}};
  }
};

TEST_F(BackendTlsHostile, StuffedBytesAfterSAndARefusedRequireFailTheLogin) {
  Conn stuffed(gw().conninfo("alice", kAlicePassword, "stuffed"));
  EXPECT_FALSE(stuffed.ok());
  EXPECT_NE(stuffed.error().find("unencrypted data after accepting TLS"), std::string::npos) << stuffed.error();
  EXPECT_EQ(stuffing_.requests(), 1);

  Conn refused(gw().conninfo("alice", kAlicePassword, "refused"));
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.error().find("does not accept TLS"), std::string::npos) << refused.error();
}

}  // namespace
}  // namespace sluice::it
