// The decision cache's literal shapes (policy/literal_shape.h): which numbers become
// parameters, and which texts keep their own cache entry.
#include <gtest/gtest.h>

#include "policy/literal_shape.h"

namespace sluice::policy {
namespace {

std::string shape_of(std::string_view sql) {
  LiteralShaper shaper;
  std::string out;
  return shaper.shape(sql, out) ? out : "(unchanged)";
}

TEST(LiteralShape, NumbersBesideColumnsBecomeParameters) {
  EXPECT_EQ(shape_of("SELECT abalance FROM pgbench_accounts WHERE aid = 12345;"),
            "SELECT abalance FROM pgbench_accounts WHERE aid = $1;");
  EXPECT_EQ(shape_of("UPDATE a SET b = b + -3455 WHERE aid = 7"), "UPDATE a SET b = b + $1 WHERE aid = $2");
  EXPECT_EQ(shape_of("SELECT * FROM a WHERE a.aid BETWEEN 5 AND 5 + 999"), "SELECT * FROM a WHERE a.aid BETWEEN $1 AND $2 + 999");
  EXPECT_EQ(shape_of("SELECT * FROM t WHERE x IN (1, 2, -3)"), "SELECT * FROM t WHERE x IN ($1, $2, $3)");
  EXPECT_EQ(shape_of("SELECT * FROM t WHERE x NOT IN (10)"), "SELECT * FROM t WHERE x NOT IN ($1)");
  EXPECT_EQ(shape_of("INSERT INTO t (a, b) VALUES (1, 'x'), (-2, now())"), "INSERT INTO t (a, b) VALUES ($1, 'x'), ($2, now())");
  EXPECT_EQ(shape_of("SELECT * FROM t WHERE x =-5"), "SELECT * FROM t WHERE x =$1");
  EXPECT_EQ(shape_of("SELECT * FROM s.t WHERE s.t.\"Id\" >= 1.5e3 AND y < .5"), "SELECT * FROM s.t WHERE s.t.\"Id\" >= $1 AND y < $2");
  EXPECT_EQ(shape_of("SELECT * FROM t WHERE x = 5 -- and y = 6\n"), "SELECT * FROM t WHERE x = $1 -- and y = 6\n");
  EXPECT_EQ(shape_of("SELECT 'x = 1' FROM t /* y = 2 /* nested */ */ WHERE z = 3"),
            "SELECT 'x = 1' FROM t /* y = 2 /* nested */ */ WHERE z = $1");
}

TEST(LiteralShape, NumbersADecisionCanDependOnStayWhereTheyAre) {
  for (const char* sql : {
           "SELECT 1",
           "SELECT * FROM t WHERE 1 = 1",           // constant-true WHERE
           "SELECT * FROM t WHERE '1'::int = 1",    // a cast, not a column, before the operator
           "SELECT * FROM t WHERE true = 1",        // a constant keyword
           "SELECT * FROM t WHERE null = 1",
           "SELECT * FROM t ORDER BY 1",            // a position
           "SELECT a FROM t GROUP BY a, 2",
           "SELECT * FROM t WHERE x IN (SELECT a FROM u GROUP BY a, 1)",  // a list that is not all numbers
           "SELECT * FROM t WHERE x IN (1, y)",
           "SELECT * FROM t LIMIT 5 OFFSET 10",
           "SELECT set_config('work_mem', '64MB', false)",
           "SELECT * FROM t WHERE x = 5abc",        // PostgreSQL 15 rejects trailing junk
           "SELECT * FROM t WHERE x = 1.2.3",
           "SELECT * FROM t WHERE x = 1e",
           "SELECT * FROM t WHERE f(x) = 3",        // a call, not a column
           "SELECT * FROM t WHERE x[1] = 3",
       })
    EXPECT_EQ(shape_of(sql), "(unchanged)") << sql;
}

TEST(LiteralShape, TextsTheLexerCannotFullyReadAreLeftAlone) {
  for (const char* sql : {
           "SELECT * FROM t WHERE x = $1 AND y = 5",      // parameters
           "SELECT $$a$$ FROM t WHERE x = 5",             // dollar quotes
           "SELECT E'\\'' FROM t WHERE x = 5",           // backslash escapes
           "SELECT * FROM t WHERE x = 5 AND y = 'open",   // unterminated string
           "SELECT * FROM t WHERE \"x = 5",               // unterminated identifier
           "SELECT * FROM t WHERE x = 5 /* unterminated", // unterminated comment
           "UPDATE t SET a = a + -\v0 WHERE id = 7",     // \v: not whitespace to PostgreSQL (fuzzer find)
           "SELECT * FROM t WHERE x =\x01 5",             // other control characters
       })
    EXPECT_EQ(shape_of(sql), "(unchanged)") << sql;
}

TEST(LiteralShape, TheWidthOfANumberDoesNotMatter) {
  // pgbench's keys run from 1 to 1,000,000 per scale: one shape for all of them.
  EXPECT_EQ(shape_of("SELECT * FROM t WHERE a = 1 AND b = -22 AND c = 123456789012345"),
            shape_of("SELECT * FROM t WHERE a = 7 AND b = 3 AND c = 0.5"));
}

}  // namespace
}  // namespace sluice::policy
