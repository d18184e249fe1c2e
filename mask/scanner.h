// Finding sensitive text in result rows: a PatternSet compiles the pattern pack into
// Hyperscan databases once at startup (immutable, shared by every shard); a Scanner,
// one per shard, scans one value or a whole row in one Hyperscan call, confirms each
// raw match with its pattern's validator, merges overlapping findings and maps them
// back to (column, begin, end). value_rewrite.h rewrites a value from its findings.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mask/patterns.h"

struct hs_database;
struct hs_scratch;

namespace sluice::mask {

// One confirmed finding. Offsets are bytes inside the value of `column` (the index of
// the value in the row that was scanned; 0 when one value was scanned).
struct Finding {
  uint32_t column = 0;
  uint32_t begin = 0;
  uint32_t end = 0;      // begin < end <= value size
  uint32_t pattern = 0;  // index in the PatternSet
  bool operator==(const Finding&) const = default;
};

// The compiled pattern pack. Immutable after compile(): shards share one through a
// shared_ptr and each scans it with its own Scanner.
class PatternSet {
 public:
  struct Compiled {
    std::shared_ptr<const PatternSet> set;  // null on error
    std::string error;                      // names the pattern kind: "pattern 'x': ..."
  };
  // Checks and compiles `patterns` (typically builtin_patterns() followed by the
  // operator's own). Never throws on a bad pattern: the error says which and why.
  // `databases` lists the tier sets scans will ask for; each is one Hyperscan database
  // (compiling is the slow part of startup). A scan for a set not listed uses the
  // database of all tiers (if compiled) and drops the other tier's matches; with
  // neither, the scan fails (and callers mask what they could not scan).
  static Compiled compile(std::vector<PatternSpec> patterns,
                          std::initializer_list<TierSet> databases = {TierSet::secrets, TierSet::pii, TierSet::all});

  ~PatternSet();
  PatternSet(const PatternSet&) = delete;
  PatternSet& operator=(const PatternSet&) = delete;

  size_t size() const { return patterns_.size(); }
  const PatternSpec& pattern(uint32_t index) const { return patterns_[index]; }
  // Index of the pattern named `kind`, or -1.
  int find(std::string_view kind) const;

 private:
  friend class Scanner;
  PatternSet() = default;

  // How a match's start is known: fixed width (start = end - width), Hyperscan's
  // leftmost start (SOM), or not at all (the validator works from the end).
  struct Shape {
    uint32_t width = 0;  // > 0: every match has this many bytes
    bool som = false;
  };
  std::vector<PatternSpec> patterns_;
  std::vector<Shape> shapes_;
  // Indexed by TierSet - 1: secrets, pii, all. Null when the set has no such pattern
  // or was not compiled (built_ says which).
  hs_database* databases_[3] = {nullptr, nullptr, nullptr};
  bool built_[3] = {false, false, false};
  // Every tier-2 pattern is a built-in one, so may_hold_builtin_pii() can tell which
  // rows need tier 2 at all (an operator's tier-2 pattern can match anything).
  bool pii_prefilter_ = false;
};

// False when no built-in tier-2 (PII) pattern can confirm a finding in `value`: it
// has no '@' (e-mail) or ':' (IPv6), fewer than 8 ASCII digits (card, SSN, phone),
// not 4 digits with 3 dots (IPv4), not an upper-case letter with 2 digits (IBAN), and
// no run of 40 base64 characters (a bare AWS secret key). Derived from the patterns
// and validators in patterns.cc; a test checks every built-in example against it.
bool may_hold_builtin_pii(std::string_view value);
// The same verdict a byte at a time (may_hold_builtin_pii takes 16 at a time); tests
// compare the two.
bool may_hold_builtin_pii_reference(std::string_view value);

struct ScanLimits {
  // Findings kept per value. A value with more is reported in ScanResult::saturated
  // and must be treated as sensitive as a whole (replaced entirely): a value that
  // dense with secrets is not worth showing in parts, and the cap bounds the memory a
  // hostile value can make a shard spend. Values of any length are scanned in full.
  uint32_t max_findings_per_value = 1024;
};

struct ScanResult {
  // Ordered by column, then begin; findings of one column never overlap: overlapping
  // confirmed matches are merged into one finding covering them all, named by a
  // secret over PII, then by the pattern listed first in the set, then the longer.
  std::vector<Finding> findings;
  // Columns whose findings exceeded ScanLimits::max_findings_per_value (their first
  // findings are in `findings`; the rest were dropped): mask these values entirely.
  std::vector<uint32_t> saturated;

  void clear() {
    findings.clear();
    saturated.clear();
  }
  // The findings of one column (a sub-span of `findings`).
  std::span<const Finding> of_column(uint32_t column) const;
};

enum class ScanStatus : uint8_t {
  ok,      // `findings` and `saturated` are complete
  failed,  // Hyperscan failed (out of memory) or the row is 4 GiB or more: nothing is
           // known, so every scanned value must be treated as sensitive
};

// Scans with one Hyperscan scratch space: one Scanner per shard (thread), never shared.
// Memory: a copy of the largest row scanned recently (rows over 1 MiB are not kept
// between scans), and the findings.
class Scanner {
 public:
  explicit Scanner(std::shared_ptr<const PatternSet> patterns, ScanLimits limits = {});
  ~Scanner();
  Scanner(const Scanner&) = delete;
  Scanner& operator=(const Scanner&) = delete;

  // False when the scratch space could not be allocated; every scan then fails.
  bool ready() const { return ready_; }
  const PatternSet& patterns() const { return *patterns_; }

  // One value: findings have column 0. `out` is cleared first.
  ScanStatus scan(std::string_view value, TierSet tiers, ScanResult& out);
  // A row: its values are scanned in one Hyperscan call, joined with NUL bytes (no
  // pattern matches a NUL, so none runs from one value into the next; a NULL column is
  // passed as an empty value). `out` is cleared first.
  ScanStatus scan_row(std::span<const std::string_view> values, TierSet tiers, ScanResult& out);

 private:
  static int on_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags,
                      void* context);
  int match(uint32_t id, uint64_t from, uint64_t to);
  void confirm(uint32_t id, uint32_t column, uint32_t begin, uint32_t end);
  ScanStatus run(std::span<const std::string_view> values, TierSet tiers);
  // Sorts and merges candidates_, enforcing the per-value cap.
  void compact();

  std::shared_ptr<const PatternSet> patterns_;
  ScanLimits limits_;
  hs_scratch* scratch_ = nullptr;
  bool ready_ = false;

  // State of the scan in progress.
  std::string row_;               // NUL v0 NUL v1 NUL ... NUL
  std::vector<uint32_t> starts_;  // offset of each value in row_
  std::span<const std::string_view> values_;
  std::vector<Finding> candidates_;
  std::vector<Finding> last_confirmed_;  // per pattern: skips re-validating inside it
  std::vector<uint32_t> touched_;        // patterns whose last_confirmed_ is set
  std::vector<uint8_t> saturated_;       // per column
  size_t saturated_count_ = 0;
  size_t compact_at_ = 0;
  // Set when the scan runs a larger database than asked for: matches of other tiers
  // are dropped.
  std::optional<TierSet> only_tiers_;
};

}  // namespace sluice::mask
