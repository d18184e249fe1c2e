// Column rules against a real PostgreSQL: the catalog lookup makes masking alias-proof
// (table OID + attribute number), views are resolved to their base columns, exempt
// groups see clear text, and the bypass suite (tests/mask/masked_columns.cases) runs
// every statement through sluice: no raw value appears in any byte the client
// receives, allowed statements run, refused ones are refused by the named check.
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/fixture.h"
#include "tests/statement_cases.h"

namespace sluice::it {
namespace {

// Synthetic values (partial:4 shows at most a third of the digits: the SSN keeps 3).
// api_key is deliberately not in any pattern's format, so only the
// column rule can mask it: a pass here is the column rule's doing.
constexpr const char* kSsn = "536-90-4399";
constexpr const char* kEmail = "dana.okafor@corp.example.org";
constexpr const char* kCard = "4111 1111 1111 1111";
constexpr const char* kApiKey = "internal-key-7731-quartz";
constexpr const char* kDbaPassword = "dba-secret-pw";

std::string leaked(std::string_view bytes) {
  for (const char* raw : {kSsn, kEmail, kCard, kApiKey})
    if (bytes.find(raw) != std::string_view::npos) return raw;
  return "";
}

constexpr const char* kPolicyToml = R"toml(
[groups.dev]
targets = ["*"]
access = "read-write"
packs = ["agent-default"]

[groups.dba]
targets = ["*"]
access = "read-write"
)toml";

constexpr const char* kMaskToml = R"toml(
[[mask.column]]
table = "public.customers"
column = "ssn"
strategy = "partial:4"

[[mask.column]]
table = "customers"
column = "email"

[[mask.column]]
column = "card"
strategy = "partial:4"

[[mask.column]]
column = "api_key"
strategy = "null"
exempt_groups = ["dba"]
)toml";

class MaskColumns : public GatewayTest {
 protected:
  static void SetUpTestSuite() {
    PgCluster::shared().superuser_exec(
        "DROP VIEW IF EXISTS v_customers; DROP TABLE IF EXISTS customers, orders, late_secrets;"
        "CREATE TABLE customers (id int PRIMARY KEY, name text, email text, ssn text, card text, api_key text);"
        "CREATE TABLE orders (id serial PRIMARY KEY, customer_id int, total int, note text);"
        "CREATE VIEW v_customers AS SELECT id, name, ssn AS tax_id, upper(email) AS mail FROM customers;"
        "ALTER TABLE customers OWNER TO sluice_app; ALTER TABLE orders OWNER TO sluice_app;"
        "ALTER VIEW v_customers OWNER TO sluice_app;"
        "INSERT INTO customers VALUES "
        "(1, 'Ada', '" + std::string(kEmail) + "', '" + kSsn + "', '" + kCard + "', '" + kApiKey + "'),"
        "(2, 'Ben', 'ben@example.net', '219-09-9999', '5500 0000 0000 0004', 'internal-key-0002-basalt');"
        "INSERT INTO orders (customer_id, total, note) VALUES (1, 10, 'first'), (2, 20, 'second');");
  }
  static void TearDownTestSuite() {
    PgCluster::shared().superuser_exec("DROP VIEW IF EXISTS v_customers; DROP TABLE IF EXISTS customers, orders, "
                                       "late_secrets");
  }

  SluicedOptions options() override {
    SluicedOptions o;
    o.users = {{"alice", kAlicePassword, false, {"dev"}}, {"dba", kDbaPassword, false, {"dba"}}};
    o.policy_toml = kPolicyToml;
    o.mask_toml = kMaskToml;
    return o;
  }

  // One statement through a raw connection: every byte received, and the first error.
  struct Outcome {
    std::string bytes;
    std::string sqlstate;
    std::string message;
  };
  Outcome run(RawClient& c, const std::string& sql) {
    Outcome out;
    const size_t before = c.received().size();
    EXPECT_TRUE(c.send(wire::query(sql)));
    for (const Message& m : c.read_until_ready()) {
      if (m.type != 'E' || !out.sqlstate.empty()) continue;
      auto fields = parse_fields(m.body);
      out.sqlstate = fields['C'];
      out.message = fields['M'];
    }
    out.bytes = c.received().substr(before);
    return out;
  }
};

TEST_F(MaskColumns, BypassSuiteLeaksNoRawValueAndRefusesByTheNamedCheck) {
  const auto cases = testing_support::load_statement_cases(SLUICE_SOURCE_DIR "/tests/mask/masked_columns.cases");
  ASSERT_GE(cases.size(), 60u);
  RawClient c;
  ASSERT_TRUE(login(c, gw().port(), "alice", kAlicePassword, "app"));
  size_t blocked = 0;
  for (const auto& k : cases) {
    const Outcome o = run(c, k.sql);
    EXPECT_EQ(leaked(o.bytes), "") << "line " << k.line << " leaked a raw value: " << k.sql;
    if (k.expected == "allow") {
      EXPECT_EQ(o.sqlstate, "") << "line " << k.line << ": " << k.sql << "\n  " << o.message;
    } else {
      ++blocked;
      EXPECT_TRUE(o.sqlstate == "42501" || o.sqlstate == "55000") << "line " << k.line << ": " << k.sql;
      EXPECT_NE(o.message.find("blocked by sluice"), std::string::npos) << "line " << k.line << ": " << o.message;
    }
  }
  EXPECT_GE(blocked, 60u);
}

TEST_F(MaskColumns, AnAliasDoesNotDodgeAColumnRule) {
  Conn conn = gateway_conn();
  ASSERT_TRUE(conn.ok()) << conn.error();
  const Rows rows = query(conn, "SELECT ssn AS x, email AS y, card AS z, api_key AS w, name FROM customers WHERE id = 1");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0].value_or("NULL"), "***-**-*399");
  EXPECT_EQ(rows[0][1].value_or("NULL"), "[masked:email]");
  EXPECT_EQ(rows[0][2].value_or("NULL"), "**** **** **** 1111");
  EXPECT_FALSE(rows[0][3].has_value()) << "api_key's rule says null";
  EXPECT_EQ(rows[0][4].value_or("NULL"), "Ada");
}

TEST_F(MaskColumns, BinaryFormatAndExtendedProtocolAreMaskedToo) {
  Conn conn = gateway_conn();
  ASSERT_TRUE(conn.ok()) << conn.error();
  Result r(PQexecParams(conn, "SELECT api_key, ssn FROM customers WHERE id = $1", 1, nullptr,
                        std::vector<const char*>{"1"}.data(), nullptr, nullptr, /*resultFormat=*/1));
  ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQresultErrorMessage(r.get());
  EXPECT_TRUE(PQgetisnull(r.get(), 0, 0));
  EXPECT_EQ(std::string(PQgetvalue(r.get(), 0, 1), PQgetlength(r.get(), 0, 1)), "***-**-*399");
}

TEST_F(MaskColumns, ViewColumnsAreMaskedLikeTheColumnsTheyExpose) {
  Conn conn = gateway_conn();
  ASSERT_TRUE(conn.ok()) << conn.error();
  const Rows rows = query(conn, "SELECT tax_id, mail, name FROM v_customers WHERE id = 1");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0].value_or("NULL"), "***-**-*399") << "tax_id is customers.ssn";
  EXPECT_EQ(rows[0][1].value_or("NULL"), "[masked:email]") << "mail is computed from customers.email";
  EXPECT_EQ(rows[0][2].value_or("NULL"), "Ada");
}

TEST_F(MaskColumns, AnExemptGroupSeesWhatItsRuleExemptsAndNothingElse) {
  Conn dba = gateway_conn("dba", kDbaPassword);
  ASSERT_TRUE(dba.ok()) << dba.error();
  const Rows rows = query(dba, "SELECT api_key || '', ssn FROM customers WHERE id = 1");
  ASSERT_EQ(rows.size(), 1u) << "dba is exempt from api_key's rule, so an expression over it is allowed";
  EXPECT_EQ(rows[0][0].value_or("NULL"), kApiKey);
  EXPECT_EQ(rows[0][1].value_or("NULL"), "***-**-*399") << "but not from ssn's";
  Result refused(PQexec(dba, "SELECT ssn || '' FROM customers"));
  EXPECT_EQ(PQresultStatus(refused.get()), PGRES_FATAL_ERROR);

  Conn alice = gateway_conn();
  ASSERT_TRUE(alice.ok()) << alice.error();
  Result blocked(PQexec(alice, "SELECT api_key || '' FROM customers"));
  EXPECT_EQ(PQresultStatus(blocked.get()), PGRES_FATAL_ERROR);
  EXPECT_NE(std::string(PQresultErrorMessage(blocked.get())).find("masked column \"api_key\""), std::string::npos)
      << PQresultErrorMessage(blocked.get());

  // The audit trail shows the break-glass access: the dba's bare select of api_key
  // is recorded with the values it received in clear text, by kind.
  const Rows bare = query(dba, "SELECT id, api_key FROM customers ORDER BY id");
  ASSERT_EQ(bare.size(), 2u);
  EXPECT_EQ(bare[0][1].value_or("NULL"), kApiKey);
  dba.reset();
  alice.reset();
  ASSERT_EQ(gw().stop(), 0);
  bool recorded = false;
  for (const auto& entry : std::filesystem::directory_iterator(gw().audit_dir())) {
    if (entry.path().extension() != ".jsonl") continue;
    const std::string text = read_file(entry.path());
    recorded = recorded || text.find(R"("clear_text":{"api_key":2})") != std::string::npos;
  }
  EXPECT_TRUE(recorded) << "no outcome record counts the api_key values sent in clear text";
}

TEST_F(MaskColumns, ATableCreatedAfterStartIsLearnedAndMasked) {
  PgCluster::shared().superuser_exec(
      "DROP TABLE IF EXISTS late_secrets; CREATE TABLE late_secrets (id int, api_key text);"
      "ALTER TABLE late_secrets OWNER TO sluice_app;"
      "INSERT INTO late_secrets VALUES (1, '" + std::string(kApiKey) + "')");
  RawClient c;
  ASSERT_TRUE(login(c, gw().port(), "alice", kAlicePassword, "app"));
  // The first statement may meet the old snapshot (refused, 55000, never unmasked);
  // sluice rereads the catalog when that happens.
  Outcome o;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  do {
    o = run(c, "SELECT id, api_key FROM late_secrets");
    EXPECT_EQ(leaked(o.bytes), "");
    if (o.sqlstate.empty()) break;
    EXPECT_EQ(o.sqlstate, "55000") << o.message;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  } while (std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(o.sqlstate, "") << o.message;
  EXPECT_EQ(run(c, "SELECT api_key || '' FROM late_secrets").sqlstate, "42501");
}

}  // namespace
}  // namespace sluice::it
