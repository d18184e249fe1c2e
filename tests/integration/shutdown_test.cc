// Graceful shutdown: on SIGTERM (or SIGINT) sluiced closes idle sessions, lets running
// queries and open transactions finish within shutdown_grace, and exits 0.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>

#include <thread>

#include "tests/integration/fixture.h"

namespace sluice::it {
namespace {

using Clock = std::chrono::steady_clock;

class Shutdown : public GatewayTest {
 protected:
  SluicedOptions options() override { return {.shutdown_grace = "5s"}; }
};

TEST_F(Shutdown, IdleClientsSigtermExitsZeroQuickly) {
  Conn idle = gateway_conn();
  ASSERT_TRUE(idle.ok()) << idle.error();
  RawClient raw;
  ASSERT_TRUE(login(raw, gw().port(), "alice", kAlicePassword, "app"));

  const auto start = Clock::now();
  gw().signal(SIGTERM);
  const std::optional<int> code = gw().wait_exit(10s);
  ASSERT_TRUE(code.has_value()) << "sluiced still running 10 s after SIGTERM with idle clients";
  EXPECT_EQ(*code, 0);
  EXPECT_LT(Clock::now() - start, 5s) << "idle sessions should not hold the shutdown for the whole grace";

  // The idle sessions were closed (possibly with a 57P01 FATAL first).
  EXPECT_TRUE(raw.wait_closed(2s));
  Result r(PQexec(idle, "SELECT 1"));
  EXPECT_NE(PQresultStatus(r.get()), PGRES_TUPLES_OK);
}

TEST_F(Shutdown, SigintAlsoExitsZero) {
  Conn idle = gateway_conn();
  ASSERT_TRUE(idle.ok()) << idle.error();
  gw().signal(SIGINT);
  const std::optional<int> code = gw().wait_exit(10s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
}

TEST_F(Shutdown, RunningQueryCompletesBeforeClose) {
  Conn busy = gateway_conn();
  ASSERT_TRUE(busy.ok()) << busy.error();
  ASSERT_EQ(PQsendQuery(busy, "SELECT pg_sleep(2), 'finished'"), 1);
  std::this_thread::sleep_for(300ms);
  gw().signal(SIGTERM);

  // The running query's result arrives intact.
  pollfd p{PQsocket(busy), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 6000), 1) << "no result within 6 s";
  Result r(PQgetResult(busy));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(busy);
  EXPECT_STREQ(PQgetvalue(r.get(), 0, 1), "finished");
  while (Result extra{PQgetResult(busy)}) {
  }
  // Then the session is closed and sluiced exits 0.
  const std::optional<int> code = gw().wait_exit(10s);
  ASSERT_TRUE(code.has_value()) << "sluiced still running after its last query finished";
  EXPECT_EQ(*code, 0);
  Result after(PQexec(busy, "SELECT 1"));
  EXPECT_NE(PQresultStatus(after.get()), PGRES_TUPLES_OK);
}

TEST_F(Shutdown, OpenTransactionMayFinishWithinGrace) {
  Conn tx = gateway_conn();
  ASSERT_TRUE(tx.ok()) << tx.error();
  query(tx, "BEGIN");
  query(tx, "CREATE TEMP TABLE graceful (i int)");
  gw().signal(SIGTERM);
  std::this_thread::sleep_for(300ms);
  // New sessions are not accepted while draining.
  Conn late = gateway_conn();
  EXPECT_FALSE(late.ok()) << "a new session was accepted during shutdown";
  // The open transaction still works and commits.
  query(tx, "INSERT INTO graceful VALUES (1)");
  Result commit(PQexec(tx, "COMMIT"));
  EXPECT_EQ(PQresultStatus(commit.get()), PGRES_COMMAND_OK) << PQerrorMessage(tx);
  const std::optional<int> code = gw().wait_exit(10s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
}

class ShortGrace : public GatewayTest {
 protected:
  SluicedOptions options() override { return {.shutdown_grace = "2s"}; }
};

TEST_F(ShortGrace, GraceExpiryEndsLongQueries) {
  Conn busy = gateway_conn();
  ASSERT_TRUE(busy.ok()) << busy.error();
  ASSERT_EQ(PQsendQuery(busy, "SELECT pg_sleep(60)"), 1);
  std::this_thread::sleep_for(300ms);
  const auto start = Clock::now();
  gw().signal(SIGTERM);
  const std::optional<int> code = gw().wait_exit(8s);
  ASSERT_TRUE(code.has_value()) << "sluiced outlived shutdown_grace (2 s) by more than 6 s";
  EXPECT_EQ(*code, 0);
  EXPECT_GE(Clock::now() - start, 1500ms) << "the running query was not given its grace";
  // The client learns its session ended (an error or a closed connection, not a hang).
  pollfd p{PQsocket(busy), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 2000), 1);
  Result r(PQgetResult(busy));
  EXPECT_NE(PQresultStatus(r.get()), PGRES_TUPLES_OK);
}

}  // namespace
}  // namespace sluice::it
