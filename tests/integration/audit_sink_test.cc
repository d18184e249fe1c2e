// The central sink end to end (docs/audit.md, "Central store"): sluiced ships its
// trail to a table in a separate database of the fixture's PostgreSQL. Checked against
// the local segment files, which stay the source of truth: every record is in the
// table exactly once under its (segment, offset), with its number and SQL; an outage
// of the central database never slows a statement and is caught up afterwards; a
// restart without the position file ships everything again without duplicates.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

#include "core/json.h"
#include "tests/integration/fixture.h"

namespace sluice::it {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kSinkRole = "sluice_central";
constexpr const char* kGatewayName = "it-gw";
constexpr const char* kTable = "sluice_audit";

// One line of a local segment file.
struct LocalRecord {
  int64_t n = 0;
  std::string type;
  std::string session;
  std::string sql;  // statement records
};
// (segment, line offset) -> record
using Records = std::map<std::pair<std::string, int64_t>, LocalRecord>;

// "audit-" + 20 digits + ".jsonl"
bool is_segment_name(const std::string& name) {
  static constexpr std::string_view kPrefix = "audit-", kSuffix = ".jsonl";
  if (name.size() != kPrefix.size() + 20 + kSuffix.size()) return false;
  if (!name.starts_with(kPrefix) || !name.ends_with(kSuffix)) return false;
  return std::all_of(name.begin() + kPrefix.size(), name.end() - kSuffix.size(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

// Every complete line of every segment in `dir`.
Records local_records(const std::string& dir) {
  Records records;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!is_segment_name(name)) continue;
    const std::string text = read_file(entry.path().string());
    core::JsonDocument json;
    size_t at = 0;
    for (size_t end; (end = text.find('\n', at)) != std::string::npos; at = end + 1) {
      const std::string_view line = std::string_view(text).substr(at, end - at);
      LocalRecord r;
      if (!json.load_json(line) || !json.root().is_object()) {
        ADD_FAILURE() << name << ": not a JSON object: " << line.substr(0, 200);
        continue;
      }
      r.n = json.root()["n"].integer();
      r.type = std::string(json.root()["type"].text());
      r.session = std::string(json.root()["session"].text());
      r.sql = std::string(json.root()["sql"].text());
      records[{name, static_cast<int64_t>(at)}] = std::move(r);
    }
  }
  if (ec) ADD_FAILURE() << "cannot list " << dir << ": " << ec.message();
  return records;
}

class AuditSinkTest : public GatewayTest {
 protected:
  SluicedOptions options() override {
    SluicedOptions o;
    o.audit_toml =
        "[audit.sink]\n"
        "host = \"127.0.0.1\"\n"
        "port = " +
        std::to_string(pg().port()) +
        "\n"
        "database = \"" +
        database_ +
        "\"\n"
        "user = \"" +
        kSinkRole +
        "\"\n"
        "password_file = \"" +
        password_file_ +
        "\"\n"
        "gateway = \"" +
        kGatewayName +
        "\"\n"
        "sslmode = \"disable\"\n"
        "batch_records = 7\n"  // several batches per test
        "interval = \"20ms\"\n";
    return o;
  }

  void SetUp() override {
    PgCluster& cluster = PgCluster::shared();
    std::string token = random_token(10);
    std::transform(token.begin(), token.end(), token.begin(), [](unsigned char c) { return std::tolower(c); });
    database_ = "central_" + token;
    const std::string password = random_token(24);
    dir_ = make_temp_dir("sluice-it-sink-", false);
    password_file_ = dir_ + "/central.password";
    write_file(password_file_, password + "\n", 0600);
    cluster.superuser_exec(std::string("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '") +
                           kSinkRole + "') THEN CREATE ROLE " + kSinkRole + " LOGIN; END IF; END $$");
    cluster.superuser_exec(std::string("ALTER ROLE ") + kSinkRole + " PASSWORD '" + password + "'");
    cluster.superuser_exec("CREATE DATABASE " + database_ + " OWNER " + kSinkRole);
    GatewayTest::SetUp();
  }

  void TearDown() override {
    GatewayTest::TearDown();
    pg().superuser_exec("DROP DATABASE IF EXISTS " + database_ + " WITH (FORCE)");
    remove_tree(dir_);
  }

  Conn central() { return Conn(pg().superuser_conninfo(database_)); }

  // The table's rows of this gateway, keyed like local_records(); a failure (and
  // nullopt) when a key appears twice or the table cannot be read.
  std::optional<Records> central_records(std::string* why = nullptr) {
    Conn c = central();
    if (!c.ok()) {
      if (why) *why = "cannot connect to the central database: " + c.error();
      return std::nullopt;
    }
    Result r(PQexec(c, (std::string("SELECT segment, line_offset, n, type, coalesce(session, ''), "
                                    "coalesce(record->>'sql', ''), ts IS NOT NULL FROM ") +
                        kTable + " WHERE gateway = '" + kGatewayName + "'")
                           .c_str()));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
      if (why) *why = std::string("cannot read the central table: ") + PQerrorMessage(c);
      return std::nullopt;
    }
    Records records;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      LocalRecord rec;
      rec.n = std::stoll(PQgetvalue(r.get(), i, 2));
      rec.type = PQgetvalue(r.get(), i, 3);
      rec.session = PQgetvalue(r.get(), i, 4);
      rec.sql = PQgetvalue(r.get(), i, 5);
      if (std::string(PQgetvalue(r.get(), i, 6)) != "t") ADD_FAILURE() << "a row without ts: n " << rec.n;
      const auto key = std::make_pair(std::string(PQgetvalue(r.get(), i, 0)), std::stoll(PQgetvalue(r.get(), i, 1)));
      if (!records.emplace(key, std::move(rec)).second)
        ADD_FAILURE() << "row twice: " << key.first << ":" << key.second;
    }
    return records;
  }

  // The central table holds exactly the local records: same keys, same numbers, types,
  // sessions and SQL, and no record number twice.
  testing::AssertionResult central_matches_local() {
    const Records local = local_records(gw().audit_dir());
    std::string why;
    const std::optional<Records> remote = central_records(&why);
    if (!remote) return testing::AssertionFailure() << why;
    if (local.empty()) return testing::AssertionFailure() << "the local trail is empty";
    std::map<int64_t, int> numbers;
    for (const auto& [key, rec] : *remote) ++numbers[rec.n];
    for (const auto& [n, count] : numbers)
      if (count != 1) return testing::AssertionFailure() << "record " << n << " is in the table " << count << " times";
    size_t missing = 0;
    std::string first_missing;
    for (const auto& [key, rec] : local) {
      const auto it = remote->find(key);
      if (it == remote->end()) {
        if (missing++ == 0)
          first_missing = key.first + ":" + std::to_string(key.second) + " (n " + std::to_string(rec.n) + ")";
        continue;
      }
      const LocalRecord& got = it->second;
      if (got.n != rec.n || got.type != rec.type || got.session != rec.session || got.sql != rec.sql)
        return testing::AssertionFailure()
               << "row " << key.first << ":" << key.second << " differs: n " << got.n << " vs " << rec.n << ", type "
               << got.type << " vs " << rec.type << ", sql '" << got.sql << "' vs '" << rec.sql << "'";
    }
    if (missing > 0)
      return testing::AssertionFailure() << missing << " of " << local.size() << " local records are not in the table, "
                                         << "the first " << first_missing;
    if (remote->size() != local.size())
      return testing::AssertionFailure() << "the table has " << remote->size() << " rows, the trail " << local.size()
                                         << " records";
    return testing::AssertionSuccess();
  }

  // Polls central_matches_local() until it holds or `timeout` passes.
  testing::AssertionResult await_caught_up(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      testing::AssertionResult result = central_matches_local();
      if (result || Clock::now() >= deadline) return result;
      std::this_thread::sleep_for(50ms);
    }
  }

  bool await_log(const std::string& text, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (gw().log().find(text) == std::string::npos) {
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(20ms);
    }
    return true;
  }

  // Runs statements through sluice, each within `limit`: the sink never holds one up.
  void run_statements(int count, const std::string& tag, std::chrono::milliseconds limit = 2s) {
    Conn c = gateway_conn();
    ASSERT_TRUE(c.ok()) << c.error();
    for (int i = 0; i < count; ++i) {
      const auto start = Clock::now();
      // Backslashes, a tab, a newline and non-ASCII: escaped in the JSON line, and the
      // JSON's backslashes escaped again for COPY.
      const std::string sql =
          "SELECT '" + tag + " " + std::to_string(i) + "' AS a, E'back\\\\slash\\ttab' AS b,\n 'é ✓' AS c";
      Result r(PQexec(c, sql.c_str()));
      ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c);
      EXPECT_LT(Clock::now() - start, limit) << "statement " << i << " of " << tag << " was slow";
    }
  }

  std::string sink_log_prefix() const {
    return "audit sink: cannot ship to 127.0.0.1:" + std::to_string(PgCluster::shared().port()) + "/" + database_ +
           ": ";
  }

  std::string database_;
  std::string dir_;
  std::string password_file_;
};

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// (a) Every local record reaches the table exactly once, including the stop record
// the final attempt ships at shutdown.
TEST_F(AuditSinkTest, EveryLocalRecordIsInTheCentralTableOnce) {
  run_statements(30, "first");
  EXPECT_TRUE(await_caught_up(15s));
  EXPECT_NE(gw().log().find("audit sink: shipping to 127.0.0.1:" + std::to_string(pg().port()) + "/" + database_ +
                            " table sluice_audit as gateway it-gw"),
            std::string::npos)
      << gw().log();
  ASSERT_EQ(gw().stop(), 0);
  EXPECT_TRUE(central_matches_local()) << "after shutdown\n" << gw().log();
  const std::optional<Records> remote = central_records();
  ASSERT_TRUE(remote);
  size_t statements = 0, stops = 0;
  for (const auto& [key, rec] : *remote) {
    statements += rec.type == "statement" && rec.sql.find("first ") != std::string::npos;
    stops += rec.type == "stop";
  }
  EXPECT_EQ(statements, 30u);
  EXPECT_EQ(stops, 1u) << "the stop record is shipped by the final attempt";
  // Searchable as docs/audit.md shows.
  Conn c = central();
  const std::string session = query_value(c, "SELECT session FROM sluice_audit WHERE type = 'statement' LIMIT 1");
  const Rows rows =
      query(c, "SELECT ts, record->>'sql' FROM sluice_audit WHERE session = '" + session + "' ORDER BY n");
  EXPECT_GE(rows.size(), 30u);
  EXPECT_EQ(count_of(gw().log(), "audit sink: cannot ship"), 0u) << gw().log();
  // The position file is there and the trail still verifies with it beside the segments.
  EXPECT_TRUE(std::filesystem::exists(gw().audit_dir() + "/sink-position"));
  const ProgramResult verify = run_program({SLUICECTL_PATH, "audit", "verify", gw().audit_dir()});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

// (b) The central database refuses connections: statements still run at full speed,
// the sink warns once, and catches up when the database is back.
TEST_F(AuditSinkTest, OutageNeverBlocksStatementsAndIsCaughtUpAfterwards) {
  run_statements(5, "before");
  ASSERT_TRUE(await_caught_up(15s));

  pg().superuser_exec("ALTER DATABASE " + database_ + " ALLOW_CONNECTIONS false", "postgres");
  pg().superuser_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + database_ + "'",
                      "postgres");
  run_statements(25, "during");
  ASSERT_TRUE(await_log(sink_log_prefix(), 10s)) << "no warning about the outage\n" << gw().log();
  run_statements(10, "during-2");
  EXPECT_TRUE(gateway_serves());

  pg().superuser_exec("ALTER DATABASE " + database_ + " ALLOW_CONNECTIONS true", "postgres");
  EXPECT_TRUE(await_caught_up(15s)) << gw().log();
  EXPECT_TRUE(await_log("audit sink: shipping again, ", 5s)) << gw().log();
  const std::string log = gw().log();
  EXPECT_EQ(count_of(log, sink_log_prefix()), 1u) << "one warning per outage\n" << log;
  EXPECT_NE(log.find("; retrying"), std::string::npos) << log;
  ASSERT_EQ(gw().stop(), 0);
  EXPECT_TRUE(central_matches_local()) << gw().log();
}

// (c) A restart without the position file ships the whole trail again; the table
// keeps one row per record.
TEST_F(AuditSinkTest, RestartWithoutPositionFileReshipsWithoutDuplicates) {
  run_statements(12, "run1");
  ASSERT_EQ(gw().stop(), 0);
  ASSERT_TRUE(central_matches_local()) << gw().log();
  const size_t first_run = local_records(gw().audit_dir()).size();
  const std::string position = gw().audit_dir() + "/sink-position";
  ASSERT_TRUE(std::filesystem::remove(position));

  ASSERT_TRUE(gw().start());
  EXPECT_TRUE(await_log("audit sink: no " + position + " yet; shipping from the oldest segment", 5s)) << gw().log();
  run_statements(3, "run2");
  EXPECT_TRUE(await_caught_up(15s)) << gw().log();
  ASSERT_EQ(gw().stop(), 0);
  EXPECT_TRUE(central_matches_local()) << gw().log();
  // The second run shipped every record and inserted only its own.
  const size_t total = local_records(gw().audit_dir()).size();
  // "audit sink: N records shipped (M new to the table)"
  const std::string log = gw().log();
  unsigned long shipped = 0, inserted = 0;
  bool summary = false;
  for (size_t at = log.find("audit sink: "); at != std::string::npos && !summary; at = log.find("audit sink: ", at + 1))
    summary = std::sscanf(log.c_str() + at, "audit sink: %lu records shipped (%lu new to the table)", &shipped,
                          &inserted) == 2;
  ASSERT_TRUE(summary) << log;
  EXPECT_EQ(shipped, total) << log;
  EXPECT_EQ(inserted, total - first_run) << log;
}

}  // namespace
}  // namespace sluice::it
