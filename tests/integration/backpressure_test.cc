// A client that asks for ~2 GB and stops reading must not make sluice buffer it:
// memory per connection is bounded by the send queue, whatever the result size.
#include <gtest/gtest.h>

#include <cstdio>
#include <thread>

#include "tests/integration/fixture.h"

namespace sluice::it {
namespace {

constexpr long kBoundKib = 64 * 1024;  // growth allowed over the warm baseline

class Backpressure : public GatewayTest {
 protected:
  SluicedOptions options() override {
    SluicedOptions o;
    o.send_queue_bytes = "256KiB";
    o.write_stall_timeout = "60s";  // longer than the test: the bound must hold on its own
    return o;
  }
};

TEST_F(Backpressure, ClientThatStopsReadingKeepsMemoryBounded) {
  // Warm up: a few sessions and a moderately large result, so the baseline includes
  // whatever sluice allocates lazily on first use.
  for (int i = 0; i < 3; ++i) {
    Conn c = gateway_conn();
    ASSERT_TRUE(c.ok()) << c.error();
    query(c, "SELECT repeat('w', 1000) FROM generate_series(1, 20000)");
  }
  const long baseline = gw().rss_kib();
  ASSERT_GT(baseline, 0);

  RawClient reader;
  ASSERT_TRUE(login(reader, gw().port(), "alice", kAlicePassword, "app", /*recv_buffer=*/64 * 1024));
  ASSERT_TRUE(reader.send(wire::query("SELECT repeat('x', 1000) FROM generate_series(1, 2000000)")));

  long peak = baseline;
  for (int i = 0; i < 6; ++i) {
    std::this_thread::sleep_for(500ms);
    peak = std::max(peak, gw().rss_kib());
  }
  std::printf("sluiced VmRSS: baseline %ld KiB, peak %ld KiB while a client was not reading\n", baseline, peak);
  RecordProperty("rss_growth_kib", static_cast<int>(peak - baseline));
  EXPECT_LT(peak - baseline, kBoundKib) << "sluiced grew from " << baseline << " KiB to " << peak
                                        << " KiB while a client was not reading";

  // Other clients are served meanwhile.
  EXPECT_TRUE(gateway_serves());

  // Read a little: the stream is intact where we pick it up (RowDescription, DataRows).
  Message m;
  ASSERT_EQ(reader.read_message(m, 5s), ReadStatus::message);
  EXPECT_EQ(m.type, 'T');
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(reader.read_message(m, 5s), ReadStatus::message);
    ASSERT_EQ(m.type, 'D');
    ASSERT_EQ(m.body.size(), 2u + 4u + 1000u);
  }
  reader.close();

  // The abandoned session's backend query stops; sluice keeps serving.
  std::this_thread::sleep_for(500ms);
  EXPECT_TRUE(gateway_serves());
  Conn su(pg().superuser_conninfo());
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  std::string running = "1";
  while (running != "0" && std::chrono::steady_clock::now() < deadline) {
    running = query_value(su, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT repeat(''x'', 1000)%' "
                              "AND state = 'active'");
    if (running != "0") std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(running, "0") << "the backend kept running the abandoned 2 GB query";
}

TEST_F(Backpressure, SlowReaderGetsEveryByte) {
  // Reads slowly (small receive buffer, pauses): nothing is dropped or reordered.
  RawClient reader;
  ASSERT_TRUE(login(reader, gw().port(), "alice", kAlicePassword, "app", /*recv_buffer=*/16 * 1024));
  ASSERT_TRUE(reader.send(wire::query("SELECT g, repeat(chr(65 + g % 26), 5000) FROM generate_series(1, 4000) g")));
  Message m;
  ASSERT_EQ(reader.read_message(m), ReadStatus::message);
  ASSERT_EQ(m.type, 'T');
  for (int g = 1; g <= 4000; ++g) {
    if (g % 500 == 0) std::this_thread::sleep_for(100ms);
    ASSERT_EQ(reader.read_message(m), ReadStatus::message);
    ASSERT_EQ(m.type, 'D');
    const std::string n = std::to_string(g);
    const std::string expected = wire::be16(2) + wire::be32(static_cast<int32_t>(n.size())) + n + wire::be32(5000) +
                                 std::string(5000, static_cast<char>('A' + g % 26));
    ASSERT_TRUE(m.body == expected) << "row " << g;
  }
  const std::vector<Message> rest = reader.read_until_ready();
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].type, 'C');
  EXPECT_EQ(rest[1].type, 'Z');
}

}  // namespace
}  // namespace sluice::it
