// Statement policy through real clients: what a client sees when sluice refuses a
// statement (libpq, pipeline mode, psql), that a refused statement never reaches
// PostgreSQL, and that transactions, read-only groups, table scopes and the pinned
// search_path behave as docs/configuration.md ("Policy") says.
#include <gtest/gtest.h>
#include <libpq/libpq-fs.h>

#include <thread>

#include "tests/integration/fixture.h"

namespace sluice::it {
namespace {

constexpr const char* kAgentPassword = "agent-secret";
constexpr const char* kReaderPassword = "reader-secret";
constexpr const char* kScopedPassword = "scoped-secret";
constexpr const char* kOutsiderPassword = "outsider-secret";
constexpr const char* kBlockedPrefix = "statement blocked by sluice policy";

// One group per behaviour under test. alice keeps admin access so that the
// fixture's own helpers (gateway_serves) still work.
constexpr const char* kPolicyToml = R"toml(
[groups.admins]
targets = ["*"]
access = "admin"

[groups.agents]
targets = ["app"]
access = "read-write"
packs = ["agent-default"]

[groups.readers]
targets = ["app"]
access = "read-only"

[groups.scoped]
targets = ["app"]
access = "read-write"
read_deny = ["public.secret*"]

[groups.elsewhere]
targets = ["app_md5"]
access = "admin"
)toml";

std::string field(const PGresult* r, int code) {
  const char* v = PQresultErrorField(r, code);
  return v != nullptr ? v : "";
}

std::string sqlstate(const PGresult* r) { return field(r, PG_DIAG_SQLSTATE); }

// The ErrorResponse sluice sends for a refused statement: severity ERROR (the session
// goes on), SQLSTATE 42501, a message that says sluice refused it and why, a hint.
testing::AssertionResult blocked(const PGresult* r, const std::string& reason) {
  testing::AssertionResult failure = testing::AssertionFailure();
  failure << "expected a sluice refusal mentioning '" << reason << "', got:\n" << describe_result(r);
  if (r == nullptr || PQresultStatus(r) != PGRES_FATAL_ERROR) return failure;
  if (field(r, PG_DIAG_SEVERITY) != "ERROR" || field(r, PG_DIAG_SEVERITY_NONLOCALIZED) != "ERROR") return failure;
  if (sqlstate(r) != "42501") return failure;
  const std::string message = field(r, PG_DIAG_MESSAGE_PRIMARY);
  if (message.rfind(kBlockedPrefix, 0) != 0 || message.find(reason) == std::string::npos) return failure;
  if (field(r, PG_DIAG_MESSAGE_HINT).empty()) return failure;
  return testing::AssertionSuccess();
}

testing::AssertionResult failed_with(const PGresult* r, const std::string& code) {
  if (r != nullptr && PQresultStatus(r) == PGRES_FATAL_ERROR && sqlstate(r) == code) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "expected SQLSTATE " << code << ", got:\n" << describe_result(r);
}

testing::AssertionResult succeeded(const PGresult* r) {
  const ExecStatusType s = r != nullptr ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "expected success, got:\n" << describe_result(r);
}

class PolicyGateway : public GatewayTest {
 protected:
  SluicedOptions options() override {
    SluicedOptions o;
    // The gate logs the rule behind each refusal at debug level; some tests read it.
    o.log_level = "debug";
    // One shard: every session shares one decision cache (RefusalNamesItsOwnUser).
    o.shards = 1;
    o.users = {
        {"alice", kAlicePassword, false, {"admins"}},
        {"agent", kAgentPassword, true, {"agents"}},
        {"reader", kReaderPassword, false, {"readers"}},
        {"reader2", kReaderPassword, false, {"readers"}},
        {"scoped", kScopedPassword, false, {"scoped"}},
        {"outsider", kOutsiderPassword, false, {"elsewhere"}},
    };
    o.policy_toml = kPolicyToml;
    return o;
  }

  Conn agent() { return connected("agent", kAgentPassword); }
  Conn reader() { return connected("reader", kReaderPassword); }
  Conn scoped() { return connected("scoped", kScopedPassword); }

  Conn connected(const std::string& user, const std::string& password) {
    Conn c = gateway_conn(user, password);
    EXPECT_TRUE(c.ok()) << user << ": " << c.error();
    return c;
  }

  // Setup and checks bypass sluice: a direct connection as sluice_app (owner of app).
  void direct_exec(const std::string& sql) {
    Conn d = direct_conn();
    ASSERT_TRUE(d.ok()) << d.error();
    query(d, sql);
  }
  std::string direct_value(const std::string& sql) {
    Conn d = direct_conn();
    if (!d.ok()) {
      ADD_FAILURE() << d.error();
      return "";
    }
    return query_value(d, sql);
  }
  // A fresh table (dropped first: the cluster lives as long as the test process).
  void fresh_table(const std::string& name, int rows = 0) {
    direct_exec("SET client_min_messages = warning; DROP TABLE IF EXISTS " + name + " CASCADE; CREATE TABLE " + name + " (i int)" +
                (rows > 0 ? "; INSERT INTO " + name + " SELECT generate_series(1, " + std::to_string(rows) + ")" : ""));
  }
  std::string count(const std::string& table) { return direct_value("SELECT count(*) FROM " + table); }
  bool table_exists(const std::string& table) {
    return direct_value("SELECT to_regclass('public." + table + "') IS NOT NULL") == "t";
  }

  // PostgreSQL logs every statement it receives (log_statement = 'all', set by the
  // fixture) before running it.
  bool pg_log_shows(const std::string& text, std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (pg().log().find(text) != std::string::npos) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(20ms);
    }
  }

  // The gate logs `rule "NAME"` for each refusal (log_level = debug).
  testing::AssertionResult sluice_logged_rule(const std::string& rule) {
    const std::string needle = "rule \"" + rule + "\"";
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    for (;;) {
      if (gw().log().find(needle) != std::string::npos) return testing::AssertionSuccess();
      if (std::chrono::steady_clock::now() >= deadline)
        return testing::AssertionFailure() << "sluiced log does not name " << needle << ":\n" << gw().log();
      std::this_thread::sleep_for(20ms);
    }
  }
};

// 1. The refusal a client sees, and a session that goes on after it.
TEST_F(PolicyGateway, BlockedStatementGetsErrorAndSessionGoesOn) {
  fresh_table("pol_block", 3);
  Conn c = agent();
  ASSERT_TRUE(c.ok());

  Result r(PQexec(c, "TRUNCATE pol_block"));
  EXPECT_TRUE(blocked(r.get(), "rule \"truncate\""));
  EXPECT_EQ(PQtransactionStatus(c), PQTRANS_IDLE);

  // The session is usable, and the same statement again (a decision-cache hit) is
  // refused the same way.
  EXPECT_EQ(query_value(c, "SELECT count(*) FROM pol_block"), "3");
  Result again(PQexec(c, "TRUNCATE pol_block"));
  EXPECT_TRUE(blocked(again.get(), "rule \"truncate\""));
  EXPECT_EQ(query_value(c, "SELECT 6 * 7"), "42");
  EXPECT_EQ(count("pol_block"), "3");
}

// On the wire: exactly one ErrorResponse and a ReadyForQuery, nothing of whatever
// sluice did to refuse it.
TEST_F(PolicyGateway, BlockedQueryOnTheWireIsOneErrorThenReady) {
  fresh_table("pol_wire", 1);
  RawClient raw;
  ASSERT_TRUE(login(raw, gw().port(), "agent", kAgentPassword, "app"));
  const std::vector<Message> reply = simple_query(raw, "DROP TABLE pol_wire");
  std::string rendered;
  for (const Message& m : reply) rendered += render(m) + "\n";
  ASSERT_EQ(reply.size(), 2u) << rendered;
  ASSERT_EQ(reply[0].type, 'E') << rendered;
  auto fields = parse_fields(reply[0].body);
  EXPECT_EQ(fields['S'], "ERROR") << rendered;
  EXPECT_EQ(fields['V'], "ERROR") << rendered;
  EXPECT_EQ(fields['C'], "42501") << rendered;
  EXPECT_EQ(fields['M'].rfind(kBlockedPrefix, 0), 0u) << rendered;
  EXPECT_NE(fields['M'].find("rule \"drop-objects\""), std::string::npos) << rendered;
  EXPECT_FALSE(fields['H'].empty()) << rendered;
  EXPECT_EQ(fields.count('P'), 0u) << "a policy refusal has no cursor position: " << rendered;
  EXPECT_EQ(reply[1].type, 'Z');
  EXPECT_EQ(reply[1].body, "I");

  const std::vector<Message> next = simple_query(raw, "SELECT 1");
  EXPECT_EQ(first_error_code(next), "");
  ASSERT_FALSE(next.empty());
  EXPECT_EQ(next.back().type, 'Z');
  EXPECT_TRUE(table_exists("pol_wire"));
}

// Several Query messages in one write: each reply, refusal or result, comes back in
// order and for the right statement.
TEST_F(PolicyGateway, PipelinedQueriesGetTheirOwnReplies) {
  fresh_table("pol_order", 2);
  RawClient raw;
  ASSERT_TRUE(login(raw, gw().port(), "agent", kAgentPassword, "app"));
  ASSERT_TRUE(raw.send(wire::query("TRUNCATE pol_order") + wire::query("SELECT count(*) FROM pol_order") +
                       wire::query("DROP TABLE pol_order") + wire::query("SELECT 'last'")));
  const std::vector<Message> reply = raw.read_until_ready(4);
  std::string rendered;
  std::vector<std::string> summary;
  for (const Message& m : reply) {
    rendered += render(m) + "\n";
    if (m.type == 'E') {
      const std::string message = parse_fields(m.body)['M'];
      summary.push_back(message.find("rule \"truncate\"") != std::string::npos       ? "E:truncate"
                        : message.find("rule \"drop-objects\"") != std::string::npos ? "E:drop-objects"
                                                                                     : "E:other");
    } else if (m.type == 'D') {
      summary.push_back("D:" + m.body.substr(6));
    } else if (m.type == 'Z') {
      summary.push_back("Z");
    }
  }
  const std::vector<std::string> expected = {"E:truncate", "Z", "D:2", "Z", "E:drop-objects", "Z", "D:last", "Z"};
  EXPECT_EQ(summary, expected) << rendered;

  // A server error just before a refusal passes through unchanged.
  ASSERT_TRUE(raw.send(wire::query("SELECT 1/0") + wire::query("TRUNCATE pol_order")));
  const std::vector<Message> second = raw.read_until_ready(2);
  std::vector<std::string> codes;
  for (const Message& m : second)
    if (m.type == 'E') codes.push_back(parse_fields(m.body)['C']);
  EXPECT_EQ(codes, (std::vector<std::string>{"22012", "42501"}));
  EXPECT_EQ(count("pol_order"), "2");
}

// A refused statement longer than one read buffer, and an allowed one after it.
TEST_F(PolicyGateway, LongBlockedStatement) {
  fresh_table("pol_long", 1);
  Conn c = agent();
  ASSERT_TRUE(c.ok());
  const std::string padding(200000, 'x');
  Result r(PQexec(c, ("/* " + padding + " */ DROP TABLE pol_long").c_str()));
  EXPECT_TRUE(blocked(r.get(), "rule \"drop-objects\""));
  Result ok(PQexec(c, ("SELECT length('" + padding + "')").c_str()));
  ASSERT_TRUE(succeeded(ok.get()));
  EXPECT_STREQ(PQgetvalue(ok.get(), 0, 0), "200000");
  EXPECT_TRUE(table_exists("pol_long"));
}

// SQL that would be costly to parse is refused by sluice's limits, not policy rules;
// the session goes on.
TEST_F(PolicyGateway, StatementTooComplex) {
  Conn c = agent();
  ASSERT_TRUE(c.ok());
  const std::string deep = "SELECT " + std::string(1500, '(') + "1" + std::string(1500, ')');
  Result r(PQexec(c, deep.c_str()));
  EXPECT_TRUE(failed_with(r.get(), "54001"));
  EXPECT_EQ(field(r.get(), PG_DIAG_SEVERITY), "ERROR");
  EXPECT_EQ(query_value(c, "SELECT 1"), "1");
}

// A FunctionCall (fastpath, as libpq's large-object functions use) names a function
// by OID, which sluice cannot judge: refused below admin access.
TEST_F(PolicyGateway, FastpathRefusedBelowAdmin) {
  Conn c = agent();
  ASSERT_TRUE(c.ok());
  query(c, "BEGIN");
  const Oid oid = lo_creat(c, INV_READ | INV_WRITE);
  EXPECT_EQ(oid, InvalidOid);
  EXPECT_NE(std::string(PQerrorMessage(c)).find(kBlockedPrefix), std::string::npos) << PQerrorMessage(c);
  EXPECT_EQ(PQtransactionStatus(c), PQTRANS_INERROR);
  query(c, "ROLLBACK");
  EXPECT_EQ(query_value(c, "SELECT 1"), "1");

  Conn admin = gateway_conn();
  ASSERT_TRUE(admin.ok()) << admin.error();
  query(admin, "BEGIN");
  const Oid created = lo_creat(admin, INV_READ | INV_WRITE);
  EXPECT_NE(created, InvalidOid) << PQerrorMessage(admin);
  query(admin, "ROLLBACK");
}

// 2. A refused statement never reaches PostgreSQL; an allowed one does.
TEST_F(PolicyGateway, BlockedStatementNeverReachesPostgres) {
  fresh_table("pol_victim", 2);
  Conn c = agent();
  ASSERT_TRUE(c.ok());
  const std::string blocked_marker = "blocked-" + random_token(20);
  const std::string allowed_marker = "allowed-" + random_token(20);

  Result r(PQexec(c, ("DROP TABLE pol_victim /* " + blocked_marker + " */").c_str()));
  EXPECT_TRUE(blocked(r.get(), "rule \"drop-objects\""));
  // The same through the extended protocol.
  Result p(PQexecParams(c, ("TRUNCATE pol_victim /* " + blocked_marker + " */").c_str(), 0, nullptr, nullptr, nullptr,
                        nullptr, 0));
  EXPECT_TRUE(blocked(p.get(), "rule \"truncate\""));
  query(c, "SELECT count(*) FROM pol_victim /* " + allowed_marker + " */");

  // The allowed statement was sent after the refused ones on the same connection:
  // once it is in the log, they would be too.
  EXPECT_TRUE(pg_log_shows(allowed_marker)) << "an allowed statement is missing from PostgreSQL's log";
  EXPECT_EQ(pg().log().find(blocked_marker), std::string::npos)
      << "a refused statement's text reached PostgreSQL:\n" << pg().log();
  EXPECT_TRUE(table_exists("pol_victim"));
  EXPECT_EQ(count("pol_victim"), "2");
}

// 3. One Query holding several statements is judged whole: one refused, none runs.
TEST_F(PolicyGateway, MultiStatementQueryWithBlockedPartRunsNothing) {
  fresh_table("pol_multi");
  Conn c = agent();
  ASSERT_TRUE(c.ok());
  Result r(PQexec(c, "INSERT INTO pol_multi VALUES (1); DROP TABLE pol_multi; INSERT INTO pol_multi VALUES (2)"));
  EXPECT_TRUE(blocked(r.get(), "rule \"drop-objects\""));
  EXPECT_EQ(PQtransactionStatus(c), PQTRANS_IDLE);
  EXPECT_TRUE(table_exists("pol_multi"));
  EXPECT_EQ(count("pol_multi"), "0");
  EXPECT_EQ(query_value(c, "SELECT count(*) FROM pol_multi"), "0");
}

// 4. A refusal inside a transaction is an error like any other: the transaction is
// aborted and COMMIT rolls it back.
TEST_F(PolicyGateway, BlockedStatementAbortsTransaction) {
  fresh_table("pol_txn");
  Conn c = agent();
  ASSERT_TRUE(c.ok());
  query(c, "BEGIN");
  query(c, "INSERT INTO pol_txn VALUES (1)");
  EXPECT_EQ(PQtransactionStatus(c), PQTRANS_INTRANS);

  Result r(PQexec(c, "TRUNCATE pol_txn"));
  EXPECT_TRUE(blocked(r.get(), "rule \"truncate\""));
  EXPECT_EQ(PQtransactionStatus(c), PQTRANS_INERROR);

  Result s(PQexec(c, "SELECT 1"));
  EXPECT_TRUE(failed_with(s.get(), "25P02"));
  EXPECT_NE(field(s.get(), PG_DIAG_MESSAGE_PRIMARY).find("current transaction is aborted"), std::string::npos);
  // Another refused statement in the aborted transaction is still an error (which
  // one, 25P02 or 42501, PostgreSQL's or sluice's, is not specified) and still
  // does not run.
  Result again(PQexec(c, "DROP TABLE pol_txn"));
  EXPECT_EQ(PQresultStatus(again.get()), PGRES_FATAL_ERROR) << describe_result(again.get());
  EXPECT_EQ(PQtransactionStatus(c), PQTRANS_INERROR);

  Result commit(PQexec(c, "COMMIT"));
  EXPECT_EQ(PQresultStatus(commit.get()), PGRES_COMMAND_OK) << describe_result(commit.get());
  EXPECT_STREQ(PQcmdStatus(commit.get()), "ROLLBACK");
  EXPECT_EQ(PQtransactionStatus(c), PQTRANS_IDLE);
  EXPECT_EQ(count("pol_txn"), "0");
  EXPECT_TRUE(table_exists("pol_txn"));

  // After the rollback a refusal is sluice's again.
  Result after(PQexec(c, "TRUNCATE pol_txn"));
  EXPECT_TRUE(blocked(after.get(), "rule \"truncate\""));
  EXPECT_EQ(query_value(c, "SELECT 'fine'"), "fine");
}

// 5a. PQprepare of a refused statement: no prepared statement comes of it.
TEST_F(PolicyGateway, PrepareOfBlockedStatementFails) {
  fresh_table("pol_prep", 4);
  Conn c = agent();
  ASSERT_TRUE(c.ok());
  const std::string marker = "prep-" + random_token(20);
  Result prep(PQprepare(c, "pol_prep_stmt", ("TRUNCATE pol_prep /* " + marker + " */").c_str(), 0, nullptr));
  EXPECT_TRUE(blocked(prep.get(), "rule \"truncate\""));
  EXPECT_EQ(PQtransactionStatus(c), PQTRANS_IDLE);

  Result exec(PQexecPrepared(c, "pol_prep_stmt", 0, nullptr, nullptr, nullptr, 0));
  EXPECT_TRUE(failed_with(exec.get(), "26000"));  // invalid_sql_statement_name
  EXPECT_NE(field(exec.get(), PG_DIAG_MESSAGE_PRIMARY).find("does not exist"), std::string::npos)
      << describe_result(exec.get());

  // The name is free: an allowed statement can take it.
  Result ok(PQprepare(c, "pol_prep_stmt", "SELECT count(*) FROM pol_prep", 0, nullptr));
  EXPECT_TRUE(succeeded(ok.get()));
  Result run(PQexecPrepared(c, "pol_prep_stmt", 0, nullptr, nullptr, nullptr, 0));
  ASSERT_TRUE(succeeded(run.get()));
  EXPECT_STREQ(PQgetvalue(run.get(), 0, 0), "4");
  EXPECT_EQ(count("pol_prep"), "4");
  EXPECT_EQ(pg().log().find(marker), std::string::npos) << "the refused Parse's text reached PostgreSQL";
}

// 5b. PQexecParams (Parse/Bind/Execute with parameters) of a refused statement.
TEST_F(PolicyGateway, ExecParamsOfBlockedStatementFails) {
  Conn c = agent();
  ASSERT_TRUE(c.ok());
  const char* values[] = {"/etc/passwd"};
  Result r(PQexecParams(c, "SELECT pg_read_file($1)", 1, nullptr, values, nullptr, nullptr, 0));
  EXPECT_TRUE(blocked(r.get(), "rule \"server-files-and-large-objects\""));
  EXPECT_EQ(PQtransactionStatus(c), PQTRANS_IDLE);

  const char* n[] = {"41"};
  Result ok(PQexecParams(c, "SELECT $1::int + 1", 1, nullptr, n, nullptr, nullptr, 0));
  ASSERT_TRUE(succeeded(ok.get()));
  EXPECT_STREQ(PQgetvalue(ok.get(), 0, 0), "42");
}

// 5c. Pipeline mode: the refused statement is the error of its pipeline segment, the
// rest of the segment is skipped, Sync recovers, and the next pipeline works.
TEST_F(PolicyGateway, PipelineWithBlockedStatement) {
  fresh_table("pol_pipe");
  Conn c = agent();
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(PQenterPipelineMode(c), 1);
  ASSERT_EQ(PQsendQueryParams(c, "INSERT INTO pol_pipe VALUES (1)", 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQsendQueryParams(c, "DROP TABLE pol_pipe", 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQsendQueryParams(c, "INSERT INTO pol_pipe VALUES (3)", 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQpipelineSync(c), 1);

  Result first(PQgetResult(c));
  EXPECT_TRUE(succeeded(first.get()));
  EXPECT_EQ(PQgetResult(c), nullptr);
  Result second(PQgetResult(c));
  EXPECT_TRUE(blocked(second.get(), "rule \"drop-objects\""));
  EXPECT_EQ(PQgetResult(c), nullptr);
  Result third(PQgetResult(c));
  ASSERT_NE(third.get(), nullptr);
  EXPECT_EQ(PQresultStatus(third.get()), PGRES_PIPELINE_ABORTED) << describe_result(third.get());
  EXPECT_EQ(PQgetResult(c), nullptr);
  Result sync(PQgetResult(c));
  ASSERT_NE(sync.get(), nullptr);
  EXPECT_EQ(PQresultStatus(sync.get()), PGRES_PIPELINE_SYNC) << describe_result(sync.get());
  EXPECT_EQ(PQtransactionStatus(c), PQTRANS_IDLE);

  // Until Sync the three statements shared one implicit transaction, so the error
  // rolled back the first INSERT too (as PostgreSQL does for any error there).
  EXPECT_TRUE(table_exists("pol_pipe"));
  EXPECT_EQ(count("pol_pipe"), "0");

  // A new pipeline on the same connection.
  ASSERT_EQ(PQsendQueryParams(c, "INSERT INTO pol_pipe VALUES (4)", 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQsendQueryParams(c, "SELECT count(*) FROM pol_pipe", 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQpipelineSync(c), 1);
  Result insert(PQgetResult(c));
  EXPECT_TRUE(succeeded(insert.get()));
  EXPECT_EQ(PQgetResult(c), nullptr);
  Result select(PQgetResult(c));
  ASSERT_TRUE(succeeded(select.get()));
  EXPECT_STREQ(PQgetvalue(select.get(), 0, 0), "1");
  EXPECT_EQ(PQgetResult(c), nullptr);
  Result sync2(PQgetResult(c));
  ASSERT_NE(sync2.get(), nullptr);
  EXPECT_EQ(PQresultStatus(sync2.get()), PGRES_PIPELINE_SYNC);
  EXPECT_EQ(PQexitPipelineMode(c), 1) << PQerrorMessage(c);
  EXPECT_EQ(query_value(c, "SELECT count(*) FROM pol_pipe"), "1");
}

// A pipeline segment that already failed in PostgreSQL skips the refused statement
// (the server never answers for it); the next segment's refusal is still sluice's.
TEST_F(PolicyGateway, PipelineRefusalAfterServerError) {
  fresh_table("pol_pipe2", 1);
  Conn c = agent();
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(PQenterPipelineMode(c), 1);
  ASSERT_EQ(PQsendQueryParams(c, "SELECT 1/0", 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQsendQueryParams(c, "TRUNCATE pol_pipe2", 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQpipelineSync(c), 1);
  ASSERT_EQ(PQsendQueryParams(c, "DROP TABLE pol_pipe2", 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQsendQueryParams(c, "SELECT count(*) FROM pol_pipe2", 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQpipelineSync(c), 1);

  Result division(PQgetResult(c));
  EXPECT_TRUE(failed_with(division.get(), "22012"));
  EXPECT_EQ(PQgetResult(c), nullptr);
  Result skipped(PQgetResult(c));
  ASSERT_NE(skipped.get(), nullptr);
  EXPECT_EQ(PQresultStatus(skipped.get()), PGRES_PIPELINE_ABORTED) << describe_result(skipped.get());
  EXPECT_EQ(PQgetResult(c), nullptr);
  Result sync1(PQgetResult(c));
  ASSERT_NE(sync1.get(), nullptr);
  EXPECT_EQ(PQresultStatus(sync1.get()), PGRES_PIPELINE_SYNC);

  Result drop(PQgetResult(c));
  EXPECT_TRUE(blocked(drop.get(), "rule \"drop-objects\""));
  EXPECT_EQ(PQgetResult(c), nullptr);
  Result skipped2(PQgetResult(c));
  ASSERT_NE(skipped2.get(), nullptr);
  EXPECT_EQ(PQresultStatus(skipped2.get()), PGRES_PIPELINE_ABORTED) << describe_result(skipped2.get());
  EXPECT_EQ(PQgetResult(c), nullptr);
  Result sync2(PQgetResult(c));
  ASSERT_NE(sync2.get(), nullptr);
  EXPECT_EQ(PQresultStatus(sync2.get()), PGRES_PIPELINE_SYNC);
  EXPECT_EQ(PQexitPipelineMode(c), 1) << PQerrorMessage(c);
  EXPECT_EQ(query_value(c, "SELECT count(*) FROM pol_pipe2"), "1");
}

// 6. Syntax errors: sluice parses first and answers as PostgreSQL would.
TEST_F(PolicyGateway, SyntaxErrorLikePostgres) {
  Conn c = agent();
  Conn d = direct_conn();
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(d.ok()) << d.error();
  for (const char* sql : {"SELEC 1", "SELECT 1 FROM items WHERE", "SELECT (1"}) {
    SCOPED_TRACE(sql);
    Result via(PQexec(c, sql));
    Result direct(PQexec(d, sql));
    EXPECT_TRUE(failed_with(via.get(), "42601"));
    EXPECT_EQ(field(via.get(), PG_DIAG_SEVERITY), "ERROR");
    EXPECT_EQ(field(via.get(), PG_DIAG_MESSAGE_PRIMARY), field(direct.get(), PG_DIAG_MESSAGE_PRIMARY));
    EXPECT_EQ(field(via.get(), PG_DIAG_STATEMENT_POSITION), field(direct.get(), PG_DIAG_STATEMENT_POSITION));
  }
  Result via(PQexec(c, "SELEC 1"));
  EXPECT_EQ(field(via.get(), PG_DIAG_STATEMENT_POSITION), "1");
  EXPECT_EQ(field(via.get(), PG_DIAG_MESSAGE_PRIMARY), "syntax error at or near \"SELEC\"");

  // In a Parse too.
  Result prep(PQprepare(c, "pol_syntax", "SELEC 1", 0, nullptr));
  EXPECT_TRUE(failed_with(prep.get(), "42601"));
  EXPECT_EQ(field(prep.get(), PG_DIAG_STATEMENT_POSITION), "1");
  EXPECT_EQ(PQtransactionStatus(c), PQTRANS_IDLE);
  EXPECT_EQ(query_value(c, "SELECT 'still here'"), "still here");
}

// 7. A read-only group: sluice refuses writes, and the backend session itself is
// read-only, so a write sluice cannot see (inside a function) is stopped by PostgreSQL.
TEST_F(PolicyGateway, ReadOnlyGroup) {
  fresh_table("pol_ro", 1);
  // Created directly by the superuser, not through sluice.
  pg().superuser_exec(
      "CREATE OR REPLACE FUNCTION pol_ro_writer() RETURNS int LANGUAGE plpgsql VOLATILE AS "
      "$$ BEGIN INSERT INTO pol_ro VALUES (100); RETURN 1; END $$");
  Conn c = reader();
  ASSERT_TRUE(c.ok());

  EXPECT_EQ(query_value(c, "SELECT count(*) FROM pol_ro"), "1");
  Result insert(PQexec(c, "INSERT INTO pol_ro VALUES (2)"));
  EXPECT_TRUE(blocked(insert.get(), "read-only"));
  EXPECT_TRUE(sluice_logged_rule("access-mode"));

  EXPECT_EQ(query_value(c, "SHOW default_transaction_read_only"), "on");
  Result set(PQexec(c, "SET default_transaction_read_only = off"));
  EXPECT_TRUE(blocked(set.get(), "read-only"));
  EXPECT_EQ(query_value(c, "SHOW default_transaction_read_only"), "on");

  Result writer(PQexec(c, "SELECT pol_ro_writer()"));
  EXPECT_TRUE(failed_with(writer.get(), "25006"));  // read_only_sql_transaction, from PostgreSQL
  EXPECT_EQ(field(writer.get(), PG_DIAG_MESSAGE_PRIMARY).rfind(kBlockedPrefix, 0), std::string::npos);
  EXPECT_EQ(count("pol_ro"), "1");
  EXPECT_EQ(PQtransactionStatus(c), PQTRANS_IDLE);
}

// Every way of making the session or a transaction read-write is refused.
TEST_F(PolicyGateway, ReadOnlyCannotBeLifted) {
  fresh_table("pol_ro_lift");
  pg().superuser_exec(
      "CREATE OR REPLACE FUNCTION pol_ro_lift_writer() RETURNS int LANGUAGE plpgsql VOLATILE AS "
      "$$ BEGIN INSERT INTO pol_ro_lift VALUES (1); RETURN 1; END $$");
  Conn c = reader();
  ASSERT_TRUE(c.ok());
  for (const char* sql : {
           "BEGIN READ WRITE",
           "START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE",
           "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
           "SET transaction_read_only = off",
           "SET default_transaction_read_only TO false",
           "SELECT set_config('default_transaction_read_only', 'off', false)",
       }) {
    SCOPED_TRACE(sql);
    Result r(PQexec(c, sql));
    EXPECT_EQ(sqlstate(r.get()), "42501") << describe_result(r.get());
    EXPECT_EQ(PQtransactionStatus(c), PQTRANS_IDLE);
  }
  // Inside an explicit transaction, SET TRANSACTION READ WRITE is refused too.
  query(c, "BEGIN");
  Result set_tx(PQexec(c, "SET TRANSACTION READ WRITE"));
  EXPECT_EQ(sqlstate(set_tx.get()), "42501") << describe_result(set_tx.get());
  query(c, "ROLLBACK");
  // RESET goes back to the pinned value.
  query(c, "RESET default_transaction_read_only");
  EXPECT_EQ(query_value(c, "SHOW default_transaction_read_only"), "on");
  Result writer(PQexec(c, "SELECT pol_ro_lift_writer()"));
  EXPECT_TRUE(failed_with(writer.get(), "25006"));
  EXPECT_EQ(count("pol_ro_lift"), "0");
}

// A refusal that names the user names the one who sent the statement, also when
// another user of the same groups sent it first (the decision cache is per shard).
TEST_F(PolicyGateway, RefusalNamesItsOwnUser) {
  Conn first = reader();
  Conn second = connected("reader2", kReaderPassword);
  ASSERT_TRUE(first.ok() && second.ok());
  const char* sql = "SET default_transaction_read_only = off";
  Result a(PQexec(first, sql));
  Result b(PQexec(second, sql));
  EXPECT_TRUE(blocked(a.get(), "read-only"));
  EXPECT_TRUE(blocked(b.get(), "read-only"));
  const std::string message_a = field(a.get(), PG_DIAG_MESSAGE_PRIMARY);
  const std::string message_b = field(b.get(), PG_DIAG_MESSAGE_PRIMARY);
  EXPECT_NE(message_a.find("\"reader\""), std::string::npos) << message_a;
  EXPECT_NE(message_b.find("\"reader2\""), std::string::npos) << "reader2 is told about another user: " << message_b;
}

// 8. A user whose groups do not grant the target is refused at login.
TEST_F(PolicyGateway, UserWithoutTargetRefusedAtLogin) {
  Conn c = gateway_conn("outsider", kOutsiderPassword);
  EXPECT_FALSE(c.ok());
  EXPECT_NE(c.error().find("permission denied"), std::string::npos) << c.error();

  RawClient raw;
  ASSERT_TRUE(raw.connect(gw().port()));
  const RawClient::StartupResult r = raw.startup("outsider", "app", kOutsiderPassword);
  EXPECT_FALSE(r.ready);
  EXPECT_EQ(r.error.count('C') ? r.error.at('C') : "", "42501");
  EXPECT_EQ(r.error.count('V') ? r.error.at('V') : "", "FATAL");
  EXPECT_TRUE(raw.wait_closed(5s));

  // The target the group does grant works.
  Conn md5 = gateway_conn("outsider", kOutsiderPassword, "app_md5");
  EXPECT_TRUE(md5.ok()) << md5.error();
  if (md5.ok()) {
    EXPECT_EQ(query_value(md5, "SELECT current_user"), "md5_user");
  }
  EXPECT_TRUE(gateway_serves());
}

// 9. search_path is pinned to the target's (default: public).
TEST_F(PolicyGateway, SearchPathIsPinned) {
  Conn c = agent();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(query_value(c, "SHOW search_path"), "public");

  Result set(PQexec(c, "SET search_path = other"));
  EXPECT_TRUE(blocked(set.get(), "search_path"));
  EXPECT_TRUE(sluice_logged_rule("pinned-setting"));
  Result fn(PQexec(c, "SELECT set_config('search_path', 'other, public', false)"));
  EXPECT_TRUE(blocked(fn.get(), "search_path"));
  EXPECT_EQ(query_value(c, "SHOW search_path"), "public");

  // Setting it to its pinned value, or back to it, is fine.
  query(c, "SET search_path = public");
  query(c, "RESET search_path");
  EXPECT_EQ(query_value(c, "SHOW search_path"), "public");

  // A search_path in the startup packet does not override the pin.
  RawClient raw;
  ASSERT_TRUE(raw.connect(gw().port()));
  const RawClient::StartupResult login_result =
      raw.startup("agent", "app", kAgentPassword, {{"search_path", "other"}});
  ASSERT_TRUE(login_result.ready);
  const std::vector<Message> show = simple_query(raw, "SHOW search_path");
  bool saw_public = false;
  for (const Message& m : show)
    if (m.type == 'D') saw_public = m.body.find("public") != std::string::npos && m.body.find("other") == std::string::npos;
  EXPECT_TRUE(saw_public) << [&] {
    std::string s;
    for (const Message& m : show) s += render(m) + "\n";
    return s;
  }();
}

// 10. Table scopes: read_deny = ["public.secret*"].
TEST_F(PolicyGateway, ReadScopeDeny) {
  fresh_table("secret_pol_scope", 2);
  fresh_table("pol_scope_ok", 3);
  Conn c = scoped();
  ASSERT_TRUE(c.ok());
  for (const char* sql : {
           "SELECT * FROM secret_pol_scope",
           "SELECT * FROM public.secret_pol_scope",
           "SELECT * FROM PUBLIC.SECRET_POL_SCOPE",
           "SELECT * FROM \"public\".\"secret_pol_scope\"",
           "SELECT o.i FROM pol_scope_ok o JOIN secret_pol_scope s ON s.i = o.i",
           "SELECT (SELECT count(*) FROM secret_pol_scope)",
           "SELECT * FROM pol_scope_ok WHERE i IN (SELECT i FROM secret_pol_scope)",
           "WITH x AS (SELECT * FROM secret_pol_scope) SELECT * FROM x",
           "TABLE secret_pol_scope",
           "COPY secret_pol_scope TO STDOUT",
           "COPY (SELECT i FROM secret_pol_scope) TO STDOUT",
           "DECLARE pol_cur CURSOR WITH HOLD FOR SELECT * FROM secret_pol_scope",
           "PREPARE pol_peek AS SELECT * FROM secret_pol_scope",
           "CREATE VIEW pol_scope_view AS SELECT * FROM secret_pol_scope",
           "CREATE TABLE pol_scope_copy AS SELECT * FROM secret_pol_scope",
           "INSERT INTO pol_scope_ok SELECT i FROM secret_pol_scope",
       }) {
    SCOPED_TRACE(sql);
    Result r(PQexec(c, sql));
    EXPECT_TRUE(blocked(r.get(), "secret_pol_scope"));
  }
  EXPECT_TRUE(sluice_logged_rule("read-scope"));
  // Through the extended protocol too.
  Result ext(PQexecParams(c, "SELECT * FROM secret_pol_scope WHERE i = $1", 1, nullptr,
                          std::vector<const char*>{"1"}.data(), nullptr, nullptr, 0));
  EXPECT_TRUE(blocked(ext.get(), "secret_pol_scope"));
  EXPECT_TRUE(table_exists("pol_scope_ok"));
  EXPECT_FALSE(table_exists("pol_scope_view"));
  EXPECT_FALSE(table_exists("pol_scope_copy"));

  EXPECT_EQ(query_value(c, "SELECT count(*) FROM pol_scope_ok"), "3");
  EXPECT_EQ(query_value(c, "SELECT count(*) FROM public.pol_scope_ok"), "3");
  // A CTE named like a denied table, not reading it, is not the table.
  EXPECT_EQ(query_value(c, "WITH secret_pol_scope AS (SELECT 7 AS i) SELECT i FROM secret_pol_scope"), "7");
  EXPECT_EQ(query_value(c, "WITH secret_pol_scope AS (SELECT i FROM pol_scope_ok) SELECT count(*) FROM secret_pol_scope"),
            "3");
}

// 11. psql end to end: a script with a refused statement in the middle.
TEST_F(PolicyGateway, PsqlScriptWithBlockedStatement) {
  fresh_table("pol_psql", 5);
  const std::string dir = make_temp_dir("sluice-it-policy-psql-", false);
  write_file(dir + "/script.sql",
             "\\pset pager off\n"
             "SELECT 'before-block' AS step;\n"
             "TRUNCATE pol_psql;\n"
             "SELECT 'after-block' AS step;\n"
             "INSERT INTO pol_psql VALUES (6);\n"
             "SELECT 'rows=' || count(*) AS rows_now FROM pol_psql;\n");
  auto run = [&](const std::string& on_error_stop) {
    ProgramOptions o;
    o.cwd = dir;
    o.timeout = 30s;
    o.env = {std::string("PGPASSWORD=") + kAgentPassword, "PGCONNECT_TIMEOUT=10"};
    return run_program({pg().bin("psql"), "-X", "-v", "ON_ERROR_STOP=" + on_error_stop, "-h", "127.0.0.1", "-p",
                        std::to_string(gw().port()), "-U", "agent", "-d", "app", "-f", "script.sql"},
                       o);
  };

  const ProgramResult go_on = run("0");
  EXPECT_FALSE(go_on.timed_out);
  EXPECT_EQ(go_on.exit_code, 0) << go_on.out << go_on.err;
  EXPECT_NE(go_on.out.find("before-block"), std::string::npos) << go_on.out;
  EXPECT_NE(go_on.out.find("after-block"), std::string::npos) << go_on.out;
  EXPECT_NE(go_on.out.find("INSERT 0 1"), std::string::npos) << go_on.out;
  EXPECT_NE(go_on.out.find("rows=6"), std::string::npos) << go_on.out;
  EXPECT_NE(go_on.err.find("script.sql:3: ERROR:  statement blocked by sluice policy: rule \"truncate\""),
            std::string::npos)
      << go_on.err;
  EXPECT_NE(go_on.err.find("HINT:  "), std::string::npos) << go_on.err;
  EXPECT_EQ(count("pol_psql"), "6");

  const ProgramResult stop = run("1");
  EXPECT_EQ(stop.exit_code, 3) << stop.out << stop.err;
  EXPECT_NE(stop.out.find("before-block"), std::string::npos) << stop.out;
  EXPECT_EQ(stop.out.find("after-block"), std::string::npos) << stop.out;
  EXPECT_NE(stop.err.find("statement blocked by sluice policy"), std::string::npos) << stop.err;
  EXPECT_EQ(count("pol_psql"), "6");
  remove_tree(dir);
}

}  // namespace
}  // namespace sluice::it
