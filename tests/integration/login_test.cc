// Logging in through sluice: SCRAM-SHA-256 between client and sluice, errors for
// bad credentials and unknown targets, and sluice's own login to PostgreSQL with each
// backend auth method (scram-sha-256, md5, password).
#include <gtest/gtest.h>

#include <thread>

#include "tests/integration/fixture.h"

namespace sluice::it {
namespace {

std::string field(const std::map<char, std::string>& fields, char code) {
  const auto it = fields.find(code);
  return it == fields.end() ? "" : it->second;
}

class Login : public GatewayTest {};

TEST_F(Login, ScramSuccessWithPlaintextAndVerifierUsers) {
  for (const auto& [user, password] : {std::pair{"alice", kAlicePassword}, std::pair{"bob", kBobPassword}}) {
    SCOPED_TRACE(user);
    Conn c = gateway_conn(user, password);
    ASSERT_TRUE(c.ok()) << c.error();
    // The session is PostgreSQL's, as the target's role, in the target's database.
    const Rows rows = query(c, "SELECT current_user, session_user, current_database()");
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0][0], "sluice_app");
    EXPECT_EQ(rows[0][1], "sluice_app");
    EXPECT_EQ(rows[0][2], "app");
    EXPECT_EQ(query_value(c, "SELECT count(*) FROM items"), "1000");
  }
}

TEST_F(Login, RawScramExchangeIsComplete) {
  // Our own SCRAM client: sluice must ask for SASL, continue, and prove it knows the
  // verifier with a correct server signature before AuthenticationOk.
  RawClient raw;
  ASSERT_TRUE(raw.connect(gw().port()));
  const RawClient::StartupResult r = raw.startup("alice", "app", kAlicePassword);
  ASSERT_TRUE(r.ready) << field(r.error, 'M');
  EXPECT_EQ(r.auth_requests, (std::vector<int32_t>{10, 11, 12, 0}));
  EXPECT_TRUE(r.sasl_final_seen);
  EXPECT_TRUE(r.server_signature_ok);
  bool saw_key = false;
  for (const auto& m : r.messages) saw_key |= m.type == 'K';
  EXPECT_TRUE(saw_key) << "no BackendKeyData: cancel would be impossible";
  // sluice's own BackendKeyData, not the backend's (whose key would let a client
  // cancel on PostgreSQL directly).
  const std::vector<Message> reply = simple_query(raw, "SELECT pg_backend_pid()");
  ASSERT_GE(reply.size(), 2u);
  EXPECT_EQ(reply.back().type, 'Z');
  ASSERT_EQ(reply[1].type, 'D');
  const std::string real_pid = reply[1].body.substr(6);
  EXPECT_NE(std::to_string(raw.backend_pid()), real_pid) << "the client was given the backend's own pid";
}

TEST_F(Login, WrongPasswordIs28P01) {
  Conn c = gateway_conn("alice", "wrong-password");
  EXPECT_FALSE(c.ok());
  EXPECT_NE(c.error().find("password authentication failed for user \"alice\""), std::string::npos) << c.error();

  RawClient raw;
  ASSERT_TRUE(raw.connect(gw().port()));
  const RawClient::StartupResult r = raw.startup("alice", "app", "wrong-password");
  EXPECT_FALSE(r.ready);
  EXPECT_EQ(field(r.error, 'S'), "FATAL");
  EXPECT_EQ(field(r.error, 'C'), "28P01");
  EXPECT_EQ(field(r.error, 'M'), "password authentication failed for user \"alice\"");
  EXPECT_TRUE(raw.wait_closed(5s)) << "connection left open after a failed login";
}

TEST_F(Login, UnknownUserGetsTheIdenticalError) {
  RawClient known;
  ASSERT_TRUE(known.connect(gw().port()));
  const RawClient::StartupResult wrong = known.startup("alice", "app", "wrong-password");
  RawClient unknown;
  ASSERT_TRUE(unknown.connect(gw().port()));
  const RawClient::StartupResult missing = unknown.startup("mallory", "app", "wrong-password");

  EXPECT_FALSE(missing.ready);
  EXPECT_EQ(field(missing.error, 'C'), "28P01");
  EXPECT_EQ(field(missing.error, 'M'), "password authentication failed for user \"mallory\"");
  // Same exchange (a mock SCRAM conversation for the unknown user) and same fields,
  // so a client cannot probe which gateway users exist.
  EXPECT_EQ(missing.auth_requests, wrong.auth_requests);
  std::map<char, std::string> a = wrong.error, b = missing.error;
  a.erase('M');
  b.erase('M');
  EXPECT_EQ(a, b);

  Conn c = gateway_conn("mallory", "whatever");
  EXPECT_FALSE(c.ok());
  EXPECT_NE(c.error().find("password authentication failed for user \"mallory\""), std::string::npos) << c.error();
}

TEST_F(Login, UnknownTargetIs3D000AfterAuthentication) {
  RawClient raw;
  ASSERT_TRUE(raw.connect(gw().port()));
  const RawClient::StartupResult r = raw.startup("alice", "no_such_target", kAlicePassword);
  EXPECT_FALSE(r.ready);
  // Authentication finished first: the target's existence is not revealed before it.
  EXPECT_TRUE(r.sasl_final_seen);
  EXPECT_EQ(field(r.error, 'S'), "FATAL");
  EXPECT_EQ(field(r.error, 'C'), "3D000");
  EXPECT_NE(field(r.error, 'M').find("no_such_target"), std::string::npos) << field(r.error, 'M');

  // Wrong password and unknown target: the password error, not the target error.
  RawClient raw2;
  ASSERT_TRUE(raw2.connect(gw().port()));
  const RawClient::StartupResult r2 = raw2.startup("alice", "no_such_target", "wrong-password");
  EXPECT_EQ(field(r2.error, 'C'), "28P01");
}

TEST_F(Login, BackendAuthMethodsScramMd5Password) {
  const struct {
    const char* target;
    const char* role;
  } cases[] = {{"app", "sluice_app"}, {"app_md5", "md5_user"}, {"app_plain", "plain_user"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.target);
    Conn conn = gateway_conn("alice", kAlicePassword, c.target);
    ASSERT_TRUE(conn.ok()) << conn.error();
    EXPECT_EQ(query_value(conn, "SELECT current_user"), c.role);
    EXPECT_EQ(query_value(conn, "SELECT count(*) FROM items WHERE id <= 10"), "10");
  }
  // The cluster log confirms each role logged in over TCP with its method's pg_hba line.
  const std::string log = pg().log();
  for (const char* role : {"sluice_app", "md5_user", "plain_user"})
    EXPECT_NE(log.find(std::string(role) + "@app"), std::string::npos) << role;
}

TEST_F(Login, ManySequentialLoginsAndLogouts) {
  for (int i = 0; i < 50; ++i) {
    Conn c = gateway_conn(i % 2 ? "alice" : "bob", i % 2 ? kAlicePassword : kBobPassword);
    ASSERT_TRUE(c.ok()) << "login " << i << ": " << c.error();
    ASSERT_EQ(query_value(c, "SELECT " + std::to_string(i)), std::to_string(i));
  }
  // Failed logins and clients that vanish without Terminate, mid-login or mid-query.
  for (int i = 0; i < 10; ++i) {
    Conn bad = gateway_conn("alice", "wrong");
    EXPECT_FALSE(bad.ok());
    RawClient half;
    ASSERT_TRUE(half.connect(gw().port()));
    half.send(wire::startup({{"user", "alice"}, {"database", "app"}}));
    RawClient busy;
    ASSERT_TRUE(login(busy, gw().port(), "alice", kAlicePassword, "app"));
    busy.send(wire::query("SELECT pg_sleep(0.5)"));
  }
  EXPECT_TRUE(gateway_serves());
  // Every backend connection sluice opened is closed again: none leak.
  Conn su(pg().superuser_conninfo());
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  std::string left;
  do {
    left = query_value(su, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'sluice_app'");
    if (left == "0") break;
    std::this_thread::sleep_for(100ms);
  } while (std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(left, "0") << "backend connections left open after every client went away";
}

}  // namespace
}  // namespace sluice::it
