// Column rules without a database: the catalog builder (rules x catalog rows, views
// resolved to their base columns), the [[mask.column]] config, and the parse-tree
// checks that keep masked columns from leaving any other way than as bare output
// columns (tests/mask/masked_columns.cases, judged here; run against PostgreSQL by
// tests/integration/mask_columns_test.cc).
#include <gtest/gtest.h>

#include "core/toml.h"
#include "mask/catalog.h"
#include "policy/engine.h"
#include "tests/statement_cases.h"
#include "tests/unit/policy_support.h"

namespace sluice::mask {
namespace {

using policy::Decision;
using policy::Engine;
using policy::Subject;

std::shared_ptr<const Masking> masking_from(const std::string& toml) {
  core::toml::ParseResult parsed = core::toml::parse(toml);
  EXPECT_TRUE(parsed.ok());
  LoadedMasking loaded = load_masking(parsed.root, "");
  for (const auto& p : loaded.problems) ADD_FAILURE() << p.line << ": " << p.message;
  return loaded.masking;
}

std::vector<std::string> config_errors(const std::string& toml) {
  core::toml::ParseResult parsed = core::toml::parse(toml);
  EXPECT_TRUE(parsed.ok());
  std::vector<std::string> errors;
  for (const auto& p : load_masking(parsed.root, "").problems)
    if (p.is_error) errors.push_back(std::to_string(p.line) + ": " + p.message);
  return errors;
}

constexpr const char* kRules = R"(
[[mask.column]]
table = "public.customers"
column = "ssn"
strategy = "partial:4"
exempt_groups = ["dba"]

[[mask.column]]
column = "*email*"

[[mask.column]]
target = "other"
column = "name"
)";

// customers(1..6) with a view over it and an unrelated table.
std::vector<CatalogColumn> sample_catalog() {
  return {
      {100, "public", "customers", 'r', 1, "id"},     {100, "public", "customers", 'r', 2, "name"},
      {100, "public", "customers", 'r', 3, "email"},  {100, "public", "customers", 'r', 4, "ssn"},
      {200, "public", "v_customers", 'v', 1, "id"},   {200, "public", "v_customers", 'v', 2, "tax_id"},
      {200, "public", "v_customers", 'v', 3, "mail"}, {200, "public", "v_customers", 'v', 4, "name"},
      {300, "public", "orders", 'r', 1, "contact_email"}, {400, "pg_catalog", "pg_class", 'r', 1, "oid"},
      {500, "pg_temp_3", "scratch", 'r', 1, "x"},
  };
}

TEST(MaskColumns, RulesMatchCatalogColumnsFirstRuleWins) {
  auto masking = masking_from(kRules);
  auto catalog = build_target_catalog(masking, "app", sample_catalog(), {}, {});
  ASSERT_TRUE(catalog->loaded);
  const MaskedColumn* ssn = catalog->find(100, 4);
  ASSERT_NE(ssn, nullptr);
  EXPECT_EQ(catalog->rule_of(*ssn).kind, "ssn");
  EXPECT_EQ(catalog->rule_of(*ssn).strategy.strategy, Strategy::partial);
  ASSERT_NE(catalog->find(100, 3), nullptr);
  EXPECT_EQ(catalog->rule_of(*catalog->find(100, 3)).kind, "email");
  ASSERT_NE(catalog->find(300, 1), nullptr) << "a name pattern matches across tables";
  EXPECT_EQ(catalog->find(100, 2), nullptr) << "the rule for target 'other' does not apply to 'app'";
  EXPECT_EQ(catalog->find(100, 1), nullptr);
  EXPECT_TRUE(catalog->relids.count(400));
  EXPECT_TRUE(catalog->relations.count("pg_catalog.pg_class"));
  EXPECT_TRUE(catalog->relations.count("pg_temp.scratch")) << "temporary tables are known through pg_temp";

  auto other = build_target_catalog(masking, "other", sample_catalog(), {}, {});
  EXPECT_NE(other->find(100, 2), nullptr);
}

TEST(MaskColumns, ViewColumnsFollowTheirOriginAndExpressionsOverMaskedColumnsAreMasked) {
  auto masking = masking_from(kRules);
  // v_customers: id <- customers.id, tax_id <- customers.ssn, mail = upper(email)
  // (an expression), name <- customers.name.
  const std::vector<ViewColumn> views = {{200, 1, 100, 1}, {200, 2, 100, 4}, {200, 3, 0, 0}, {200, 4, 100, 2}};
  const std::vector<ViewDependency> deps = {{200, 100, 1}, {200, 100, 2}, {200, 100, 3}, {200, 100, 4}};
  auto catalog = build_target_catalog(masking, "app", sample_catalog(), views, deps);
  const MaskedColumn* tax_id = catalog->find(200, 2);
  ASSERT_NE(tax_id, nullptr);
  EXPECT_EQ(tax_id->column, "tax_id");
  EXPECT_EQ(catalog->rule_of(*tax_id).kind, "ssn") << "a view column takes its origin's rule";
  EXPECT_NE(catalog->find(200, 3), nullptr) << "an expression in a view that reads a masked column is masked";
  EXPECT_EQ(catalog->find(200, 1), nullptr);
  EXPECT_EQ(catalog->find(200, 4), nullptr);
}

TEST(MaskColumns, ProtectedColumnsHonourExemptGroups) {
  auto masking = masking_from(kRules);
  auto catalog = build_target_catalog(masking, "app", sample_catalog(), {}, {});
  auto agent = protected_columns_for(*catalog, {"agents"}, 7);
  EXPECT_EQ(agent->version, 7u);
  ASSERT_TRUE(agent->relations.count("public.customers"));
  EXPECT_EQ(agent->relations.at("public.customers"), (std::vector<std::string>{"email", "ssn"}));
  auto dba = protected_columns_for(*catalog, {"dba"}, 7);
  EXPECT_EQ(dba->relations.at("public.customers"), std::vector<std::string>{"email"}) << "dba is exempt from ssn";
  EXPECT_TRUE(column_rules_apply(*masking, "app", {"agents"}));
  auto only_ssn = masking_from("[[mask.column]]\ncolumn = \"ssn\"\nexempt_groups = [\"dba\"]\n");
  EXPECT_FALSE(column_rules_apply(*only_ssn, "app", {"dba"})) << "exempt from every rule: nothing to protect";
  EXPECT_TRUE(column_rules_apply(*only_ssn, "app", {"agents"}));
}

TEST(MaskColumns, ConfigMistakesAreReportedWithTheirLine) {
  EXPECT_EQ(config_errors("[[mask.column]]\ntable = \"customers\"\n").size(), 1u) << "column is required";
  auto star = config_errors("[[mask.column]]\ncolumn = \"*\"\n");
  ASSERT_EQ(star.size(), 1u);
  EXPECT_NE(star[0].find("not \"*\""), std::string::npos) << star[0];
  auto strategy = config_errors("[[mask.column]]\ncolumn = \"ssn\"\nstrategy = \"shred\"\n");
  ASSERT_EQ(strategy.size(), 1u);
  EXPECT_EQ(strategy[0].rfind("3: ", 0), 0u) << strategy[0];
  EXPECT_EQ(config_errors("[[mask.column]]\ncolumn = \"ssn\"\ncolour = 1\n").size(), 1u);
  EXPECT_EQ(config_errors("[[mask.column]]\ncolumn = \"ssn\"\nstrategy = \"token\"\n").size(), 1u)
      << "the token strategy needs token_key_file";
  EXPECT_EQ(config_errors("[mask]\ncatalog_refresh_seconds = 1\n").size(), 1u);
  EXPECT_TRUE(config_errors("[[mask.column]]\ntarget = [\"a\", \"b\"]\ncolumn = \"Card Number\"\n").empty());
}

// --- the parse-tree checks ---------------------------------------------------

std::shared_ptr<const policy::ProtectedColumns> customers_protection() {
  auto p = std::make_shared<policy::ProtectedColumns>();
  p->version = 1;
  p->relations["public.customers"] = {"email", "ssn", "card", "api_key"};
  p->relations["public.v_customers"] = {"tax_id", "mail"};
  for (const char* name : {"public.customers", "public.v_customers", "public.orders", "public.orders_id_seq",
                           "pg_catalog.pg_class", "pg_catalog.pg_stats", "pg_catalog.pg_stat_activity", "pg_catalog.pg_db_role_setting"})
    p->known_relations.insert(name);
  for (const auto& [relation, columns] : p->relations)
    for (const auto& c : columns) p->column_names.insert(c);
  return p;
}

std::shared_ptr<const policy::Policy> agent_policy() {
  return policy::test_policies::agent_policy(policy::AccessMode::read_write);
}

Subject masked_subject() {
  Subject s = policy::test_policies::agent_subject();
  s.protected_columns = customers_protection();
  return s;
}

TEST(MaskColumns, BypassCorpusIsJudgedAsSpecified) {
  const auto cases = testing_support::load_statement_cases(SLUICE_SOURCE_DIR "/tests/mask/masked_columns.cases");
  ASSERT_GE(cases.size(), 60u) << "the bypass suite must hold at least 60 statements";
  Engine engine(agent_policy());
  Subject subject = masked_subject();
  size_t blocked = 0;
  for (const auto& c : cases) {
    const Decision& d = engine.judge(subject, c.sql);
    const std::string got = d.allowed() ? "allow" : "block " + d.rule;
    EXPECT_EQ(got, c.expected) << "line " << c.line << ": " << c.sql << "\n  " << d.message;
    blocked += !d.allowed();
  }
  EXPECT_GE(blocked, 60u);
}

TEST(MaskColumns, LiteralShapesDecideAsTheirTexts) {
  std::vector<std::string> texts;
  for (const auto& c : testing_support::load_statement_cases(SLUICE_SOURCE_DIR "/tests/mask/masked_columns.cases"))
    texts.push_back(c.sql);
  for (const char* sql : {"SELECT ssn FROM customers WHERE id = 5 ORDER BY 1", "SELECT id FROM customers WHERE id = 5 OR ssn = 5",
                          "SELECT name FROM customers WHERE id IN (1, 2) GROUP BY name, 1",
                          "SELECT ssn, id + 1 FROM customers WHERE id BETWEEN 1 AND 5"})
    texts.push_back(sql);
  EXPECT_GE(policy::test_policies::expect_shapes_decide_as_texts(agent_policy(), masked_subject(), texts), 10u);
}

TEST(MaskColumns, TheSameStatementsRunForIdentitiesWithoutMaskedColumns) {
  Engine engine(agent_policy());
  Subject subject = masked_subject();
  subject.protected_columns = nullptr;
  for (const char* sql : {"SELECT ssn || '' FROM customers", "SELECT row_to_json(c) FROM customers c",
                          "COPY customers TO STDOUT", "SELECT query FROM pg_stat_activity"})
    EXPECT_TRUE(engine.judge(subject, sql).allowed()) << sql;
}

TEST(MaskColumns, SideChannelsAreClosedWithoutTheAgentPackToo) {
  Engine engine(policy::test_policies::agent_policy(policy::AccessMode::admin, /*with_pack=*/false));
  Subject subject = masked_subject();
  for (const char* sql : {"SELECT query_to_xml('select ssn from customers', true, true, '')",
                          "SELECT * FROM table_to_xml('customers', true, true, '')", "SELECT lo_get(16400)",
                          "SELECT * FROM dblink('dbname=app', 'select ssn from customers') AS t(s text)",
                          "DO $$ BEGIN PERFORM 1; END $$"}) {
    const Decision& d = engine.judge(subject, sql);
    EXPECT_EQ(d.rule, "masking-side-channel") << sql;
  }
}

TEST(MaskColumns, AnUnreadableCatalogRefusesEverythingAndANewVersionEmptiesTheCache) {
  Engine engine(agent_policy());
  Subject subject = masked_subject();
  EXPECT_TRUE(engine.judge(subject, "SELECT name FROM customers").allowed());
  auto down = std::make_shared<policy::ProtectedColumns>();
  down->version = 2;
  down->ready = false;
  down->unavailable = "connection refused";
  subject.protected_columns = down;
  const Decision& d = engine.judge(subject, "SELECT name FROM customers");
  EXPECT_FALSE(d.allowed()) << "a cached allow must not survive a new catalog version";
  EXPECT_EQ(d.sqlstate, "55000");
  EXPECT_NE(d.message.find("connection refused"), std::string::npos) << d.message;
}

TEST(MaskColumns, TempTablesAndQualifiedNamesResolve) {
  Engine engine(agent_policy());
  Subject subject = masked_subject();
  auto p = std::make_shared<policy::ProtectedColumns>(*customers_protection());
  p->version = 3;
  p->known_relations.insert("pg_temp.scratch");
  p->relations["pg_temp.scratch"] = {"ssn"};
  subject.protected_columns = p;
  EXPECT_TRUE(engine.judge(subject, "SELECT ssn FROM scratch").allowed());
  EXPECT_FALSE(engine.judge(subject, "SELECT ssn || 'x' FROM scratch").allowed());
  EXPECT_FALSE(engine.judge(subject, "SELECT ssn || 'x' FROM pg_temp_7.scratch").allowed());
  EXPECT_TRUE(engine.judge(subject, "SELECT relname FROM pg_catalog.pg_class").allowed());
  const Decision& unknown = engine.judge(subject, "SELECT 1 FROM elsewhere.customers");
  EXPECT_EQ(unknown.rule, "masking-unknown-relation");
  EXPECT_TRUE(engine.judge(subject, "CREATE TABLE brand_new (id int)").allowed()) << "creating leaks nothing";
}

}  // namespace
}  // namespace sluice::mask
