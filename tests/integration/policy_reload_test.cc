// SIGHUP reloads the statement policy while sessions stay connected: an open
// session's next statement meets the new policy, and a broken file changes nothing.
#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include "tests/integration/fixture.h"

namespace sluice::it {
namespace {

constexpr const char* kAgentPolicy = R"(
[groups.dev]
targets = ["*"]
access = "read-write"
packs = ["agent-default"]
)";

class PolicyReload : public GatewayTest {
 protected:
  SluicedOptions options() override { return {.policy_toml = kAgentPolicy}; }

  // Rewrites the config with `from` replaced by `to`, sends SIGHUP and waits for the
  // log line that says how the reload ended.
  void reload(const std::string& from, const std::string& to, const std::string& expect_in_log) {
    std::string config = read_file(gw().config_path());
    const size_t at = config.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    config.replace(at, from.size(), to);
    write_file(gw().config_path(), config, 0600);
    const size_t log_before = gw().log().size();
    gw().signal(SIGHUP);
    for (int i = 0; i < 100; ++i) {
      if (gw().log().find(expect_in_log, log_before) != std::string::npos) break;
      std::this_thread::sleep_for(50ms);
    }
    ASSERT_NE(gw().log().find(expect_in_log, log_before), std::string::npos) << gw().log();
    std::this_thread::sleep_for(200ms);  // shards install it on their next tick (50 ms)
  }

  static std::string sqlstate_of(Conn& c, const char* sql) {
    Result r(PQexec(c.get(), sql));
    const char* code = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
    return code ? code : "";
  }
};

TEST_F(PolicyReload, OpenSessionMeetsTheNewPolicyAndABrokenFileChangesNothing) {
  Conn direct = direct_conn();
  ASSERT_TRUE(direct.ok());
  query(direct, "DROP TABLE IF EXISTS reload_t; CREATE TABLE reload_t (id int); INSERT INTO reload_t VALUES (1)");
  Conn session = gateway_conn();
  ASSERT_TRUE(session.ok()) << session.error();
  EXPECT_EQ(sqlstate_of(session, "TRUNCATE reload_t"), "42501");

  reload("packs = [\"agent-default\"]", "packs = []", "policy reloaded");
  EXPECT_EQ(sqlstate_of(session, "TRUNCATE reload_t"), "") << "the open session still has the old policy";
  EXPECT_EQ(query_value(direct, "SELECT count(*) FROM reload_t"), "0");

  // A broken file: reported with its line, and the policy in force stays.
  reload("access = \"read-write\"", "access = \"read-wrote\"", "the policy in force is unchanged");
  EXPECT_NE(gw().log().find(gw().config_path() + ":"), std::string::npos) << "no file:line diagnostic";
  EXPECT_EQ(sqlstate_of(session, "INSERT INTO reload_t VALUES (2)"), "");
  EXPECT_EQ(sqlstate_of(session, "SELECT 1"), "");
  EXPECT_TRUE(gateway_serves());
}

}  // namespace
}  // namespace sluice::it
