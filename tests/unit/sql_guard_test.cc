// Tests for policy/sql_guard: each verdict and its message, each lexical construct
// whose content must not count, hostile inputs (long operator chains, deep nesting),
// a large generated query that must pass, UTF-8 edge cases and exact limit boundaries.
// Operator and bracket counts are also compared with PostgreSQL's own scanner
// (libpg_query's pg_query_scan) on a set of tricky statements.
#include "policy/sql_guard.h"

#include <gtest/gtest.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include <algorithm>
#include <string>

namespace sluice::policy {
namespace {

GuardVerdict guard(std::string_view sql, SqlLimits limits = {}) { return guard_sql(sql, limits); }

// Operator tokens counted in an SQL text that must pass.
uint32_t operators(std::string_view sql) {
  const GuardVerdict v = guard(sql);
  EXPECT_EQ(v.result, GuardResult::ok) << sql;
  return v.operators_seen;
}

uint32_t depth(std::string_view sql) {
  const GuardVerdict v = guard(sql);
  EXPECT_EQ(v.result, GuardResult::ok) << sql;
  return v.max_depth_seen;
}

std::string repeat(std::string_view piece, size_t times) {
  std::string out;
  out.reserve(piece.size() * times);
  for (size_t i = 0; i < times; ++i) out += piece;
  return out;
}

TEST(SqlGuard, PlainStatementsPass) {
  const GuardVerdict v = guard("SELECT a, b FROM t WHERE a = 1 AND (b > 2 OR b IS NULL)");
  EXPECT_EQ(v.result, GuardResult::ok);
  EXPECT_EQ(v.offset, 0u);
  EXPECT_EQ(v.max_depth_seen, 1u);
  EXPECT_EQ(v.operators_seen, 5u);  // = AND > OR IS
  EXPECT_EQ(guard("").result, GuardResult::ok);
  EXPECT_EQ(operators("SELECT 1"), 0u);
}

TEST(SqlGuard, OperatorRunsFollowPostgresLexer) {
  EXPECT_EQ(operators("SELECT a<>b"), 1u);
  EXPECT_EQ(operators("SELECT a <= b, a >= b, a != b"), 3u);
  EXPECT_EQ(operators("SELECT doc->>'name' FROM t"), 1u);
  EXPECT_EQ(operators("SELECT a || b || c"), 2u);
  EXPECT_EQ(operators("SELECT a::int::text"), 2u);   // :: is one token each
  EXPECT_EQ(operators("SELECT f(a := 1)"), 0u);       // := is not an operator
  EXPECT_EQ(operators("SELECT f(a => 1)"), 1u);
  EXPECT_EQ(operators("SELECT 1*-2"), 2u);            // * then unary -
  EXPECT_EQ(operators("SELECT 1+-+-2"), 4u);          // PostgreSQL splits trailing signs
  EXPECT_EQ(operators("SELECT a @- b"), 1u);          // @ lets the operator end in -
  EXPECT_EQ(operators("SELECT 1e+5, 1.5E-3, .5e10"), 0u);  // exponent signs are not operators
  EXPECT_EQ(operators("SELECT 1e+x"), 1u);  // PostgreSQL rejects the junk; counting + is harmless
  EXPECT_EQ(operators("SELECT 1..2"), 0u);
  EXPECT_EQ(operators("SELECT $1 + $2"), 1u);         // parameters
}

TEST(SqlGuard, OperatorKeywordsAreWholeWordsAnyCase) {
  EXPECT_EQ(operators("SELECT 1 WHERE a AND b or c Not d"), 3u);
  EXPECT_EQ(operators("SELECT x IS NULL, y iS nOt DISTINCT FROM z"), 3u);
  EXPECT_EQ(operators("SELECT a LIKE b ESCAPE c, a ILIKE b, a SIMILAR TO b"), 4u);
  EXPECT_EQ(operators("SELECT a BETWEEN 1 AND 2, a IN (1), (a,b) OVERLAPS (c,d)"), 4u);
  EXPECT_EQ(operators("SELECT a COLLATE \"C\", t AT TIME ZONE 'UTC'"), 2u);
  EXPECT_EQ(operators("SELECT 1 UNION SELECT 2 INTERSECT SELECT 3 EXCEPT SELECT 4"), 3u);
  EXPECT_EQ(operators("SELECT 1 FROM a JOIN b ON true CROSS JOIN c NATURAL LEFT JOIN d"), 3u);
  // Words that merely contain a keyword, or keywords in quotes, are identifiers.
  EXPECT_EQ(operators("SELECT band, order_id, android, island, notes, _and, and_ FROM isnull"), 0u);
  EXPECT_EQ(operators("SELECT \"and\", \"OR\", 'not' FROM \"in\""), 0u);
  EXPECT_EQ(operators("SELECT and$1, or9"), 0u);
}

TEST(SqlGuard, StringsAreNotCounted) {
  EXPECT_EQ(operators("SELECT 'a + b ( [ -- /* AND'"), 0u);
  EXPECT_EQ(depth("SELECT 'a + b ( [ -- /* AND'"), 0u);
  EXPECT_EQ(operators("SELECT 'it''s + (' || 'x'"), 1u);
  // standard_conforming_strings: a backslash in '...' is an ordinary character.
  EXPECT_EQ(operators("SELECT '\\' + 1"), 1u);
  // E'...': a backslash escapes the next byte, including a quote.
  EXPECT_EQ(operators("SELECT E'it\\'s + (' , 1"), 0u);
  EXPECT_EQ(operators("SELECT e'\\\\' + 1"), 1u);
  EXPECT_EQ(operators("SELECT E'a''b + c'"), 0u);
  EXPECT_EQ(operators("SELECT U&'d\\0061t+a' UESCAPE '!', N'x+y', B'1+0', X'1F+'"), 0u);
  // Only a prefix at the start of a word makes an E-string: here 'abe' is an
  // identifier and the string is standard, so its backslash does not escape.
  EXPECT_EQ(operators("SELECT abe'\\' + 1"), 1u);
}

TEST(SqlGuard, QuotedIdentifiersAreNotCounted) {
  EXPECT_EQ(operators("SELECT \"a(b+c\" FROM \"t\"\"(x)\""), 0u);
  EXPECT_EQ(depth("SELECT \"a(b+c\" FROM \"t\"\"(x)\""), 0u);
  EXPECT_EQ(operators("SELECT U&\"d\\0061t+a\" + 1"), 1u);
}

TEST(SqlGuard, CommentsAreNotCounted) {
  EXPECT_EQ(operators("SELECT 1 -- + ( AND\n+ 2"), 1u);
  EXPECT_EQ(operators("SELECT 1 -- + ( AND\r+ 2"), 1u);
  EXPECT_EQ(operators("SELECT 1 /* + ( AND */ + 2"), 1u);
  EXPECT_EQ(depth("SELECT 1 /* ( ( [ */"), 0u);
  // Block comments nest: the first */ closes only the inner one.
  EXPECT_EQ(operators("SELECT 1 /* outer /* inner */ + ( still a comment */ + 2"), 1u);
  EXPECT_EQ(operators("SELECT 1 /*/ + */ + 2"), 1u);
  EXPECT_EQ(operators("SELECT 1 /**/ + /***/ 2"), 1u);
  // A comment start ends an operator run.
  EXPECT_EQ(operators("SELECT 1 +-- comment\n 2"), 1u);
  EXPECT_EQ(operators("SELECT 1 */* comment */ 2"), 1u);
  EXPECT_EQ(operators("SELECT a--b+c"), 0u);
}

TEST(SqlGuard, DollarQuotesAreNotCounted) {
  EXPECT_EQ(operators("SELECT $$ a + b ( ' \" -- $$ + 1"), 1u);
  EXPECT_EQ(depth("SELECT $$ ( [ $$"), 0u);
  EXPECT_EQ(operators("DO $body$ BEGIN x := 1 + 2; $$ ( $$ END $body$"), 0u);
  EXPECT_EQ(operators("SELECT $a$ $ab$ + ( $A$ $a$ + 1"), 1u);  // tags are case-sensitive, exact
  EXPECT_EQ(operators("SELECT $_x1$ a + b $_x1$"), 0u);
  EXPECT_EQ(operators("SELECT $a$x$a$$a$ + $a$"), 0u);  // closes at the first $a$, then opens again
  // Not dollar quotes: parameters, a '$' inside an identifier, a lone '$'.
  EXPECT_EQ(operators("SELECT $1 + $22 FROM t WHERE a = $3"), 2u);
  EXPECT_EQ(operators("SELECT a$$b + c$$"), 1u);
  EXPECT_EQ(operators("SELECT $1$ + 1"), 1u);  // $1 then a lone $
  EXPECT_EQ(operators("SELECT $abc + 1"), 1u);
}

TEST(SqlGuard, UnterminatedConstructsEndTheScan) {
  for (const char* sql : {"SELECT 'abc + (", "SELECT E'abc\\", "SELECT \"abc + (", "SELECT /* ( + /* */",
                          "SELECT -- ( +", "SELECT $$ ( +", "SELECT $t$ ( $t", "SELECT U&'x", "SELECT $", "SELECT a:",
                          "SELECT 1 +", "SELECT 1e", "SELECT 1e+", "SELECT E'"}) {
    const GuardVerdict v = guard(sql);
    EXPECT_EQ(v.result, GuardResult::ok) << sql;
    EXPECT_EQ(v.max_depth_seen, 0u) << sql;
    EXPECT_LE(v.operators_seen, 1u) << sql;
  }
  // Invalid UTF-8 inside an unterminated construct is still found.
  EXPECT_EQ(guard("SELECT 'abc \xff").result, GuardResult::invalid_utf8);
  EXPECT_EQ(guard("SELECT /* \xc0\x80").result, GuardResult::invalid_utf8);
}

TEST(SqlGuard, NestingCountsParenthesesAndBrackets) {
  EXPECT_EQ(depth("SELECT ((a[1]))"), 3u);
  EXPECT_EQ(depth("SELECT (a), (b), ((c))"), 2u);
  EXPECT_EQ(depth("SELECT ARRAY[ARRAY[1,2],ARRAY[3,4]]"), 2u);
  // Unbalanced closing brackets are the parser's to report; depth does not go negative.
  EXPECT_EQ(depth("SELECT ))) ((("), 3u);
}

TEST(SqlGuard, LongOperatorChainIsRejected) {
  const std::string sql = "SELECT 1" + repeat("+1", 64'000);
  const GuardVerdict v = guard(sql);
  ASSERT_EQ(v.result, GuardResult::too_many_operators);
  EXPECT_EQ(v.operators_seen, 10'001u);
  EXPECT_EQ(v.offset, 8u + 2 * 10'000);  // the 10,001st '+'
  EXPECT_EQ(sql[v.offset], '+');
}

TEST(SqlGuard, DeepNestingIsRejected) {
  const std::string sql = "SELECT " + repeat("(", 20'000) + "1" + repeat(")", 20'000);
  const GuardVerdict v = guard(sql);
  ASSERT_EQ(v.result, GuardResult::too_deeply_nested);
  EXPECT_EQ(v.max_depth_seen, 1001u);
  EXPECT_EQ(v.offset, 7u + 1000);  // the 1,001st '('
}

TEST(SqlGuard, OtherChainsThatBuildDeepTreesAreRejected) {
  EXPECT_EQ(guard("SELECT 1" + repeat(" UNION SELECT 1", 60'000)).result, GuardResult::too_many_operators);
  EXPECT_EQ(guard("SELECT 1 FROM a" + repeat(" JOIN a ON true", 30'000)).result, GuardResult::too_many_operators);
  EXPECT_EQ(guard("SELECT 1" + repeat("::int", 30'000)).result, GuardResult::too_many_operators);
  EXPECT_EQ(guard("SELECT 1" + repeat("+-", 6'000) + "1").result, GuardResult::too_many_operators);
  EXPECT_EQ(guard("SELECT " + repeat("ARRAY[", 2'000)).result, GuardResult::too_deeply_nested);
}

// A SELECT an ORM might generate: joins, a 2,000-item IN list, a string IN list.
std::string generated_query() {
  std::string sql =
      "SELECT o.id, o.created_at, o.status, c.name AS customer_name, c.email, "
      "SUM(li.quantity * li.unit_price) AS total, COUNT(DISTINCT li.product_id) AS products "
      "FROM orders AS o "
      "JOIN customers AS c ON c.id = o.customer_id "
      "LEFT JOIN line_items AS li ON li.order_id = o.id AND li.deleted_at IS NULL "
      "LEFT JOIN products AS p ON p.id = li.product_id "
      "WHERE o.created_at >= $1::timestamptz AND o.created_at < $2::timestamptz "
      "AND o.status IN ('paid', 'shipped', 'delivered') AND o.id IN (";
  for (int i = 0; i < 2000; ++i) sql += (i ? ", " : "") + std::to_string(100000 + i * 7);
  sql += ") AND p.sku IN (";
  for (int i = 0; i < 400; ++i) sql += (i ? ", " : "") + std::string("'SKU-") + std::to_string(5000 + i) + "'";
  sql += ") GROUP BY o.id, o.created_at, o.status, c.name, c.email "
         "HAVING SUM(li.quantity * li.unit_price) > 0 ORDER BY o.created_at DESC, o.id LIMIT 100 OFFSET 0";
  return sql;
}

TEST(SqlGuard, GeneratedTwentyKilobyteQueryPasses) {
  const std::string sql = generated_query();
  ASSERT_GE(sql.size(), 20'000u);
  const GuardVerdict v = guard(sql);
  EXPECT_EQ(v.result, GuardResult::ok);
  EXPECT_EQ(v.max_depth_seen, 1u);
  EXPECT_LT(v.operators_seen, 50u);
}

TEST(SqlGuard, ValidUtf8Passes) {
  // 2-, 3- and 4-byte characters, the edges of the valid ranges, in every construct.
  EXPECT_EQ(guard("SELECT 'caf\xc3\xa9', \"\xe2\x82\xac\", \xf0\x9f\x98\x80 FROM t").result, GuardResult::ok);
  EXPECT_EQ(guard("SELECT '\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xed\x9f\xbf \xee\x80\x80 \xef\xbf\xbf'").result,
            GuardResult::ok);
  EXPECT_EQ(guard("SELECT '\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf'").result, GuardResult::ok);
  EXPECT_EQ(guard("SELECT 1 -- \xc3\xa9\n/* \xe2\x82\xac */ $\xc3\xa9$ \xf0\x9f\x98\x80 $\xc3\xa9$").result,
            GuardResult::ok);
  EXPECT_EQ(guard("SELECT E'\\\xc3\xa9'").result, GuardResult::ok);  // backslash before a multibyte char
  EXPECT_EQ(operators("SELECT \xc3\xa9t\xc3\xa9 AND \xc3\xa9"), 1u);  // identifiers may start with one
}

struct BadUtf8 {
  std::string sql;
  size_t offset;
  const char* reported;  // PostgreSQL's rendering of the bad bytes
};

TEST(SqlGuard, InvalidUtf8IsRejectedAtTheBadCharacter) {
  const BadUtf8 cases[] = {
      {"SELECT 'x\xff'", 9, "0xff"},
      {"SELECT \x80", 7, "0x80"},                              // lone continuation byte
      {"SELECT '\xc0\x80'", 8, "0xc0 0x80"},                   // overlong NUL
      {"SELECT '\xc1\xbf'", 8, "0xc1 0xbf"},                   // overlong
      {"SELECT '\xe0\x80\x80'", 8, "0xe0 0x80 0x80"},          // overlong 3-byte
      {"SELECT '\xf0\x80\x80\x80'", 8, "0xf0 0x80 0x80 0x80"}, // overlong 4-byte
      {"SELECT '\xed\xa0\x80'", 8, "0xed 0xa0 0x80"},          // surrogate U+D800
      {"SELECT '\xed\xbf\xbf'", 8, "0xed 0xbf 0xbf"},          // surrogate U+DFFF
      {"SELECT '\xf4\x90\x80\x80'", 8, "0xf4 0x90 0x80 0x80"}, // U+110000
      {"SELECT '\xf5\x80\x80\x80'", 8, "0xf5 0x80 0x80 0x80"},
      {"SELECT '\xf8\x88\x80\x80\x80'", 8, "0xf8"},
      {"SELECT '\xe2\x82", 8, "0xe2 0x82"},                    // truncated at the end
      {"SELECT '\xe2\x82' ", 8, "0xe2 0x82 0x27"},             // truncated, more follows
      {"SELECT '\xc3'", 8, "0xc3 0x27"},
      {"SELECT \xf0\x9f\x98", 7, "0xf0 0x9f 0x98"},
      {std::string("SELECT 1\0", 9), 8, "0x00"},               // NUL byte
      {std::string("SELECT '\0'", 10), 8, "0x00"},
      {std::string("SELECT E'\\\0'", 12), 10, "0x00"},         // not hidden by a backslash
      {"SELECT E'\\\xff'", 10, "0xff"},
      {"SELECT \"a\xff\"", 9, "0xff"},
      {"SELECT 1 -- \xff", 12, "0xff"},
      {"SELECT /* /* \xff */ */", 13, "0xff"},
      {"SELECT $$\xff$$", 9, "0xff"},
      {"SELECT $t\xff$ x $t\xff$", 9, "0xff"},
      {"SELECT \xc3\xa9\xff", 9, "0xff"},
      {"SELECT 'ok' \xe2\x82\xac\xe2\x82", 15, "0xe2 0x82"},
  };
  for (const auto& c : cases) {
    const GuardVerdict v = guard(c.sql);
    EXPECT_EQ(v.result, GuardResult::invalid_utf8) << c.reported;
    EXPECT_EQ(v.offset, c.offset) << c.reported;
    const GuardError e = describe(v, c.sql, {});
    EXPECT_EQ(e.message, std::string("invalid byte sequence for encoding \"UTF8\": ") + c.reported);
  }
}

// The statement may be a slice of a larger buffer: nothing past its end may be read,
// even when the next byte would complete a character, a comment or a dollar quote.
TEST(SqlGuard, NeverLooksPastTheEnd) {
  const std::string buffer = "SELECT '\xe2\x82\xac' \xf0\x9f\x98\x80 -- x\n/* */ $t$ $t$ ::";
  for (size_t len = 0; len <= buffer.size(); ++len) {
    const std::string_view slice(buffer.data(), len);
    const GuardVerdict v = guard(slice);
    const GuardVerdict copy = guard(std::string(slice));  // the same bytes with nothing after them
    EXPECT_EQ(v.result, copy.result) << len;
    EXPECT_EQ(v.offset, copy.offset) << len;
    EXPECT_EQ(v.operators_seen, copy.operators_seen) << len;
    EXPECT_LE(v.offset, len);
  }
  // Cut inside the euro sign and inside the emoji: truncated characters.
  EXPECT_EQ(guard(std::string_view(buffer.data(), 10)).result, GuardResult::invalid_utf8);
  EXPECT_EQ(guard(std::string_view(buffer.data(), 15)).result, GuardResult::invalid_utf8);
}

TEST(SqlGuard, LimitsAreInclusive) {
  SqlLimits limits;
  limits.max_statement_bytes = 10;
  EXPECT_EQ(guard("SELECT 123", limits).result, GuardResult::ok);
  EXPECT_EQ(guard("SELECT 1234", limits).result, GuardResult::too_long);

  limits = {};
  limits.max_nesting = 3;
  EXPECT_EQ(guard("SELECT (([1]))", limits).result, GuardResult::ok);
  const GuardVerdict deep = guard("SELECT ((([1])))", limits);
  EXPECT_EQ(deep.result, GuardResult::too_deeply_nested);
  EXPECT_EQ(deep.offset, 10u);
  EXPECT_EQ(deep.max_depth_seen, 4u);

  limits = {};
  limits.max_operators = 3;
  EXPECT_EQ(guard("SELECT 1+2 AND a::int", limits).result, GuardResult::ok);
  const GuardVerdict many = guard("SELECT 1+2 AND a::int OR b", limits);
  EXPECT_EQ(many.result, GuardResult::too_many_operators);
  EXPECT_EQ(many.offset, 22u);
  EXPECT_EQ(many.operators_seen, 4u);

  limits.max_operators = 0;
  EXPECT_EQ(guard("SELECT 1", limits).result, GuardResult::ok);
  EXPECT_EQ(guard("SELECT -1", limits).result, GuardResult::too_many_operators);
}

TEST(SqlGuard, LengthIsCheckedBeforeAnythingElse) {
  SqlLimits limits;
  limits.max_statement_bytes = 4;
  const GuardVerdict v = guard("\xff\xff\xff\xff\xff", limits);
  EXPECT_EQ(v.result, GuardResult::too_long);
  EXPECT_EQ(v.offset, 0u);
}

TEST(SqlGuard, DescribeGivesPostgresErrors) {
  SqlLimits limits;
  const std::string big(limits.max_statement_bytes + 1, ' ');
  GuardError e = describe(guard(big, limits), big, limits);
  EXPECT_STREQ(e.sqlstate, "54000");
  EXPECT_EQ(e.message, "statement of 1048577 bytes exceeds sluice's limit of 1048576 bytes");
  EXPECT_NE(e.hint.find("[policy] max_statement_bytes"), std::string::npos) << e.hint;

  e = describe(guard("SELECT '\xff'"), "SELECT '\xff'", limits);
  EXPECT_STREQ(e.sqlstate, "22021");
  EXPECT_EQ(e.message, "invalid byte sequence for encoding \"UTF8\": 0xff");
  EXPECT_TRUE(e.hint.empty()) << "PostgreSQL gives no hint for invalid UTF-8; neither does sluice";

  const std::string deep = "SELECT " + repeat("(", 1001);
  e = describe(guard(deep, limits), deep, limits);
  EXPECT_STREQ(e.sqlstate, "54001");
  EXPECT_EQ(e.message, "statement is too complex for sluice to analyse safely: nesting depth 1001 exceeds 1000");
  EXPECT_NE(e.hint.find("[policy] max_nesting"), std::string::npos) << e.hint;

  const std::string chain = "SELECT 1" + repeat("+1", 10'001);
  e = describe(guard(chain, limits), chain, limits);
  EXPECT_STREQ(e.sqlstate, "54001");
  EXPECT_EQ(e.message, "statement is too complex for sluice to analyse safely: more than 10000 operators");
  EXPECT_NE(e.hint.find("[policy] max_operators"), std::string::npos) << e.hint;

  e = describe(guard("SELECT 1"), "SELECT 1", limits);
  EXPECT_STREQ(e.sqlstate, "");
  EXPECT_TRUE(e.message.empty());
}

// Operator tokens and bracket depth as PostgreSQL's scanner sees them.
struct ScannerCounts {
  uint32_t operators = 0;
  uint32_t max_depth = 0;
};

ScannerCounts postgres_counts(const std::string& sql) {
  ScannerCounts counts;
  PgQueryScanResult result = pg_query_scan(sql.c_str());
  EXPECT_EQ(result.error, nullptr) << sql << ": " << (result.error ? result.error->message : "");
  if (result.error) {
    pg_query_free_scan_result(result);
    return counts;
  }
  PgQuery__ScanResult* scan =
      pg_query__scan_result__unpack(nullptr, result.pbuf.len, reinterpret_cast<const uint8_t*>(result.pbuf.data));
  uint32_t depth = 0;
  for (size_t i = 0; i < scan->n_tokens; ++i) {
    switch (scan->tokens[i]->token) {
      case '(': case '[':
        counts.max_depth = std::max(counts.max_depth, ++depth);
        break;
      case ')': case ']':
        if (depth > 0) --depth;
        break;
      case '+': case '-': case '*': case '/': case '%': case '^': case '<': case '>': case '=':
      case PG_QUERY__TOKEN__Op: case PG_QUERY__TOKEN__TYPECAST: case PG_QUERY__TOKEN__EQUALS_GREATER:
      case PG_QUERY__TOKEN__LESS_EQUALS: case PG_QUERY__TOKEN__GREATER_EQUALS: case PG_QUERY__TOKEN__NOT_EQUALS:
      case PG_QUERY__TOKEN__NOT: case PG_QUERY__TOKEN__NOT_LA: case PG_QUERY__TOKEN__IS:
      case PG_QUERY__TOKEN__COLLATE: case PG_QUERY__TOKEN__AT: case PG_QUERY__TOKEN__LIKE:
      case PG_QUERY__TOKEN__ILIKE: case PG_QUERY__TOKEN__SIMILAR: case PG_QUERY__TOKEN__BETWEEN:
      case PG_QUERY__TOKEN__IN_P: case PG_QUERY__TOKEN__OVERLAPS: case PG_QUERY__TOKEN__ESCAPE:
      case PG_QUERY__TOKEN__AND: case PG_QUERY__TOKEN__OR: case PG_QUERY__TOKEN__UNION:
      case PG_QUERY__TOKEN__INTERSECT: case PG_QUERY__TOKEN__EXCEPT: case PG_QUERY__TOKEN__JOIN:
        ++counts.operators;
        break;
      default:
        break;
    }
  }
  pg_query__scan_result__free_unpacked(scan, nullptr);
  pg_query_free_scan_result(result);
  return counts;
}

TEST(SqlGuard, CountsMatchPostgresScanner) {
  const std::string statements[] = {
      "SELECT a, b FROM t WHERE a = 1 AND (b > 2 OR b IS NOT NULL)",
      "SELECT a<>b, a<=b, a>=b, a!=b, a=>b, a->>'k', a#>>'{x}', a @> b, a <@ b, a ~~* b, a !~ b",
      "SELECT 1*-2, 1+-+-2, a @- b, a #- b, a ?| b, a*/*c*/b, a+--c\n+b, -1, - - 1, +-1",
      "SELECT 1e+5, 1.5E-3, .5e10, 1..2, 1.e5, 5::int::text, f(a := 1), a.and, t.\"or\"",
      "SELECT 'a + b ( [ -- /* AND', 'it''s + (' || 'x', '\\' + 1, E'it\\'s + (', e'\\\\' + 1",
      "SELECT E'a''b + c', U&'d\\0061t+a' UESCAPE '!', N'x+y', B'10', X'1F', abe'\\' + 1",
      "SELECT \"a(b+c\", \"t\"\"(x)\", U&\"d\\0061t+a\" + 1 FROM \"and\"",
      "SELECT 1 -- + ( AND\n+ 2 /* outer /* inner */ + ( still */ + 3 /*/ + */ + 4 /**/ + /***/ 5",
      "SELECT $$ a + b ( ' \" -- $$ + 1, $a$ $ab$ + ( $A$ $a$ + 1, $_x1$ a + b $_x1$, $a$x$a$ || $a$ + $a$",
      "SELECT $1 + $22, a$$b + c$$, \xc3\xa9t\xc3\xa9 AND \xc3\xa9, 'caf\xc3\xa9' || $\xc3\xa9$ (+) $\xc3\xa9$",
      "SELECT a BETWEEN 1 AND 2, a IN (1), (a,b) OVERLAPS (c,d), a LIKE b ESCAPE c, a ILIKE b, a SIMILAR TO b",
      "SELECT a COLLATE \"C\", t AT TIME ZONE 'UTC', band, order_id, android, isnull, notnull, _and, and_",
      "SELECT 1 UNION SELECT 2 INTERSECT SELECT 3 EXCEPT ALL SELECT 4 FROM a NATURAL LEFT JOIN b CROSS JOIN c",
      "SELECT ARRAY[ARRAY[1,2],ARRAY[3,4]], ((a[1])), x[1:2], f(((1)))",
      generated_query(),
  };
  for (const auto& sql : statements) {
    const ScannerCounts expected = postgres_counts(sql);
    const GuardVerdict v = guard(sql);
    EXPECT_EQ(v.result, GuardResult::ok) << sql;
    EXPECT_EQ(v.operators_seen, expected.operators) << sql;
    EXPECT_EQ(v.max_depth_seen, expected.max_depth) << sql;
  }
}

// Random soups of lexically interesting fragments: wherever PostgreSQL's scanner
// accepts one, the guard must count exactly what the scanner sees.
TEST(SqlGuard, RandomFragmentsMatchPostgresScanner) {
  static const char* const kFragments[] = {
      " ", "\n", "'", "''", "E'", "e'", "\\", "\"", "\"\"", "U&'", "U&\"", "B'", "X'", "N'", "$$", "$a$", "$A$",
      "$1", "$", "--", "/*", "*/", "+", "-", "*", "/", "<", ">", "=", "!", "@", "#", "%", "^", "&", "|", "`", "?",
      "~", "::", ":", ":=", "(", ")", "[", "]", ",", ".", "..", "and", "OR", "not", "Is", "in", "join", "union",
      "e", "x", "a$", "1", "1.5", "e5", "1e", "+1", "ident", "\xc3\xa9", "\xe2\x82\xac", ";"};
  constexpr size_t kCount = sizeof(kFragments) / sizeof(kFragments[0]);
  uint64_t state = 0x9e3779b97f4a7c15u;  // fixed seed: the same cases on every run
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  int compared = 0;
  for (int round = 0; round < 20'000; ++round) {
    std::string sql;
    const size_t pieces = 1 + next() % 12;
    for (size_t k = 0; k < pieces; ++k) sql += kFragments[next() % kCount];
    PgQueryScanResult probe = pg_query_scan(sql.c_str());
    const bool scans = probe.error == nullptr;
    pg_query_free_scan_result(probe);
    if (!scans) continue;
    ++compared;
    const ScannerCounts expected = postgres_counts(sql);
    const GuardVerdict v = guard(sql);
    ASSERT_EQ(v.result, GuardResult::ok) << sql;
    ASSERT_EQ(v.operators_seen, expected.operators) << sql;
    ASSERT_EQ(v.max_depth_seen, expected.max_depth) << sql;
  }
  EXPECT_GT(compared, 2'000);
}

}  // namespace
}  // namespace sluice::policy
