// Many concurrent sessions through sluice, and the client-connection cap (53300).
#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <mutex>
#include <thread>

#include "tests/integration/fixture.h"

namespace sluice::it {
namespace {

class Concurrency : public GatewayTest {
 protected:
  // 300 SCRAM logins at once, to sluice and from sluice to PostgreSQL (300 backends
  // forking), are CPU-bound: on the 2-core CI machine some took longer than the
  // fixture's 10 s handshake timeout, or the gateway's 5 s connect_timeout for the
  // login to the target. This test is about concurrency, not the timeouts
  // (timeouts_test.cc is): both get as long as the clients' connect_timeout.
  SluicedOptions options() override {
    SluicedOptions o;
    o.handshake_timeout = "60s";
    o.connect_timeout = "60s";
    return o;
  }
};

TEST_F(Concurrency, ThreeHundredSessionsAtOnce) {
  constexpr int kSessions = 300;
  std::latch all_connected(kSessions);
  std::atomic<int> succeeded{0};
  std::mutex failures_mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  threads.reserve(kSessions);
  for (int i = 0; i < kSessions; ++i) {
    threads.emplace_back([&, i] {
      std::string failure;
      Conn c(gw().conninfo(i % 2 ? "alice" : "bob", i % 2 ? kAlicePassword : kBobPassword) + " connect_timeout=60");
      if (!c.ok()) {
        failure = "connect: " + c.error();
      } else {
        const std::string sql = "SELECT " + std::to_string(i) + ", pg_backend_pid(), pg_sleep(0.05)";
        Result r(PQexec(c, sql.c_str()));
        if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || std::string(PQgetvalue(r.get(), 0, 0)) != std::to_string(i))
          failure = "query: " + std::string(PQerrorMessage(c));
      }
      // Hold every session open until all have connected: they are truly concurrent.
      all_connected.count_down();
      all_connected.wait();
      if (failure.empty() && c.ok()) {
        Result r(PQexec(c, "SELECT 1"));
        if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) failure = "second query: " + std::string(PQerrorMessage(c));
      }
      if (failure.empty()) {
        ++succeeded;
      } else {
        std::lock_guard lock(failures_mutex);
        failures.push_back("session " + std::to_string(i) + ": " + failure);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(succeeded.load(), kSessions);
  for (size_t i = 0; i < failures.size() && i < 10; ++i) ADD_FAILURE() << failures[i];
  EXPECT_TRUE(gateway_serves());
}

class ConnectionCap : public GatewayTest {
 protected:
  SluicedOptions options() override {
    SluicedOptions o;
    o.max_client_connections = 5;
    return o;
  }
};

TEST_F(ConnectionCap, SixthClientGets53300) {
  std::vector<Conn> held;
  for (int i = 0; i < 5; ++i) {
    held.push_back(gateway_conn());
    ASSERT_TRUE(held.back().ok()) << "client " << i + 1 << " of 5: " << held.back().error();
  }
  RawClient sixth;
  ASSERT_TRUE(sixth.connect(gw().port()));
  const RawClient::StartupResult r = sixth.startup("alice", "app", kAlicePassword);
  EXPECT_FALSE(r.ready);
  EXPECT_EQ(r.error.count('C') ? r.error.at('C') : "", "53300");
  EXPECT_EQ(r.error.count('M') ? r.error.at('M') : "", "sorry, too many clients already");
  EXPECT_EQ(r.error.count('S') ? r.error.at('S') : "", "FATAL");
  EXPECT_TRUE(sixth.wait_closed(5s));

  Conn libpq_sixth = gateway_conn();
  EXPECT_FALSE(libpq_sixth.ok());
  EXPECT_NE(libpq_sixth.error().find("sorry, too many clients already"), std::string::npos) << libpq_sixth.error();

  // The held sessions still work; closing one frees a slot.
  for (auto& c : held) EXPECT_EQ(query_value(c, "SELECT 1"), "1");
  held.pop_back();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  Conn again;
  while (std::chrono::steady_clock::now() < deadline) {
    again = gateway_conn();
    if (again.ok()) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(again.ok()) << "a freed slot was not reused: " << again.error();
  EXPECT_EQ(query_value(again, "SELECT 2"), "2");
}

}  // namespace
}  // namespace sluice::it
