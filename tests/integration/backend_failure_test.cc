// A backend that dies under a session: the client gets an error (not a hang), and
// every other session through sluice keeps working.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>

#include <thread>

#include "tests/integration/fixture.h"

namespace sluice::it {
namespace {

using Clock = std::chrono::steady_clock;

class BackendFailure : public GatewayTest {
 protected:
  // The backend pid running a query that contains `marker`, waiting up to 5 s for it.
  std::string backend_running(PGconn* su, const std::string& marker) {
    const auto deadline = Clock::now() + 5s;
    while (Clock::now() < deadline) {
      const Rows rows = query(su, "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%" +
                                      marker + "%' AND pid <> pg_backend_pid()");
      if (!rows.empty() && rows[0][0]) return *rows[0][0];
      std::this_thread::sleep_for(50ms);
    }
    return "";
  }
};

TEST_F(BackendFailure, TerminatedBackendGivesClientAnErrorAndOthersContinue) {
  Conn other = gateway_conn("bob", kBobPassword);
  ASSERT_TRUE(other.ok()) << other.error();
  query(other, "BEGIN; CREATE TEMP TABLE survivor (i int); INSERT INTO survivor VALUES (1)");

  Conn victim = gateway_conn();
  ASSERT_TRUE(victim.ok()) << victim.error();
  const std::string marker = "victim_" + random_token(8);
  ASSERT_EQ(PQsendQuery(victim, ("SELECT pg_sleep(30), '" + marker + "'").c_str()), 1);

  Conn su(pg().superuser_conninfo());
  const std::string pid = backend_running(su, marker);
  ASSERT_FALSE(pid.empty()) << "the victim's query never showed up in pg_stat_activity";
  EXPECT_EQ(query_value(su, "SELECT pg_terminate_backend(" + pid + ")"), "t");

  const auto start = Clock::now();
  pollfd p{PQsocket(victim), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1) << "the client heard nothing within 5 s of its backend dying";
  Result r(PQgetResult(victim));
  EXPECT_LT(Clock::now() - start, 5s);
  ASSERT_NE(r.get(), nullptr);
  EXPECT_EQ(PQresultStatus(r.get()), PGRES_FATAL_ERROR);
  const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
  // libpq reports a closed connection without a SQLSTATE; an ErrorResponse carries one.
  if (state != nullptr) {
    EXPECT_TRUE(std::string(state) == "57P01" || std::string(state) == "08006") << state;
  }
  while (Result extra{PQgetResult(victim)}) {
  }
  // The victim's connection is over: no silent re-attachment to a new backend.
  Result after(PQexec(victim, "SELECT 1"));
  EXPECT_NE(PQresultStatus(after.get()), PGRES_TUPLES_OK);

  // The other session, in the middle of a transaction, is untouched.
  EXPECT_EQ(query_value(other, "SELECT count(*) FROM survivor"), "1");
  query(other, "COMMIT");
  EXPECT_TRUE(gateway_serves());
}

TEST_F(BackendFailure, RawClientSeesErrorResponseOrClose) {
  // The same at the byte level, with a long-running result in flight.
  RawClient raw;
  ASSERT_TRUE(login(raw, gw().port(), "alice", kAlicePassword, "app"));
  const std::string marker = "rawvictim_" + random_token(8);
  ASSERT_TRUE(raw.send(wire::query("SELECT pg_sleep(0.2), g, '" + marker +
                                   "' FROM generate_series(1, 300) g")));
  Conn su(pg().superuser_conninfo());
  const std::string pid = backend_running(su, marker);
  ASSERT_FALSE(pid.empty());
  query(su, "SELECT pg_terminate_backend(" + pid + ")");

  bool saw_error = false;
  bool saw_complete = false;
  for (;;) {
    Message m;
    const ReadStatus st = raw.read_message(m, 5s);
    ASSERT_NE(st, ReadStatus::timeout) << "no error and no close within 5 s";
    if (st == ReadStatus::closed) break;
    if (m.type == 'E') {
      saw_error = true;
      const std::string code = parse_fields(m.body)['C'];
      EXPECT_TRUE(code == "57P01" || code == "08006") << code;
    }
    // sluice must never fabricate a successful end of the statement.
    saw_complete |= m.type == 'C' || m.type == 'Z';
  }
  EXPECT_FALSE(saw_complete);
  // Closing without an ErrorResponse is allowed by the contract; record which it was.
  RecordProperty("error_response_seen", saw_error ? "yes" : "no");
  EXPECT_TRUE(gateway_serves());
}

TEST_F(BackendFailure, TerminateWhileIdleThenNextQueryFails) {
  Conn idle = gateway_conn();
  ASSERT_TRUE(idle.ok()) << idle.error();
  const std::string marker = "idlevictim_" + random_token(8);
  query(idle, "SET application_name = '" + marker + "'");
  Conn su(pg().superuser_conninfo());
  const std::string pid =
      query_value(su, "SELECT pid FROM pg_stat_activity WHERE application_name = '" + marker + "'");
  ASSERT_FALSE(pid.empty());
  query(su, "SELECT pg_terminate_backend(" + pid + ")");
  std::this_thread::sleep_for(300ms);
  const auto start = Clock::now();
  Result r(PQexec(idle, "SELECT 1"));
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_NE(PQresultStatus(r.get()), PGRES_TUPLES_OK);
  EXPECT_TRUE(gateway_serves());
}

TEST_F(BackendFailure, BackendKilledWithoutGoodbye) {
  // SIGKILL: the backend sends nothing before its socket closes (and the postmaster
  // then restarts every backend: crash recovery). The client must hear about it.
  RawClient victim;
  ASSERT_TRUE(login(victim, gw().port(), "alice", kAlicePassword, "app"));
  const std::string marker = "killed_" + random_token(8);
  ASSERT_TRUE(victim.send(wire::query("SELECT pg_sleep(30), '" + marker + "'")));
  std::string pid;
  {
    Conn su(pg().superuser_conninfo());
    pid = backend_running(su, marker);
  }
  ASSERT_FALSE(pid.empty());
  ASSERT_EQ(kill(std::stoi(pid), SIGKILL), 0);

  bool saw_complete = false;
  for (;;) {
    Message m;
    const ReadStatus st = victim.read_message(m, 5s);
    ASSERT_NE(st, ReadStatus::timeout) << "no error and no close within 5 s of the backend's death";
    if (st == ReadStatus::closed) break;
    if (m.type == 'E') {
      const std::string code = parse_fields(m.body)['C'];
      EXPECT_TRUE(code == "08006" || code == "57P02") << code;
    }
    saw_complete |= m.type == 'C' || m.type == 'Z';
  }
  EXPECT_FALSE(saw_complete) << "sluice reported success for a statement whose backend died";

  // Once PostgreSQL has recovered, sluice serves new sessions.
  const auto deadline = Clock::now() + 30s;
  while (Clock::now() < deadline && PQping(pg().superuser_conninfo().c_str()) != PQPING_OK)
    std::this_thread::sleep_for(100ms);
  bool served = false;
  while (Clock::now() < deadline && !(served = gateway_serves())) std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(served) << "sluice does not serve after the cluster recovered";
}

}  // namespace
}  // namespace sluice::it
