// psql through sluice behaves exactly like psql connected directly: the same script's
// whole stdout, stderr and exit code, and the files written by \copy, byte for byte.
#include <gtest/gtest.h>

#include <sstream>

#include "tests/integration/fixture.h"

namespace sluice::it {
namespace {

// Exercises meta-commands (catalog queries), \copy both ways, multi-statement
// strings, notices, errors and transactions with ROLLBACK after an error. It must
// leave the database as it found it (it runs twice).
const char* kScript = R"psql(\pset pager off
SELECT id, name, price, created FROM items ORDER BY id LIMIT 5;
\d items
\d+ accounts
\dt
\di
\l
\df noisy
\dn
\du sluice_app
SELECT 1 AS one; SELECT 2 AS two; SELECT 'three' AS three;
SELECT count(*), sum(price), min(created), max(created) FROM items WHERE price > 50;
SELECT i.name, count(o.id) AS orders, sum(o.qty) AS qty
  FROM items i JOIN orders o ON o.item_id = i.id GROUP BY i.name ORDER BY 2 DESC, 1 LIMIT 10;
BEGIN;
CREATE TEMP TABLE t (a int PRIMARY KEY, b text);
INSERT INTO t VALUES (1, 'one'), (2, 'two');
INSERT INTO t VALUES (1, 'dup');
SELECT * FROM t;
ROLLBACK;
SELECT * FROM t;
BEGIN;
CREATE TEMP TABLE t2 (a int, b text, c numeric);
\copy t2 from 'in.csv' with (format csv)
SELECT count(*), sum(a), sum(c), max(length(b)) FROM t2;
\copy t2 to 'out.csv' with (format csv)
\copy (SELECT * FROM t2 ORDER BY a DESC) to 'out.txt'
\copy items to 'items.bin' with (format binary)
SAVEPOINT s1;
SELECT no_such_column FROM t2;
ROLLBACK TO SAVEPOINT s1;
SELECT count(*) FROM t2 WHERE a % 7 = 0;
COMMIT;
SELECT count(*) FROM t2;
DROP TABLE t2;
SELECT noisy(3);
DO $$ BEGIN RAISE NOTICE 'from a DO block'; RAISE WARNING 'and a warning'; END $$;
SELECT 1/0;
SELEC 1;
INSERT INTO items VALUES (1, 'dup', 1, DEFAULT);
INSERT INTO items VALUES (5000, 'negative', -1, DEFAULT);
SELECT E'tab\there', E'newline\nhere', NULL AS nothing, '' AS empty, 'ünïcödé ✓' AS text;
SELECT repeat('x', 100000) = repeat('x', 100000) AS long_equal, length(repeat('ab', 50000));
\echo done
)psql";

std::string csv_input() {
  std::ostringstream out;
  for (int i = 1; i <= 20000; ++i)
    out << i << ",\"row " << i << " with, a comma and \"\"quotes\"\" " << std::string(i % 50, 'z') << "\"," << i << "."
        << (i % 100) << "\n";
  return out.str();
}

class Psql : public GatewayTest {
 protected:
  struct Run {
    ProgramResult result;
    std::string dir;
  };

  // Runs psql in a fresh directory holding script.sql and in.csv.
  Run run_psql(bool through_gateway, const std::vector<std::string>& extra_args) {
    Run run;
    run.dir = make_temp_dir(through_gateway ? "sluice-it-psql-gw-" : "sluice-it-psql-direct-", false);
    dirs_.push_back(run.dir);
    write_file(run.dir + "/script.sql", kScript);
    write_file(run.dir + "/in.csv", csv_input());
    ProgramOptions o;
    o.cwd = run.dir;
    o.timeout = 60s;
    std::vector<std::string> args = {pg().bin("psql"), "-X", "-v", "ON_ERROR_STOP=0", "-h", "127.0.0.1"};
    if (through_gateway) {
      o.env = {std::string("PGPASSWORD=") + kAlicePassword, "PGCONNECT_TIMEOUT=10"};
      args.insert(args.end(), {"-p", std::to_string(gw().port()), "-U", "alice", "-d", "app"});
    } else {
      o.env = {"PGPASSWORD=" + pg().app_password(), "PGCONNECT_TIMEOUT=10"};
      args.insert(args.end(), {"-p", std::to_string(pg().port()), "-U", "sluice_app", "-d", "app"});
    }
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    run.result = run_program(args, o);
    return run;
  }

  void TearDown() override {
    for (const auto& d : dirs_) remove_tree(d);
    GatewayTest::TearDown();
  }

  std::vector<std::string> dirs_;
};

TEST_F(Psql, ScriptOutputIdenticalToDirect) {
  const Run direct = run_psql(false, {"-f", "script.sql"});
  ASSERT_FALSE(direct.result.timed_out);
  // Sanity of the reference run itself.
  ASSERT_EQ(direct.result.exit_code, 0) << direct.result.err;
  ASSERT_NE(direct.result.out.find("items_price_nonnegative"), std::string::npos) << direct.result.out;
  ASSERT_NE(direct.result.err.find("division by zero"), std::string::npos) << direct.result.err;
  ASSERT_NE(direct.result.err.find("current transaction is aborted"), std::string::npos);
  ASSERT_NE(direct.result.out.find("done"), std::string::npos);

  const Run via = run_psql(true, {"-f", "script.sql"});
  EXPECT_FALSE(via.result.timed_out);
  EXPECT_EQ(via.result.exit_code, direct.result.exit_code);
  EXPECT_EQ(via.result.out, direct.result.out);
  EXPECT_EQ(via.result.err, direct.result.err);

  for (const char* file : {"out.csv", "out.txt", "items.bin"}) {
    SCOPED_TRACE(file);
    const std::string expected = read_file(direct.dir + "/" + file);
    const std::string actual = read_file(via.dir + "/" + file);
    ASSERT_GT(expected.size(), 10000u);
    EXPECT_EQ(actual.size(), expected.size());
    EXPECT_TRUE(actual == expected) << "\\copy output differs from the direct run: "
                                    << explain_difference(actual, expected);
  }
  // COPY in text and CSV round-trips the input exactly.
  EXPECT_TRUE(read_file(via.dir + "/out.csv") == csv_input());
}

TEST_F(Psql, MultiStatementCommandAndOnErrorStop) {
  // -c with several statements: one Query message holding them all.
  const std::vector<std::string> c = {
      "-c", "SELECT 1 AS a; SELECT 2 AS b; CREATE TEMP TABLE x(i int); INSERT INTO x VALUES (1),(2); SELECT * FROM x"};
  const Run d1 = run_psql(false, c);
  const Run g1 = run_psql(true, c);
  EXPECT_EQ(d1.result.exit_code, 0) << d1.result.err;
  EXPECT_EQ(g1.result.exit_code, d1.result.exit_code);
  EXPECT_EQ(g1.result.out, d1.result.out);
  EXPECT_EQ(g1.result.err, d1.result.err);

  // An error inside a multi-statement string aborts the rest of it.
  const std::vector<std::string> e = {"-c", "SELECT 1; SELECT 1/0; SELECT 3"};
  const Run d2 = run_psql(false, e);
  const Run g2 = run_psql(true, e);
  EXPECT_EQ(d2.result.exit_code, 1);
  EXPECT_EQ(g2.result.exit_code, d2.result.exit_code);
  EXPECT_EQ(g2.result.out, d2.result.out);
  EXPECT_EQ(g2.result.err, d2.result.err);

  // ON_ERROR_STOP=1 stops the script at the first error with exit code 3.
  const std::vector<std::string> s = {"-v", "ON_ERROR_STOP=1", "-f", "script.sql"};
  const Run d3 = run_psql(false, s);
  const Run g3 = run_psql(true, s);
  EXPECT_EQ(d3.result.exit_code, 3);
  EXPECT_EQ(g3.result.exit_code, d3.result.exit_code);
  EXPECT_EQ(g3.result.out, d3.result.out);
  EXPECT_EQ(g3.result.err, d3.result.err);
}

}  // namespace
}  // namespace sluice::it
