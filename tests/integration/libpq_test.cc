// libpq through sluice gives the same answers as libpq connected directly: error
// fields, notices, COPY in every format, LISTEN/NOTIFY, cancel, the extended protocol
// and pipeline mode.
#include <gtest/gtest.h>
#include <poll.h>

#include <sstream>
#include <thread>

#include "tests/integration/fixture.h"

namespace sluice::it {
namespace {

using Clock = std::chrono::steady_clock;

class Libpq : public GatewayTest {
 protected:
  void SetUp() override {
    GatewayTest::SetUp();
    if (HasFatalFailure()) return;
    direct_ = direct_conn();
    ASSERT_TRUE(direct_.ok()) << direct_.error();
    via_ = gateway_conn();
    ASSERT_TRUE(via_.ok()) << via_.error();
  }
  void TearDown() override {
    direct_.reset();
    via_.reset();
    GatewayTest::TearDown();
  }

  // Runs sql on both connections; returns both renderings (direct, via). The only
  // thing normalized is the session's temporary schema (pg_temp_<backend slot>).
  std::pair<std::string, std::string> both(const std::string& sql) {
    Result d(PQexec(direct_, sql.c_str()));
    Result v(PQexec(via_, sql.c_str()));
    return {normalize_temp_schema(describe_result(d.get())), normalize_temp_schema(describe_result(v.get()))};
  }

  static std::string normalize_temp_schema(std::string text) {
    for (size_t at = text.find("pg_temp_"); at != std::string::npos; at = text.find("pg_temp_", at + 1)) {
      size_t end = at + 8;
      while (end < text.size() && isdigit(static_cast<unsigned char>(text[end]))) ++end;
      text.replace(at + 8, end - at - 8, "N");
    }
    return text;
  }

  Conn direct_;
  Conn via_;
};

TEST_F(Libpq, ErrorsCarryEveryFieldLikeDirect) {
  const char* statements[] = {
      // unique_violation: schema, table, constraint, detail
      "INSERT INTO items (id, name, price) VALUES (1, 'dup', 1)",
      // check_violation: constraint, detail with the failing row
      "INSERT INTO items (id, name, price) VALUES (5001, 'neg', -5)",
      // not_null_violation: column
      "INSERT INTO items (id, name, price) VALUES (5002, NULL, 5)",
      // foreign_key_violation
      "INSERT INTO orders (item_id, account_id, qty) VALUES (999999, 1, 1)",
      // syntax error with a position
      "SELECT id FROM items WHERE",
      // undefined function with a hint and a position
      "SELECT no_such_function(1, 'a')",
      // undefined column with a hint
      "SELECT nam FROM items",
      // datatype in the error
      "SELECT 'abc'::int",
      // an error raised inside a function: context, internal query/position
      "DO $$ BEGIN PERFORM 1/0; END $$",
      "DO $$ BEGIN EXECUTE 'SELECT * FROM nonexistent_table'; END $$",
      // RAISE with every user-settable field
      ("DO $$ BEGIN RAISE EXCEPTION 'custom failure' USING DETAIL = 'the detail', HINT = 'the hint', "
       "ERRCODE = 'P0001', COLUMN = 'col', CONSTRAINT = 'cons', DATATYPE = 'dt', TABLE = 'tab', SCHEMA = 'sch'; END $$"),
      "SELECT * FROM items WHERE id = 1 FOR UPDATE NOWAIT; SELECT 1/0",
  };
  for (const char* sql : statements) {
    SCOPED_TRACE(sql);
    Result d(PQexec(direct_, sql));
    Result v(PQexec(via_, sql));
    ASSERT_EQ(PQresultStatus(d.get()), PGRES_FATAL_ERROR);
    EXPECT_EQ(describe_result(v.get()), describe_result(d.get()));
    EXPECT_STREQ(PQresultErrorMessage(v.get()), PQresultErrorMessage(d.get()));
  }
  // Spot-check that the comparison was not vacuous.
  Result v(PQexec(via_, "INSERT INTO items (id, name, price) VALUES (1, 'dup', 1)"));
  EXPECT_STREQ(PQresultErrorField(v.get(), PG_DIAG_SEVERITY), "ERROR");
  EXPECT_STREQ(PQresultErrorField(v.get(), PG_DIAG_SQLSTATE), "23505");
  EXPECT_STREQ(PQresultErrorField(v.get(), PG_DIAG_SCHEMA_NAME), "public");
  EXPECT_STREQ(PQresultErrorField(v.get(), PG_DIAG_TABLE_NAME), "items");
  EXPECT_STREQ(PQresultErrorField(v.get(), PG_DIAG_CONSTRAINT_NAME), "items_pkey");
  EXPECT_STREQ(PQresultErrorField(v.get(), PG_DIAG_MESSAGE_DETAIL), "Key (id)=(1) already exists.");
  v.reset(PQexec(via_, "INSERT INTO items (id, name, price) VALUES (5002, NULL, 5)"));
  EXPECT_STREQ(PQresultErrorField(v.get(), PG_DIAG_COLUMN_NAME), "name");
  v.reset(PQexec(via_, "SELECT no_such_function(1, 'a')"));
  EXPECT_NE(PQresultErrorField(v.get(), PG_DIAG_MESSAGE_HINT), nullptr);
  EXPECT_STREQ(PQresultErrorField(v.get(), PG_DIAG_STATEMENT_POSITION), "8");
  // The session is still usable after errors.
  EXPECT_EQ(query_value(via_, "SELECT 'still alive'"), "still alive");
}

struct Notices {
  std::vector<std::string> seen;
  static void receive(void* arg, const PGresult* r) {
    static_cast<Notices*>(arg)->seen.push_back(error_fields(r));
  }
};

TEST_F(Libpq, NoticesLikeDirect) {
  Notices d, v;
  PQsetNoticeReceiver(direct_, &Notices::receive, &d);
  PQsetNoticeReceiver(via_, &Notices::receive, &v);
  const char* statements[] = {
      ("DO $$ BEGIN RAISE NOTICE 'hello %', 42; RAISE NOTICE 'with detail' USING DETAIL = 'd', HINT = 'h'; "
       "RAISE WARNING 'a warning'; RAISE INFO 'info'; RAISE LOG 'not sent'; END $$"),
      "SELECT noisy(1), noisy(2)",
      "DROP TABLE IF EXISTS does_not_exist",
      "SET client_min_messages = debug1",
      "DO $$ BEGIN RAISE DEBUG 'a debug line'; END $$",
      "RESET client_min_messages",
      "DO $$ BEGIN FOR i IN 1..200 LOOP RAISE NOTICE 'n % %', i, repeat('y', i * 10); END LOOP; END $$",
  };
  for (const char* sql : statements) {
    const auto [dr, vr] = both(sql);
    EXPECT_EQ(vr, dr) << sql;
  }
  ASSERT_GE(d.seen.size(), 207u);
  EXPECT_EQ(v.seen, d.seen);
}

// Everything COPY TO STDOUT sends, concatenated, plus the final result.
std::string copy_out(PGconn* conn, const std::string& sql, std::string* status = nullptr) {
  Result r(PQexec(conn, sql.c_str()));
  if (PQresultStatus(r.get()) != PGRES_COPY_OUT) {
    ADD_FAILURE() << sql << ": " << PQerrorMessage(conn);
    return "";
  }
  std::string data;
  for (;;) {
    char* buf = nullptr;
    const int n = PQgetCopyData(conn, &buf, 0);
    if (n > 0) data.append(buf, static_cast<size_t>(n));
    if (buf) PQfreemem(buf);
    if (n < 0) break;
  }
  r.reset(PQgetResult(conn));
  if (status) *status = describe_result(r.get());
  EXPECT_EQ(PQresultStatus(r.get()), PGRES_COMMAND_OK) << PQerrorMessage(conn);
  while (Result extra{PQgetResult(conn)}) {
  }
  return data;
}

// COPY FROM STDIN with data sent in awkward chunk sizes; returns the final result.
std::string copy_in(PGconn* conn, const std::string& sql, const std::string& data, const char* fail = nullptr) {
  Result r(PQexec(conn, sql.c_str()));
  if (PQresultStatus(r.get()) != PGRES_COPY_IN) {
    ADD_FAILURE() << sql << ": " << PQerrorMessage(conn);
    return "";
  }
  size_t pos = 0;
  size_t chunk = 1;
  while (pos < data.size()) {
    const size_t n = std::min(chunk, data.size() - pos);
    EXPECT_EQ(PQputCopyData(conn, data.data() + pos, static_cast<int>(n)), 1);
    pos += n;
    chunk = chunk * 3 + 7;  // 1, 10, 37, ... up to 64 KiB pieces
    if (chunk > 65536) chunk = 8191;
  }
  EXPECT_EQ(PQputCopyEnd(conn, fail), 1);
  r.reset(PQgetResult(conn));
  const std::string out = describe_result(r.get());
  while (Result extra{PQgetResult(conn)}) {
  }
  return out;
}

TEST_F(Libpq, CopyInAndOutEveryFormatByteForByte) {
  const std::string source =
      "SELECT g AS a, md5(g::text) || repeat(chr(65 + g % 26), g % 200) AS b, (g * 1.5)::numeric AS c, "
      "CASE WHEN g % 10 = 0 THEN NULL ELSE E'tab\\there \\\\ back' END AS d, "
      "DATE '2000-01-01' + g AS e FROM generate_series(1, 30000) g";
  for (const char* format : {"text", "csv", "binary"}) {
    SCOPED_TRACE(format);
    const std::string opts = std::string(" (FORMAT ") + format + ")";
    // Reference bytes, directly.
    std::string dstatus, vstatus;
    const std::string expected = copy_out(direct_, "COPY (" + source + ") TO STDOUT" + opts, &dstatus);
    ASSERT_GT(expected.size(), 4u << 20) << "want several MB to cross buffer boundaries";
    const std::string got = copy_out(via_, "COPY (" + source + ") TO STDOUT" + opts, &vstatus);
    EXPECT_EQ(got.size(), expected.size());
    EXPECT_TRUE(got == expected) << "COPY TO STDOUT bytes differ: " << explain_difference(got, expected);
    EXPECT_EQ(vstatus, dstatus);

    // Load the same bytes through sluice, read them back, compare again.
    const std::string table = std::string("copy_") + format;
    query(via_, "CREATE TEMP TABLE " + table + " (a int, b text, c numeric, d text, e date)");
    query(direct_, "CREATE TEMP TABLE " + table + " (a int, b text, c numeric, d text, e date)");
    const std::string vin = copy_in(via_, "COPY " + table + " FROM STDIN" + opts, expected);
    const std::string din = copy_in(direct_, "COPY " + table + " FROM STDIN" + opts, expected);
    EXPECT_EQ(vin, din);
    EXPECT_NE(vin.find("tag=COPY 30000"), std::string::npos) << vin;
    // Heap order after a bulk COPY is not insertion order: read back sorted.
    const std::string back = copy_out(via_, "COPY (SELECT * FROM " + table + " ORDER BY a) TO STDOUT" + opts);
    EXPECT_TRUE(back == expected) << "round trip through sluice changed the data: " << explain_difference(back, expected);
  }
}

TEST_F(Libpq, CopyFailAndCopyErrorsLikeDirect) {
  query(via_, "CREATE TEMP TABLE cf (a int, b text)");
  query(direct_, "CREATE TEMP TABLE cf (a int, b text)");
  // CopyFail from the client.
  EXPECT_EQ(copy_in(via_, "COPY cf FROM STDIN", "1\tx\n2\ty\n", "client gave up"),
            copy_in(direct_, "COPY cf FROM STDIN", "1\tx\n2\ty\n", "client gave up"));
  // Bad data: the server ends the COPY with an error while data is still arriving.
  std::string bad;
  for (int i = 0; i < 50000; ++i) bad += std::to_string(i) + "\tok\n";
  bad += "not-a-number\toops\n";
  for (int i = 0; i < 50000; ++i) bad += std::to_string(i) + "\tafter\n";
  const std::string v = copy_in(via_, "COPY cf FROM STDIN", bad);
  const std::string d = copy_in(direct_, "COPY cf FROM STDIN", bad);
  EXPECT_NE(d.find("C=22P02"), std::string::npos) << d;
  EXPECT_EQ(v, d);
  EXPECT_EQ(query_value(via_, "SELECT count(*) FROM cf"), "0");
  // COPY of a query that fails midway.
  const auto [dr, vr] = both("COPY (SELECT 1 / (100 - g) FROM generate_series(1, 200) g) TO STDOUT");
  EXPECT_EQ(vr, dr);
  EXPECT_EQ(query_value(via_, "SELECT 'usable'"), "usable");
}

bool wait_readable(PGconn* conn, std::chrono::milliseconds timeout) {
  pollfd p{PQsocket(conn), POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
}

TEST_F(Libpq, ListenNotifyBetweenSessions) {
  Conn listener = gateway_conn();
  Conn notifier = gateway_conn("bob", kBobPassword);
  ASSERT_TRUE(listener.ok() && notifier.ok());
  query(listener, "LISTEN sluice_channel");
  query(listener, "LISTEN \"Other Channel\"");
  const std::string big(7000, 'p');
  query(notifier, "NOTIFY sluice_channel, 'hello through sluice'");
  query(notifier, "SELECT pg_notify('Other Channel', '" + big + "')");
  query(direct_, "NOTIFY sluice_channel, 'from a direct session'");
  // A notification inside a transaction is delivered at commit only.
  query(notifier, "BEGIN; NOTIFY sluice_channel, 'committed'; COMMIT");
  query(notifier, "BEGIN; NOTIFY sluice_channel, 'rolled back'; ROLLBACK");

  std::vector<std::pair<std::string, std::string>> got;
  const auto deadline = Clock::now() + 5s;
  while (got.size() < 4 && Clock::now() < deadline) {
    if (!wait_readable(listener, 200ms)) continue;
    ASSERT_EQ(PQconsumeInput(listener), 1) << listener.error();
    while (PGnotify* n = PQnotifies(listener)) {
      got.emplace_back(n->relname, n->extra);
      EXPECT_GT(n->be_pid, 0);
      PQfreemem(n);
    }
  }
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"sluice_channel", "hello through sluice"},
      {"Other Channel", big},
      {"sluice_channel", "from a direct session"},
      {"sluice_channel", "committed"},
  };
  EXPECT_EQ(got, expected);
  // Nothing else arrives (the rolled-back one must not).
  query(listener, "SELECT 1");
  PGnotify* extra = PQnotifies(listener);
  EXPECT_EQ(extra, nullptr);
  if (extra) PQfreemem(extra);
}

TEST_F(Libpq, CancelStopsLongQueryQuickly) {
  ASSERT_EQ(PQsendQuery(via_, "SELECT pg_sleep(60)"), 1);
  std::this_thread::sleep_for(300ms);
  PGcancel* cancel = PQgetCancel(via_);
  ASSERT_NE(cancel, nullptr);
  const auto start = Clock::now();
  char err[256] = {};
  EXPECT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
  PQfreeCancel(cancel);
  ASSERT_TRUE(wait_readable(via_, 5s)) << "no answer within 5 s of the cancel";
  Result r(PQgetResult(via_));
  const auto elapsed = Clock::now() - start;
  EXPECT_EQ(PQresultStatus(r.get()), PGRES_FATAL_ERROR);
  EXPECT_STREQ(PQresultErrorField(r.get(), PG_DIAG_SQLSTATE), "57014");
  EXPECT_LT(elapsed, 5s);  // generous: a loaded CI machine; without the cancel it is 60 s
  while (Result extra{PQgetResult(via_)}) {
  }
  // Only that session's query was cancelled, and it is still usable.
  EXPECT_EQ(query_value(via_, "SELECT 'after cancel'"), "after cancel");

  // A cancel that arrives when nothing runs is harmless.
  cancel = PQgetCancel(via_);
  EXPECT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
  PQfreeCancel(cancel);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(query_value(via_, "SELECT 'idle cancel ignored'"), "idle cancel ignored");
}

TEST_F(Libpq, ExtendedProtocolPrepareAndExecute) {
  for (PGconn* c : {direct_.get(), via_.get()}) {
    Result p(PQprepare(c, "add", "SELECT $1::int + $2::int AS sum, $3::text || '!' AS shout", 3, nullptr));
    ASSERT_EQ(PQresultStatus(p.get()), PGRES_COMMAND_OK) << PQerrorMessage(c);
  }
  std::string d_out, v_out;
  for (auto [c, out] : {std::pair{direct_.get(), &d_out}, std::pair{via_.get(), &v_out}}) {
    Result desc(PQdescribePrepared(c, "add"));
    *out += describe_result(desc.get());
    *out += "nparams=" + std::to_string(PQnparams(desc.get()));
    for (int i = 0; i < PQnparams(desc.get()); ++i) *out += " " + std::to_string(PQparamtype(desc.get(), i));
    *out += "\n";
    for (int i = 0; i < 20; ++i) {
      const std::string a = std::to_string(i), b = std::to_string(i * 100), s = "n" + a;
      const char* values[] = {a.c_str(), b.c_str(), s.c_str()};
      Result r(PQexecPrepared(c, "add", 3, values, nullptr, nullptr, 0));
      *out += describe_result(r.get());
    }
    // Wrong parameter count, unknown statement, duplicate name: errors, same as direct.
    const char* one[] = {"1"};
    Result e1(PQexecPrepared(c, "add", 1, one, nullptr, nullptr, 0));
    *out += describe_result(e1.get());
    Result e2(PQexecPrepared(c, "nope", 1, one, nullptr, nullptr, 0));
    *out += describe_result(e2.get());
    Result e3(PQprepare(c, "add", "SELECT 1", 0, nullptr));
    *out += describe_result(e3.get());
    Result e4(PQexec(c, "DEALLOCATE add"));
    *out += describe_result(e4.get());
  }
  EXPECT_EQ(v_out, d_out);
  EXPECT_NE(v_out.find("row '1919' 'n19!'"), std::string::npos) << v_out;
}

TEST_F(Libpq, QueryParamsWithBinaryResultsAndParams) {
  const char* sql =
      "SELECT $1::int4 AS i4, $2::int8 AS i8, $3::text AS t, $4::bytea AS b, $5::numeric AS n, "
      "$6::float8 AS f, $7::bool AS flag, NULL::int AS nothing, now() - now() AS zero_interval, "
      "ARRAY[1,2,3] AS arr, '2024-02-29'::date AS d, '{\"k\": [1, 2]}'::jsonb AS j";
  const char* values[] = {"2147483647", "-9223372036854775808", "ünïcödé", "\\x00ff10", "12345.678900", "1e-300", "t"};
  std::string d_out, v_out;
  for (auto [c, out] : {std::pair{direct_.get(), &d_out}, std::pair{via_.get(), &v_out}}) {
    for (int result_format : {0, 1}) {
      ASSERT_EQ(PQsendQueryParams(c, sql, 7, nullptr, values, nullptr, nullptr, result_format), 1);
      while (Result r{PQgetResult(c)}) *out += describe_result(r.get());
    }
    // Binary parameters: an int4 and a bytea with every byte value.
    std::string bytes;
    for (int i = 0; i < 256; ++i) bytes += static_cast<char>(i);
    const char be_int[] = {0, 0, 0x30, 0x39};  // 12345
    const char* bin_values[] = {be_int, bytes.data()};
    const int lengths[] = {4, 256};
    const int formats[] = {1, 1};
    const Oid types[] = {23, 17};
    Result r(PQexecParams(c, "SELECT $1 + 1, length($2), md5($2), $2", 2, types, bin_values, lengths, formats, 1));
    *out += describe_result(r.get());
  }
  EXPECT_EQ(v_out, d_out);
  EXPECT_NE(v_out.find("0x7fffffff"), std::string::npos) << v_out;
}

std::string run_pipeline(PGconn* c) {
  std::string out;
  if (PQenterPipelineMode(c) != 1) return "cannot enter pipeline mode";
  const char* one[] = {"7"};
  PQsendQueryParams(c, "SELECT $1::int * 6", 1, nullptr, one, nullptr, nullptr, 0);
  PQsendQueryParams(c, "CREATE TEMP TABLE IF NOT EXISTS pipe (i int)", 0, nullptr, nullptr, nullptr, nullptr, 0);
  PQsendQueryParams(c, "INSERT INTO pipe VALUES (1), (2) RETURNING i + 0 AS i", 0, nullptr, nullptr, nullptr, nullptr, 0);
  PQsendQueryParams(c, "SELECT 1 / 0", 0, nullptr, nullptr, nullptr, nullptr, 0);  // fails
  PQsendQueryParams(c, "SELECT 'skipped'", 0, nullptr, nullptr, nullptr, nullptr, 0);
  PQpipelineSync(c);
  PQsendPrepare(c, "pst", "SELECT $1::int + 1, to_regclass('pipe') IS NULL AS rolled_back", 0, nullptr);
  PQsendQueryPrepared(c, "pst", 1, one, nullptr, nullptr, 0);
  PQsendQueryParams(c, "SELECT generate_series(1, 1000)", 0, nullptr, nullptr, nullptr, nullptr, 1);
  PQpipelineSync(c);
  PQsendQueryParams(c, "SELECT 'third batch'", 0, nullptr, nullptr, nullptr, nullptr, 0);
  PQpipelineSync(c);
  if (PQflush(c) != 0) out += "flush failed\n";

  int syncs = 0;
  const auto deadline = Clock::now() + 10s;
  while (syncs < 3 && Clock::now() < deadline) {
    Result r(PQgetResult(c));
    if (!r) continue;  // end of one query's results
    if (PQresultStatus(r.get()) == PGRES_PIPELINE_SYNC) ++syncs;
    out += describe_result(r.get());
  }
  if (syncs < 3) out += "timed out waiting for the pipeline\n";
  if (PQexitPipelineMode(c) != 1) out += "cannot exit pipeline mode\n";
  return out;
}

TEST_F(Libpq, PipelineModeLikeDirect) {
  const std::string d = run_pipeline(direct_);
  const std::string v = run_pipeline(via_);
  EXPECT_NE(d.find("PGRES_PIPELINE_ABORTED"), std::string::npos) << d;
  EXPECT_NE(d.find("C=22012"), std::string::npos) << d;
  EXPECT_EQ(v, d);
  EXPECT_EQ(query_value(via_, "SELECT to_regclass('pipe') IS NULL"), "t");  // the first batch rolled back
}

TEST_F(Libpq, MessagesLargerThanTheSendQueue) {
  // Single messages far above send_queue_bytes (256 KiB) in both directions: a 12 MB
  // Bind parameter, a 12 MB Query text, a 20 MB DataRow.
  std::string big(12u << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + (i * 7919) % 26);
  const char* values[] = {big.c_str()};
  Result r(PQexecParams(via_, "SELECT length($1::text), md5($1::text)", 1, nullptr, values, nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(via_);
  Result d(PQexecParams(direct_, "SELECT length($1::text), md5($1::text)", 1, nullptr, values, nullptr, nullptr, 0));
  EXPECT_EQ(describe_result(r.get()), describe_result(d.get()));

  const std::string sql = "SELECT md5('" + big + "')";
  r.reset(PQexec(via_, sql.c_str()));
  d.reset(PQexec(direct_, sql.c_str()));
  EXPECT_EQ(describe_result(r.get()), describe_result(d.get()));

  r.reset(PQexec(via_, "SELECT repeat('0123456789', 2000000) AS v, 'after' AS w"));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(via_);
  ASSERT_EQ(PQgetlength(r.get(), 0, 0), 20000000);
  const std::string v(PQgetvalue(r.get(), 0, 0), 20000000);
  std::string expected;
  for (int i = 0; i < 2000000; ++i) expected += "0123456789";
  EXPECT_TRUE(v == expected) << explain_difference(v, expected);
  EXPECT_STREQ(PQgetvalue(r.get(), 0, 1), "after");
}

TEST_F(Libpq, TransactionsAndSessionStateLikeDirect) {
  const char* statements[] = {
      "BEGIN",
      "CREATE TEMP TABLE tx (i int PRIMARY KEY)",
      "INSERT INTO tx VALUES (1)",
      "INSERT INTO tx VALUES (1)",
      "SELECT 1",
      "ROLLBACK",
      "SELECT * FROM tx",
      "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY",
      "SHOW transaction_isolation",
      "INSERT INTO items VALUES (9999, 'ro', 1)",
      "COMMIT",
      "SET application_name = 'changed'",
      "SET TimeZone = 'Asia/Kolkata'",
      "SELECT TIMESTAMPTZ '2024-01-01 00:00:00+00'",
      "SET DateStyle = 'SQL, DMY'",
      "SELECT DATE '2024-03-05'",
      "RESET ALL",
      "SELECT repeat('z', 3000000)",
      "",
      ";",
      "SELECT 1; SELECT 2; SELECT 3",
  };
  for (const char* sql : statements) {
    const auto [dr, vr] = both(sql);
    EXPECT_EQ(vr, dr) << sql;
  }
  // ParameterStatus updates reach the client.
  query(via_, "SET application_name = 'through-sluice'");
  EXPECT_STREQ(PQparameterStatus(via_, "application_name"), "through-sluice");
  query(via_, "SET TimeZone = 'UTC'");
  EXPECT_STREQ(PQparameterStatus(via_, "TimeZone"), "UTC");
  EXPECT_EQ(PQtransactionStatus(via_), PQTRANS_IDLE);
  query(via_, "BEGIN");
  EXPECT_EQ(PQtransactionStatus(via_), PQTRANS_INTRANS);
  Result r(PQexec(via_, "SELECT 1/0"));
  EXPECT_EQ(PQtransactionStatus(via_), PQTRANS_INERROR);
  query(via_, "ROLLBACK");
  EXPECT_EQ(PQtransactionStatus(via_), PQTRANS_IDLE);
}

}  // namespace
}  // namespace sluice::it
