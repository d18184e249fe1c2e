// libFuzzer target for the pattern scanner: any bytes, split into up to eight values
// at 0x1F, scanned as a row with both tiers (and the first value alone). Checks that
// findings stay inside their values, are ordered and disjoint per column, respect the
// cap, and that rewrite_findings accepts them. Validators run on every raw match, so this
// fuzzes them too.
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "mask/scanner.h"
#include "mask/value_rewrite.h"

namespace {

namespace mask = sluice::mask;

mask::Scanner& scanner() {
  static const auto set = mask::PatternSet::compile(mask::builtin_patterns()).set;
  if (!set) std::abort();
  static mask::ScanLimits limits{.max_findings_per_value = 64};
  static mask::Scanner instance(set, limits);
  return instance;
}

void check(std::span<const std::string_view> row, const mask::ScanResult& result) {
  const mask::Finding* previous = nullptr;
  for (const mask::Finding& f : result.findings) {
    if (f.column >= row.size() || f.begin >= f.end || f.end > row[f.column].size()) std::abort();
    if (f.pattern >= scanner().patterns().size()) std::abort();
    if (previous != nullptr && previous->column == f.column && previous->end > f.begin) std::abort();
    if (previous != nullptr && previous->column > f.column) std::abort();
    previous = &f;
  }
  for (uint32_t c = 0; c < row.size(); ++c) {
    if (result.of_column(c).size() > 64) std::abort();
    mask::Replacement out;
    mask::rewrite_findings(mask::classify_type(25), mask::ValueFormat::text, row[c], result.of_column(c),
                           scanner().patterns(), nullptr, out);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> row;
  size_t start = 0;
  while (row.size() < 7) {
    const size_t cut = input.find('\x1f', start);
    if (cut == std::string_view::npos) break;
    row.push_back(input.substr(start, cut - start));
    start = cut + 1;
  }
  row.push_back(input.substr(start));
  mask::ScanResult result;
  if (scanner().scan_row(row, mask::TierSet::all, result) != mask::ScanStatus::ok) std::abort();
  check(row, result);
  if (scanner().scan(row[0], mask::TierSet::secrets, result) != mask::ScanStatus::ok) std::abort();
  check(std::span<const std::string_view>(row.data(), 1), result);
  return 0;
}
