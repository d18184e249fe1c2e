// Token (OIDC) logins end to end: a test identity provider serving discovery and its
// JWKS over loopback HTTPS, tokens signed here with OpenSSL, sent by psql and libpq
// as the password over verified TLS. Group mapping into policy, every refusal saying
// why without echoing the token, no token over plaintext, the key-fetch bound under
// random kids, key rotation, and the session closed at the token's expiry.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <thread>

#include "tests/integration/fixture.h"
#include "tests/test_jwt.h"
#include "tests/test_pki.h"

namespace sluice::it {
namespace {

using protocol::jwt::Algorithm;
using test_jwt::TestKey;

// An identity provider on 127.0.0.1 over HTTPS: /.well-known/openid-configuration and
// /jwks (its current keys). Counts JWKS fetches.
class TestIdp {
 public:
  explicit TestIdp(const test_pki::Pki& pki) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate_chain_file(ctx_, pki.cert_file.c_str());
    SSL_CTX_use_PrivateKey_file(ctx_, pki.key_file.c_str(), SSL_FILETYPE_PEM);
    listener_ = listen_on_loopback(port_, 64);
    thread_ = std::thread([this] { serve(); });
  }
  ~TestIdp() {
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    thread_.join();
    SSL_CTX_free(ctx_);
  }
  std::string issuer() const { return "https://127.0.0.1:" + std::to_string(port_); }
  void publish(std::vector<const TestKey*> keys) {
    std::lock_guard lock(mutex_);
    keys_ = std::move(keys);
  }
  int jwks_fetches() const { return jwks_fetches_.load(); }

 private:
  void serve() {
    for (;;) {
      const int fd = accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      timeval tv{5, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, fd);
      if (SSL_accept(ssl) == 1) {
        std::string request;
        char buffer[4096];
        while (request.find("\r\n\r\n") == std::string::npos) {
          const int n = SSL_read(ssl, buffer, sizeof buffer);
          if (n <= 0) break;
          request.append(buffer, static_cast<size_t>(n));
        }
        const std::string body = answer(request);
        const std::string response = "HTTP/1.0 " + std::string(body.empty() ? "404 Not Found" : "200 OK") +
                                     "\r\nContent-Type: application/json\r\nContent-Length: " +
                                     std::to_string(body.size()) + "\r\n\r\n" + body;
        SSL_write(ssl, response.data(), static_cast<int>(response.size()));
        SSL_shutdown(ssl);
      }
      SSL_free(ssl);
      ::close(fd);
      ERR_clear_error();
    }
  }
  std::string answer(const std::string& request) {
    if (request.rfind("GET /.well-known/openid-configuration ", 0) == 0)
      return "{\"issuer\":\"" + issuer() + "\",\"jwks_uri\":\"" + issuer() + "/jwks\"}";
    if (request.rfind("GET /jwks ", 0) == 0) {
      ++jwks_fetches_;
      std::lock_guard lock(mutex_);
      std::string jwks = "{\"keys\":[";
      for (size_t i = 0; i < keys_.size(); ++i) jwks += (i ? "," : "") + keys_[i]->jwk();
      return jwks + "]}";
    }
    return "";
  }

  SSL_CTX* ctx_ = nullptr;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<const TestKey*> keys_;
  std::atomic<int> jwks_fetches_{0};
};

int64_t now() { return static_cast<int64_t>(std::time(nullptr)); }

class Oidc : public GatewayTest {
 protected:
  std::string pki_dir_ = make_temp_dir("sluice-it-oidc-", false);
  test_pki::Pki pki_{pki_dir_};
  TestIdp idp_{pki_};
  TestKey rsa_ = TestKey::make(Algorithm::rs256, "rsa-1");
  TestKey ec_ = TestKey::make(Algorithm::es256, "ec-1");

  Oidc() { idp_.publish({&rsa_, &ec_}); }
  ~Oidc() override { remove_tree(pki_dir_); }

  virtual std::string issuer_extra() { return ""; }
  SluicedOptions options() override {
    return {.tls_toml = "cert_file = \"" + pki_.cert_file + "\"\nkey_file = \"" + pki_.key_file + "\"\n",
            .extra_toml = "[oidc]\n\n[[oidc.issuer]]\nissuer = \"" + idp_.issuer() +
                          "\"\naudience = \"sluice\"\nca_file = \"" + pki_.ca_file +
                          "\"\nalgorithms = [\"RS256\", \"ES256\"]\n" + issuer_extra()};
  }

  std::string claims(const std::string& sub = "ci-bot", const std::string& groups = "[\"dev\"]", int64_t exp_in = 600,
                     const std::string& extra = "") {
    return "{\"iss\":\"" + idp_.issuer() + "\",\"aud\":\"sluice\",\"sub\":\"" + sub + "\",\"groups\":" + groups +
           ",\"iat\":" + std::to_string(now() - 5) + ",\"exp\":" + std::to_string(now() + exp_in) + extra + "}";
  }
  std::string conninfo(const std::string& user, const std::string& token, const std::string& sslmode = "verify-full") {
    return "host=127.0.0.1 port=" + std::to_string(gw().port()) + " dbname=app user=" + user + " password=" + token +
           " sslmode=" + sslmode + " sslrootcert=" + pki_.ca_file + " connect_timeout=10";
  }
  // Waits until sluiced has read the issuer's keys (the fetcher starts at boot).
  void wait_for_keys() {
    for (int i = 0; i < 100 && gw().log().find("read 2 key(s)") == std::string::npos; ++i)
      std::this_thread::sleep_for(50ms);
    ASSERT_NE(gw().log().find("read 2 key(s)"), std::string::npos) << gw().log();
  }
  std::string audit_text() {
    std::string out;
    for (const auto& entry : std::filesystem::directory_iterator(gw().audit_dir())) out += read_file(entry.path());
    return out;
  }
};

TEST_F(Oidc, TokenLoginWithPsqlAndLibpqOverVerifiedTls) {
  wait_for_keys();
  const std::string token = rsa_.token(claims());
  ProgramOptions env;
  env.env = {"PGPASSWORD=" + token};
  const ProgramResult r = run_program({pg().bin("psql"), "-X", "-A", "-t", "-c", "SELECT current_user",
                                       "host=127.0.0.1 port=" + std::to_string(gw().port()) +
                                           " dbname=app user=ci-bot sslmode=verify-full sslrootcert=" + pki_.ca_file},
                                      env);
  ASSERT_EQ(r.exit_code, 0) << r.err << gw().log();
  EXPECT_EQ(r.out, "sluice_app\n") << "the token never needs a database account";

  // An EC-signed token, and the same token again (answered by the cache).
  const std::string ec_token = ec_.token(claims());
  for (int i = 0; i < 2; ++i) {
    Conn conn(conninfo("ci-bot", ec_token));
    ASSERT_TRUE(conn.ok()) << conn.error();
    EXPECT_EQ(query_value(conn, "SELECT 1"), "1");
  }
  const std::string audit = audit_text();
  EXPECT_NE(audit.find("\"user\":\"ci-bot\",\"groups\":[\"dev\"],\"auth\":\"oidc\""), std::string::npos) << audit;
  EXPECT_EQ(audit.find(token), std::string::npos) << "the token must never be recorded";
  EXPECT_EQ(gw().log().find(token), std::string::npos) << "the token must never be logged";
}

TEST_F(Oidc, GroupsFromTheTokenDrivePolicy) {
  wait_for_keys();
  // "dev" is a defined group (admin on every target); "strangers" is not.
  Conn member(conninfo("ci-bot", rsa_.token(claims("ci-bot", "[\"dev\"]"))));
  ASSERT_TRUE(member.ok()) << member.error();
  Conn stranger(conninfo("ci-bot", rsa_.token(claims("ci-bot", "[\"strangers\"]"))));
  EXPECT_FALSE(stranger.ok());
  EXPECT_NE(stranger.error().find("group"), std::string::npos) << stranger.error();
}

TEST_F(Oidc, RefusalsSayWhyAndNeverEchoTheToken) {
  wait_for_keys();
  struct Case {
    std::string what, token, user, expected;
  };
  const std::string unsigned_header = protocol::jwt::base64url_encode("{\"alg\":\"none\",\"typ\":\"JWT\"}");
  const std::vector<Case> cases = {
      {"expired", rsa_.token(claims("ci-bot", "[\"dev\"]", -600)), "ci-bot", "expired"},
      {"wrong audience",
       rsa_.token("{\"iss\":\"" + idp_.issuer() + "\",\"aud\":\"other\",\"sub\":\"ci-bot\",\"iat\":" +
                  std::to_string(now()) + ",\"exp\":" + std::to_string(now() + 600) + "}"),
       "ci-bot", "aud"},
      {"unknown issuer",
       rsa_.token("{\"iss\":\"https://evil.example\",\"aud\":\"sluice\",\"sub\":\"ci-bot\",\"iat\":" +
                  std::to_string(now()) + ",\"exp\":" + std::to_string(now() + 600) + "}"),
       "ci-bot", "not one this gateway trusts"},
      {"alg none", unsigned_header + "." + protocol::jwt::base64url_encode(claims()) + ".", "ci-bot", "token"},
      {"someone else's token", rsa_.token(claims("other-bot")), "ci-bot", "is for \"other-bot\""},
      {"not a token", "hunter2", "ci-bot", "not a JWT"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Conn conn(conninfo(c.user, c.token));
    ASSERT_FALSE(conn.ok());
    EXPECT_NE(conn.error().find("token authentication failed"), std::string::npos) << conn.error();
    EXPECT_NE(conn.error().find(c.expected), std::string::npos) << conn.error();
    EXPECT_EQ(conn.error().find(c.token), std::string::npos) << "echoed the token";
  }
  const std::string audit = audit_text();
  for (const Case& c : cases) EXPECT_EQ(audit.find(c.token), std::string::npos) << c.what;
  EXPECT_NE(audit.find("\"auth_failure\""), std::string::npos);
  EXPECT_NE(audit.find("\"auth\":\"oidc\""), std::string::npos);
}

TEST_F(Oidc, NoTokenIsAskedForOverPlaintext) {
  wait_for_keys();
  Conn plain(conninfo("ci-bot", rsa_.token(claims()), "disable"));
  EXPECT_FALSE(plain.ok());
  EXPECT_NE(plain.error().find("accepts tokens only over TLS"), std::string::npos) << plain.error();
  // On the wire: the refusal comes instead of any authentication request.
  RawClient raw;
  ASSERT_TRUE(raw.connect(gw().port()));
  raw.send(wire::startup({{"user", "ci-bot"}, {"database", "app"}}));
  Message m;
  ASSERT_EQ(raw.read_message(m), ReadStatus::message);
  EXPECT_EQ(m.type, 'E') << "sluice asked for a password over plaintext";
  // A gateway user still logs in with SCRAM (loopback listener: plaintext allowed).
  Conn alice(gw().conninfo() + " sslmode=disable");
  EXPECT_TRUE(alice.ok()) << alice.error();
}

TEST_F(Oidc, RandomKidsCostAtMostOneKeyFetchPerCooldown) {
  wait_for_keys();
  const int fetches_before = idp_.jwks_fetches();
  TestKey stranger = TestKey::make(Algorithm::es256, "never-published");
  for (int i = 0; i < 300; ++i) {
    TestKey forged{stranger.key, Algorithm::es256, "kid-" + random_token(12)};
    Conn conn(conninfo("ci-bot", forged.token(claims())));
    ASSERT_FALSE(conn.ok());
  }
  std::this_thread::sleep_for(500ms);  // let a fetch the storm asked for happen
  EXPECT_LE(idp_.jwks_fetches() - fetches_before, 1) << "300 unknown kids within the 30 s cooldown";
}

class OidcRotation : public Oidc {
 protected:
  std::string issuer_extra() override { return "refresh_cooldown = \"1s\"\n"; }
};

TEST_F(OidcRotation, ANewSigningKeyIsPickedUpAfterItsFirstUnknownKid) {
  wait_for_keys();
  TestKey rotated = TestKey::make(Algorithm::rs256, "rsa-2");
  idp_.publish({&rsa_, &ec_, &rotated});
  const std::string token = rotated.token(claims());
  Conn first(conninfo("ci-bot", token));
  EXPECT_FALSE(first.ok()) << "the key is not known yet: the refusal asks the fetcher for the set";
  bool accepted = false;
  for (int attempt = 0; attempt < 40 && !accepted; ++attempt) {
    std::this_thread::sleep_for(100ms);
    accepted = Conn(conninfo("ci-bot", token)).ok();
  }
  EXPECT_TRUE(accepted) << gw().log();
}

TEST_F(Oidc, TheSessionClosesAtTheTokensExpiry) {
  wait_for_keys();
  Conn conn(conninfo("ci-bot", rsa_.token(claims("ci-bot", "[\"dev\"]", 3))));
  ASSERT_TRUE(conn.ok()) << conn.error();
  EXPECT_EQ(query_value(conn, "SELECT 'before expiry'"), "before expiry");
  std::this_thread::sleep_for(4500ms);
  Result r(PQexec(conn, "SELECT 'after expiry'"));
  EXPECT_NE(PQresultStatus(r.get()), PGRES_TUPLES_OK);
  EXPECT_NE(std::string(PQerrorMessage(conn)).find("has expired"), std::string::npos) << PQerrorMessage(conn);
  EXPECT_NE(audit_text().find("\"reason\":\"token expired\""), std::string::npos);
}

}  // namespace
}  // namespace sluice::it
