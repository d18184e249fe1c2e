// The configured session timeouts: idle_timeout closes sessions that do nothing,
// write_stall_timeout ends sessions whose client stopped reading its results (and
// stops the backend's query), and neither touches a busy, healthy session.
#include <gtest/gtest.h>

#include <thread>

#include "tests/integration/fixture.h"

namespace sluice::it {
namespace {

using Clock = std::chrono::steady_clock;

class IdleTimeout : public GatewayTest {
 protected:
  SluicedOptions options() override { return {.idle_timeout = "1s"}; }
};

TEST_F(IdleTimeout, IdleSessionClosedActiveSessionKept) {
  // Idle since its login, and idle after one query.
  RawClient idle;
  ASSERT_TRUE(login(idle, gw().port(), "alice", kAlicePassword, "app"));
  RawClient idle_after_query;
  ASSERT_TRUE(login(idle_after_query, gw().port(), "alice", kAlicePassword, "app"));
  ASSERT_EQ(simple_query(idle_after_query, "SELECT 1").back().type, 'Z');
  RawClient active;
  ASSERT_TRUE(login(active, gw().port(), "alice", kAlicePassword, "app"));
  const auto start = Clock::now();
  // The active session runs a query every 300 ms for 2.4 s: never idle for 1 s.
  for (int i = 0; i < 8; ++i) {
    const std::vector<Message> reply = simple_query(active, "SELECT " + std::to_string(i));
    ASSERT_FALSE(reply.empty()) << "active session closed after " << i << " queries";
    ASSERT_EQ(reply.back().type, 'Z');
    std::this_thread::sleep_for(300ms);
  }
  EXPECT_TRUE(idle_after_query.wait_closed(3s)) << "session idle after a query still open after idle_timeout";
  EXPECT_TRUE(idle.wait_closed(1s)) << "session idle since login still open after idle_timeout";
  EXPECT_LT(Clock::now() - start, 6s);
  EXPECT_TRUE(gateway_serves());
}

class WriteStall : public GatewayTest {
 protected:
  SluicedOptions options() override { return {.write_stall_timeout = "2s"}; }
};

TEST_F(WriteStall, ClientThatNeverReadsIsDisconnectedAndQueryStopped) {
  RawClient stuck;
  ASSERT_TRUE(login(stuck, gw().port(), "alice", kAlicePassword, "app", /*recv_buffer=*/64 * 1024));
  const std::string marker = "stall_" + random_token(8);
  ASSERT_TRUE(stuck.send(
      wire::query("SELECT repeat('x', 1000), '" + marker + "' FROM generate_series(1, 2000000)")));
  std::this_thread::sleep_for(4s);

  // The backend no longer runs the query (sluice cancelled it or closed its connection).
  Conn su(pg().superuser_conninfo());
  const auto deadline = Clock::now() + 8s;
  std::string running = "1";
  while (running != "0" && Clock::now() < deadline) {
    running = query_value(su, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%" +
                                  marker + "%' AND pid <> pg_backend_pid()");
    if (running != "0") std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(running, "0") << "the stalled session's query still runs on the backend";

  // Whatever was already queued drains quickly and then the connection ends; the
  // remaining ~2 GB are not streamed.
  EXPECT_TRUE(stuck.wait_closed(10s)) << "a stalled client was not disconnected";
  EXPECT_TRUE(gateway_serves());
}

TEST_F(WriteStall, SlowButSteadyReaderIsNotDisconnected) {
  RawClient slow;
  ASSERT_TRUE(login(slow, gw().port(), "alice", kAlicePassword, "app", /*recv_buffer=*/16 * 1024));
  ASSERT_TRUE(slow.send(wire::query("SELECT repeat('s', 10000) FROM generate_series(1, 1500)")));
  // ~15 MB read at a steady pace over ~3.5 s: progress never stops for 2 s.
  int rows = 0;
  Message m;
  const auto start = Clock::now();
  while (slow.read_message(m, 5s) == ReadStatus::message && m.type != 'Z') {
    if (m.type == 'D' && ++rows % 100 == 0) std::this_thread::sleep_for(250ms);
    ASSERT_NE(m.type, 'E') << parse_fields(m.body)['M'];
  }
  EXPECT_EQ(rows, 1500);
  EXPECT_EQ(m.type, 'Z');
  EXPECT_GT(Clock::now() - start, 3s);
}

}  // namespace
}  // namespace sluice::it
