// Tests for audit/ring and audit/writer: the SPSC ring keeps order across wraps and
// hands long records over by pointer; the writer chains records, makes them durable
// before it reports them so, continues the chain across restarts (cutting a torn
// tail), refuses a directory another writer holds, rotates, and vouches for what
// retention removed.
#include "audit/writer.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "audit/chain.h"
#include "audit/record.h"
#include "audit/ring.h"

#include "tests/unit/test_support.h"

namespace sluice::audit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using testing_support::TempDir;

std::string body(const std::string& type, const std::string& text = {}) {
  std::string out;
  begin_body(out, type, 1'700'000'000'000'000).string("text", text);
  finish_body(out);
  return out;
}

std::vector<std::string> segment_names(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    if (parse_segment_file_name(entry.path().filename().string())) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Every line of every segment, in record order.
std::vector<std::string> all_lines(const std::string& dir) {
  std::vector<std::string> lines;
  for (const auto& name : segment_names(dir)) {
    std::ifstream in(dir + "/" + name);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  return lines;
}

// Checks n is consecutive and each prev is the hash of the line before.
void expect_chain(const std::vector<std::string>& lines, uint64_t first_n, const Hash& first_prev) {
  uint64_t expected_n = first_n;
  Hash expected_prev = first_prev;
  for (const auto& line : lines) {
    uint64_t n = 0;
    Hash prev{};
    ASSERT_TRUE(parse_chain_prefix(line, n, prev)) << line;
    EXPECT_EQ(n, expected_n) << line;
    EXPECT_EQ(to_hex(prev), to_hex(expected_prev)) << line;
    expected_n = n + 1;
    expected_prev = hash_line(line);
  }
}

class WakeFd {
 public:
  WakeFd() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~WakeFd() { close(fd_); }
  int fd() const { return fd_; }

 private:
  int fd_;
};

Config config_for(const std::string& dir) {
  Config config;
  config.directory = dir;
  return config;
}

bool wait_durable(const ShardLog& log, uint64_t ticket) {
  for (int i = 0; i < 500 && !log.durable(ticket); ++i) std::this_thread::sleep_for(10ms);
  return log.durable(ticket);
}

// --- ring -------------------------------------------------------------------------

TEST(AuditRing, KeepsOrderAcrossWrapsAndRefusesWhenFull) {
  RecordRing ring(4096);
  std::vector<std::string> seen;
  int pushed = 0;
  for (int round = 0; round < 50; ++round) {
    // Fill until full, then drain: sizes vary so records wrap at every offset.
    while (true) {
      std::string record(static_cast<size_t>(1 + (pushed * 37) % 300), static_cast<char>('a' + pushed % 26));
      if (!ring.try_push(record)) {
        EXPECT_FALSE(record.empty()) << "a refused record must be left untouched";
        break;
      }
      ++pushed;
    }
    ring.consume([&](std::string_view r) { seen.emplace_back(r); }, SIZE_MAX);
    EXPECT_TRUE(ring.empty());
  }
  ASSERT_EQ(seen.size(), static_cast<size_t>(pushed));
  for (int i = 0; i < pushed; ++i) {
    EXPECT_EQ(seen[static_cast<size_t>(i)],
              std::string(static_cast<size_t>(1 + (i * 37) % 300), static_cast<char>('a' + i % 26)));
  }
}

TEST(AuditRing, LongRecordsTravelByPointerInOrder) {
  RecordRing ring(4096);
  std::string small = "small", big(RecordRing::kMaxInline + 1, 'x'), after = "after";
  ASSERT_TRUE(ring.try_push(small));
  ASSERT_TRUE(ring.try_push(big));
  ASSERT_TRUE(ring.try_push(after));
  std::vector<size_t> sizes;
  ring.consume([&](std::string_view r) { sizes.push_back(r.size()); }, SIZE_MAX);
  EXPECT_EQ(sizes, (std::vector<size_t>{5, RecordRing::kMaxInline + 1, 5}));
}

TEST(AuditRing, UnconsumedLongRecordsAreFreed) {
  // Under ASan, a leak here fails the test.
  RecordRing ring(4096);
  std::string big(RecordRing::kMaxInline * 2, 'y');
  ASSERT_TRUE(ring.try_push(big));
}

TEST(AuditRing, ProducerAndConsumerThreads) {
  RecordRing ring(8192);
  constexpr int kRecords = 200'000;
  std::thread producer([&] {
    for (int i = 0; i < kRecords;) {
      std::string record = std::to_string(i);
      if (ring.try_push(record))
        ++i;
      else
        std::this_thread::yield();
    }
  });
  int expected = 0;
  bool in_order = true;
  while (expected < kRecords) {
    ring.consume(
        [&](std::string_view r) {
          in_order = in_order && r == std::to_string(expected);
          ++expected;
        },
        64);
  }
  producer.join();
  EXPECT_TRUE(in_order);
}

// --- writer -----------------------------------------------------------------------

TEST(AuditWriter, RecordsAreChainedAndDurableInOrder) {
  TempDir dir;
  WakeFd wake;
  std::string problem;
  auto writer = Writer::open(config_for(dir.path()), problem);
  ASSERT_TRUE(writer) << problem;
  ShardLog& a = writer->add_shard(wake.fd());
  ShardLog& b = writer->add_shard(wake.fd());
  writer->start();
  uint64_t last_a = 0, last_b = 0;
  for (int i = 0; i < 100; ++i) {
    last_a = a.append(body("statement", "a" + std::to_string(i)));
    last_b = b.append(body("statement", "b" + std::to_string(i)));
  }
  EXPECT_EQ(last_a, 100u);
  ASSERT_TRUE(wait_durable(a, last_a));
  ASSERT_TRUE(wait_durable(b, last_b));
  // Durable means on disk now, before stop() flushes anything.
  const auto lines = all_lines(dir.path());
  ASSERT_EQ(lines.size(), 201u);  // start + 200
  expect_chain(lines, 1, kGenesisHash);
  EXPECT_NE(lines[0].find("\"type\":\"start\""), std::string::npos);
  // Each shard's records keep their order.
  int next_a = 0;
  for (const auto& line : lines) {
    const auto at = line.find("\"text\":\"a");
    if (at == std::string::npos) continue;
    EXPECT_EQ(line.substr(at + 8, line.find('"', at + 8) - at - 8), "a" + std::to_string(next_a++));
  }
  EXPECT_EQ(next_a, 100);
  writer->stop("test");
  EXPECT_NE(all_lines(dir.path()).back().find("\"type\":\"stop\""), std::string::npos);
  EXPECT_GE(writer->stats().fsyncs.load(), 1u);
}

TEST(AuditWriter, WakesTheShardThatAskedOnceDurable) {
  TempDir dir;
  WakeFd wake;
  std::string problem;
  auto writer = Writer::open(config_for(dir.path()), problem);
  ASSERT_TRUE(writer) << problem;
  ShardLog& log = writer->add_shard(wake.fd());
  writer->start();
  log.request_wake();
  const uint64_t ticket = log.append(body("statement"));
  ASSERT_TRUE(wait_durable(log, ticket));
  uint64_t value = 0;
  for (int i = 0; i < 200 && read(wake.fd(), &value, sizeof value) != sizeof value; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_GE(value, 1u);
  writer->stop("test");
}

TEST(AuditWriter, ChainContinuesAcrossRestartsAndTornTailIsCut) {
  TempDir dir;
  WakeFd wake;
  std::string problem;
  {
    auto writer = Writer::open(config_for(dir.path()), problem);
    ASSERT_TRUE(writer) << problem;
    ShardLog& log = writer->add_shard(wake.fd());
    writer->start();
    for (int i = 0; i < 10; ++i) log.append(body("statement", std::to_string(i)));
    writer->stop("test");
  }
  const auto first_run = all_lines(dir.path());
  ASSERT_EQ(first_run.size(), 12u);
  // A crash mid-write leaves half a record at the end of the newest segment.
  const std::string newest = dir.path() + "/" + segment_names(dir.path()).back();
  { std::ofstream(newest, std::ios::app) << "{\"n\":13,\"prev\":\"00"; }
  {
    auto writer = Writer::open(config_for(dir.path()), problem);
    ASSERT_TRUE(writer) << problem;
    EXPECT_EQ(writer->torn_bytes(), 18u);  // the 18 bytes appended above
    writer->add_shard(wake.fd());
    writer->start();
    writer->stop("test");
  }
  const auto lines = all_lines(dir.path());
  ASSERT_EQ(lines.size(), 14u);
  expect_chain(lines, 1, kGenesisHash);
  EXPECT_NE(lines[12].find("\"torn_bytes\":18"), std::string::npos) << lines[12];
  EXPECT_EQ(segment_names(dir.path()).size(), 2u) << "every start opens a new segment";
  EXPECT_EQ(segment_names(dir.path()).back(), segment_file_name(13));
}

TEST(AuditWriter, DamagedLastRecordStopsTheStartWithAClearError) {
  TempDir dir;
  { std::ofstream(dir.path() + "/" + segment_file_name(1)) << "not a record\n"; }
  std::string problem;
  EXPECT_FALSE(Writer::open(config_for(dir.path()), problem));
  EXPECT_NE(problem.find("damaged"), std::string::npos) << problem;
  EXPECT_NE(problem.find("sluicectl audit verify"), std::string::npos) << problem;
}

TEST(AuditWriter, SecondWriterOnOneDirectoryIsRefused) {
  TempDir dir;
  std::string problem;
  auto first = Writer::open(config_for(dir.path()), problem);
  ASSERT_TRUE(first) << problem;
  EXPECT_FALSE(Writer::open(config_for(dir.path()), problem));
  EXPECT_NE(problem.find("in use by another sluiced"), std::string::npos) << problem;
}

TEST(AuditWriter, RotatesBySizeAndRetentionVouchesForRemovedSegments) {
  TempDir dir;
  WakeFd wake;
  Config config = config_for(dir.path());
  config.segment_bytes = 64 * 1024;
  config.retain_bytes = 160 * 1024;
  config.retain_age = std::chrono::seconds(0);
  std::string problem;
  auto writer = Writer::open(config, problem);
  ASSERT_TRUE(writer) << problem;
  ShardLog& log = writer->add_shard(wake.fd());
  writer->start();
  uint64_t ticket = 0;
  for (int i = 0; i < 400; ++i) {
    ticket = log.append(body("statement", std::string(1000, 'x')));
    if (i % 20 == 0) {
      ASSERT_TRUE(wait_durable(log, ticket));  // batches small enough to rotate between
    }
  }
  ASSERT_TRUE(wait_durable(log, ticket));
  writer->stop("test");
  const auto names = segment_names(dir.path());
  EXPECT_GE(names.size(), 2u);
  EXPECT_NE(names.front(), segment_file_name(1)) << "the oldest segments were removed";
  const auto lines = all_lines(dir.path());
  uint64_t first_n = 0;
  Hash first_prev{};
  ASSERT_TRUE(parse_chain_prefix(lines.front(), first_n, first_prev));
  expect_chain(lines, first_n, first_prev);
  // Some retention record names the segment just before the first surviving one,
  // with the hash the surviving chain starts from.
  bool vouched = false;
  for (const auto& line : lines) {
    if (line.find("\"type\":\"retention\"") == std::string::npos) continue;
    vouched = vouched || (line.find("\"last\":" + std::to_string(first_n - 1) + ",") != std::string::npos &&
                          line.find(to_hex(first_prev)) != std::string::npos);
  }
  EXPECT_TRUE(vouched);
}

TEST(AuditWriter, OverflowWaitsInOrderWhenTheRingIsFull) {
  TempDir dir;
  WakeFd wake;
  Config config = config_for(dir.path());
  config.ring_bytes = 4096;
  std::string problem;
  auto writer = Writer::open(config, problem);
  ASSERT_TRUE(writer) << problem;
  ShardLog& log = writer->add_shard(wake.fd());
  // Not started: nothing drains the ring, so it fills and the rest overflows.
  uint64_t ticket = 0;
  for (int i = 0; i < 100; ++i) ticket = log.append(body("statement", std::to_string(i) + std::string(100, ' ')));
  EXPECT_TRUE(log.congested());
  writer->start();
  for (int i = 0; i < 500 && log.congested(); ++i) {
    log.pump();
    std::this_thread::sleep_for(2ms);
  }
  EXPECT_FALSE(log.congested());
  ASSERT_TRUE(wait_durable(log, ticket));
  writer->stop("test");
  const auto lines = all_lines(dir.path());
  ASSERT_EQ(lines.size(), 102u);
  for (int i = 0; i < 100; ++i)
    EXPECT_NE(lines[static_cast<size_t>(i) + 1].find("\"text\":\"" + std::to_string(i) + " "), std::string::npos);
}

TEST(AuditRecord, JsonWriterEscapesAndKeepsInvalidUtf8Out) {
  std::string out;
  JsonWriter w(out);
  w.begin_object().string("s", std::string("a\"b\\c\n\x01\x7f\xff\xc3\xa9", 11)).key("b").base64(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>("hello"), 5));
  w.end_object();
  EXPECT_EQ(out, "{\"s\":\"a\\\"b\\\\c\\n\\u0001\\u007f\xEF\xBF\xBD\xC3\xA9\",\"b\":\"aGVsbG8=\"}");
  EXPECT_TRUE(valid_utf8("h\xC3\xA9llo"));
  EXPECT_FALSE(valid_utf8("\xC0\x80"));          // overlong
  EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_EQ(iso8601_utc(1'700'000'000'123'456), "2023-11-14T22:13:20.123456Z");
  EXPECT_EQ(iso8601_utc(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(iso8601_utc(951'782'400'000'001), "2000-02-29T00:00:00.000001Z");  // a leap day of a century
  EXPECT_EQ(iso8601_utc(-1), "1969-12-31T23:59:59.999999Z");
  // The arithmetic agrees with the C library over two centuries of seconds.
  uint64_t state = 88172645463325252ull;
  for (int i = 0; i < 20000; ++i) {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    const int64_t micros = static_cast<int64_t>(state % 6'311'390'400'000'000ull);  // 1970 .. 2170
    const time_t seconds = static_cast<time_t>(micros / 1'000'000);
    tm utc{};
    gmtime_r(&seconds, &utc);
    char expected[64];
    snprintf(expected, sizeof expected, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", utc.tm_year + 1900, utc.tm_mon + 1,
             utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<long long>(micros % 1'000'000));
    ASSERT_EQ(iso8601_utc(micros), expected) << micros;
  }
}

}  // namespace
}  // namespace sluice::audit
