// Runs the labelled synthetic corpus (tests/mask/gen_corpus.py, seeds 1 to 5, four
// copies each) through both pattern tiers, each record scanned as one free-text value,
// and holds recall and false positives per seed to the bar in tests/mask/README.md.
// A failure prints every miss and false positive with its kind and the findings.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "core/json.h"
#include "mask/scanner.h"
#include "tests/unit/test_support.h"

namespace sluice::mask {
namespace {

struct SeedReport {
  int positives = 0, found = 0, negatives = 0, flagged = 0;
  std::map<std::string, int> positives_by_kind, misses_by_kind, false_positives_by_kind;
  std::string details;  // one line per miss or false positive
};

std::string printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 120)) {
    if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += '?';
    } else {
      out += c;
    }
  }
  return text.size() > 120 ? out + "..." : out;
}

TEST(MaskCorpus, RecallAndFalsePositivesPerSeed) {
  ASSERT_EQ(std::system("python3 -c 'import json' >/dev/null 2>&1"), 0) << "python3 is needed to generate the corpus";
  auto compiled = PatternSet::compile(builtin_patterns());
  ASSERT_TRUE(compiled.set) << compiled.error;
  Scanner scanner(compiled.set);
  ASSERT_TRUE(scanner.ready());
  testing_support::TempDir dir("sluice-mask-corpus");
  const std::string generator = std::string(SLUICE_SOURCE_DIR) + "/tests/mask/gen_corpus.py";

  for (int seed = 1; seed <= 5; ++seed) {
    const std::string path = dir.path() + "/corpus-" + std::to_string(seed) + ".jsonl";
    const std::string command = "python3 '" + generator + "' --seed " + std::to_string(seed) + " --copies 4 --out '" +
                                path + "' 2>/dev/null";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;

    SeedReport report;
    std::ifstream in(path);
    std::string line;
    core::JsonDocument json;
    ScanResult result;
    int records = 0;
    while (std::getline(in, line)) {
      ASSERT_TRUE(json.load_json(line)) << line;
      const auto root = json.root();
      const std::string value(root["value"].text());
      const std::string kind(root["kind"].text());
      const bool should_mask = root["should_mask"].boolean();
      ++records;
      ASSERT_EQ(scanner.scan(value, TierSet::all, result), ScanStatus::ok);
      const bool flagged = !result.findings.empty() || !result.saturated.empty();
      std::string found;
      for (const Finding& f : result.findings) {
        found += " " + compiled.set->pattern(f.pattern).kind + "='" +
                 printable(std::string_view(value).substr(f.begin, f.end - f.begin)) + "'";
      }
      if (should_mask) {
        ++report.positives;
        ++report.positives_by_kind[kind];
        if (flagged) {
          ++report.found;
        } else {
          ++report.misses_by_kind[kind];
          report.details += "  MISSED " + kind + ": " + printable(value) + "\n";
        }
      } else {
        ++report.negatives;
        if (flagged) {
          ++report.flagged;
          ++report.false_positives_by_kind[kind];
          report.details += "  FALSE POSITIVE " + kind + ": " + printable(value) + " ->" + found + "\n";
        }
      }
    }
    ASSERT_GT(records, 100) << "corpus for seed " << seed << " is suspiciously small";
    const double recall = report.positives ? 100.0 * report.found / report.positives : 0;
    const double false_positives = report.negatives ? 100.0 * report.flagged / report.negatives : 0;
    std::printf("[ corpus   ] seed %d: recall %.2f%% (%d/%d), negatives flagged %.2f%% (%d/%d)\n", seed, recall,
                report.found, report.positives, false_positives, report.flagged, report.negatives);
    std::string by_kind;
    for (const auto& [kind, n] : report.misses_by_kind) {
      by_kind += "  misses " + kind + ": " + std::to_string(n) + "/" + std::to_string(report.positives_by_kind[kind]) +
                 "\n";
    }
    for (const auto& [kind, n] : report.false_positives_by_kind) {
      by_kind += "  false positives " + kind + ": " + std::to_string(n) + "\n";
    }
    if (!report.details.empty()) std::printf("%s%s", by_kind.c_str(), report.details.c_str());
    EXPECT_GE(recall, 99.0) << "seed " << seed << "\n" << by_kind << report.details;
    EXPECT_LE(false_positives, 3.0) << "seed " << seed << "\n" << by_kind << report.details;
  }
}

}  // namespace
}  // namespace sluice::mask
