// Tests for the reading side of the audit trail: verify() accepts an intact chain and
// names the first bad record of every kind of tampering; the listing behind `audit
// search` filters and joins; replay renders a session; JsonWriter's escaping survives
// a round trip through core::JsonDocument, which stays strict on hostile input.
#include "audit/reader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "audit/chain.h"
#include "audit/display.h"
#include "audit/listing.h"
#include "audit/record.h"
#include "audit/replay.h"
#include "core/json.h"

#include "tests/unit/test_support.h"

namespace sluice::audit {
namespace {

namespace fs = std::filesystem;

using testing_support::TempDir;

constexpr int64_t kTime = 1'796'544'113'123'456;  // 2026-12-06T08:01:53.123456Z

// Builds a chained trail in memory, segment by segment, then writes it to a directory
// as sluiced would. Tests tamper with `segments` before writing.
class Trail {
 public:
  explicit Trail(uint64_t first_n = 1, Hash first_prev = kGenesisHash) : n_(first_n), prev_(first_prev) {}

  // Appends a record with this body to the newest segment.
  void add(const std::string& body) {
    if (segments.empty()) rotate();
    std::string line;
    append_line(line, n_, prev_, body);
    line.pop_back();  // the newline; write() adds it
    prev_ = hash_line(line);
    ++n_;
    segments.back().lines.push_back(line);
  }
  void rotate() { segments.push_back({n_, {}}); }

  void write(const std::string& dir) const {
    for (const auto& segment : segments) {
      std::ofstream out(dir + "/" + segment_file_name(segment.first), std::ios::binary);
      for (const auto& line : segment.lines) out << line << '\n';
    }
  }
  const Hash& last_hash() const { return prev_; }

  struct Segment {
    uint64_t first;
    std::vector<std::string> lines;
  };
  std::vector<Segment> segments;

 private:
  uint64_t n_;
  Hash prev_;
};

// Record bodies, as the shards build them (docs/audit.md).
std::string start_body() {
  std::string out;
  begin_body(out, "start", kTime).number("pid", 4242).string("version", "0.1.0").string("mode", "strict").number("torn_bytes", 0);
  finish_body(out);
  return out;
}

std::string session_start_body(const std::string& session, const std::string& user, const std::string& target,
                               int64_t time = kTime) {
  std::string out;
  const std::vector<std::string> groups{"agents", "readers"};
  begin_body(out, "session_start", time)
      .string("session", session)
      .string("client", "127.0.0.1:53412")
      .string("user", user)
      .strings("groups", groups)
      .string("auth", "scram-sha-256")
      .string("target", target)
      .boolean("tls", false);
  finish_body(out);
  return out;
}

std::string statement_body(const std::string& session, uint64_t seq, const std::string& sql,
                           const std::string& decision, int64_t time = kTime) {
  std::string out;
  JsonWriter w = begin_body(out, "statement", time);
  w.string("session", session).number("seq", seq).string("protocol", "simple").string("sql", sql);
  w.string("decision", decision);
  if (decision != "allow") w.string("rule", "no_ddl").string("group", "agents");
  finish_body(out);
  return out;
}

std::string outcome_body(const std::string& session, uint64_t seq, const std::string& tag, uint64_t rows,
                         const std::string& sqlstate = {}) {
  std::string out;
  JsonWriter w = begin_body(out, "outcome", kTime + 12'300);
  w.string("session", session).number("seq", seq);
  w.key("tags").begin_array();
  if (!tag.empty()) w.string(tag);
  w.end_array();
  w.number("rows", rows).number("bytes", 64);
  if (!sqlstate.empty()) w.string("sqlstate", sqlstate);
  w.number("duration_us", 12'345);
  finish_body(out);
  return out;
}

std::string session_end_body(const std::string& session, uint64_t statements) {
  std::string out;
  begin_body(out, "session_end", kTime + 60'000'000)
      .string("session", session)
      .number("statements", statements)
      .number("bytes_in", 100)
      .number("bytes_out", 200)
      .number("duration_us", 60'000'000)
      .string("reason", "client terminated");
  finish_body(out);
  return out;
}

std::string retention_body(uint64_t first, uint64_t last, const Hash& last_hash) {
  std::string out;
  JsonWriter w = begin_body(out, "retention", kTime);
  w.key("removed").begin_array().begin_object();
  w.string("file", segment_file_name(first)).number("first", first).number("last", last);
  w.string("last_hash", to_hex(last_hash)).end_object().end_array();
  finish_body(out);
  return out;
}

// Three segments of four records each (n = 1..12).
Trail three_segments() {
  Trail trail;
  trail.add(start_body());
  trail.add(session_start_body("00000000000000a1", "alice", "app"));
  trail.add(statement_body("00000000000000a1", 1, "SELECT 1", "allow"));
  trail.add(outcome_body("00000000000000a1", 1, "SELECT 1", 1));
  trail.rotate();
  for (uint64_t seq = 2; seq <= 3; ++seq) {
    trail.add(statement_body("00000000000000a1", seq, "SELECT " + std::to_string(seq), "allow"));
    trail.add(outcome_body("00000000000000a1", seq, "SELECT 1", 1));
  }
  trail.rotate();
  trail.add(statement_body("00000000000000a1", 4, "DROP TABLE t", "block"));
  trail.add(outcome_body("00000000000000a1", 4, "", 0, "42501"));
  trail.add(session_end_body("00000000000000a1", 4));
  trail.add(start_body());
  return trail;
}

VerifyReport verify_trail(const Trail& trail, const TempDir& dir) {
  trail.write(dir.path());
  return verify(dir.path());
}

// Expects verify to fail at record n, line `line` of the segment starting at `file_first`.
void expect_failure(const VerifyReport& report, uint64_t file_first, uint64_t line, uint64_t n,
                    const std::string& reason_part) {
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.error->file, segment_file_name(file_first)) << format_finding(*report.error);
  EXPECT_EQ(report.error->line, line) << format_finding(*report.error);
  EXPECT_EQ(report.error->n, n) << format_finding(*report.error);
  EXPECT_NE(report.error->reason.find(reason_part), std::string::npos) << format_finding(*report.error);
}

// ---------------------------------------------------------------------------
// verify
// ---------------------------------------------------------------------------

TEST(AuditVerify, AcceptsAnIntactTrail) {
  TempDir dir;
  const Trail trail = three_segments();
  const VerifyReport report = verify_trail(trail, dir);
  ASSERT_TRUE(report.ok()) << format_finding(*report.error);
  EXPECT_TRUE(report.warnings.empty());
  EXPECT_EQ(report.segments, 3u);
  EXPECT_EQ(report.records, 12u);
  EXPECT_EQ(report.first, 1u);
  EXPECT_EQ(report.last, 12u);
  EXPECT_EQ(to_hex(report.last_hash), to_hex(trail.last_hash()));
}

TEST(AuditVerify, IgnoresFilesThatAreNotSegments) {
  TempDir dir;
  std::ofstream(dir.path() + "/.lock") << "";
  std::ofstream(dir.path() + "/audit-1.jsonl") << "not a segment name\n";
  EXPECT_TRUE(verify_trail(three_segments(), dir).ok());
}

TEST(AuditVerify, EditedByteIsCaughtAtTheNextRecord) {
  TempDir dir;
  Trail trail = three_segments();
  std::string& line = trail.segments[1].lines[0];  // record 5: SELECT 2
  line[line.find("SELECT 2") + 7] = '3';
  expect_failure(verify_trail(trail, dir), 5, 2, 6, "prev is not the hash of record 5");
}

TEST(AuditVerify, DeletedRecordIsNamed) {
  TempDir dir;
  Trail trail = three_segments();
  trail.segments[1].lines.erase(trail.segments[1].lines.begin() + 1);  // record 6
  expect_failure(verify_trail(trail, dir), 5, 2, 7, "record 6 is missing");
}

TEST(AuditVerify, SwappedRecordsAreCaught) {
  TempDir dir;
  Trail trail = three_segments();
  std::swap(trail.segments[1].lines[1], trail.segments[1].lines[2]);  // records 6 and 7
  expect_failure(verify_trail(trail, dir), 5, 2, 7, "record 6 is missing or out of order");
}

TEST(AuditVerify, DeletedMiddleSegmentIsCaught) {
  TempDir dir;
  Trail trail = three_segments();
  trail.segments.erase(trail.segments.begin() + 1);  // records 5..8
  expect_failure(verify_trail(trail, dir), 9, 1, 9, "records 5..8 are missing");
}

TEST(AuditVerify, RenamedSegmentIsCaught) {
  TempDir dir;
  const Trail trail = three_segments();
  trail.write(dir.path());
  fs::rename(dir.path() + "/" + segment_file_name(9), dir.path() + "/" + segment_file_name(7));
  expect_failure(verify(dir.path()), 7, 1, 9, "the file name says the segment starts at record 7");
}

TEST(AuditVerify, TornTailOfTheNewestSegmentIsAWarning) {
  TempDir dir;
  const Trail trail = three_segments();
  trail.write(dir.path());
  std::ofstream(dir.path() + "/" + segment_file_name(9), std::ios::app) << R"({"n":13,"prev":"00)";
  const VerifyReport report = verify(dir.path());
  ASSERT_TRUE(report.ok()) << format_finding(*report.error);
  ASSERT_EQ(report.warnings.size(), 1u);
  EXPECT_EQ(report.warnings[0].line, 5u);
  EXPECT_NE(report.warnings[0].reason.find("torn tail, will be truncated at next start"), std::string::npos);
  EXPECT_EQ(report.records, 12u);
}

TEST(AuditVerify, PartialLineInAnOlderSegmentIsAnError) {
  TempDir dir;
  Trail trail = three_segments();
  trail.write(dir.path());
  // Cut record 8's newline (and its last byte): the segment ends inside a line.
  const std::string path = dir.path() + "/" + segment_file_name(5);
  fs::resize_file(path, fs::file_size(path) - 2);
  expect_failure(verify(dir.path()), 5, 4, 0, "only the newest segment may end that way");
}

TEST(AuditVerify, GarbageLineIsNotARecord) {
  TempDir dir;
  Trail trail = three_segments();
  trail.segments[1].lines.insert(trail.segments[1].lines.begin() + 2, "hello");
  expect_failure(verify_trail(trail, dir), 5, 3, 0, "not a JSON object");
}

TEST(AuditVerify, JsonWithoutTheChainPrefixIsNotARecord) {
  TempDir dir;
  Trail trail = three_segments();
  trail.segments[0].lines[1] = R"({"prev":"x","n":2})";
  expect_failure(verify_trail(trail, dir), 1, 2, 0, "chain fields");
}

TEST(AuditVerify, FirstRecordMustHaveTheGenesisPrev) {
  TempDir dir;
  Hash not_genesis{};
  not_genesis[0] = 1;
  Trail trail(1, not_genesis);
  trail.add(start_body());
  expect_failure(verify_trail(trail, dir), 1, 1, 1, "prev of 64 zeros");
}

TEST(AuditVerify, StartVouchedForByARetentionRecordIsAccepted) {
  TempDir dir;
  const Hash removed_last = hash_line("the last record of the removed segment");
  Trail trail(101, removed_last);
  trail.add(start_body());
  trail.add(statement_body("00000000000000b2", 1, "SELECT 1", "allow"));
  trail.rotate();
  trail.add(retention_body(1, 100, removed_last));
  const VerifyReport report = verify_trail(trail, dir);
  ASSERT_TRUE(report.ok()) << format_finding(*report.error);
  EXPECT_EQ(report.first, 101u);
  EXPECT_EQ(report.records, 3u);
}

TEST(AuditVerify, StartWithoutAVoucherIsRejected) {
  TempDir dir;
  const Hash removed_last = hash_line("the last record of the removed segment");
  Trail trail(101, removed_last);
  trail.add(start_body());
  // A retention record that does not match the start: wrong hash, then wrong range.
  trail.add(retention_body(1, 100, hash_line("something else")));
  trail.add(retention_body(1, 99, removed_last));
  expect_failure(verify_trail(trail, dir), 101, 1, 101, "chain starts at record 101; earlier records are missing");
}

TEST(AuditVerify, EmptyDirectoryHasNoTrail) {
  TempDir dir;
  const VerifyReport report = verify(dir.path());
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.error->reason.find("no segment files"), std::string::npos);
  EXPECT_FALSE(verify(dir.path() + "/missing").ok());
}

TEST(AuditVerify, OverlongLineIsReportedNotFatal) {
  TempDir dir;
  Trail trail = three_segments();
  trail.segments[1].lines[1] = std::string(kMaxLineBytes + 1, 'x');
  expect_failure(verify_trail(trail, dir), 5, 2, 0, "longer than 64 MiB");
}

// ---------------------------------------------------------------------------
// LineReader
// ---------------------------------------------------------------------------

TEST(AuditLineReader, PartialLineCompletesWhenTheWriterFinishesIt) {
  TempDir dir;
  const std::string path = dir.path() + "/segment";
  std::ofstream(path) << "first\nsec";
  LineReader reader;
  std::string error;
  ASSERT_TRUE(reader.open(path, error)) << error;
  std::string_view line;
  ASSERT_EQ(reader.next(line), LineReader::Result::line);
  EXPECT_EQ(line, "first");
  ASSERT_EQ(reader.next(line), LineReader::Result::partial);
  EXPECT_EQ(line, "sec");
  EXPECT_EQ(reader.line_number(), 2u);
  std::ofstream(path, std::ios::app) << "ond\n";
  ASSERT_EQ(reader.next(line), LineReader::Result::line);
  EXPECT_EQ(line, "second");
  EXPECT_EQ(reader.next(line), LineReader::Result::end);
}

TEST(AuditLineReader, SkipsAnOverlongLineAndGoesOn) {
  TempDir dir;
  const std::string path = dir.path() + "/segment";
  std::ofstream(path) << std::string(kMaxLineBytes + 10, 'x') << "\nafter\n";
  LineReader reader;
  std::string error;
  ASSERT_TRUE(reader.open(path, error)) << error;
  std::string_view line;
  EXPECT_EQ(reader.next(line), LineReader::Result::too_long);
  EXPECT_EQ(reader.line_number(), 1u);
  ASSERT_EQ(reader.next(line), LineReader::Result::line);
  EXPECT_EQ(line, "after");
  EXPECT_EQ(reader.line_number(), 2u);
}

// ---------------------------------------------------------------------------
// search (Listing)
// ---------------------------------------------------------------------------

// Two sessions interleaved: alice on app (allowed and blocked statements), bob on
// reports; an hour apart.
std::vector<std::string> two_sessions() {
  Trail trail;
  const int64_t later = kTime + 3'600'000'000;
  trail.add(start_body());
  trail.add(session_start_body("00000000000000a1", "alice", "app"));
  trail.add(session_start_body("00000000000000b2", "bob", "reports", later));
  trail.add(statement_body("00000000000000a1", 1, "SELECT * FROM users", "allow"));
  trail.add(statement_body("00000000000000b2", 1, "select count(*) from USERS", "allow", later));
  trail.add(outcome_body("00000000000000b2", 1, "SELECT 1", 1));
  trail.add(outcome_body("00000000000000a1", 1, "SELECT 2", 2));
  trail.add(statement_body("00000000000000a1", 2, "DROP TABLE users", "block"));
  trail.add(outcome_body("00000000000000a1", 2, "", 0, "42501"));
  trail.add(session_end_body("00000000000000a1", 2));
  return trail.segments[0].lines;
}

std::vector<Row> search(const SearchFilter& filter) {
  Listing listing({filter, true});
  std::vector<Row> rows;
  for (const std::string& line : two_sessions()) EXPECT_TRUE(listing.add(line, rows));
  listing.finish(rows);
  return rows;
}

std::vector<std::string> summaries(const std::vector<Row>& rows) {
  std::vector<std::string> out;
  for (const Row& row : rows) out.push_back(row.type + " " + row.who + " " + row.result);
  return out;
}

using Summaries = std::vector<std::string>;

TEST(AuditSearch, JoinsUserFromSessionStartAndOutcomeIntoTheStatementRow) {
  SearchFilter filter;
  filter.type = "statement";
  const std::vector<Row> rows = search(filter);
  // In trail order of the statements, even though bob's outcome came first.
  EXPECT_EQ(summaries(rows),
            (Summaries{"statement alice #1 SELECT 2", "statement bob #1 SELECT 1", "statement alice #2 ERROR 42501"}));
  ASSERT_EQ(rows[0].lines.size(), 2u);  // --json prints the statement, then its outcome
  EXPECT_NE(rows[0].lines[1].find("\"type\":\"outcome\""), std::string::npos);
  EXPECT_EQ(rows[0].detail, "SELECT * FROM users");
  EXPECT_EQ(rows[0].time, "2026-12-06 08:01:53.123");
}

TEST(AuditSearch, FiltersByUserTargetSessionAndDecision) {
  SearchFilter by_user;
  by_user.user = "bob";
  EXPECT_EQ(summaries(search(by_user)), (Summaries{"session_start bob ", "statement bob #1 SELECT 1"}));

  SearchFilter by_target;
  by_target.target = "app";
  by_target.type = "statement";
  EXPECT_EQ(summaries(search(by_target)), (Summaries{"statement alice #1 SELECT 2", "statement alice #2 ERROR 42501"}));

  SearchFilter by_session;
  by_session.session = "00000000000000a1";
  EXPECT_EQ(search(by_session).size(), 4u);  // session_start, 2 statements (outcomes folded), session_end

  SearchFilter by_decision;
  by_decision.decision = "block";
  EXPECT_EQ(summaries(search(by_decision)), (Summaries{"statement alice #2 ERROR 42501"}));
}

TEST(AuditSearch, FiltersByTextIgnoringCaseAndByTime) {
  SearchFilter by_text;
  by_text.text = "from users";
  EXPECT_EQ(summaries(search(by_text)), (Summaries{"statement alice #1 SELECT 2", "statement bob #1 SELECT 1"}));

  SearchFilter since;
  since.since = parse_time("2026-12-06T09:00");
  since.type = "statement";
  EXPECT_EQ(summaries(search(since)), (Summaries{"statement bob #1 SELECT 1"}));

  SearchFilter until;
  until.until = parse_time("2026-12-06T08:01:53.123456Z");  // exclusive
  EXPECT_EQ(search(until).size(), 0u);
}

TEST(AuditSearch, OutcomesAreRowsOfTheirOwnWhenAskedFor) {
  SearchFilter filter;
  filter.type = "outcome";
  filter.decision = "block";  // inherited from the statement
  EXPECT_EQ(summaries(search(filter)), (Summaries{"outcome alice #2 ERROR 42501"}));
}

TEST(AuditSearch, TailListsEveryRecordAsItComes) {
  Listing listing({});
  std::vector<Row> rows;
  for (const std::string& line : two_sessions()) ASSERT_TRUE(listing.add(line, rows));
  EXPECT_EQ(rows.size(), two_sessions().size());
  EXPECT_EQ(rows[5].type, "outcome");
  EXPECT_EQ(rows[5].result, "SELECT 1");
  EXPECT_FALSE(listing.add("not json", rows));
}

TEST(AuditSearch, TableRowIsOneSafeLineCutToWidth) {
  Row row;
  row.time = "2026-12-06 08:01:53.123";
  row.type = "statement";
  row.session = "00000000000000a1";
  row.who = "alice #1";
  row.decision = "allow";
  row.detail = "SELECT 1\n\x1b[2J FROM t";
  const std::string line = format_row(row, 200);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(line.find('\x1b'), std::string::npos);
  EXPECT_NE(line.find("SELECT 1\xE2\x90\xA4\\x1b[2J FROM t"), std::string::npos);
  const std::string cut = format_row(row, 100);
  EXPECT_EQ(display_width(cut), 100u);
  EXPECT_TRUE(cut.ends_with("\xE2\x80\xA6"));
}

// ---------------------------------------------------------------------------
// replay
// ---------------------------------------------------------------------------

TEST(AuditReplay, RendersASessionLikePsql) {
  Trail trail;
  const std::string s = "00000000000000a1";
  trail.add(session_start_body(s, "alice", "app"));
  trail.add(session_start_body("00000000000000b2", "bob", "app"));
  {
    std::string body;
    JsonWriter w = begin_body(body, "statement", kTime + 1'000'000);
    w.string("session", s).number("seq", 1).string("protocol", "extended");
    w.string("sql", "SELECT id, name\nFROM users WHERE name = $1 AND note = $2").string("statement", "").string("portal", "");
    w.key("params").begin_array().string("o'hara").null().end_array();
    w.string("decision", "allow").string("rule", "read_app").string("group", "agents");
    w.key("rows").begin_array();
    w.begin_array().string("1").string("o'hara").end_array();
    w.begin_array().string("22").null().end_array();
    w.end_array();
    finish_body(body);
    trail.add(body);
  }
  trail.add(statement_body("00000000000000b2", 1, "SELECT 'not alice'", "allow"));
  trail.add(outcome_body(s, 1, "SELECT 2", 2));
  trail.add(statement_body(s, 2, "DROP TABLE users;", "block", kTime + 2'000'000));
  trail.add(outcome_body(s, 2, "", 0, "42501"));
  trail.add(statement_body(s, 3, "SELECT pg_sleep(100)", "allow", kTime + 3'000'000));
  trail.add(session_end_body(s, 3));

  Transcript transcript(s);
  for (const std::string& line : trail.segments[0].lines) ASSERT_TRUE(transcript.add(line));
  ASSERT_TRUE(transcript.found());
  EXPECT_EQ(transcript.render(),
            "-- session  00000000000000a1\n"
            "-- user     alice\n"
            "-- groups   agents, readers\n"
            "-- client   127.0.0.1:53412\n"
            "-- target   app\n"
            "-- start    2026-12-06 08:01:53.123\n"
            "-- end      2026-12-06 08:02:53.123\n"
            "-- reason   client terminated\n"
            "\n"
            "-- #1  2026-12-06 08:01:54.123  allow (read_app)  12.3 ms\n"
            "SELECT id, name\n"
            "FROM users WHERE name = $1 AND note = $2\n"
            "-- params: $1 = 'o''hara', $2 = NULL\n"
            " 1  | o'hara\n"
            " 22 | \n"
            "(2 rows)\n"
            "SELECT 2\n"
            "\n"
            "-- #2  2026-12-06 08:01:55.123  block (no_ddl)  12.3 ms\n"
            "DROP TABLE users;\n"
            "ERROR: 42501\n"
            "\n"
            "-- #3  2026-12-06 08:01:56.123  allow\n"
            "SELECT pg_sleep(100)\n"
            "-- no outcome recorded (the session ended before the result was complete)\n");

  Transcript unknown("ffffffffffffffff");
  for (const std::string& line : trail.segments[0].lines) unknown.add(line);
  EXPECT_FALSE(unknown.found());
}

// ---------------------------------------------------------------------------
// JsonWriter -> core::JsonDocument, and the document's strictness
// ---------------------------------------------------------------------------

TEST(AuditJson, WriterEscapingRoundTripsThroughTheDocument) {
  const std::string nasty = std::string("quote\" backslash\\ nl\n cr\r tab\t nul") + '\0' + " bell\x07 del\x7f esc\x1b";
  const std::string utf8 = "caf\xC3\xA9 \xF0\x9F\x98\x80";           // café 😀
  const std::string invalid = "a\xFF" "b\xC3(c\xED\xA0\x80" "d";      // stray byte, cut sequence, surrogate
  const std::vector<uint8_t> bytes{0x00, 0x01, 0x02, 0xFF, 0xFE};
  std::string out;
  JsonWriter w(out);
  w.begin_object().string("nasty", nasty).string("utf8", utf8).string("invalid", invalid);
  w.key("base64").base64(bytes).number("big", UINT64_MAX / 2).boolean("yes", true);
  w.key("list").begin_array().null().begin_array().end_array().begin_object().end_object().end_array();
  w.end_object();

  EXPECT_TRUE(valid_utf8(out));
  EXPECT_EQ(out.find('\n'), std::string::npos);  // one line
  core::JsonDocument document;
  ASSERT_TRUE(document.load_json(out)) << out;
  const auto root = document.root();
  EXPECT_EQ(root["nasty"].text(), nasty);
  EXPECT_EQ(root["utf8"].text(), utf8);
  EXPECT_EQ(root["invalid"].text(), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD(c\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" "d");
  EXPECT_EQ(root["base64"].text(), "AAEC//4=");
  EXPECT_EQ(root["big"].integer(), static_cast<int64_t>(UINT64_MAX / 2));
  EXPECT_TRUE(root["yes"].boolean());
  const auto list = root["list"];
  ASSERT_TRUE(list.is_array());
  EXPECT_EQ(list.first().type(), core::JsonDocument::Type::null);
  EXPECT_TRUE(list.first().next().is_array());
  EXPECT_FALSE(list.first().next().first());
  EXPECT_TRUE(list.first().next().next().is_object());
}

TEST(AuditJson, DocumentRejectsWhatIsNotJson) {
  core::JsonDocument document(8);
  for (const char* text : {"", "{", "{\"a\":1,}", "[1,]", "{\"a\" 1}", "01", "1.", "-", "1e", "+1", "tru", "nul",
                           "{\"a\":1} x", "\"raw\ttab\"", "\"bad \\q escape\"", "\"unterminated", "[[[[[[[[[1]]]]]]]]]"})
    EXPECT_FALSE(document.load_json(text)) << text;
  for (const char* text : {"{}", "[]", " [1, -0.5e+3, true, false, null, \"x\"] ", "[[[[[[[[1]]]]]]]]", "0"})
    EXPECT_TRUE(document.load_json(text)) << text;
  ASSERT_TRUE(document.load_json(R"(["\ud83d\ude00", "\ud800x", "\u00e9"])"));
  EXPECT_EQ(document.root().first().text(), "\xF0\x9F\x98\x80");
  EXPECT_EQ(document.root().first().next().text(), "\xEF\xBF\xBDx");  // lone surrogate
  EXPECT_EQ(document.root().first().next().next().text(), "\xC3\xA9");
}

TEST(AuditJson, DeepNestingIsRefusedWithoutRecursion) {
  core::JsonDocument document;
  const std::string deep = std::string(1'000'000, '[') + std::string(1'000'000, ']');
  EXPECT_FALSE(document.load_json(deep));
  EXPECT_FALSE(document.root());
  EXPECT_EQ(document.root()["anything"].first().text(), "");  // safe on an empty document
}

// ---------------------------------------------------------------------------
// Display helpers
// ---------------------------------------------------------------------------

TEST(AuditDisplay, TerminalSafeDisarmsControlsAndBidiOverrides) {
  EXPECT_EQ(terminal_safe("a\x1b[31mb", Newlines::symbol), "a\\x1b[31mb");
  EXPECT_EQ(terminal_safe("x\xE2\x80\xAEy", Newlines::symbol), "x\\u{202e}y");   // RIGHT-TO-LEFT OVERRIDE
  EXPECT_EQ(terminal_safe("c1\xC2\x9B", Newlines::symbol), "c1\\u{009b}");       // CSI as a C1 control
  EXPECT_EQ(terminal_safe("bad\xFF", Newlines::keep), "bad\\xff");
  EXPECT_EQ(terminal_safe("l1\nl2\tx\r", Newlines::keep), "l1\nl2\tx\\r");
  EXPECT_EQ(terminal_safe("l1\nl2\tx", Newlines::symbol), "l1\xE2\x90\xA4l2 x");
  EXPECT_EQ(terminal_safe("caf\xC3\xA9", Newlines::symbol), "caf\xC3\xA9");
}

TEST(AuditDisplay, ParsesUtcTimes) {
  EXPECT_EQ(parse_time("2026-12-06"), 1'796'515'200'000'000);
  EXPECT_EQ(parse_time("2026-12-06T08:01:53.123456Z"), kTime);
  EXPECT_EQ(parse_time("2026-12-06 08:01:53.123456"), kTime);
  EXPECT_EQ(parse_time("2026-12-06T08:01"), 1'796'544'060'000'000);
  EXPECT_EQ(parse_time("2026-12-06T08:01:53.5Z"), 1'796'544'113'500'000);
  for (const char* bad : {"", "2026-12", "2026-13-01", "2026-02-30", "2026-12-06T25:00", "2026-12-06T08", "yesterday",
                          "2026-12-06T08:01:53.1234567"})
    EXPECT_FALSE(parse_time(bad)) << bad;
  EXPECT_EQ(display_time(iso8601_utc(kTime)), "2026-12-06 08:01:53.123");
  EXPECT_EQ(display_duration(30), "30 us");
  EXPECT_EQ(display_duration(12'345), "12.3 ms");
  EXPECT_EQ(display_duration(2'500'000), "2.50 s");
}

}  // namespace
}  // namespace sluice::audit
