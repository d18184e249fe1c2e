// Runs tests/policy/agent_default.cases (the decision corpus: SQL texts with the
// decision the default agent policy must reach) through the policy engine. The file
// format and the policy it assumes are in tests/policy/README.md.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "policy/engine.h"
#include "tests/statement_cases.h"
#include "tests/unit/policy_support.h"

namespace sluice::policy {
namespace {

using Case = testing_support::StatementCase;
using testing_support::load_statement_cases;

using test_policies::agent_policy;
using test_policies::agent_subject;

std::string outcome(const Decision& d) { return d.allowed() ? "allow" : "block " + d.rule; }

TEST(PolicyCorpus, AgentDefaultPackDecidesEveryCaseAsSpecified) {
  const std::vector<Case> cases = load_statement_cases(SLUICE_SOURCE_DIR "/tests/policy/agent_default.cases");
  ASSERT_GE(cases.size(), 250u) << "the corpus must hold at least 250 statements";
  Engine engine(agent_policy(AccessMode::read_write));
  Subject subject = agent_subject();
  size_t allowed = 0, failures = 0;
  for (const Case& c : cases) {
    const Decision& d = engine.judge(subject, c.sql);
    allowed += d.allowed();
    if (outcome(d) != c.expected) {
      ++failures;
      ADD_FAILURE() << "agent_default.cases:" << c.line << ": expected " << c.expected << ", got " << outcome(d)
                    << "\n  SQL: " << c.sql << "\n  message: " << d.message;
    }
  }
  // Both halves matter: an engine that blocks everything is as useless as one that
  // allows everything.
  EXPECT_GT(allowed, cases.size() / 4);
  EXPECT_LT(allowed, cases.size() * 3 / 4);
  EXPECT_EQ(failures, 0u);
}

TEST(PolicyCorpus, CachedDecisionsMatchFreshOnes) {
  const std::vector<Case> cases = load_statement_cases(SLUICE_SOURCE_DIR "/tests/policy/agent_default.cases");
  Engine engine(agent_policy(AccessMode::read_write));
  Subject subject = agent_subject();
  std::vector<std::string> first;
  for (const Case& c : cases) first.push_back(outcome(engine.judge(subject, c.sql)));
  for (size_t i = 0; i < cases.size(); ++i) EXPECT_EQ(outcome(engine.judge(subject, cases[i].sql)), first[i]) << cases[i].sql;
  EXPECT_GE(engine.stats().cache_hits, cases.size() / 2);
}

// Statements aimed at the literal shapes: numbers beside columns mixed with the
// constants a decision depends on, in every place the shaper looks.
const char* const kShapeEdgeCases[] = {
    // The policy fuzzer's find: \v is whitespace to isspace() but a syntax error to
    // PostgreSQL 15; a shape that read it as a space was allowed where the text is not.
    "INSERT INTO t VALUES (1, -3, @4, 'y'); UPDATE t SET a = a + -\v0 WHERE id = 7",
    "UPDATE orders SET status = 'x' WHERE id =\v5",
    "DELETE FROM orders WHERE id = 5 OR 1 = 1",
    "DELETE FROM orders WHERE id = 5 OR '1'::int = 1",
    "DELETE FROM orders WHERE id = 5 OR 1 IN (1, 2)",
    "DELETE FROM orders WHERE id IN (1, 2, 3) OR 2 > 1",
    "DELETE FROM orders WHERE id BETWEEN 1 AND 9 OR 1 = 1",
    "DELETE FROM orders WHERE NOT id = 3",
    "DELETE FROM orders WHERE orders.id <> -4 AND 1 = 1",
    "DELETE FROM orders WHERE \"id\" = 5 OR 1=1",
    "DELETE FROM orders WHERE id = 1 OR id <> 1",
    "DELETE FROM orders WHERE true = 1",
    "DELETE FROM orders WHERE id = 1e5",
    "DELETE FROM orders WHERE id = 5abc",
    "UPDATE orders SET total = total + 1 WHERE id = 7 OR 2 > 1",
    "UPDATE orders SET total = 5",
    "UPDATE orders SET total = 5 WHERE id = 6",
    "SET work_mem = 64",
    "SET search_path = 5",
    "ALTER TABLE orders SET (fillfactor = 70)",
    "SELECT * FROM orders WHERE id = 5 ORDER BY 1 LIMIT 10 OFFSET 2",
    "SELECT id FROM orders WHERE total > 100 GROUP BY id, 1",
    "SELECT * FROM orders WHERE id IN (SELECT id FROM orders GROUP BY id, 1)",
    "INSERT INTO orders VALUES (1, -2, 3.5, 'x'), (4, 5, 6, 'y') RETURNING id",
    "INSERT INTO orders SELECT * FROM (VALUES (1, 2)) v WHERE 1 = 1",
    "SELECT * FROM orders WHERE id = 5; DROP TABLE orders",
    "SELECT * FROM orders WHERE id = 5; TRUNCATE orders",
    "PREPARE p AS DELETE FROM orders WHERE id = 5",
    "EXPLAIN ANALYZE DELETE FROM orders WHERE id = 5 OR 1 = 1",
    "SELECT * FROM orders o JOIN items i ON i.order_id = o.id AND i.qty > 5",
    "SELECT set_config('search_path', 'evil', false) FROM orders WHERE id = 1",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = 1234",
    "WITH d AS (DELETE FROM orders WHERE id > 5 OR 1 = 1 RETURNING *) SELECT * FROM d",
    "COPY (SELECT * FROM orders WHERE id = 5) TO '/tmp/x'",
    "SELECT 'id = 5' FROM orders WHERE id = 5 /* id = 6 */",
};

TEST(PolicyCorpus, LiteralShapesDecideAsTheirTexts) {
  std::vector<std::string> texts;
  for (const Case& c : load_statement_cases(SLUICE_SOURCE_DIR "/tests/policy/agent_default.cases")) texts.push_back(c.sql);
  texts.insert(texts.end(), std::begin(kShapeEdgeCases), std::end(kShapeEdgeCases));
  const size_t shaped = test_policies::expect_shapes_decide_as_texts(agent_policy(AccessMode::read_write), agent_subject(), texts);
  EXPECT_GE(shaped, 60u) << "too few texts had a literal shape for this check to mean anything";
}

TEST(PolicyCorpus, ACachedShapeDoesNotLiftTheStatementLimits) {
  // A shape is shorter than a text with long numbers, and has fewer operators than one
  // with signs: the text's own limits still decide.
  auto policy = std::make_shared<Policy>(*agent_policy(AccessMode::read_write));
  policy->limits.max_statement_bytes = 60;
  policy->limits.max_operators = 3;
  Engine engine(policy);
  Subject subject = agent_subject();
  ASSERT_TRUE(engine.judge(subject, "SELECT a FROM t WHERE a = 1 AND b = 2").allowed());
  EXPECT_EQ(engine.judge(subject, "SELECT a FROM t WHERE a = 1 AND b = 123456789012345678901234567890").rule, "statement-limits");
  EXPECT_EQ(engine.judge(subject, "SELECT a FROM t WHERE a = -1 AND b = -2").rule, "statement-limits");
  EXPECT_TRUE(engine.judge(subject, "SELECT a FROM t WHERE a = 3 AND b = 4").allowed());
}

}  // namespace
}  // namespace sluice::policy

namespace sluice::policy {
namespace {

NamePattern pattern(const char* text) {
  NamePattern p;
  EXPECT_TRUE(parse_name_pattern(text, p)) << text;
  return p;
}

TEST(PolicyRules, AnAllowRuleWithTablesMustCoverEveryTableItTouches) {
  auto policy = std::make_shared<Policy>();
  Group g;
  g.name = "agents";
  g.targets = {"*"};
  g.access = AccessMode::read_write;
  g.packs = {"agent-default"};
  Rule scratch;
  scratch.name = "scratch-truncate";
  scratch.action = Action::allow;
  scratch.commands = {"TRUNCATE TABLE"};
  scratch.tables = {pattern("staging.*")};
  g.rules.push_back(scratch);
  policy->groups.push_back(g);
  Engine engine(policy);
  Subject subject = agent_subject();
  EXPECT_TRUE(engine.judge(subject, "TRUNCATE staging.a").allowed());
  const Decision& mixed = engine.judge(subject, "TRUNCATE staging.a, public.orders");
  EXPECT_FALSE(mixed.allowed());
  EXPECT_EQ(mixed.rule, "truncate");
}

TEST(PolicyRules, CachedRefusalsNameTheirOwnUser) {
  auto policy = agent_policy(AccessMode::read_only);
  Engine engine(policy);
  Subject alice = agent_subject();
  alice.user = "alice";
  Subject bob = agent_subject();
  bob.user = "bob";
  const std::string to_alice = engine.judge(alice, "SET default_transaction_read_only = off").message;
  const std::string to_bob = engine.judge(bob, "SET default_transaction_read_only = off").message;
  EXPECT_NE(to_alice.find("\"alice\""), std::string::npos) << to_alice;
  EXPECT_NE(to_bob.find("\"bob\""), std::string::npos) << to_bob;
  EXPECT_EQ(to_bob.find("alice"), std::string::npos) << to_bob;
}

TEST(PolicyRules, ReviewIsAnsweredAsABlockThatSaysApprovalIsRequired) {
  auto policy = std::make_shared<Policy>();
  Group g;
  g.name = "agents";
  g.targets = {"*"};
  g.access = AccessMode::read_write;
  Rule review;
  review.name = "payroll-writes";
  review.action = Action::review;
  review.tables = {pattern("payroll.*")};
  review.table_access = Access::write;
  g.rules.push_back(review);
  policy->groups.push_back(g);
  Engine engine(policy);
  Subject subject = agent_subject();
  const Decision& d = engine.judge(subject, "UPDATE payroll.salaries SET amount = 1 WHERE id = 2");
  EXPECT_EQ(d.action, Action::review);
  EXPECT_EQ(d.sqlstate, "42501");
  EXPECT_NE(d.message.find("approval required"), std::string::npos) << d.message;
  EXPECT_TRUE(engine.judge(subject, "SELECT * FROM payroll.salaries").allowed());
}

}  // namespace
}  // namespace sluice::policy
