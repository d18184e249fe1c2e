// Audit trail microbenchmarks: what a record costs the shard that writes it (encoding),
// what the chain costs the writer (SHA-256 per line), and how many records per second
// the writer thread sustains to a real disk with group commit.
//
// The writer benchmarks write to a temporary directory under $SLUICE_BENCH_AUDIT_DIR
// (default /var/tmp: a disk, not tmpfs, so fdatasync costs what it costs in service).
#include <benchmark/benchmark.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "audit/chain.h"
#include "audit/record.h"
#include "audit/writer.h"

namespace {

namespace audit = sluice::audit;

// The statement record of one pgbench -S transaction in prepared mode, as the session
// writes it (protocol/session_audit.cc): fields, SQL and one parameter.
std::string statement_body(uint64_t seq) {
  std::string body;
  auto writer = audit::begin_body(body, "statement", audit::now_unix_micros());
  writer.string("session", "3f9a0c1d2e4b5a68").number("seq", seq).string("protocol", "extended");
  writer.string("sql", "SELECT abalance FROM pgbench_accounts WHERE aid = $1;").string("statement", "P0_1");
  writer.string("portal", "").key("params").begin_array().string("734512").end_array();
  writer.string("decision", "allow");
  audit::finish_body(body);
  return body;
}

void BM_AuditEncodeStatement(benchmark::State& state) {
  uint64_t seq = 0;
  size_t bytes = 0;
  for (auto _ : state) {
    std::string body = statement_body(++seq);
    bytes = body.size();
    benchmark::DoNotOptimize(body);
  }
  state.counters["body_bytes"] = static_cast<double>(bytes);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AuditEncodeStatement);

void BM_AuditChainLine(benchmark::State& state) {
  const std::string body = statement_body(1);
  audit::Hash prev = audit::hash_line("genesis");
  uint64_t n = 0;
  std::string line;
  for (auto _ : state) {
    line.clear();
    audit::append_line(line, ++n, prev, body);
    prev = audit::hash_line(std::string_view(line).substr(0, line.size() - 1));
    benchmark::DoNotOptimize(prev);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * line.size()));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AuditChainLine);

class BenchDir {
 public:
  BenchDir() {
    const char* base = std::getenv("SLUICE_BENCH_AUDIT_DIR");
    std::string pattern = std::string(base != nullptr ? base : "/var/tmp") + "/sluice-audit-bench-XXXXXX";
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~BenchDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Waits, as a shard does, on its eventfd until the writer says `ticket` is durable.
void wait_durable(audit::ShardLog& log, int wake_fd, uint64_t ticket) {
  while (!log.durable(ticket)) {
    log.pump();
    log.request_wake();
    if (log.durable(ticket)) break;
    pollfd p{wake_fd, POLLIN, 0};
    (void)poll(&p, 1, 50);
    uint64_t value = 0;
    (void)!read(wake_fd, &value, sizeof value);
  }
}

// Two producer threads (two shards) append `records_per_shard` statement records each.
// Strict: a producer keeps at most `window` records not yet durable, like a shard
// whose `window` sessions each wait for their statement's record; async: no waiting.
void run_writer(benchmark::State& state, audit::Durability mode) {
  const uint64_t window = static_cast<uint64_t>(state.range(0));
  constexpr int kShards = 2;
  constexpr uint64_t kRecordsPerShard = 20000;
  for (auto _ : state) {
    state.PauseTiming();
    BenchDir dir;
    audit::Config config;
    config.directory = dir.path() + "/audit";
    config.mode = mode;
    std::string problem;
    std::unique_ptr<audit::Writer> writer = audit::Writer::open(config, problem);
    if (!writer) {
      state.SkipWithError(problem.c_str());
      return;
    }
    std::vector<int> wake_fds;
    std::vector<audit::ShardLog*> logs;
    for (int i = 0; i < kShards; ++i) {
      wake_fds.push_back(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
      logs.push_back(&writer->add_shard(wake_fds.back()));
    }
    const std::string body = statement_body(1);
    writer->start();
    const uint64_t records_before = writer->stats().records.load();
    const uint64_t fsyncs_before = writer->stats().fsyncs.load();
    state.ResumeTiming();

    const auto started = std::chrono::steady_clock::now();
    std::vector<std::thread> producers;
    for (int i = 0; i < kShards; ++i) {
      producers.emplace_back([&, i] {
        audit::ShardLog& log = *logs[static_cast<size_t>(i)];
        uint64_t last = 0;
        for (uint64_t r = 1; r <= kRecordsPerShard; ++r) {
          last = log.append(body);
          if (mode == audit::Durability::strict && r > window) wait_durable(log, wake_fds[static_cast<size_t>(i)], last - window);
          if (log.congested()) log.pump();
        }
        wait_durable(log, wake_fds[static_cast<size_t>(i)], last);
      });
    }
    for (auto& p : producers) p.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    state.PauseTiming();
    const double records = static_cast<double>(writer->stats().records.load() - records_before);
    const double fsyncs = static_cast<double>(writer->stats().fsyncs.load() - fsyncs_before);
    state.counters["records_per_s"] = records / seconds;
    state.counters["fdatasync_per_s"] = fsyncs / seconds;
    state.counters["records_per_fdatasync"] = fsyncs > 0 ? records / fsyncs : 0;
    writer->stop("benchmark");
    writer.reset();
    for (int fd : wake_fds) close(fd);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kShards * kRecordsPerShard));
}

void BM_AuditWriterStrict(benchmark::State& state) { run_writer(state, audit::Durability::strict); }
BENCHMARK(BM_AuditWriterStrict)->Arg(1)->Arg(8)->Arg(32)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_AuditWriterAsync(benchmark::State& state) { run_writer(state, audit::Durability::async); }
BENCHMARK(BM_AuditWriterAsync)->Arg(0)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
