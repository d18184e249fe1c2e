// Tests for audit/sink without a server: the COPY text escaping, the position file
// (round trip, damage, another store, never mistaken for a segment), the cursor that
// picks the durable complete lines to ship, and the [audit.sink] configuration.
// Shipping to a real PostgreSQL: tests/integration/audit_sink_test.cc.
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "audit/chain.h"
#include "audit/reader.h"
#include "audit/record.h"
#include "audit/sink.h"
#include "audit/writer.h"
#include "tools/config.h"

#include "tests/unit/test_support.h"

namespace sluice::audit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using testing_support::TempDir;

// ---------------------------------------------------------------------------
// COPY text format

std::string copy_text(std::string_view value) {
  std::string out;
  append_copy_text(out, value);
  return out;
}

// What COPY FROM's text format makes of a field (the subset of escapes we emit,
// plus the ones that would mean something if we failed to escape).
std::string copy_decode(std::string_view field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] != '\\' || i + 1 == field.size()) {
      out += field[i];
      continue;
    }
    const char c = field[++i];
    out += c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c == 'N' ? '\x01' : c;
  }
  return out;
}

TEST(AuditSink, CopyTextEscapesBackslashTabNewlineAndCarriageReturn) {
  EXPECT_EQ(copy_text(R"({"n":1,"sql":"SELECT 'a\\b'"})"), R"({"n":1,"sql":"SELECT 'a\\\\b'"})");
  EXPECT_EQ(copy_text("a\tb\nc\rd"), "a\\tb\\nc\\rd");
  EXPECT_EQ(copy_text("\\."), "\\\\.");  // not COPY's end-of-data marker
  EXPECT_EQ(copy_text("\\N"), "\\\\N");  // not NULL
  EXPECT_EQ(copy_text("plain \"json\" é"), "plain \"json\" é");
  EXPECT_EQ(copy_text(""), "");
  // The field holds no raw separator, and decodes to exactly what was escaped.
  const std::string nasty = "x\\\\ty\t\\n\n\r\\r\\.\\N end\\";
  const std::string field = copy_text(nasty);
  EXPECT_EQ(field.find_first_of("\t\n\r"), std::string::npos) << field;
  EXPECT_EQ(copy_decode(field), nasty);
}

// ---------------------------------------------------------------------------
// The position file

constexpr const char* kStore = "central.example:5432/audit table sluice_audit gateway gw1";
const std::string kSegment1 = segment_file_name(1);
const std::string kSegment4 = segment_file_name(4);

TEST(AuditSink, PositionFileRoundTrip) {
  TempDir dir;
  SinkPosition position;
  std::string problem;
  EXPECT_EQ(load_sink_position(dir.path(), kStore, position, problem), PositionLoad::missing);

  ASSERT_TRUE(save_sink_position(dir.path(), kStore, {kSegment4, 12345}, problem)) << problem;
  EXPECT_EQ(load_sink_position(dir.path(), kStore, position, problem), PositionLoad::found) << problem;
  EXPECT_EQ(position, (SinkPosition{kSegment4, 12345}));
  EXPECT_EQ(dir.read(kSinkPositionFile), "sluice audit sink position 1\nstore " + std::string(kStore) + "\nsegment " +
                                             kSegment4 + "\noffset 12345\n");
  EXPECT_FALSE(fs::exists(dir.path() + "/" + kSinkPositionFile + ".tmp"));

  // Overwritten in place.
  ASSERT_TRUE(save_sink_position(dir.path(), kStore, {kSegment1, 0}, problem)) << problem;
  EXPECT_EQ(load_sink_position(dir.path(), kStore, position, problem), PositionLoad::found);
  EXPECT_EQ(position, (SinkPosition{kSegment1, 0}));

  // A position is only good for the store it was written for.
  EXPECT_EQ(load_sink_position(dir.path(), "other:5432/audit table sluice_audit gateway gw1", position, problem),
            PositionLoad::other_store);
  EXPECT_EQ(problem, kStore);
}

TEST(AuditSink, DamagedPositionFileIsReportedNotTrusted) {
  TempDir dir;
  const std::string good =
      "sluice audit sink position 1\nstore " + std::string(kStore) + "\nsegment " + kSegment4 + "\noffset 77\n";
  const std::vector<std::string> damaged = {
      "",
      "garbage",
      good.substr(0, good.size() - 1),                                      // no final newline
      good.substr(0, good.size() / 2),                                      // cut short
      "sluice audit sink position 2\n" + good.substr(good.find('\n') + 1),  // another version
      good + "extra\n",
      "sluice audit sink position 1\nstore " + std::string(kStore) + "\nsegment audit-1.jsonl\noffset 77\n",
      "sluice audit sink position 1\nstore " + std::string(kStore) + "\nsegment " + kSegment4 + "\noffset -1\n",
      "sluice audit sink position 1\nstore " + std::string(kStore) + "\nsegment " + kSegment4 + "\noffset 7x\n",
      "sluice audit sink position 1\nstore " + std::string(kStore) + "\nsegment " + kSegment4 +
          "\noffset 99999999999999999999999\n",
      std::string(5000, 'x'),
  };
  for (const std::string& text : damaged) {
    SCOPED_TRACE(text.substr(0, 200));
    dir.write(kSinkPositionFile, text);
    SinkPosition position{"unchanged", 5};
    std::string problem;
    EXPECT_EQ(load_sink_position(dir.path(), kStore, position, problem), PositionLoad::damaged);
    EXPECT_FALSE(problem.empty());
    EXPECT_EQ(position, (SinkPosition{"unchanged", 5}));
  }
  dir.write(kSinkPositionFile, good);
  SinkPosition position;
  std::string problem;
  EXPECT_EQ(load_sink_position(dir.path(), kStore, position, problem), PositionLoad::found) << problem;
  EXPECT_EQ(position, (SinkPosition{kSegment4, 77}));
  // A directory in its place is damage too, not a crash.
  fs::remove(dir.path() + "/" + kSinkPositionFile);
  fs::create_directory(dir.path() + "/" + kSinkPositionFile);
  EXPECT_EQ(load_sink_position(dir.path(), kStore, position, problem), PositionLoad::damaged);
}

std::string record_body(const std::string& text) {
  std::string out;
  begin_body(out, "statement", 1'700'000'000'000'000).string("sql", text);
  finish_body(out);
  return out;
}

// The writer's listing, recovery, retention and verify() never take the position file
// (or its temp file) for a segment, and never remove it.
TEST(AuditSink, PositionFileIsNeverASegment) {
  TempDir dir;
  std::string problem;
  ASSERT_TRUE(save_sink_position(dir.path(), kStore, {kSegment1, 0}, problem)) << problem;
  dir.write(std::string(kSinkPositionFile) + ".tmp", "left over from a crash");
  Config config;
  config.directory = dir.path();
  config.segment_bytes = 1;  // rotate after every flush
  config.retain_age = 0s;
  config.retain_bytes = 1;  // retention removes every closed segment
  for (int run = 0; run < 2; ++run) {
    auto writer = Writer::open(config, problem);
    ASSERT_NE(writer, nullptr) << problem;
    const int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    ShardLog& log = writer->add_shard(wake);
    writer->start();
    for (int i = 0; i < 5; ++i) {
      const uint64_t ticket = log.append(record_body("SELECT " + std::to_string(i)));
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (!log.durable(ticket) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
      ASSERT_TRUE(log.durable(ticket));
    }
    const DurableEnd end = writer->durable_end();
    EXPECT_TRUE(parse_segment_file_name(end.segment)) << end.segment;
    EXPECT_GT(end.last_n, 0u);
    writer->stop("test");
    close(wake);
  }
  std::vector<SegmentFile> segments;
  ASSERT_TRUE(list_segments(dir.path(), segments, problem)) << problem;
  for (const SegmentFile& s : segments) EXPECT_TRUE(parse_segment_file_name(s.name)) << s.name;
  const VerifyReport report = verify(dir.path());
  EXPECT_TRUE(report.ok()) << (report.error ? format_finding(*report.error) : "");
  SinkPosition position;
  EXPECT_EQ(load_sink_position(dir.path(), kStore, position, problem), PositionLoad::found) << problem;
  EXPECT_TRUE(fs::exists(dir.path() + "/" + kSinkPositionFile + ".tmp"));
}

// ---------------------------------------------------------------------------
// The cursor

std::string chain_lines(uint64_t first, size_t count, Hash& prev) {
  std::string out;
  for (size_t i = 0; i < count; ++i) {
    const size_t start = out.size();
    append_line(out, first + i, prev, record_body("SELECT " + std::to_string(first + i) + " -- \\ \t tab"));
    prev = hash_line(std::string_view(out).substr(start, out.size() - start - 1));
  }
  return out;
}

std::vector<uint64_t> numbers(const SinkCursor::Batch& batch) {
  std::vector<uint64_t> out;
  for (const auto& line : batch.lines) {
    uint64_t n = 0;
    Hash ignored{};
    EXPECT_TRUE(parse_chain_prefix(line.text, n, ignored)) << line.text;
    out.push_back(n);
  }
  return out;
}

// Two segments: records 1-3 (closed, then a partial line) and 4-5 (open).
struct TwoSegments {
  TempDir dir;
  std::string closed, open;
  TwoSegments() {
    Hash prev = kGenesisHash;
    closed = chain_lines(1, 3, prev);
    open = chain_lines(4, 2, prev);
    dir.write(kSegment1, closed + "{\"n\":4,\"partial");
    dir.write(kSegment4, open);
  }
  // The durable end after the first `lines` lines of the open segment.
  DurableEnd durable_after(size_t lines) const {
    size_t bytes = 0;
    for (size_t i = 0; i < lines; ++i) bytes = open.find('\n', bytes) + 1;
    return {kSegment4, bytes, 3 + lines};
  }
};

TEST(AuditSink, CursorShipsOnlyDurableCompleteLinesInRecordOrder) {
  TwoSegments t;
  SinkCursor cursor(t.dir.path(), {});
  SinkCursor::Batch batch;
  std::string problem;
  // The writer has no segment yet: nothing.
  ASSERT_TRUE(cursor.next(DurableEnd{}, 2, batch, problem)) << problem;
  EXPECT_TRUE(batch.lines.empty());

  const DurableEnd durable = t.durable_after(1);
  ASSERT_TRUE(cursor.next(durable, 2, batch, problem)) << problem;
  EXPECT_EQ(batch.segment, kSegment1);
  EXPECT_EQ(numbers(batch), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(batch.lines[0].offset, 0u);
  EXPECT_EQ(batch.lines[1].offset, t.closed.find('\n') + 1);
  EXPECT_EQ(std::string(batch.lines[1].text) + "\n",
            t.closed.substr(batch.lines[1].offset, batch.end - batch.lines[1].offset));
  // Not advanced: the same batch again (it was not shipped).
  ASSERT_TRUE(cursor.next(durable, 2, batch, problem));
  EXPECT_EQ(numbers(batch), (std::vector<uint64_t>{1, 2}));
  cursor.advance(batch);

  ASSERT_TRUE(cursor.next(durable, 2, batch, problem));
  EXPECT_EQ(numbers(batch), (std::vector<uint64_t>{3}));
  EXPECT_EQ(batch.end, t.closed.size());
  cursor.advance(batch);

  // The closed segment's partial line is skipped; the open one only up to the durable end.
  ASSERT_TRUE(cursor.next(durable, 2, batch, problem));
  EXPECT_EQ(batch.segment, kSegment4);
  EXPECT_EQ(numbers(batch), (std::vector<uint64_t>{4}));
  cursor.advance(batch);
  EXPECT_EQ(cursor.position(), (SinkPosition{kSegment4, durable.bytes}));
  ASSERT_TRUE(cursor.next(durable, 2, batch, problem));
  EXPECT_TRUE(batch.lines.empty());

  ASSERT_TRUE(cursor.next(t.durable_after(2), 2, batch, problem));
  EXPECT_EQ(numbers(batch), (std::vector<uint64_t>{5}));
  cursor.advance(batch);
  EXPECT_EQ(cursor.position(), (SinkPosition{kSegment4, t.open.size()}));
}

TEST(AuditSink, CursorMovesPastAFinishedClosedSegment) {
  TwoSegments t;
  SinkCursor cursor(t.dir.path(), {kSegment1, t.closed.size()});
  SinkCursor::Batch batch;
  std::string problem;
  // The open segment has nothing durable yet: the position still moves on.
  ASSERT_TRUE(cursor.next(t.durable_after(0), 10, batch, problem)) << problem;
  EXPECT_TRUE(batch.lines.empty());
  EXPECT_EQ(cursor.position(), (SinkPosition{kSegment4, 0}));
  ASSERT_TRUE(cursor.next(t.durable_after(2), 10, batch, problem)) << problem;
  EXPECT_EQ(numbers(batch), (std::vector<uint64_t>{4, 5}));
}

TEST(AuditSink, CursorContinuesAfterASegmentRetentionRemoved) {
  TwoSegments t;
  const std::string line_two = std::to_string(t.closed.find('\n') + 1);
  SinkCursor cursor(t.dir.path(), {kSegment1, t.closed.find('\n') + 1});
  fs::remove(t.dir.path() + "/" + kSegment1);
  SinkCursor::Batch batch;
  std::string problem;
  ASSERT_TRUE(cursor.next(t.durable_after(2), 10, batch, problem)) << problem;
  EXPECT_EQ(batch.segment, kSegment4);
  EXPECT_EQ(numbers(batch), (std::vector<uint64_t>{4, 5}));
  EXPECT_EQ(batch.lines.front().offset, 0u);
}

TEST(AuditSink, CursorStartsOverWhenThePositionIsNewerThanTheTrail) {
  TwoSegments t;
  SinkCursor cursor(t.dir.path(), {segment_file_name(1000), 50});
  SinkCursor::Batch batch;
  std::string problem;
  ASSERT_TRUE(cursor.next(t.durable_after(2), 10, batch, problem)) << problem;
  EXPECT_EQ(batch.segment, kSegment1);
  EXPECT_EQ(numbers(batch), (std::vector<uint64_t>{1, 2, 3}));
}

TEST(AuditSink, CursorNeverReadsASegmentNewerThanTheDurableOne) {
  TwoSegments t;
  Hash prev{};
  t.dir.write(segment_file_name(6), chain_lines(6, 1, prev));  // created by a rotation, not yet published
  SinkCursor cursor(t.dir.path(), {kSegment4, t.open.size()});
  SinkCursor::Batch batch;
  std::string problem;
  ASSERT_TRUE(cursor.next(t.durable_after(2), 10, batch, problem)) << problem;
  EXPECT_TRUE(batch.lines.empty());
  EXPECT_EQ(cursor.position(), (SinkPosition{kSegment4, t.open.size()}));
}

}  // namespace
}  // namespace sluice::audit

// ---------------------------------------------------------------------------
// [audit.sink] in the configuration

namespace sluice::tools {
namespace {

constexpr const char* kBase =
    "[[target]]\n"
    "name = \"app\"\n"
    "host = \"127.0.0.1\"\n"
    "user = \"sluice_app\"\n"
    "[[user]]\n"
    "name = \"alice\"\n"
    "password = \"SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$XsoIrEz3gOmu+XcvpRftNyw7YjWgMXEz5g8RraEbTnA=:"
    "DTFCY+oAenPTZMp1/UJOFpa3b3zkRTB749eMDPNiFV0=\"\n"
    "groups = [\"dev\"]\n"
    "[groups.dev]\n"
    "targets = [\"*\"]\n"
    "[audit]\n"
    "directory = \"/tmp/audit\"\n";  // line 12; [audit.sink] starts on line 13

using testing_support::count_errors;
using testing_support::report;

LoadedConfig load_sink(const std::string& sink, const std::string& base_dir = "/nonexistent") {
  return load_config_text(std::string(kBase) + sink, "sluice.toml", base_dir);
}

TEST(AuditSinkConfig, AbsentMeansOff) {
  const LoadedConfig config = load_sink("");
  EXPECT_EQ(count_errors(config), 0u) << report(config);
  EXPECT_FALSE(config.audit.sink.enabled);
}

TEST(AuditSinkConfig, DefaultsAndValues) {
  LoadedConfig config =
      load_sink("[audit.sink]\nhost = \"central.example\"\ndatabase = \"audit\"\nuser = \"shipper\"\n");
  EXPECT_EQ(count_errors(config), 0u) << report(config);
  const audit::SinkConfig& s = config.audit.sink;
  EXPECT_TRUE(s.enabled);
  EXPECT_EQ(s.host, "central.example");
  EXPECT_EQ(s.port, 5432);
  EXPECT_EQ(s.database, "audit");
  EXPECT_EQ(s.user, "shipper");
  EXPECT_TRUE(s.password.empty());
  EXPECT_EQ(s.table, "sluice_audit");
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof host - 1), 0);
  EXPECT_EQ(s.gateway, host);
  EXPECT_EQ(s.sslmode, "prefer");
  EXPECT_EQ(s.batch_records, 1000u);
  EXPECT_EQ(s.interval, std::chrono::milliseconds(1000));

  config = load_sink(
      "[audit.sink]\nenabled = false\nhost = \"/var/run/postgresql\"\nport = 6543\ndatabase = \"audit\"\n"
      "user = \"shipper\"\ntable = \"gw_audit_2\"\ngateway = \"gw-eu-1\"\nsslmode = \"verify-full\"\n"
      "batch_records = 100000\ninterval = \"10ms\"\n");
  EXPECT_EQ(count_errors(config), 0u) << report(config);
  EXPECT_FALSE(config.audit.sink.enabled);
  EXPECT_EQ(config.audit.sink.port, 6543);
  EXPECT_EQ(config.audit.sink.table, "gw_audit_2");
  EXPECT_EQ(config.audit.sink.gateway, "gw-eu-1");
  EXPECT_EQ(config.audit.sink.sslmode, "verify-full");
  EXPECT_EQ(config.audit.sink.batch_records, 100000u);
  EXPECT_EQ(config.audit.sink.interval, std::chrono::milliseconds(10));
}

TEST(AuditSinkConfig, ErrorsNameFileAndLine) {
  LoadedConfig config = load_sink("[audit.sink]\nport = 0\n");  // lines 13, 14
  EXPECT_DIAGNOSTIC(config, "sluice.toml:13: error: missing required key 'host' in [audit.sink]");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:13: error: missing required key 'database' in [audit.sink]");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:13: error: missing required key 'user' in [audit.sink]");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:14: error: 'port' in [audit.sink]");

  config = load_sink(
      "[audit.sink]\n"
      "host = \"db\"\n"         // 14
      "database = \"audit\"\n"  // 15
      "user = \"\"\n"           // 16
      "table = \"Audit\"\n"     // 17
      "sslmode = \"requir\"\n"  // 18
      "batch_records = 0\n"     // 19
      "interval = \"5ms\"\n"    // 20
      "hots = \"db\"\n"         // 21
      "enabled = \"yes\"\n");   // 22
  EXPECT_DIAGNOSTIC(config, "sluice.toml:16: error: 'user' in [audit.sink] must be 1 to 63 bytes long");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:17: error: 'table' in [audit.sink] must be 1 to 48 characters from a-z 0-9 _");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:18: error: 'sslmode' in [audit.sink] must be one of disable, allow, prefer, "
                    "require, verify-ca, verify-full, not 'requir' (did you mean 'require'?)");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:19: error: 'batch_records' in [audit.sink]");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:20: error: 'interval' in [audit.sink] must be between 10ms and 1m");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:21: error: unknown key 'hots' in [audit.sink] (did you mean 'host'?)");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:22: error: 'enabled' in [audit.sink]");
  EXPECT_EQ(count_errors(config), 7u) << report(config);

  for (const char* table : {"1abc", "a-b", "a.b", "\"x\"", "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"}) {
    config = load_sink(std::string("[audit.sink]\nhost = \"db\"\ndatabase = \"d\"\nuser = \"u\"\ntable = \"") +
                       (table[0] == '"' ? "\\\"x\\\"" : table) + "\"\n");
    EXPECT_EQ(count_errors(config), 1u) << table << "\n" << report(config);
  }

  config = load_config_text(std::string(kBase) + "sink = 5\n", "sluice.toml", "/nonexistent");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:13: error: 'sink' in [audit] must be an [audit.sink] section, not an integer");
}

TEST(AuditSinkConfig, PasswordFileFollowsTheTargetRules) {
  char pattern[] = "/tmp/sluice-sink-config-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const std::string dir = pattern;
  auto write = [&](const std::string& name, const std::string& text, mode_t mode) {
    std::ofstream(dir + "/" + name) << text;
    chmod((dir + "/" + name).c_str(), mode);
  };
  write("good.password", "central-pw\nignored\n", 0600);
  write("open.password", "open-pw\n", 0644);
  write("empty.password", "", 0600);
  const std::string sink = "[audit.sink]\nhost = \"db\"\ndatabase = \"d\"\nuser = \"u\"\npassword_file = ";
  LoadedConfig config = load_sink(sink + "\"good.password\"\n", dir);
  EXPECT_EQ(count_errors(config), 0u) << report(config);
  EXPECT_EQ(config.audit.sink.password.reveal(), "central-pw");

  config = load_sink(sink + "\"open.password\"\n", dir);  // password_file on line 17
  EXPECT_EQ(count_errors(config), 0u) << report(config);
  EXPECT_DIAGNOSTIC(config, "sluice.toml:17: warning: password_file '" + dir +
                                "/open.password' of [audit.sink] is accessible by group or others (mode 0644)");
  EXPECT_EQ(config.audit.sink.password.reveal(), "open-pw");

  config = load_sink(sink + "\"empty.password\"\n", dir);
  EXPECT_DIAGNOSTIC(config, "sluice.toml:17: error: password_file '" + dir +
                                "/empty.password' of [audit.sink] is empty: its first line is the password");
  config = load_sink(sink + "\"missing.password\"\n", dir);
  EXPECT_DIAGNOSTIC(config, "sluice.toml:17: error: cannot open password_file '" + dir +
                                "/missing.password' of [audit.sink]: No such file or directory");
  // The password never appears in a diagnostic.
  EXPECT_EQ(report(load_sink(sink + "\"open.password\"\n", dir)).find("open-pw"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(AuditSinkConfig, IgnoredWhenTheTrailIsOff) {
  const LoadedConfig config = load_config_text(
      std::string(kBase) + "enabled = false\n[audit.sink]\nhost = \"db\"\ndatabase = \"d\"\nuser = \"u\"\n",
      "sluice.toml", "/nonexistent");
  EXPECT_EQ(count_errors(config), 0u) << report(config);
  EXPECT_DIAGNOSTIC(config, "sluice.toml:14: warning: [audit.sink] is ignored: [audit] enabled = false");
}

}  // namespace
}  // namespace sluice::tools
