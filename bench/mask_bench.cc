// Pattern-tier scanning microbenchmarks: what finding secrets (tier 1) and PII (tier 2)
// costs a shard per byte of result text. Rows have 6 text columns of 16 B, 256 B or
// 4 KiB each: prose, log lines, identifiers, numbers and JSON, with a secret in about
// one row in 500 (so validators and merging run, but rarely, as in real results).
//
//   BM_MaskScanRow/<value bytes>/<tiers>   one Hyperscan call per row (the design)
//   BM_MaskScanValues/<value bytes>/<tiers> one call per value, for comparison
//   BM_MaskScanRowTwoPasses/<value bytes>  tiers 1 and 2 as two databases, two calls
//   BM_MaskScanRowsBatched/<value bytes>/<tiers> 8 rows' values in one call
// tiers: 1 = secrets only, 3 = secrets + PII in one combined database.
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "mask/scanner.h"

namespace {

namespace mask = sluice::mask;

constexpr int kColumns = 6;
constexpr int kRows = 512;

const char* const kWords[] = {
    "the",     "request", "failed",  "because", "timeout", "user",    "account", "order",   "shipped", "payment",
    "retry",   "after",   "cache",   "miss",    "on",      "shard",   "query",   "returned", "rows",   "in",
    "customer", "note",   "please",  "update",  "address", "invoice", "status",  "pending", "review",  "the",
    "service", "deploy",  "version", "config",  "loaded",  "from",    "disk",    "and",     "network", "error",
    "warning", "info",    "debug",   "session", "closed",  "opened",  "by",      "client",  "server",  "with",
};

// A text value of about `size` bytes, mixing the shapes found in real result columns.
std::string clean_text(std::mt19937& rng, size_t size) {
  std::string out;
  while (out.size() < size) {
    switch (rng() % 8) {
      case 0:
        out += "2024-06-" + std::to_string(10 + rng() % 18) + "T12:" + std::to_string(10 + rng() % 50) + ":07Z ";
        break;
      case 1:
        out += "id=" + std::to_string(100000 + rng() % 900000) + " ";
        break;
      case 2:
        out += "{\"status\":\"ok\",\"count\":" + std::to_string(rng() % 1000) + "} ";
        break;
      case 3:
        out += "CustomerAccountService.updateBillingAddress ";
        break;
      default:
        for (int i = 0; i < 6; ++i) {
          out += kWords[rng() % std::size(kWords)];
          out += ' ';
        }
        out.back() = rng() % 3 == 0 ? '.' : ' ';
        out += ' ';
    }
  }
  out.resize(size);
  return out;
}

struct Corpus {
  std::vector<std::string> storage;             // kRows * kColumns values
  std::vector<std::vector<std::string_view>> rows;
  size_t bytes = 0;
};

const Corpus& corpus(size_t value_bytes) {
  static std::vector<std::pair<size_t, Corpus>> cache;
  for (auto& [size, c] : cache) {
    if (size == value_bytes) return c;
  }
  Corpus c;
  std::mt19937 rng(static_cast<uint32_t>(value_bytes));
  const std::string secrets[] = {"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", "alice.smith@example.com",
                                 "postgresql://app:N7v!q2-Xw_9rLm4z@db.internal:5432/appdb", "536-90-4399"};
  c.storage.reserve(kRows * kColumns);
  for (int r = 0; r < kRows; ++r) {
    for (int col = 0; col < kColumns; ++col) {
      std::string v = clean_text(rng, value_bytes);
      if (rng() % (500 * kColumns) == 0) {
        const std::string& s = secrets[rng() % std::size(secrets)];
        if (s.size() < v.size()) v.replace(v.size() / 2, s.size(), s);
      }
      c.bytes += v.size();
      c.storage.push_back(std::move(v));
    }
  }
  for (int r = 0; r < kRows; ++r) {
    std::vector<std::string_view> row;
    for (int col = 0; col < kColumns; ++col) row.push_back(c.storage[r * kColumns + col]);
    c.rows.push_back(std::move(row));
  }
  cache.emplace_back(value_bytes, std::move(c));
  return cache.back().second;
}

std::shared_ptr<const mask::PatternSet> patterns() {
  static const auto set = mask::PatternSet::compile(mask::builtin_patterns()).set;
  return set;
}

void BM_MaskScanRow(benchmark::State& state) {
  const Corpus& c = corpus(static_cast<size_t>(state.range(0)));
  const auto tiers = static_cast<mask::TierSet>(state.range(1));
  mask::Scanner scanner(patterns());
  mask::ScanResult result;
  size_t findings = 0;
  for (auto _ : state) {
    for (const auto& row : c.rows) {
      scanner.scan_row(row, tiers, result);
      findings += result.findings.size();
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * c.bytes));
  state.counters["findings/iter"] = static_cast<double>(findings) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_MaskScanRow)->ArgsProduct({{16, 256, 4096}, {1, 3}});

void BM_MaskScanValues(benchmark::State& state) {
  const Corpus& c = corpus(static_cast<size_t>(state.range(0)));
  const auto tiers = static_cast<mask::TierSet>(state.range(1));
  mask::Scanner scanner(patterns());
  mask::ScanResult result;
  for (auto _ : state) {
    for (const auto& row : c.rows) {
      for (std::string_view value : row) scanner.scan(value, tiers, result);
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * c.bytes));
}
BENCHMARK(BM_MaskScanValues)->ArgsProduct({{16, 256, 4096}, {1, 3}});

void BM_MaskScanRowTwoPasses(benchmark::State& state) {
  const Corpus& c = corpus(static_cast<size_t>(state.range(0)));
  mask::Scanner scanner(patterns());
  mask::ScanResult secrets, pii;
  for (auto _ : state) {
    for (const auto& row : c.rows) {
      scanner.scan_row(row, mask::TierSet::secrets, secrets);
      scanner.scan_row(row, mask::TierSet::pii, pii);
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * c.bytes));
}
BENCHMARK(BM_MaskScanRowTwoPasses)->Arg(16)->Arg(256)->Arg(4096);

// Rows of small values cost little to scan but each Hyperscan call has a fixed cost
// (~70-100 ns): scanning several rows' values in one call (the value index maps back to
// row and column) amortizes it. 8 rows per call here.
void BM_MaskScanRowsBatched(benchmark::State& state) {
  const Corpus& c = corpus(static_cast<size_t>(state.range(0)));
  const auto tiers = static_cast<mask::TierSet>(state.range(1));
  constexpr size_t kBatch = 8;
  std::vector<std::vector<std::string_view>> batches;
  for (size_t r = 0; r < c.rows.size(); r += kBatch) {
    std::vector<std::string_view> batch;
    for (size_t k = r; k < r + kBatch && k < c.rows.size(); ++k) batch.insert(batch.end(), c.rows[k].begin(), c.rows[k].end());
    batches.push_back(std::move(batch));
  }
  mask::Scanner scanner(patterns());
  mask::ScanResult result;
  for (auto _ : state) {
    for (const auto& batch : batches) scanner.scan_row(batch, tiers, result);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * c.bytes));
}
BENCHMARK(BM_MaskScanRowsBatched)->ArgsProduct({{16, 256}, {1, 3}});

// Startup cost: compiling the built-in pack (three databases).
// The PII prefilter (which rows need tier 2) over the free-text values of
// bench/mask_e2e.sh's rows: 16 bytes at a time against the byte-at-a-time reference.
// Arg 1: the shipped one; 0: the reference.
void BM_MaskPiiPrefilter(benchmark::State& state) {
  std::vector<std::string> values;
  for (int g = 1; g <= 1000; ++g) {
    values.push_back("customer " + std::to_string(g));
    values.push_back("ordered " + std::to_string(g % 17) + " items, shipped to warehouse " + std::to_string(g % 23) +
                     ", no issues reported");
  }
  const bool blocks = state.range(0) == 1;
  size_t bytes = 0;
  for (const auto& v : values) bytes += v.size();
  for (auto _ : state) {
    size_t possible = 0;
    for (const auto& v : values) possible += blocks ? mask::may_hold_builtin_pii(v) : mask::may_hold_builtin_pii_reference(v);
    benchmark::DoNotOptimize(possible);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * values.size()));
}
BENCHMARK(BM_MaskPiiPrefilter)->Arg(0)->Arg(1);

void BM_MaskCompileBuiltins(benchmark::State& state) {
  for (auto _ : state) {
    auto compiled = mask::PatternSet::compile(mask::builtin_patterns());
    benchmark::DoNotOptimize(compiled.set.get());
  }
}
BENCHMARK(BM_MaskCompileBuiltins)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
