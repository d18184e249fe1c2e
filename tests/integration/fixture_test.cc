// Checks of the fixture itself against PostgreSQL directly (no sluice): the cluster's
// roles and auth methods, and the raw client's SCRAM/md5/cleartext logins. If these
// fail, every gateway test's verdict is suspect.
#include <gtest/gtest.h>

#include <cctype>

#include "tests/integration/fixture.h"

namespace sluice::it {
namespace {

TEST(Fixture, ClusterRolesAndAuthMethods) {
  PgCluster& pg = PgCluster::shared();
  Conn su(pg.superuser_conninfo());
  ASSERT_TRUE(su.ok()) << su.error();
  EXPECT_EQ(query_value(su, "SELECT count(*) FROM items"), "1000");
  EXPECT_EQ(query_value(su, "SELECT rolpassword LIKE 'md5%' FROM pg_authid WHERE rolname = 'md5_user'"), "t");
  EXPECT_EQ(query_value(su, "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'sluice_app'"),
            "t");

  const struct {
    std::string user, password;
    int32_t auth_code;
  } cases[] = {
      {"sluice_app", pg.app_password(), 10},
      {"md5_user", pg.md5_password(), 5},
      {"plain_user", pg.plain_password(), 3},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.user);
    Conn direct(pg.tcp_conninfo(c.user, c.password));
    ASSERT_TRUE(direct.ok()) << direct.error();
    EXPECT_EQ(query_value(direct, "SELECT current_user"), c.user);

    RawClient raw;
    ASSERT_TRUE(raw.connect(pg.port()));
    const RawClient::StartupResult r = raw.startup(c.user, "app", c.password);
    ASSERT_TRUE(r.ready) << (r.error.count('M') ? r.error.at('M') : "closed");
    ASSERT_FALSE(r.auth_requests.empty());
    EXPECT_EQ(r.auth_requests.front(), c.auth_code);
    if (c.auth_code == 10) {
      EXPECT_TRUE(r.server_signature_ok);
    }
    const std::vector<Message> reply = simple_query(raw, "SELECT current_user");
    ASSERT_FALSE(reply.empty());
    EXPECT_EQ(reply.back().type, 'Z');
  }

  RawClient wrong;
  ASSERT_TRUE(wrong.connect(pg.port()));
  const RawClient::StartupResult r = wrong.startup("sluice_app", "app", "not-the-password");
  EXPECT_FALSE(r.ready);
  EXPECT_EQ(r.error.count('C') ? r.error.at('C') : "", "28P01");
}

TEST(Fixture, ScramVerifierMatchesPostgres) {
  // A verifier we compute must be accepted by PostgreSQL itself for the password.
  PgCluster& pg = PgCluster::shared();
  const std::string password = "verifier-" + random_token(8);
  std::string role = "verifier_" + random_token(8);
  for (char& ch : role) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  pg.superuser_exec("CREATE ROLE " + role + " LOGIN PASSWORD '" + scram_verifier(password) + "'");
  Conn c(pg.tcp_conninfo(role, password));
  EXPECT_TRUE(c.ok()) << c.error();
  c.reset();
  Conn wrong(pg.tcp_conninfo(role, password + "x"));
  EXPECT_FALSE(wrong.ok());
  wrong.reset();
  pg.superuser_exec("DROP ROLE " + role);
}

TEST(Fixture, RunProgramCapturesOutput) {
  PgCluster& pg = PgCluster::shared();
  const ProgramResult r = run_program({pg.bin("psql"), "-X", "-At", "-d", pg.superuser_conninfo(), "-c", "SELECT 40 + 2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "42\n");
}

}  // namespace
}  // namespace sluice::it
