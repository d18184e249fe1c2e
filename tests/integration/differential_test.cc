// Differential test: identical protocol bytes sent after ReadyForQuery to PostgreSQL
// directly and through sluice; the reply message sequences must match byte for byte,
// except BackendKeyData, ParameterStatus values and backend PIDs in notifications.
#include <gtest/gtest.h>

#include "tests/integration/fixture.h"

namespace sluice::it {
namespace {

// One exchange: bytes to send, then how to know the reply is complete.
struct Step {
  std::string name;
  std::string bytes;
  int ready_count = 1;  // ReadyForQuery messages that end the reply; 0 = until quiet
  char until = 0;       // if set: the reply ends with the first message of this type
                        // (or an ErrorResponse), e.g. 'G' CopyInResponse
};

std::string normalize(const Message& m) {
  if (m.type == 'K') return "K <key>";
  if (m.type == 'S') {
    const auto nul = m.body.find('\0');
    return "S " + m.body.substr(0, nul) + "=<value>";
  }
  if (m.type == 'A' && m.body.size() >= 4) {  // NotificationResponse: pid, channel, payload
    Message rest{'A', m.body.substr(4)};
    return "A <pid> " + render(rest).substr(2);
  }
  return render(m);
}

std::string transcript(const std::vector<Message>& msgs) {
  std::string out;
  for (const auto& m : msgs) out += normalize(m) + "\n";
  return out;
}

class Differential : public GatewayTest {
 protected:
  void SetUp() override {
    GatewayTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(login(direct_, pg().port(), "sluice_app", pg().app_password(), "app"));
    ASSERT_TRUE(login(via_, gw().port(), "alice", kAlicePassword, "app"));
  }

  static std::vector<Message> exchange(RawClient& c, const Step& step) {
    c.send(step.bytes);
    if (step.until != 0) {
      std::vector<Message> out;
      Message m;
      while (c.read_message(m, 10s) == ReadStatus::message) {
        out.push_back(m);
        if (m.type == step.until || m.type == 'E' || m.type == 'Z') break;
      }
      return out;
    }
    if (step.ready_count == 0) return c.read_until_quiet(250ms, 10s);
    return c.read_until_ready(step.ready_count, 15s);
  }

  // Runs all steps directly, then all through sluice (so the two sessions never see
  // each other's notifications), and compares each step's reply. Returns the direct
  // transcripts so callers can check the scenario did what it meant to.
  std::vector<std::string> run(const std::vector<Step>& steps) {
    std::vector<std::string> direct_transcripts;
    for (const Step& step : steps) direct_transcripts.push_back(transcript(exchange(direct_, step)));
    for (size_t i = 0; i < steps.size(); ++i) {
      const std::string v = transcript(exchange(via_, steps[i]));
      EXPECT_EQ(v, direct_transcripts[i]) << "step: " << steps[i].name;
    }
    return direct_transcripts;
  }

  RawClient direct_;
  RawClient via_;
};

using namespace wire;

TEST_F(Differential, SimpleQueries) {
  const auto t = run({
      {"select", query("SELECT 1 AS a, 'x'::text AS b, NULL AS c, 1.5::numeric AS d")},
      {"multi-statement", query("SELECT 1; SELECT 2 AS two; CREATE TEMP TABLE m (i int); INSERT INTO m VALUES (1), (2); "
                                "UPDATE m SET i = i + 1; DELETE FROM m WHERE i = 3; SELECT i + 0 AS i FROM m")},
      {"error in multi-statement", query("SELECT 1; SELECT 1/0; SELECT 3")},
      {"explicit transaction error", query("BEGIN; SELECT 1; SELECT nonsense; SELECT 2")},
      {"in failed transaction", query("SELECT 1")},
      {"rollback", query("ROLLBACK")},
      {"syntax error", query("SELEC 1")},
      {"undefined table", query("SELECT * FROM no_such_table")},
      {"empty query", query("")},
      {"only semicolons", query(";;")},
      {"notice", query("SELECT noisy(7)")},
      {"set parameter", query("SET application_name = 'differential'; SET TimeZone = 'Europe/Paris'")},
      {"show", query("SHOW TimeZone")},
      {"large row", query("SELECT repeat('y', 300000), repeat('z', 70000)")},
      {"many rows", query("SELECT g, md5(g::text) FROM generate_series(1, 5000) g")},
      // A self-notification may come just after ReadyForQuery: collect until quiet.
      {"listen/notify self", query("LISTEN diffchan; NOTIFY diffchan, 'payload here'"), 0},
      {"unlisten", query("UNLISTEN *")},
      {"utf8", query("SELECT 'ünïcödé ✓ 日本語' AS u, length('日本語')")},
      {"invalid utf8", query("SELECT '\xff'")},
  });
  EXPECT_NE(t[8].find("I \n"), std::string::npos) << "EmptyQueryResponse expected: " << t[8];
  EXPECT_NE(t[15].find("A <pid> diffchan"), std::string::npos) << t[15];
}

TEST_F(Differential, ExtendedProtocol) {
  const auto t = run({
      {"parse/describe/bind/execute/sync",
       parse("s1", "SELECT $1::int + 1 AS r, $2::text AS t") + describe('S', "s1") +
           bind("", "s1", {"41", std::nullopt}) + describe('P', "") + execute("", 0) + sync()},
      {"binary results", bind("", "s1", {"1", "x"}, {1}) + execute("", 0) + sync()},
      {"binary parameters", parse("", "SELECT $1::int4 * 2", {23}) +
                                bind("", "", {std::string("\0\0\0\x15", 4)}, {0}, {1}) + execute("", 0) + sync()},
      {"wrong parameter count", bind("", "s1", {}) + execute("", 0) + sync()},
      {"too many parameters", bind("", "s1", {"1", "2", "3"}) + execute("", 0) + sync()},
      {"bad parameter value", bind("", "s1", {"not a number", "x"}) + execute("", 0) + sync()},
      {"unknown statement", bind("", "nope", {}) + execute("", 0) + sync()},
      {"unknown portal", execute("no_portal", 0) + sync()},
      {"describe unknown", describe('S', "nope") + sync()},
      {"parse error", parse("bad", "SELEC 1") + sync()},
      {"duplicate statement name", parse("s1", "SELECT 1") + sync()},
      {"error skips to sync", parse("", "SELECT 1/0") + bind("", "", {}) + execute("", 0) + parse("", "SELECT 2") +
                                  bind("", "", {}) + execute("", 0) + sync()},
      {"unnamed portal with row limit",
       parse("s2", "SELECT g FROM generate_series(1, 10) g") + bind("", "s2", {}) + execute("", 4) + execute("", 4) +
           execute("", 0) + sync()},
      {"named portal in a transaction",
       query("BEGIN")},
      {"named portal suspended",
       bind("p2", "s2", {}) + execute("p2", 3) + execute("p2", 3) + sync()},
      {"named portal resumed", execute("p2", 0) + close('P', "p2") + sync()},
      {"commit", query("COMMIT")},
      {"close statements", close('S', "s1") + close('S', "s2") + close('S', "never_existed") + sync()},
      {"closed statement gone", bind("", "s1", {"1", "x"}) + execute("", 0) + sync()},
      {"notice in extended", parse("", "SELECT noisy(9)") + bind("", "", {}) + execute("", 0) + sync()},
      {"empty statement", parse("", "") + bind("", "", {}) + describe('P', "") + execute("", 0) + sync()},
      {"three syncs in one write",
       parse("", "SELECT 1") + bind("", "", {}) + execute("", 0) + sync() + parse("", "SELECT 1/0") +
           bind("", "", {}) + execute("", 0) + sync() + parse("", "SELECT 3") + bind("", "", {}) + execute("", 0) +
           sync(),
       3},
      {"large result in extended",
       parse("", "SELECT repeat('q', 1000) FROM generate_series(1, 3000)") + bind("", "", {}) + execute("", 0) +
           sync()},
  });
  EXPECT_NE(t[0].find("1 \n"), std::string::npos);  // ParseComplete
  EXPECT_NE(t[3].find("C=08P01"), std::string::npos) << t[3];
  EXPECT_NE(t[12].find("s \n"), std::string::npos) << "PortalSuspended expected: " << t[12];
  EXPECT_NE(t[14].find("s \n"), std::string::npos) << t[14];
}

TEST_F(Differential, FlushWithoutSync) {
  const auto t = run({
      {"flush delivers before sync", parse("", "SELECT 42 AS answer") + bind("", "", {}) + describe('P', "") +
                                         execute("", 0) + flush(),
       0},
      {"then sync", sync()},
      {"flush after error", parse("", "SELECT 1/0") + bind("", "", {}) + execute("", 0) + flush(), 0},
      {"sync after error", sync()},
      {"no flush: nothing before sync", parse("", "SELECT 43") + bind("", "", {}) + execute("", 0), 0},
      {"late sync", sync()},
  });
  EXPECT_NE(t[0].find("C SELECT 1"), std::string::npos) << "replies expected before Sync: " << t[0];
  EXPECT_TRUE(t[4].empty()) << "PostgreSQL answers nothing before Sync or Flush: " << t[4];
}

TEST_F(Differential, CopyProtocol) {
  std::string many;  // CSV
  for (int i = 0; i < 20000; ++i) many += std::to_string(i) + ",\"line, " + std::to_string(i) + "\"\n";
  const auto t = run({
      {"create", query("CREATE TEMP TABLE cp (a int, b text)")},
      {"copy in starts", query("COPY cp FROM STDIN"), 0, 'G'},
      {"copy data and done", copy_data("1\tone\n") + copy_data("2\ttw") + copy_data("o\n3\tthree\n") + copy_done()},
      {"copy in again", query("COPY cp FROM STDIN"), 0, 'G'},
      {"copy fail", copy_data("4\tfour\n") + copy_fail("client changed its mind")},
      {"copy in csv", query("COPY cp FROM STDIN (FORMAT csv)"), 0, 'G'},
      {"many copy data", copy_data(many.substr(0, many.size() / 2)) + copy_data(many.substr(many.size() / 2)) +
                              copy_done()},
      {"copy in bad data", query("COPY cp FROM STDIN"), 0, 'G'},
      {"bad row", copy_data("x\ty\n") + copy_done()},
      {"copy out", query("COPY (SELECT * FROM cp ORDER BY a LIMIT 10) TO STDOUT")},
      {"copy out binary", query("COPY (SELECT * FROM cp ORDER BY a LIMIT 10) TO STDOUT (FORMAT binary)")},
      {"copy out large", query("COPY cp TO STDOUT")},
      {"count", query("SELECT count(*) FROM cp")},
      {"copy in via extended", parse("", "COPY cp FROM STDIN") + bind("", "", {}) + execute("", 0) + flush(), 0, 'G'},
      {"extended copy data", copy_data("7\tseven\n") + copy_done() + sync()},
  });
  EXPECT_NE(t[1].find("G "), std::string::npos) << t[1];
  EXPECT_NE(t[2].find("C COPY 3"), std::string::npos) << t[2];
  EXPECT_NE(t[4].find("C=57014"), std::string::npos) << t[4];
  EXPECT_NE(t[9].find("H "), std::string::npos) << t[9];
}

TEST_F(Differential, FunctionCall) {
  // OIDs of builtins are stable, but ask the server rather than hard-code them.
  Conn su(pg().superuser_conninfo());
  const uint32_t int4pl = static_cast<uint32_t>(std::stoul(query_value(su, "SELECT 'int4pl'::regproc::oid")));
  const uint32_t upper = static_cast<uint32_t>(std::stoul(query_value(su, "SELECT 'upper(text)'::regprocedure::oid")));
  const auto t = run({
      {"int4pl(2, 3)", function_call(int4pl, {"2", "3"})},
      {"int4pl binary result", function_call(int4pl, {"40", "2"}, 1)},
      {"strict with NULL", function_call(int4pl, {std::nullopt, "3"})},
      {"upper", function_call(upper, {"sluice"})},
      {"overflow", function_call(int4pl, {"2147483647", "1"})},
      {"unknown oid", function_call(4294967000u, {})},
      {"wrong arg count", function_call(int4pl, {"1"})},
  });
  EXPECT_NE(t[0].find("V \\x00\\x00\\x00\\x015"), std::string::npos) << t[0];
  EXPECT_NE(t[4].find("C=22003"), std::string::npos) << t[4];
}

TEST_F(Differential, TransactionStatesInReadyForQuery) {
  const auto t = run({
      {"idle", query("SELECT 1")},
      {"begin", query("BEGIN")},
      {"in transaction", parse("", "SELECT 2") + bind("", "", {}) + execute("", 0) + sync()},
      {"failed", query("SELECT 1/0")},
      {"still failed in extended", parse("", "SELECT 3") + bind("", "", {}) + execute("", 0) + sync()},
      {"rollback", query("ROLLBACK")},
      {"savepoints", query("BEGIN; SAVEPOINT a; SELECT 1/0")},
      {"rollback to savepoint", query("ROLLBACK TO SAVEPOINT a; SELECT 'recovered'; COMMIT")},
  });
  EXPECT_NE(t[1].find("Z T"), std::string::npos) << t[1];
  EXPECT_NE(t[3].find("Z E"), std::string::npos) << t[3];
}

}  // namespace
}  // namespace sluice::it
