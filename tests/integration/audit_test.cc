// The audit trail end to end (docs/audit.md): real clients (psql, libpq, pgbench) talk
// through sluiced to the fixture's PostgreSQL, then the segment files are read back.
// Checked: what each record says and in which order, the hash chain (recomputed here
// with OpenSSL, independently of audit/chain.cc, and by `sluicectl audit verify`),
// that PostgreSQL's own statement log (log_statement = 'all') holds nothing the trail
// lacks, a crash, a full disk, rotation with retention, async mode and restarts.
#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "core/json.h"
#include "tests/integration/fixture.h"

namespace sluice::it {
namespace {

using Clock = std::chrono::steady_clock;
using Node = core::JsonDocument::Node;

// ---------------------------------------------------------------------------
// Reading the trail.

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char b : digest) {
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }
  return hex;
}

const std::string kGenesis(64, '0');

// Compact JSON text of a parsed value, to compare a field with a literal and to show it.
std::string render_json(Node node) {
  if (!node) return "<absent>";
  switch (node.type()) {
    case core::JsonDocument::Type::object:
    case core::JsonDocument::Type::array: {
      const bool object = node.is_object();
      std::string out(1, object ? '{' : '[');
      for (Node child = node.first(); child; child = child.next()) {
        if (out.size() > 1) out += ',';
        if (object) out += "\"" + std::string(child.key()) + "\":";
        out += render_json(child);
      }
      return out + (object ? '}' : ']');
    }
    case core::JsonDocument::Type::string: {
      std::string out = "\"";
      for (char c : node.text()) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
      return out + "\"";
    }
    case core::JsonDocument::Type::number:
      return std::string(node.text());
    case core::JsonDocument::Type::boolean:
      return node.boolean() ? "true" : "false";
    case core::JsonDocument::Type::null:
      return "null";
  }
  return "?";
}

std::vector<std::string> string_array(Node array) {
  std::vector<std::string> out;
  for (Node child = array.first(); child; child = child.next()) out.emplace_back(child.text());
  return out;
}

// One line of the trail.
struct Record {
  std::string file;  // segment file name
  std::string line;  // its exact bytes, without the newline
  core::JsonDocument json;

  Node operator[](std::string_view key) const { return json.root()[key]; }
  std::string text(std::string_view key) const { return std::string((*this)[key].text()); }
  int64_t number(std::string_view key) const { return (*this)[key].integer(); }
  std::string type() const { return text("type"); }
  int64_t n() const { return number("n"); }
  // A statement record's SQL, decoded from sql_base64 when it is not UTF-8.
  std::string sql() const {
    if ((*this)["sql_base64"]) return base64_decode((*this)["sql_base64"].text()).value_or("<bad base64>");
    return text("sql");
  }
};

struct Trail {
  std::vector<std::string> files;  // segment file names, in record order
  std::vector<Record> records;
  std::string torn;  // bytes after the last newline of the newest segment

  std::vector<const Record*> of_type(std::string_view type) const {
    std::vector<const Record*> out;
    for (const Record& r : records)
      if (r.type() == type) out.push_back(&r);
    return out;
  }
  // session_start ... session_end of one session, in trail order.
  std::vector<const Record*> of_session(std::string_view session) const {
    std::vector<const Record*> out;
    for (const Record& r : records)
      if (r["session"].text() == session) out.push_back(&r);
    return out;
  }
  // The session ids of `user`, in the order they started.
  std::vector<std::string> sessions_of(std::string_view user) const {
    std::vector<std::string> out;
    for (const Record* r : of_type("session_start"))
      if (r->text("user") == user) out.push_back(r->text("session"));
    return out;
  }
  bool session_ended(std::string_view session) const {
    for (const Record* r : of_type("session_end"))
      if (r->text("session") == session) return true;
    return false;
  }
  size_t ended_sessions() const { return of_type("session_end").size(); }
  std::string dump(size_t max_records = 40) const {
    std::string out;
    const size_t from = records.size() > max_records ? records.size() - max_records : 0;
    for (size_t i = from; i < records.size(); ++i) out += records[i].file + ": " + records[i].line.substr(0, 400) + "\n";
    return out;
  }
};

bool is_segment_name(const std::string& name) {
  if (name.size() != 6 + 20 + 6 || name.rfind("audit-", 0) != 0 || name.substr(26) != ".jsonl") return false;
  for (size_t i = 6; i < 26; ++i)
    if (name[i] < '0' || name[i] > '9') return false;
  return true;
}

bool is_timestamp(std::string_view ts) {  // 2026-12-06T08:01:53.123456Z
  static constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd.ddddddZ";
  if (ts.size() != kShape.size()) return false;
  for (size_t i = 0; i < ts.size(); ++i) {
    if (kShape[i] == 'd' ? (ts[i] < '0' || ts[i] > '9') : ts[i] != kShape[i]) return false;
  }
  return true;
}

// The segment file names of `dir`, in record order.
std::vector<std::string> segment_names(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (is_segment_name(name)) names.push_back(name);
  }
  if (ec) ADD_FAILURE() << "cannot list " << dir << ": " << ec.message();
  std::sort(names.begin(), names.end());
  return names;
}

// Every segment of `dir`, in record order, parsed. A line that is not a JSON object
// with a timestamp and a type, or a partial line anywhere but at the very end, fails
// the test.
Trail read_trail(const std::string& dir) {
  Trail trail;
  trail.files = segment_names(dir);
  for (size_t f = 0; f < trail.files.size(); ++f) {
    const std::string& name = trail.files[f];
    const std::string text = read_file(dir + "/" + name);
    size_t at = 0;
    for (size_t end; (end = text.find('\n', at)) != std::string::npos; at = end + 1) {
      Record& r = trail.records.emplace_back();
      r.file = name;
      r.line = text.substr(at, end - at);
      if (!r.json.load_json(r.line) || !r.json.root().is_object())
        ADD_FAILURE() << name << ": a line is not a JSON object: " << r.line.substr(0, 300);
      else if (!is_timestamp(r.text("ts")) || r.type().empty())
        ADD_FAILURE() << name << ": a record without ts or type: " << r.line.substr(0, 300);
    }
    if (at == text.size()) continue;
    if (f + 1 == trail.files.size())
      trail.torn = text.substr(at);
    else
      ADD_FAILURE() << name << " ends inside a line but is not the newest segment";
  }
  return trail;
}

// Reads the trail until `done` holds for it or `timeout` passes; the last reading. Only
// statement records are synchronous (strict mode): outcomes and session ends follow.
Trail await_trail(const std::string& dir, const std::function<bool(const Trail&)>& done,
                  std::chrono::milliseconds timeout = 5s) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    Trail trail = read_trail(dir);
    if (done(trail) || Clock::now() >= deadline) return trail;
    std::this_thread::sleep_for(20ms);
  }
}

// Recomputes the chain: n consecutive, prev the SHA-256 of the line before, each
// segment named after its first record, and the first record either record 1 (prev
// all zeros) or one a retention record vouches for (its last_hash for record n-1).
testing::AssertionResult chain_intact(const Trail& trail) {
  if (trail.records.empty()) return testing::AssertionFailure() << "the trail has no records";
  std::map<int64_t, std::string> vouched;  // last record of a removed segment -> its hash
  for (const Record* r : trail.of_type("retention"))
    for (Node e = (*r)["removed"].first(); e; e = e.next()) vouched[e["last"].integer()] = e["last_hash"].text();

  const Record& first = trail.records.front();
  if (first.n() == 1 && first.text("prev") != kGenesis)
    return testing::AssertionFailure() << "record 1 does not have the genesis prev: " << first.line.substr(0, 200);
  if (first.n() != 1) {
    const auto v = vouched.find(first.n() - 1);
    if (v == vouched.end() || v->second != first.text("prev"))
      return testing::AssertionFailure() << "the trail starts at record " << first.n()
                                         << " but no retention record vouches for record " << first.n() - 1
                                         << " with hash " << first.text("prev");
  }
  std::string file;
  for (size_t i = 0; i < trail.records.size(); ++i) {
    const Record& r = trail.records[i];
    if (r.file != file) {
      file = r.file;
      if (std::stoull(file.substr(6, 20)) != static_cast<uint64_t>(r.n()))
        return testing::AssertionFailure() << file << " starts with record " << r.n();
    }
    if (i == 0) continue;
    const Record& before = trail.records[i - 1];
    if (r.n() != before.n() + 1)
      return testing::AssertionFailure() << r.file << ": record " << r.n() << " follows record " << before.n();
    if (r.text("prev") != sha256_hex(before.line))
      return testing::AssertionFailure() << r.file << ": record " << r.n() << " has prev " << r.text("prev")
                                         << ", the line before hashes to " << sha256_hex(before.line);
  }
  return testing::AssertionSuccess();
}

testing::AssertionResult sluicectl_verifies(const std::string& dir) {
  ProgramOptions o;
  o.timeout = 30s;
  const ProgramResult r = run_program({SLUICECTL_PATH, "audit", "verify", dir}, o);
  if (r.exit_code == 0 && r.out.find("audit trail OK") != std::string::npos) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "sluicectl audit verify " << dir << " exited " << r.exit_code << "\n"
                                     << r.out << r.err;
}

// Replaces "2026-12-06 18:14:14.123" with <time>, "12 ms" / "1.5 s" with <duration>
// and "127.0.0.1:54321" with "127.0.0.1:<port>". (Hand-written: GCC 12 warns inside
// std::regex under -O1 with the sanitizers, and the build treats warnings as errors.)
std::string normalize_times_and_ports(const std::string& text) {
  auto digit = [&](size_t i) { return i < text.size() && text[i] >= '0' && text[i] <= '9'; };
  auto word = [&](size_t i) { return i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '_'); };
  auto shape = [&](size_t at, std::string_view pattern) {  // 'd' = a digit, anything else itself
    if (at + pattern.size() > text.size()) return false;
    for (size_t k = 0; k < pattern.size(); ++k)
      if (pattern[k] == 'd' ? !digit(at + k) : text[at + k] != pattern[k]) return false;
    return true;
  };
  static constexpr std::string_view kPort = "127.0.0.1:";
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, kPort.size(), kPort) == 0 && digit(i + kPort.size())) {
      out += "127.0.0.1:<port>";
      i += kPort.size();
      while (digit(i)) ++i;
      continue;
    }
    if (digit(i) && (i == 0 || !word(i - 1))) {
      if (shape(i, "dddd-dd-dd dd:dd:dd.ddd")) {
        out += "<time>";
        i += 23;
        continue;
      }
      size_t end = i;
      while (digit(end)) ++end;
      if (text[end] == '.' && digit(end + 1)) {
        ++end;
        while (digit(end)) ++end;
      }
      if (end < text.size() && text[end] == ' ') {
        for (std::string_view unit : {"us", "ms", "s"}) {
          if (text.compare(end + 1, unit.size(), unit) == 0 && !word(end + 1 + unit.size())) {
            out += "<duration>";
            i = end + 1 + unit.size();
            break;
          }
        }
        if (i > end) continue;
      }
      out.append(text, i, end - i);
      i = end;
      continue;
    }
    out += text[i++];
  }
  return out;
}

// `sluicectl replay` of a recorded session, with what differs from run to run (the
// session id, times, durations, the client's port) replaced by placeholders.
std::string normalized_replay(const std::string& session, const std::string& dir) {
  ProgramOptions o;
  o.timeout = 30s;
  const ProgramResult r = run_program({SLUICECTL_PATH, "replay", session, dir}, o);
  if (r.exit_code != 0) return "sluicectl replay exited " + std::to_string(r.exit_code) + ": " + r.err;
  std::string text = r.out;
  size_t at = 0;
  while ((at = text.find(session, at)) != std::string::npos) text.replace(at, session.size(), "<session>");
  return normalize_times_and_ports(text);
}

// Every regular file under dir, concatenated (to look for secrets in it).
std::string all_bytes_under(const std::string& dir) {
  std::string bytes;
  std::error_code ec;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir, ec))
    if (entry.is_regular_file()) bytes += read_file(entry.path().string());
  return bytes;
}

// ---------------------------------------------------------------------------
// PostgreSQL's statement log (log_statement = 'all', log_line_prefix
// '%m [%p] %q%u@%d/%a '). On stderr, PostgreSQL starts each continuation line of a
// message with a tab.

const std::string kRefusalSubstitute = "SELECT 'sluice: statement blocked by policy (ref ";

// The SQL of every statement PostgreSQL logged for `role` after byte `from` of its log:
// "statement: SQL" (simple Query) and "execute NAME: SQL" (extended) entries. An entry
// runs until the next line that starts with a timestamp (SQL may span lines). sluice's
// stand-ins for refused statements are left out: the trail records the original.
std::vector<std::string> server_statements(const std::string& log, size_t from, const std::string& role = "sluice_app") {
  std::vector<std::string> entries;
  for (size_t at = from, end; at < log.size(); at = end + 1) {
    end = log.find('\n', at);
    if (end == std::string::npos) end = log.size();
    const std::string_view line(log.data() + at, end - at);
    const bool starts_entry = line.size() > 5 && std::isdigit(static_cast<unsigned char>(line[0])) && line[4] == '-';
    if (starts_entry || entries.empty())
      entries.emplace_back(line);
    else
      entries.back().append("\n").append(line.substr(line.starts_with('\t') ? 1 : 0));
  }
  std::vector<std::string> statements;
  const std::string who = "] " + role + "@";
  for (const std::string& e : entries) {
    if (e.find(who) == std::string::npos) continue;
    std::string sql;
    if (const size_t s = e.find(" LOG:  statement: "); s != std::string::npos) {
      sql = e.substr(s + 18);
    } else if (const size_t x = e.find(" LOG:  execute "); x != std::string::npos) {
      const size_t colon = e.find(": ", x + 15);
      if (colon == std::string::npos) continue;
      sql = e.substr(colon + 2);
    } else {
      continue;
    }
    if (sql.rfind(kRefusalSubstitute, 0) != 0) statements.push_back(sql);
  }
  return statements;
}

// Strict mode's promise seen from the server: each statement PostgreSQL logged has a
// statement record with the same SQL (at least as many of them).
testing::AssertionResult server_statements_audited(const std::vector<std::string>& server, const Trail& trail) {
  std::map<std::string, int> recorded;
  for (const Record* r : trail.of_type("statement")) ++recorded[r->sql()];
  std::map<std::string, int> logged;
  for (const std::string& sql : server) ++logged[sql];
  testing::AssertionResult failure = testing::AssertionFailure();
  bool missing = false;
  for (const auto& [sql, count] : logged) {
    if (recorded[sql] >= count) continue;
    missing = true;
    failure << "PostgreSQL ran " << count << " x [" << sql.substr(0, 200) << "], the trail records it "
            << recorded[sql] << " time(s)\n";
  }
  return missing ? failure : testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------
// Clients.

std::string sqlstate_of(const PGresult* r) {
  const char* v = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  return v != nullptr ? v : "";
}

// Waits up to `timeout` for the whole reply to what was sent on conn; its last result
// (an error wins over later ones), or nullopt if the reply did not complete in time.
std::optional<Result> await_reply(PGconn* conn, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Result last;
  for (;;) {
    if (PQconsumeInput(conn) == 0) return Result(PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR));
    while (PQisBusy(conn) == 0) {
      Result r(PQgetResult(conn));
      if (!r) return last ? std::move(last) : Result(PQmakeEmptyPGresult(conn, PGRES_COMMAND_OK));
      if (!last || PQresultStatus(last.get()) != PGRES_FATAL_ERROR) last = std::move(r);
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{PQsocket(conn), POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(left.count()));
  }
}

std::optional<Result> exec_within(PGconn* conn, const std::string& sql, std::chrono::milliseconds timeout) {
  if (PQsendQuery(conn, sql.c_str()) != 1) return Result(PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR));
  return await_reply(conn, timeout);
}

constexpr const char* kReaderPassword = "reader-secret-pw";

// alice may do anything (the fixture's helpers log in as her); reader is read-only.
constexpr const char* kPolicyToml = R"toml(
[groups.admins]
targets = ["*"]
access = "admin"

[groups.readers]
targets = ["app"]
access = "read-only"
)toml";

class AuditTest : public GatewayTest {
 protected:
  SluicedOptions options() override {
    SluicedOptions o;
    o.users = {{"alice", kAlicePassword, false, {"admins"}}, {"reader", kReaderPassword, false, {"readers"}}};
    o.policy_toml = kPolicyToml;
    o.audit_toml = audit_toml();
    return o;
  }
  virtual std::string audit_toml() { return ""; }

  void SetUp() override {
    log_from_ = PgCluster::shared().log().size();
    GatewayTest::SetUp();
  }

  std::string dir() { return gw().audit_dir(); }
  Trail trail() { return read_trail(dir()); }
  // What PostgreSQL logged for sluice's backend role since the test began.
  std::vector<std::string> server_log_statements() { return server_statements(pg().log(), log_from_); }

  // psql with one -c per query: each is sent as one Query message, exactly as given.
  ProgramResult psql(const std::string& user, const std::string& password, const std::vector<std::string>& queries) {
    std::vector<std::string> argv = {pg().bin("psql"), "-X", "-q", "-h", "127.0.0.1", "-p", std::to_string(gw().port()),
                                     "-U", user, "-d", "app"};
    for (const std::string& q : queries) argv.insert(argv.end(), {"-c", q});
    ProgramOptions o;
    o.env = {"PGPASSWORD=" + password, "PGCONNECT_TIMEOUT=10"};
    o.timeout = 30s;
    return run_program(argv, o);
  }

  // Waits until every session that started has ended; the trail.
  Trail trail_after_sessions_end() {
    return await_trail(dir(), [](const Trail& t) { return t.ended_sessions() == t.of_type("session_start").size(); });
  }

  size_t log_from_ = 0;
};

// One statement of a session as the trail should tell it: its statement record and
// the outcome right after it.
struct Expected {
  std::string protocol = "simple";
  std::string sql{};
  std::vector<std::string> tags{};
  int64_t rows = 0;
  std::string sqlstate{};  // "" when it succeeded
  std::string decision = "allow";
  std::string rule{};
  std::string group{};
  std::string params{};  // rendered JSON; "" when the record has none
};

// Walks a session's records: session_start, then statement + outcome per `expected`
// statement (seq 1, 2, ...), then session_end.
void expect_session(const Trail& trail, const std::string& session, const std::vector<Expected>& expected) {
  const std::vector<const Record*> records = trail.of_session(session);
  ASSERT_EQ(records.size(), 2 * expected.size() + 2) << trail.dump();
  EXPECT_EQ(records.front()->type(), "session_start");
  for (size_t i = 0; i < expected.size(); ++i) {
    const Expected& e = expected[i];
    const Record& s = *records[1 + 2 * i];
    const Record& o = *records[2 + 2 * i];
    SCOPED_TRACE("statement " + std::to_string(i + 1) + ": " + e.sql.substr(0, 80) + "\n  " + s.line.substr(0, 600) +
                 "\n  " + o.line);
    EXPECT_EQ(s.type(), "statement");
    EXPECT_EQ(s.number("seq"), static_cast<int64_t>(i + 1));
    EXPECT_EQ(s.text("protocol"), e.protocol);
    EXPECT_EQ(s.sql(), e.sql);
    EXPECT_EQ(s.text("decision"), e.decision);
    EXPECT_EQ(s.text("rule"), e.rule);
    EXPECT_EQ(s.text("group"), e.group);
    if (!e.params.empty()) {
      EXPECT_EQ(render_json(s["params"]), e.params);
    }
    EXPECT_EQ(o.type(), "outcome");
    EXPECT_EQ(o.number("seq"), static_cast<int64_t>(i + 1));
    EXPECT_EQ(string_array(o["tags"]), e.tags);
    EXPECT_EQ(o.number("rows"), e.rows);
    EXPECT_EQ(o.text("sqlstate"), e.sqlstate);
    EXPECT_TRUE(o["duration_us"].is_number());
    EXPECT_TRUE(o["bytes"].is_number());  // exact values: ByteCountsMatchWhatTheClientExchanged
  }
  const Record& end = *records.back();
  EXPECT_EQ(end.type(), "session_end") << end.line;
  EXPECT_EQ(end.number("statements"), static_cast<int64_t>(expected.size())) << end.line;
  EXPECT_GT(end.number("bytes_in"), 0) << end.line;
  EXPECT_GT(end.number("bytes_out"), 0) << end.line;
  EXPECT_FALSE(end.text("reason").empty()) << end.line;
}

// ---------------------------------------------------------------------------
// 1. A psql session, record by record.

TEST_F(AuditTest, PsqlSessionRecordsEveryStatementAndOutcomeInOrder) {
  const std::vector<Expected> expected = {
      {.sql = "SELECT id, name FROM items WHERE id <= 3 ORDER BY id", .tags = {"SELECT 3"}, .rows = 3},
      {.sql = "SELECT 1 AS a; SELECT 2 AS b, 3 AS c; SELECT name FROM items WHERE id < 0",
       .tags = {"SELECT 1", "SELECT 1", "SELECT 0"},
       .rows = 2},
      {.sql = "SELECT 1/0", .sqlstate = "22012"},
      {.sql = "INSERT INTO items VALUES (9999, 'blocked', 1)",
       .sqlstate = "42501",
       .decision = "block",
       .rule = "access-mode",
       .group = "readers"},
      // Escaping: quotes, a backslash, a tab, a newline, non-ASCII.
      {.sql = "SELECT E'tab\\there' AS \"quoted \"\"name\"\"\",\n  'ünïcödé ✓' AS text", .tags = {"SELECT 1"}, .rows = 1},
      {.sql = "SELECT count(*) FROM items", .tags = {"SELECT 1"}, .rows = 1},
  };
  std::vector<std::string> queries;
  for (const Expected& e : expected) queries.push_back(e.sql);
  const ProgramResult run = psql("reader", kReaderPassword, queries);
  ASSERT_FALSE(run.timed_out);
  EXPECT_NE(run.err.find("division by zero"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("statement blocked by sluice policy"), std::string::npos) << run.err;

  const Trail t = trail_after_sessions_end();
  ASSERT_EQ(t.sessions_of("reader").size(), 1u) << t.dump();
  const std::string session = t.sessions_of("reader")[0];
  expect_session(t, session, expected);

  const Record& start = *t.of_session(session).front();
  EXPECT_EQ(session.size(), 16u);
  EXPECT_EQ(start.text("client").rfind("127.0.0.1:", 0), 0u) << start.line;
  EXPECT_EQ(render_json(start["groups"]), "[\"readers\"]");
  EXPECT_EQ(start.text("auth"), "scram-sha-256");
  EXPECT_EQ(start.text("target"), "app");
  EXPECT_EQ(render_json(start["tls"]), "false");
  EXPECT_EQ(t.of_session(session).back()->text("reason"), "client terminated");

  // The whole trail: sluiced's start record, then this session alone.
  ASSERT_FALSE(t.records.empty());
  EXPECT_EQ(t.records.front().type(), "start");
  EXPECT_EQ(t.records.front().text("mode"), "strict");
  EXPECT_EQ(t.records.size(), 1 + 2 * expected.size() + 2) << t.dump();
  EXPECT_TRUE(chain_intact(t)) << t.dump();
  EXPECT_TRUE(sluicectl_verifies(dir()));
  EXPECT_TRUE(server_statements_audited(server_log_statements(), t));

  // The transcript an auditor reads, against a golden copy.
  const std::string golden_path = std::string(SLUICE_SOURCE_DIR) + "/tests/integration/golden/replay_psql_session.txt";
  EXPECT_EQ(normalized_replay(session, dir()), read_file(golden_path)) << "golden file: " << golden_path;
}

// Byte counts, checked against what a raw client really exchanged: an outcome's
// `bytes` are the statement's reply up to (not including) its ReadyForQuery, whether
// it succeeded, failed in PostgreSQL or was refused by sluice; session_end covers at
// least every byte of the statements both ways.
TEST_F(AuditTest, ByteCountsMatchWhatTheClientExchanged) {
  RawClient raw;
  ASSERT_TRUE(login(raw, gw().port(), "reader", kReaderPassword, "app"));
  const std::vector<std::string> queries = {"SELECT id FROM items WHERE id <= 2", "SELECT 1/0",
                                            "DELETE FROM items WHERE id = 1"};
  std::vector<int64_t> reply_bytes;
  int64_t sent = 0, received = 0;
  for (const std::string& sql : queries) {
    const std::vector<Message> reply = simple_query(raw, sql);
    ASSERT_FALSE(reply.empty());
    ASSERT_EQ(reply.back().type, 'Z');
    int64_t bytes = 0;
    for (const Message& m : reply) bytes += static_cast<int64_t>(m.wire().size());
    received += bytes;
    sent += static_cast<int64_t>(wire::query(sql).size());
    reply_bytes.push_back(bytes - static_cast<int64_t>(reply.back().wire().size()));
  }
  raw.send(wire::terminate());
  sent += static_cast<int64_t>(wire::terminate().size());
  EXPECT_TRUE(raw.wait_closed(5s));

  const Trail t = trail_after_sessions_end();
  ASSERT_EQ(t.sessions_of("reader").size(), 1u) << t.dump();
  const std::vector<const Record*> outcomes = [&] {
    std::vector<const Record*> out;
    for (const Record* r : t.of_session(t.sessions_of("reader")[0]))
      if (r->type() == "outcome") out.push_back(r);
    return out;
  }();
  ASSERT_EQ(outcomes.size(), queries.size()) << t.dump();
  for (size_t i = 0; i < queries.size(); ++i)
    EXPECT_EQ(outcomes[i]->number("bytes"), reply_bytes[i]) << queries[i] << "\n" << outcomes[i]->line;
  const Record& end = *t.of_session(t.sessions_of("reader")[0]).back();
  EXPECT_GE(end.number("bytes_in"), sent) << end.line;
  EXPECT_GE(end.number("bytes_out"), received) << end.line;
}

// ---------------------------------------------------------------------------
// 2. The extended protocol through libpq: the prepared text and the parameters.

class AuditParams : public AuditTest {
 protected:
  std::string audit_toml() override { return "max_param_bytes = \"64B\"\n"; }
};

TEST_F(AuditParams, ExtendedProtocolRecordsPreparedSqlAndParameters) {
  const std::string at_limit(64, 'k');    // recorded as text
  const std::string long_text(100, 'L');  // longer than max_param_bytes: length and digest
  const uint32_t int4_42 = htonl(42);
  {
    Conn c = gateway_conn();
    ASSERT_TRUE(c.ok()) << c.error();

    const char* sql1 = "SELECT $1::text AS a, $2::text AS b, $3::int4 AS c, length($4::text) AS d, $5::text AS e";
    const Oid types[] = {25, 25, 23, 25, 25};
    const char* values[] = {"hello \"ünï\"", nullptr, reinterpret_cast<const char*>(&int4_42), long_text.c_str(),
                            at_limit.c_str()};
    const int lengths[] = {0, 0, 4, 0, 0};
    const int formats[] = {0, 0, 1, 0, 0};
    Result r1(PQexecParams(c, sql1, 5, types, values, lengths, formats, 0));
    ASSERT_EQ(PQresultStatus(r1.get()), PGRES_TUPLES_OK) << PQerrorMessage(c);
    EXPECT_EQ(std::string(PQgetvalue(r1.get(), 0, 2)), "42");

    Result prep(PQprepare(c, "audit_stmt", "SELECT id, name FROM items WHERE id = $1 OR name = $2", 2, nullptr));
    ASSERT_EQ(PQresultStatus(prep.get()), PGRES_COMMAND_OK) << PQerrorMessage(c);
    for (const char* id : {"7", "9"}) {
      const char* p[] = {id, "item 8"};
      Result r(PQexecPrepared(c, "audit_stmt", 2, p, nullptr, nullptr, 0));
      ASSERT_EQ(PQresultStatus(r.get()), PGRES_TUPLES_OK) << PQerrorMessage(c);
      EXPECT_EQ(PQntuples(r.get()), 2);
    }

    const char* zero[] = {"0"};
    Result fail(PQexecParams(c, "SELECT 1 / $1::int", 1, nullptr, zero, nullptr, nullptr, 0));
    EXPECT_EQ(sqlstate_of(fail.get()), "22012");
  }

  const std::string digest = sha256_hex(long_text);
  const std::vector<Expected> expected = {
      {.protocol = "extended",
       .sql = "SELECT $1::text AS a, $2::text AS b, $3::int4 AS c, length($4::text) AS d, $5::text AS e",
       .tags = {"SELECT 1"},
       .rows = 1,
       .params = "[\"hello \\\"ünï\\\"\",null,{\"base64\":\"AAAAKg==\"},{\"bytes\":100,\"sha256\":\"" + digest +
                 "\"},\"" + at_limit + "\"]"},
      {.protocol = "extended",
       .sql = "SELECT id, name FROM items WHERE id = $1 OR name = $2",
       .tags = {"SELECT 2"},
       .rows = 2,
       .params = "[\"7\",\"item 8\"]"},
      {.protocol = "extended",
       .sql = "SELECT id, name FROM items WHERE id = $1 OR name = $2",
       .tags = {"SELECT 2"},
       .rows = 2,
       .params = "[\"9\",\"item 8\"]"},
      {.protocol = "extended", .sql = "SELECT 1 / $1::int", .sqlstate = "22012", .params = "[\"0\"]"},
  };
  const Trail t = trail_after_sessions_end();
  ASSERT_EQ(t.sessions_of("alice").size(), 1u) << t.dump();
  const std::string session = t.sessions_of("alice")[0];
  expect_session(t, session, expected);
  // Statement and portal names: libpq's PQexecParams uses the unnamed ones.
  const std::vector<const Record*> statements = t.of_type("statement");
  ASSERT_EQ(statements.size(), 4u);
  EXPECT_EQ(render_json((*statements[0])["statement"]), "\"\"");
  EXPECT_EQ(render_json((*statements[0])["portal"]), "\"\"");
  EXPECT_EQ(statements[1]->text("statement"), "audit_stmt");
  EXPECT_EQ(render_json((*statements[1])["portal"]), "\"\"");
  // The long parameter is in the trail only as its digest.
  EXPECT_EQ(all_bytes_under(dir()).find(long_text), std::string::npos);
  EXPECT_TRUE(chain_intact(t)) << t.dump();
  EXPECT_TRUE(server_statements_audited(server_log_statements(), t));
}

// ---------------------------------------------------------------------------
// 3. Failed logins.

TEST_F(AuditTest, AuthFailureIsRecordedWithoutThePassword) {
  const std::string wrong = "Wr0ng-" + random_token(20);
  Conn bad = gateway_conn("alice", wrong);
  EXPECT_FALSE(bad.ok());
  Conn nobody = gateway_conn("mallory", wrong);
  EXPECT_FALSE(nobody.ok());
  {
    Conn good = gateway_conn();  // alice's real password goes through sluice too
    ASSERT_TRUE(good.ok()) << good.error();
    EXPECT_EQ(query_value(good, "SELECT 1"), "1");
  }

  const Trail t = await_trail(dir(), [](const Trail& now) {
    return now.of_type("auth_failure").size() >= 2 && now.ended_sessions() >= 1;
  });
  const std::vector<const Record*> failures = t.of_type("auth_failure");
  ASSERT_EQ(failures.size(), 2u) << t.dump();
  for (const Record* f : failures) {
    EXPECT_EQ(f->text("client").rfind("127.0.0.1:", 0), 0u) << f->line;
    EXPECT_EQ(f->text("target"), "app") << f->line;
    EXPECT_EQ(f->text("auth"), "scram-sha-256") << f->line;
    EXPECT_FALSE(f->text("reason").empty()) << f->line;
  }
  EXPECT_EQ(failures[0]->text("user"), "alice");
  EXPECT_EQ(failures[1]->text("user"), "mallory");
  EXPECT_EQ(t.sessions_of("alice").size(), 1u) << "only the good login starts a session\n" << t.dump();
  EXPECT_TRUE(t.sessions_of("mallory").empty());

  const std::string bytes = all_bytes_under(dir());
  for (const std::string& secret : {wrong, std::string(kAlicePassword), pg().app_password()})
    EXPECT_EQ(bytes.find(secret), std::string::npos) << "a password is in the audit directory: " << secret;
  EXPECT_TRUE(chain_intact(t)) << t.dump();
}

// ---------------------------------------------------------------------------
// 4. Strict mode against the server: kill -9 under load.

class AuditCrash : public AuditTest {
 protected:
  void SetUp() override {
    AuditTest::SetUp();
    if (HasFatalFailure()) return;
    pg().superuser_exec("DROP TABLE IF EXISTS audit_crash; CREATE TABLE audit_crash (v int);"
                        "ALTER TABLE audit_crash OWNER TO sluice_app");
    work_dir_ = make_temp_dir("sluice-it-audit-crash-", false);
    write_file(work_dir_ + "/script.sql",
               "\\set v random(1, 1000000)\n"
               "SELECT :v AS v, 'audit crash' AS tag;\n"
               "INSERT INTO audit_crash (v) VALUES (:v);\n");
  }
  void TearDown() override {
    for (pid_t pid : pgbench_) {
      kill(pid, SIGKILL);
      wait_for_exit(pid, 5s);
    }
    remove_tree(work_dir_);
    AuditTest::TearDown();
  }

  // pgbench in the background: 4 clients, long enough to be cut by the crash.
  // pgbench_ holds the ones not reaped yet.
  void start_pgbench(const std::string& mode) {
    const std::string conninfo = gw().conninfo();
    pgbench_.push_back(spawn_background({pg().bin("pgbench"), "-n", "-M", mode, "-c", "4", "-j", "2", "-T", "30", "-f",
                                         work_dir_ + "/script.sql", conninfo},
                                        work_dir_ + "/pgbench-" + mode + ".log", false, SIGKILL));
  }

  // Runs pgbench (simple and prepared) through sluiced until PostgreSQL has logged
  // 1500 statements, then kills sluiced with SIGKILL. What PostgreSQL ran.
  std::vector<std::string> kill_under_load() {
    start_pgbench("simple");
    start_pgbench("prepared");
    const auto deadline = Clock::now() + 8s;
    while (server_log_statements().size() < 1500 && Clock::now() < deadline) std::this_thread::sleep_for(20ms);
    EXPECT_GE(server_log_statements().size(), 1500u) << "pgbench did not get going:\n"
                                                    << read_file(work_dir_ + "/pgbench-simple.log");
    gw().signal(SIGKILL);
    EXPECT_TRUE(gw().wait_exit(5s).has_value());
    std::erase_if(pgbench_, [](pid_t pid) { return wait_for_exit(pid, 10s).has_value(); });
    EXPECT_TRUE(pgbench_.empty()) << "pgbench outlived sluiced";
    await_backends_gone();
    return server_log_statements();
  }

  // Until PostgreSQL has no backend of sluice's role left (each logged what it got).
  void await_backends_gone() {
    Conn su(pg().superuser_conninfo());
    const auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline &&
           query_value(su, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'sluice_app'") != "0")
      std::this_thread::sleep_for(20ms);
  }

  std::string work_dir_;
  std::vector<pid_t> pgbench_;
};

TEST_F(AuditCrash, KillNineUnderLoadLosesNoRecordOfAStatementThatRan) {
  const std::vector<std::string> server = kill_under_load();
  const Trail crashed = trail();
  EXPECT_TRUE(server_statements_audited(server, crashed));
  EXPECT_TRUE(chain_intact(crashed)) << crashed.dump();
  // A torn last line is not an error of the trail: verify warns and accepts it.
  EXPECT_TRUE(sluicectl_verifies(dir()));

  // Whatever the crash left, make sure the newest segment ends in a partial record,
  // as a kill during a write would leave it; the restart must cut exactly that.
  const std::string newest = dir() + "/" + crashed.files.back();
  const std::string partial = "{\"n\":" + std::to_string(crashed.records.back().n() + 1) + ",\"prev\":\"0123";
  {
    const int fd = ::open(newest.c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, partial.data(), partial.size()), static_cast<ssize_t>(partial.size()));
    ::close(fd);
  }
  const size_t torn_bytes = crashed.torn.size() + partial.size();
  const std::string torn_segment = read_file(newest);

  ASSERT_TRUE(gw().start());
  const Trail after = await_trail(dir(), [&](const Trail& t) { return t.records.size() > crashed.records.size(); });
  ASSERT_EQ(after.records.size(), crashed.records.size() + 1) << after.dump(5);
  const Record& start = after.records.back();
  EXPECT_EQ(start.type(), "start");
  EXPECT_EQ(start.n(), crashed.records.back().n() + 1);
  EXPECT_EQ(start.text("prev"), sha256_hex(crashed.records.back().line));
  EXPECT_EQ(start.number("torn_bytes"), static_cast<int64_t>(torn_bytes)) << start.line;
  EXPECT_TRUE(after.torn.empty());
  EXPECT_EQ(read_file(newest), torn_segment.substr(0, torn_segment.size() - torn_bytes)) << "only the torn tail is cut";
  EXPECT_TRUE(chain_intact(after)) << after.dump();
  EXPECT_TRUE(sluicectl_verifies(dir()));
  EXPECT_TRUE(gateway_serves());
}

// The control for the test above: async mode promises only that a crash loses no more
// than the last async_flush window. With a window longer than the run, the crash loses
// records of statements PostgreSQL ran, and the same check must see it (else it could
// not see a strict-mode bug either).
class AuditCrashAsync : public AuditCrash {
 protected:
  std::string audit_toml() override { return "mode = \"async\"\nasync_flush = \"10s\"\n"; }
};

TEST_F(AuditCrashAsync, KillNineLosesTheUnflushedWindowAndTheCheckSeesIt) {
  const std::vector<std::string> server = kill_under_load();
  EXPECT_FALSE(server_statements_audited(server, trail()));
  ASSERT_TRUE(gw().start());  // the trail is still usable after the loss
  EXPECT_TRUE(gateway_serves());
}

// ---------------------------------------------------------------------------
// 5. A full disk: statements are refused (53100), nothing is lost, it recovers alone.

class AuditDiskFull : public AuditTest {
 protected:
  void SetUp() override {
    log_from_ = PgCluster::shared().log().size();
    gw_ = std::make_unique<Sluiced>(options());
    mount_point_ = gw_->audit_dir();
    ASSERT_EQ(::mkdir(mount_point_.c_str(), 0750), 0) << std::strerror(errno);
    if (::mount("sluice-it-audit", mount_point_.c_str(), "tmpfs", 0, "size=512k,mode=0750") != 0)
      GTEST_SKIP() << "cannot mount a tmpfs on " << mount_point_ << " (" << std::strerror(errno)
                   << "): this test needs root with CAP_SYS_ADMIN";
    mounted_ = true;
    ASSERT_TRUE(gw_->start());
  }
  void TearDown() override {
    std::remove(filler_path().c_str());
    if (gw_ && !gw_->stopped_on_purpose() && gw_->pid() > 0 && !gw_->running())
      ADD_FAILURE() << "sluiced exited during the test with status " << gw_->exit_status().value_or(-1);
    if (gw_) gw_->stop();  // it keeps files open on the mount
    if (mounted_ && ::umount2(mount_point_.c_str(), 0) != 0) {
      ADD_FAILURE() << "umount " << mount_point_ << ": " << std::strerror(errno);
      ::umount2(mount_point_.c_str(), MNT_DETACH);
    }
    gw_.reset();
  }

  std::string filler_path() const { return mount_point_ + "/filler"; }

  // Writes a file until the file system has no page left.
  void fill_disk() {
    const int fd = ::open(filler_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    const std::string block(4096, 'f');
    while (::write(fd, block.data(), block.size()) > 0) {
    }
    const int error = errno;
    ::close(fd);
    ASSERT_EQ(error, ENOSPC) << std::strerror(error);
  }

  testing::AssertionResult sluiced_logged(const std::string& text, std::chrono::milliseconds timeout = 5s) {
    const auto deadline = Clock::now() + timeout;
    while (gw().log().find(text) == std::string::npos) {
      if (Clock::now() >= deadline) return testing::AssertionFailure() << "sluiced did not log \"" << text << "\":\n" << gw().log();
      std::this_thread::sleep_for(20ms);
    }
    return testing::AssertionSuccess();
  }

  std::string mount_point_;
  bool mounted_ = false;
};

TEST_F(AuditDiskFull, FullDiskRefusesStatementsThenRecoversWithoutLosingRecords) {
  Conn waiting = gateway_conn();  // its statement is accepted, then waits for the disk
  Conn refused = gateway_conn();  // its statements come after the writer failed
  ASSERT_TRUE(waiting.ok() && refused.ok()) << waiting.error() << refused.error();
  EXPECT_EQ(query_value(refused, "SELECT 'before'"), "before");
  fill_disk();

  // A record bigger than a page cannot fit in what is left of the segment's last page.
  const std::string marker = "disk_full_" + random_token(8);
  const std::string big = "SELECT length('" + std::string(16384, 'x') + "') AS " + marker;
  ASSERT_EQ(PQsendQuery(waiting, big.c_str()), 1);
  ASSERT_TRUE(sluiced_logged("audit: cannot write"));
  // Strict mode: not forwarded while its record cannot be made durable.
  EXPECT_FALSE(await_reply(waiting, 300ms).has_value()) << "answered although its record is not on disk";
  EXPECT_EQ(pg().log().find(marker, log_from_), std::string::npos) << "PostgreSQL got a statement with no record";

  // New statements are refused at once, with a message that says why; the session stays.
  std::vector<std::string> sent_refused;
  bool in_flight = false;
  for (const char* sql : {"SELECT 'refused 1'", "SELECT 'refused 2'"}) {
    sent_refused.push_back(sql);
    std::optional<Result> r = exec_within(refused, sql, 3s);
    if (!r) {
      ADD_FAILURE() << "no answer within 3 s to [" << sql << "] while the audit disk is full (expected 53100)";
      in_flight = true;
      break;
    }
    EXPECT_EQ(sqlstate_of(r->get()), "53100") << describe_result(r->get());
    const char* message = PQresultErrorField(r->get(), PG_DIAG_MESSAGE_PRIMARY);
    EXPECT_NE(std::string(message ? message : "").find("audit trail"), std::string::npos) << describe_result(r->get());
    EXPECT_EQ(PQstatus(refused), CONNECTION_OK);
  }

  // Room again: everything resumes by itself, without reconnecting.
  ASSERT_EQ(std::remove(filler_path().c_str()), 0);
  if (in_flight) {  // the refusal above is still unanswered: collect it
    std::optional<Result> late = await_reply(refused, 10s);
    ASSERT_TRUE(late.has_value()) << "the refused statement was never answered";
    EXPECT_EQ(sqlstate_of(late->get()), "53100") << describe_result(late->get());
  }
  std::optional<Result> big_result = await_reply(waiting, 10s);
  ASSERT_TRUE(big_result.has_value()) << "the held statement did not run once the disk had room";
  ASSERT_EQ(PQresultStatus(big_result->get()), PGRES_TUPLES_OK) << describe_result(big_result->get());
  EXPECT_EQ(std::string(PQgetvalue(big_result->get(), 0, 0)), "16384");
  EXPECT_TRUE(sluiced_logged("works again"));
  std::optional<Result> after = exec_within(refused, "SELECT 'after'", 5s);
  ASSERT_TRUE(after.has_value());
  ASSERT_EQ(PQresultStatus(after->get()), PGRES_TUPLES_OK) << describe_result(after->get());
  waiting.reset();
  refused.reset();

  // Nothing lost: every statement has its record and outcome, the refused ones too.
  const Trail t = trail_after_sessions_end();
  const std::vector<std::string> sessions = t.sessions_of("alice");
  ASSERT_EQ(sessions.size(), 2u) << t.dump();
  std::map<std::string, std::string> outcome_by_sql;  // sql -> sqlstate
  for (const std::string& session : sessions) {
    std::map<int64_t, std::string> sql_by_seq;
    for (const Record* r : t.of_session(session)) {
      if (r->type() == "statement") sql_by_seq[r->number("seq")] = r->sql();
      if (r->type() == "outcome") outcome_by_sql[sql_by_seq[r->number("seq")]] = r->text("sqlstate");
    }
  }
  std::vector<std::pair<std::string, std::string>> expected = {{"SELECT 'before'", ""}, {big, ""}, {"SELECT 'after'", ""}};
  for (const std::string& sql : sent_refused) expected.emplace_back(sql, "53100");
  for (const auto& [sql, sqlstate] : expected) {
    const auto found = outcome_by_sql.find(sql);
    ASSERT_NE(found, outcome_by_sql.end()) << "no statement and outcome records for " << sql.substr(0, 60) << "\n"
                                           << t.dump();
    EXPECT_EQ(found->second, sqlstate) << sql.substr(0, 60);
  }
  EXPECT_EQ(t.of_type("statement").size(), expected.size());
  EXPECT_TRUE(chain_intact(t)) << t.dump();
  EXPECT_TRUE(sluicectl_verifies(dir()));
  EXPECT_TRUE(server_statements_audited(server_log_statements(), t));
}

// ---------------------------------------------------------------------------
// 6. Rotation and retention.

class AuditRetention : public AuditTest {
 protected:
  std::string audit_toml() override { return "segment_size = \"1MiB\"\nretain_size = \"2MiB\"\n"; }
};

TEST_F(AuditRetention, SegmentsRotateAndOldOnesAreRemovedUnderARetentionRecord) {
  constexpr size_t kStatementBytes = 64 * 1024;
  constexpr int kStatements = 80;  // 5 MiB of statement records
  // Every segment that ever existed: a segment lives for at least a segment's worth of
  // statements, so listing the directory after each one sees them all.
  std::set<std::string> seen;
  {
    Conn c = gateway_conn();
    ASSERT_TRUE(c.ok()) << c.error();
    const std::string literal(kStatementBytes, 'r');
    for (int i = 0; i < kStatements; ++i) {
      ASSERT_EQ(query_value(c, "SELECT length('" + literal + "') + " + std::to_string(i)),
                std::to_string(kStatementBytes + i));
      for (const std::string& f : segment_names(dir())) seen.insert(f);
    }
  }
  // (Its session_start went with the removed segments: wait for the end alone.)
  const Trail t = await_trail(dir(), [](const Trail& now) { return now.ended_sessions() == 1; });
  EXPECT_EQ(t.ended_sessions(), 1u);
  EXPECT_GE(seen.size(), 5u) << "5 MiB in 1 MiB segments";
  ASSERT_FALSE(t.records.empty());
  EXPECT_GT(t.records.front().n(), 1) << "the oldest segments were removed";
  for (const std::string& f : seen) {
    const bool survives = std::find(t.files.begin(), t.files.end(), f) != t.files.end();
    EXPECT_EQ(survives, std::filesystem::exists(dir() + "/" + f)) << f;
  }

  // The surviving retention records (older ones went with their segments) name each
  // removed segment with its range and the hash of its last record: consecutive, all
  // gone, the last one ending right before the oldest surviving record.
  const std::vector<const Record*> retention = t.of_type("retention");
  ASSERT_FALSE(retention.empty()) << "no surviving retention record; segments: " << t.files.size();
  int64_t next_first = 0;
  for (const Record* r : retention) {
    for (Node e = (*r)["removed"].first(); e; e = e.next()) {
      SCOPED_TRACE(r->line);
      const std::string file(e["file"].text());
      EXPECT_TRUE(is_segment_name(file));
      EXPECT_TRUE(seen.count(file)) << file << " was never seen";
      if (next_first != 0) {
        EXPECT_EQ(e["first"].integer(), next_first);
      }
      EXPECT_EQ(std::stoll(file.substr(6, 20)), e["first"].integer());
      EXPECT_GE(e["last"].integer(), e["first"].integer());
      EXPECT_EQ(e["last_hash"].text().size(), 64u);
      EXPECT_FALSE(std::filesystem::exists(dir() + "/" + file)) << file << " was listed as removed";
      next_first = e["last"].integer() + 1;
    }
  }
  EXPECT_EQ(t.records.front().n(), next_first) << "the oldest surviving record follows the last removed one";

  // What is left respects retain_size, give or take the open segment.
  uint64_t total = 0;
  for (const std::string& f : t.files) total += std::filesystem::file_size(dir() + "/" + f);
  EXPECT_LE(total, (2u << 20) + (1u << 20) + 2 * kStatementBytes);

  EXPECT_TRUE(chain_intact(t)) << t.dump(3);
  EXPECT_TRUE(sluicectl_verifies(dir()));
}

// ---------------------------------------------------------------------------
// 7. Async mode, and the stop record at SIGTERM.

class AuditAsync : public AuditTest {
 protected:
  std::string audit_toml() override { return "mode = \"async\"\nasync_flush = \"5ms\"\n"; }
};

TEST_F(AuditAsync, RecordsAppearAndSigtermWritesStopAfterTheLastSessionEnd) {
  const ProgramResult run = psql("reader", kReaderPassword, {"SELECT 1", "SELECT count(*) FROM accounts"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  Conn idle = gateway_conn();  // open at shutdown: ended by it
  ASSERT_TRUE(idle.ok()) << idle.error();
  EXPECT_EQ(query_value(idle, "SELECT 'async'"), "async");

  const Trail running = await_trail(dir(), [](const Trail& t) { return t.of_type("outcome").size() >= 3; });
  ASSERT_FALSE(running.records.empty());
  EXPECT_EQ(running.records.front().text("mode"), "async");
  EXPECT_EQ(running.of_type("statement").size(), 3u) << running.dump();
  EXPECT_EQ(running.of_type("outcome").size(), 3u) << running.dump();

  EXPECT_EQ(gw().stop(), 0);
  const Trail t = trail();
  ASSERT_GE(t.records.size(), 2u);
  const Record& stop = t.records.back();
  EXPECT_EQ(stop.type(), "stop") << t.dump();
  EXPECT_FALSE(stop.text("reason").empty()) << stop.line;
  EXPECT_EQ(t.ended_sessions(), 2u) << t.dump();
  EXPECT_EQ(t.records[t.records.size() - 2].type(), "session_end") << "the idle session ends before the stop\n"
                                                                   << t.dump();
  EXPECT_TRUE(t.torn.empty());
  EXPECT_TRUE(chain_intact(t)) << t.dump();
  EXPECT_TRUE(sluicectl_verifies(dir()));
  EXPECT_TRUE(server_statements_audited(server_log_statements(), t));
}

// ---------------------------------------------------------------------------
// 8. A restart continues the chain.

TEST_F(AuditTest, RestartContinuesTheChainInANewSegment) {
  EXPECT_EQ(psql("alice", kAlicePassword, {"SELECT 'first run'"}).exit_code, 0);
  trail_after_sessions_end();
  ASSERT_EQ(gw().stop(), 0);
  const Trail first = trail();
  ASSERT_FALSE(first.records.empty());
  const Record& last = first.records.back();
  EXPECT_EQ(last.type(), "stop");

  ASSERT_TRUE(gw().start());
  EXPECT_EQ(psql("alice", kAlicePassword, {"SELECT 'second run'"}).exit_code, 0);
  const Trail second = trail_after_sessions_end();
  ASSERT_GT(second.records.size(), first.records.size());
  ASSERT_EQ(second.files.size(), first.files.size() + 1) << "each start opens a new segment";
  const Record& start = second.records[first.records.size()];
  EXPECT_EQ(start.file, second.files.back());
  EXPECT_EQ(start.type(), "start");
  EXPECT_EQ(start.n(), last.n() + 1);
  EXPECT_EQ(start.text("prev"), sha256_hex(last.line));
  EXPECT_EQ(start.number("torn_bytes"), 0);
  EXPECT_EQ(start.number("pid"), gw().pid());
  for (size_t i = 0; i < first.records.size(); ++i)
    EXPECT_EQ(second.records[i].line, first.records[i].line) << "the first run's records are untouched";
  EXPECT_TRUE(chain_intact(second)) << second.dump();
  EXPECT_TRUE(sluicectl_verifies(dir()));
}

}  // namespace
}  // namespace sluice::it
