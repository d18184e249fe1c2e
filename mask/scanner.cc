// PatternSet compilation (Hyperscan block mode, one database per tier selection) and
// the Scanner: one Hyperscan call per row, validators on every raw match, overlap
// merging, the per-value findings cap. See scanner.h.
#include "mask/scanner.h"

#include <hs/hs.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <bit>
#include <cassert>
#include <climits>
#include <cstring>

namespace sluice::mask {
namespace {

// Rows larger than this are not kept in the scanner's buffer between scans.
constexpr size_t kKeepRowBytes = 1 << 20;
constexpr size_t kMinCompact = 256;

bool valid_kind(std::string_view kind) {
  if (kind.empty() || kind.size() > 64 || !(kind[0] >= 'a' && kind[0] <= 'z')) return false;
  for (char c : kind) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

int database_index(TierSet tiers) { return static_cast<int>(tiers) - 1; }

bool in_set(Tier tier, int database) {
  const int bit = tier == Tier::secret ? 1 : 2;
  return ((database + 1) & bit) != 0;
}

// Ranks overlapping findings to name the merged one (which covers them all): a secret
// over PII, then the pattern listed first (the built-in pack lists specific formats
// before generic assignments, and comes before user patterns), then the longer.
bool outranks(const Finding& a, const Finding& b, const PatternSet& set) {
  const Tier ta = set.pattern(a.pattern).tier, tb = set.pattern(b.pattern).tier;
  if (ta != tb) return ta < tb;
  if (a.pattern != b.pattern) return a.pattern < b.pattern;
  return a.end - a.begin > b.end - b.begin;
}

}  // namespace

// --- PatternSet ------------------------------------------------------------------------

PatternSet::~PatternSet() {
  for (hs_database* db : databases_) {
    if (db != nullptr) hs_free_database(db);
  }
}

int PatternSet::find(std::string_view kind) const {
  for (size_t i = 0; i < patterns_.size(); ++i) {
    if (patterns_[i].kind == kind) return static_cast<int>(i);
  }
  return -1;
}

PatternSet::Compiled PatternSet::compile(std::vector<PatternSpec> patterns, std::initializer_list<TierSet> databases) {
  Compiled result;
  auto fail = [&](const PatternSpec& p, const std::string& why) {
    result.error = "pattern '" + p.kind + "': " + why;
    return result;
  };
  if (patterns.empty()) {
    result.error = "no patterns to compile";
    return result;
  }
  if (patterns.size() > 100000) {
    result.error = "too many patterns (" + std::to_string(patterns.size()) + ")";
    return result;
  }
  std::shared_ptr<PatternSet> set(new PatternSet());
  set->shapes_.resize(patterns.size());
  for (size_t i = 0; i < patterns.size(); ++i) {
    const PatternSpec& p = patterns[i];
    if (!valid_kind(p.kind)) {
      result.error = "pattern #" + std::to_string(i + 1) + " '" + p.kind +
                     "': the kind must be snake_case (a-z, 0-9, '_', starting with a letter, at most 64 bytes)";
      return result;
    }
    for (size_t j = 0; j < i; ++j) {
      if (patterns[j].kind == p.kind) return fail(p, "defined twice");
    }
    if (p.regex.empty()) return fail(p, "empty regex");
    if (p.tier != Tier::secret && p.tier != Tier::pii) return fail(p, "tier must be 1 (secret) or 2 (pii)");
    if (!p.match_start && p.validator == nullptr) {
      return fail(p, "match_start = false needs a validator to find the span from the match's end");
    }
    hs_expr_info_t* info = nullptr;
    hs_compile_error_t* error = nullptr;
    if (hs_expression_info(p.regex.c_str(), 0, &info, &error) != HS_SUCCESS) {
      std::string message = error != nullptr ? error->message : "not a valid Hyperscan expression";
      hs_free_compile_error(error);
      return fail(p, message);
    }
    const bool empty = info->min_width == 0;
    const bool fixed = info->min_width == info->max_width && info->max_width != UINT_MAX;
    const unsigned width = info->min_width;
    free(info);
    if (empty) return fail(p, "the regex can match an empty string");
    Shape& shape = set->shapes_[i];
    if (fixed) {
      shape.width = width;
    } else {
      shape.som = p.match_start;
    }
  }
  set->patterns_ = std::move(patterns);
  set->pii_prefilter_ = std::all_of(set->patterns_.begin(), set->patterns_.end(), [](const PatternSpec& p) {
    if (p.tier != Tier::pii) return true;
    const auto& builtin = builtin_patterns();
    return std::any_of(builtin.begin(), builtin.end(), [&](const PatternSpec& b) {
      return b.tier == Tier::pii && b.kind == p.kind && b.regex == p.regex && b.validator == p.validator;
    });
  });

  bool wanted[3] = {false, false, false};
  for (TierSet tiers : databases) {
    const int db = database_index(tiers);
    if (db >= 0 && db < 3) wanted[db] = true;
  }
  for (int db = 0; db < 3; ++db) {
    if (!wanted[db]) continue;
    set->built_[db] = true;
    std::vector<const char*> expressions;
    std::vector<unsigned int> flags;
    std::vector<unsigned int> ids;
    for (size_t i = 0; i < set->patterns_.size(); ++i) {
      if (!in_set(set->patterns_[i].tier, db)) continue;
      expressions.push_back(set->patterns_[i].regex.c_str());
      flags.push_back(set->shapes_[i].som ? HS_FLAG_SOM_LEFTMOST : 0);
      ids.push_back(static_cast<unsigned int>(i));
    }
    if (expressions.empty()) continue;
    hs_compile_error_t* error = nullptr;
    if (hs_compile_multi(expressions.data(), flags.data(), ids.data(), static_cast<unsigned int>(expressions.size()),
                         HS_MODE_BLOCK, nullptr, &set->databases_[db], &error) != HS_SUCCESS) {
      std::string message = error != nullptr ? error->message : "Hyperscan compile failed";
      const int which = error != nullptr ? error->expression : -1;
      hs_free_compile_error(error);
      if (which >= 0 && static_cast<size_t>(which) < ids.size()) {
        return fail(set->patterns_[ids[which]], message);
      }
      result.error = "pattern set: " + message;
      return result;
    }
  }
  result.set = std::move(set);
  return result;
}

// --- ScanResult ------------------------------------------------------------------------

std::span<const Finding> ScanResult::of_column(uint32_t column) const {
  auto lower = std::lower_bound(findings.begin(), findings.end(), column,
                                [](const Finding& f, uint32_t c) { return f.column < c; });
  auto upper = std::upper_bound(lower, findings.end(), column,
                                [](uint32_t c, const Finding& f) { return c < f.column; });
  return {findings.data() + (lower - findings.begin()), static_cast<size_t>(upper - lower)};
}

// --- Scanner -----------------------------------------------------------------------------

Scanner::Scanner(std::shared_ptr<const PatternSet> patterns, ScanLimits limits)
    : patterns_(std::move(patterns)), limits_(limits) {
  assert(patterns_ != nullptr);
  if (limits_.max_findings_per_value == 0) limits_.max_findings_per_value = 1;
  ready_ = true;
  for (hs_database* db : patterns_->databases_) {
    if (db != nullptr && hs_alloc_scratch(db, &scratch_) != HS_SUCCESS) ready_ = false;
  }
  last_confirmed_.resize(patterns_->size());
}

Scanner::~Scanner() {
  if (scratch_ != nullptr) hs_free_scratch(scratch_);
}

int Scanner::on_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int /*flags*/,
                      void* context) {
  return static_cast<Scanner*>(context)->match(id, from, to);
}

int Scanner::match(uint32_t id, uint64_t from, uint64_t to) {
  if (only_tiers_ && !in_set(patterns_->patterns_[id].tier, database_index(*only_tiers_))) return 0;
  const PatternSet::Shape shape = patterns_->shapes_[id];
  const size_t columns = starts_.size();
  // The column holding `pos`: the last one starting at or before it (a NUL separator
  // belongs to the column before it).
  auto column_at = [&](uint64_t pos) -> uint32_t {
    auto it = std::upper_bound(starts_.begin(), starts_.end(), pos);
    return it == starts_.begin() ? 0 : static_cast<uint32_t>(it - starts_.begin() - 1);
  };
  if (shape.width == 0 && !shape.som) {
    // Only the end is known: the validator works backwards or forwards from it.
    const uint32_t column = column_at(to == 0 ? 0 : to - 1);
    const uint64_t value_end = uint64_t{starts_[column]} + values_[column].size();
    const uint32_t local = static_cast<uint32_t>(std::min<uint64_t>(std::max<uint64_t>(to, starts_[column]), value_end) -
                                                 starts_[column]);
    confirm(id, column, local, local);
  } else {
    const uint64_t start = shape.width > 0 ? to - shape.width : from;
    // Built-in patterns never match across a NUL; a user pattern might. Each value it
    // touches is then confirmed on its own piece (over-masking is the safe side).
    for (uint32_t column = column_at(start); column < columns && starts_[column] < to; ++column) {
      const uint64_t value_begin = starts_[column];
      const uint64_t value_end = value_begin + values_[column].size();
      const uint64_t begin = std::max(start, value_begin), end = std::min(to, value_end);
      if (begin >= end) continue;
      confirm(id, column, static_cast<uint32_t>(begin - value_begin), static_cast<uint32_t>(end - value_begin));
    }
  }
  if (columns > 0 && saturated_count_ == columns) return 1;  // nothing more can be recorded
  return 0;
}

void Scanner::confirm(uint32_t id, uint32_t column, uint32_t begin, uint32_t end) {
  if (saturated_[column]) return;
  // Hyperscan reports a match at every end offset, and validators extend a token to its
  // end: a match inside a finding of the same pattern adds nothing. (For end-only
  // patterns, a "key =" inside the value of the previous one: "password=password=...".)
  const Finding& last = last_confirmed_[id];
  if (last.end > 0 && last.column == column && begin >= last.begin &&
      (begin < end ? end <= last.end : begin < last.end)) {
    return;
  }
  const PatternSpec& pattern = patterns_->patterns_[id];
  const std::string_view value = values_[column];
  Span span{begin, end};
  if (pattern.validator != nullptr) {
    if (!pattern.validator(value, span)) return;
    if (span.begin >= span.end || span.end > value.size()) {
      assert(false && "validator left an invalid span");
      return;
    }
  } else if (begin >= end) {
    return;
  }
  const Finding finding{column, span.begin, span.end, id};
  if (last_confirmed_[id].end == 0) touched_.push_back(id);
  last_confirmed_[id] = finding;
  candidates_.push_back(finding);
  if (candidates_.size() >= compact_at_) compact();
}

void Scanner::compact() {
  std::sort(candidates_.begin(), candidates_.end(), [](const Finding& a, const Finding& b) {
    if (a.column != b.column) return a.column < b.column;
    if (a.begin != b.begin) return a.begin < b.begin;
    return a.end > b.end;
  });
  size_t out = 0;
  Finding best;  // the candidate that names the merged finding at out - 1
  uint32_t run_column = UINT32_MAX;
  uint32_t run_count = 0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    const Finding f = candidates_[i];
    if (out > 0 && candidates_[out - 1].column == f.column && f.begin < candidates_[out - 1].end) {
      Finding& merged = candidates_[out - 1];
      if (outranks(f, best, *patterns_)) best = f;
      merged.end = std::max(merged.end, f.end);
      merged.pattern = best.pattern;
      continue;
    }
    if (f.column != run_column) {
      run_column = f.column;
      run_count = 0;
    }
    if (run_count == limits_.max_findings_per_value) {
      // Over the cap: the value is masked whole; keep the first findings only.
      if (!saturated_[f.column]) {
        saturated_[f.column] = 1;
        ++saturated_count_;
      }
      continue;
    }
    ++run_count;
    candidates_[out++] = f;
    best = f;
  }
  candidates_.resize(out);
  compact_at_ = std::max(kMinCompact, 2 * candidates_.size());
}

ScanStatus Scanner::run(std::span<const std::string_view> values, TierSet tiers) {
  starts_.clear();
  candidates_.clear();
  for (uint32_t id : touched_) last_confirmed_[id] = Finding{};  // cheaper than clearing all
  touched_.clear();
  saturated_.assign(values.size(), 0);
  saturated_count_ = 0;
  compact_at_ = kMinCompact;
  values_ = values;
  if (!ready_) return ScanStatus::failed;
  uint64_t total = 1;
  for (std::string_view v : values) total += v.size() + 1;
  if (total > UINT32_MAX) return ScanStatus::failed;
  // Tier 2 costs several times tier 1: skip it for rows where no PII can be confirmed.
  if (tiers == TierSet::all && patterns_->pii_prefilter_ && patterns_->built_[database_index(TierSet::secrets)] &&
      std::none_of(values.begin(), values.end(), may_hold_builtin_pii))
    tiers = TierSet::secrets;
  int db = database_index(tiers);
  if (db < 0 || db > 2) return ScanStatus::failed;
  only_tiers_.reset();
  if (!patterns_->built_[db]) {
    if (!patterns_->built_[database_index(TierSet::all)]) return ScanStatus::failed;  // callers mask unscanned values
    only_tiers_ = tiers;
    db = database_index(TierSet::all);
  }
  hs_database* database = patterns_->databases_[db];
  if (database == nullptr || values.empty()) return ScanStatus::ok;

  row_.resize(total);
  char* out = row_.data();
  size_t pos = 0;
  out[pos++] = '\0';
  for (std::string_view v : values) {
    starts_.push_back(static_cast<uint32_t>(pos));
    if (!v.empty()) std::memcpy(out + pos, v.data(), v.size());
    pos += v.size();
    out[pos++] = '\0';
  }
  const hs_error_t rc =
      hs_scan(database, row_.data(), static_cast<unsigned int>(row_.size()), 0, scratch_, &Scanner::on_match, this);
  if (row_.capacity() > kKeepRowBytes) std::string().swap(row_);
  if (rc != HS_SUCCESS && rc != HS_SCAN_TERMINATED) return ScanStatus::failed;
  return ScanStatus::ok;
}

namespace {

// What the prefilter counts over a value; the verdict needs only these.
struct PiiEvidence {
  uint32_t digits = 0;
  uint32_t dots = 0;
  uint32_t run = 0;  // the current streak of base64 characters ([0-9A-Za-z/+])
  bool upper = false;
  bool found = false;  // '@' or ':', or a streak of 40: PII possible whatever follows

  void add(unsigned char c) {
    if (c >= '0' && c <= '9') {
      ++digits;
      ++run;
    } else if (c >= 'A' && c <= 'Z') {
      upper = true;
      ++run;
    } else if ((c >= 'a' && c <= 'z') || c == '/' || c == '+') {
      ++run;
    } else {
      if (c == '@' || c == ':') found = true;
      if (c == '.') ++dots;
      run = 0;
    }
    if (run >= 40) found = true;
  }
  bool verdict() const { return found || digits >= 8 || (digits >= 4 && dots >= 3) || (digits >= 2 && upper); }
};

#if defined(__SSE2__)
// 16 bytes at a time: each class as a bit mask (bit i: byte i). Bytes of 0x80 and above
// compare as negative, so they fall in no class, as in PiiEvidence::add.
uint32_t class_mask(__m128i bytes, char low, char high) {
  const __m128i at_least = _mm_cmpgt_epi8(bytes, _mm_set1_epi8(static_cast<char>(low - 1)));
  const __m128i at_most = _mm_cmplt_epi8(bytes, _mm_set1_epi8(static_cast<char>(high + 1)));
  return static_cast<uint32_t>(_mm_movemask_epi8(_mm_and_si128(at_least, at_most)));
}
uint32_t byte_mask(__m128i bytes, char c) {
  return static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(c))));
}

// Bits set in a 16-bit mask, without a call (std::popcount is a libgcc call unless the
// build targets POPCNT).
uint32_t bits16(uint32_t x) {
  x = x - ((x >> 1) & 0x5555u);
  x = (x & 0x3333u) + ((x >> 2) & 0x3333u);
  x = (x + (x >> 4)) & 0x0F0Fu;
  return (x + (x >> 8)) & 0x1Fu;
}

// Adds 16 bytes to `e`.
void add_block(PiiEvidence& e, const char* p) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if ((byte_mask(bytes, '@') | byte_mask(bytes, ':')) != 0) {
    e.found = true;
    return;
  }
  const uint32_t digit = class_mask(bytes, '0', '9');
  const uint32_t upper = class_mask(bytes, 'A', 'Z');
  const uint32_t streak = digit | upper | class_mask(bytes, 'a', 'z') | byte_mask(bytes, '/') | byte_mask(bytes, '+');
  e.digits += bits16(digit);
  e.dots += bits16(byte_mask(bytes, '.'));
  e.upper = e.upper || upper != 0;
  if (streak == 0xFFFF) {
    e.run += 16;
  } else {
    // The streak carried in ends at the first non-streak byte; no streak inside 16
    // bytes reaches 40; the one at the block's end carries on.
    if (e.run + static_cast<uint32_t>(std::countr_one(streak)) >= 40) e.found = true;
    e.run = static_cast<uint32_t>(std::countl_one(streak << 16));
  }
  if (e.run >= 40) e.found = true;
}
#endif

}  // namespace

bool may_hold_builtin_pii_reference(std::string_view value) {
  PiiEvidence e;
  for (const char ch : value) {
    e.add(static_cast<unsigned char>(ch));
    if (e.found) return true;
  }
  return e.verdict();
}

bool may_hold_builtin_pii(std::string_view value) {
#if defined(__SSE2__)
  PiiEvidence e;
  size_t i = 0;
  for (; i + 16 <= value.size(); i += 16) {
    add_block(e, value.data() + i);
    if (e.found) return true;
  }
  if (i < value.size()) {
    // The rest, padded with NULs: a NUL is in no class, so it adds nothing and only
    // ends a streak where the value ends anyway.
    char last[16] = {};
    std::memcpy(last, value.data() + i, value.size() - i);
    add_block(e, last);
  }
  return e.verdict();
#else
  return may_hold_builtin_pii_reference(value);
#endif
}

ScanStatus Scanner::scan(std::string_view value, TierSet tiers, ScanResult& out) {
  return scan_row(std::span<const std::string_view>(&value, 1), tiers, out);
}

ScanStatus Scanner::scan_row(std::span<const std::string_view> values, TierSet tiers, ScanResult& out) {
  out.clear();
  const ScanStatus status = run(values, tiers);
  if (status != ScanStatus::ok) return status;
  if (candidates_.empty()) return ScanStatus::ok;  // the common case: a clean row
  compact();
  out.findings.assign(candidates_.begin(), candidates_.end());
  for (uint32_t c = 0; c < saturated_.size(); ++c) {
    if (saturated_[c]) out.saturated.push_back(c);
  }
  return ScanStatus::ok;
}

}  // namespace sluice::mask
