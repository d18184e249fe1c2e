// pgbench through sluice in each query mode (simple, extended, prepared), several
// clients and threads: every transaction succeeds.
#include <gtest/gtest.h>

#include "tests/integration/fixture.h"

namespace sluice::it {
namespace {

class Pgbench : public GatewayTest {
 protected:
  void SetUp() override {
    GatewayTest::SetUp();
    if (HasFatalFailure()) return;
    // Initialize directly as the superuser, then hand the tables to the target's role
    // (pgbench vacuums them before a run, which needs ownership).
    ProgramOptions o;
    o.timeout = 120s;
    const ProgramResult init =
        run_program({pg().bin("pgbench"), "-i", "-s", "1", "-q", "-h", pg().socket_dir(), "-p",
                     std::to_string(pg().port()), "-U", "postgres", "app"},
                    o);
    ASSERT_EQ(init.exit_code, 0) << init.out << init.err;
    pg().superuser_exec(
        "ALTER TABLE pgbench_accounts OWNER TO sluice_app; ALTER TABLE pgbench_branches OWNER TO sluice_app;"
        "ALTER TABLE pgbench_tellers OWNER TO sluice_app; ALTER TABLE pgbench_history OWNER TO sluice_app;");
  }

  ProgramResult run_through_gateway(const std::string& mode) {
    ProgramOptions o;
    o.timeout = 120s;
    o.env = {std::string("PGPASSWORD=") + kAlicePassword, "PGCONNECT_TIMEOUT=10"};
    return run_program({pg().bin("pgbench"), "-M", mode, "-c", "4", "-j", "2", "-t", "200", "-h", "127.0.0.1", "-p",
                        std::to_string(gw().port()), "-U", "alice", "app"},
                       o);
  }

  static void expect_clean_run(const ProgramResult& r) {
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("number of transactions actually processed: 800/800"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("number of failed transactions: 0 "), std::string::npos) << r.out;
    EXPECT_EQ(r.err.find("error"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("ERROR"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("WARNING"), std::string::npos) << r.err;
  }
};

TEST_F(Pgbench, SimpleExtendedPreparedModes) {
  for (const char* mode : {"simple", "extended", "prepared"}) {
    SCOPED_TRACE(mode);
    expect_clean_run(run_through_gateway(mode));
  }
  // The work really happened on the cluster (each run truncates the history first).
  Conn su(pg().superuser_conninfo());
  EXPECT_EQ(query_value(su, "SELECT count(*) FROM pgbench_history"), "800");
  EXPECT_TRUE(gateway_serves());
}

}  // namespace
}  // namespace sluice::it
