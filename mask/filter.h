// Masking on the data path: each session gets a ResultMasker that looks at what the
// database sends (rows in text and binary format, COPY data, errors, notices,
// notifications, function results), finds secrets and PII with the shard's Scanner,
// and rewrites them so the client's driver still decodes every value as its type.
//
// What this covers today (docs/masking.md): pattern tiers on every channel. Column
// rules (mask a column by name, alias-proof through the catalog) come next; until
// then a value is masked because of what it holds, not where it comes from.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mask/catalog.h"
#include "mask/column_type.h"
#include "mask/config.h"
#include "mask/scanner.h"
#include "mask/value_rewrite.h"
#include "protocol/result_filter.h"

namespace sluice::mask {

// One per shard (one thread): owns the shard's Scanner, which every session of the
// shard uses in turn. A reload installs a new ShardMasking; sessions already open
// keep the Masking and Scanner they were opened with.
class ShardMasking final : public protocol::ResultFilterFactory {
 public:
  // `catalog` (may be null: no column rules) outlives the shard.
  ShardMasking(std::shared_ptr<const Masking> masking, Catalog* catalog);

  // nullptr (nothing to mask) when masking is disabled or the identity is in one of
  // the exempt groups.
  std::unique_ptr<protocol::ResultFilter> open(const std::string& user, const std::vector<std::string>& groups,
                                               const protocol::Target& target) override;

  // True when the identity sees clear text (for the audit record of its session).
  bool exempt(const std::vector<std::string>& groups) const;

 private:
  std::shared_ptr<const Masking> masking_;
  Catalog* catalog_;
  // Null when masking is disabled. Shared with the shard's maskers, so a session opened
  // before a reload keeps the patterns it started with.
  std::shared_ptr<Scanner> scanner_;
};

// How a value of one result column is scanned and rewritten. Invariant: `known` is
// false exactly when the result's RowDescription was not seen (or did not match the
// row); every finding in such a value then masks the whole value (as SQL NULL).
struct ColumnPlan {
  ColumnType type;
  ValueFormat format = ValueFormat::text;
  bool known = false;
  bool scan = true;        // false: the type cannot hold text (numbers, times, uuids...)
  bool scan_pii = false;   // free text: tier 2 applies too
  bool hex_bytea = false;  // bytea in text format: "\x..." is decoded before scanning
  // A column rule masks the whole value (the catalog names its relation and column).
  const ColumnRule* rule = nullptr;
  // A column rule covers it but the identity is exempt: sent as it is, and counted.
  const ColumnRule* exempt_rule = nullptr;
  // The column comes from a relation the catalog snapshot does not know (or the
  // catalog could not be read): whether a rule applies is unknown, so it is masked.
  bool unverified = false;
};

// Where a session's column rules come from: the catalog, its target, its groups.
struct ColumnRuleSource {
  Catalog* catalog = nullptr;  // null: no column rule applies to the session
  std::string target;
  std::vector<std::string> groups;
};

class ResultMasker final : public protocol::ResultFilter {
 public:
  ResultMasker(std::shared_ptr<const Masking> masking, std::shared_ptr<Scanner> scanner,
               ColumnRuleSource columns = {});

  bool inspects(uint8_t type) const override;
  void passed(uint8_t type) override;
  Action filter(uint8_t type, std::span<const uint8_t> body, std::vector<uint8_t>& replacement,
                protocol::ErrorInfo& refusal) override;
  std::vector<std::pair<std::string, uint64_t>> take_masked_counts() override;
  bool mask_parameter(std::span<const uint8_t> bytes, bool binary, std::string& out) override;
  std::vector<std::pair<std::string, uint64_t>> take_clear_counts() override;

 private:
  void describe(std::span<const uint8_t> body);
  Action data_row(std::span<const uint8_t> body, std::vector<uint8_t>& replacement, protocol::ErrorInfo& refusal);
  Action error_or_notice(uint8_t type, std::span<const uint8_t> body, std::vector<uint8_t>& replacement);
  Action notification(std::span<const uint8_t> body, std::vector<uint8_t>& replacement);
  Action function_result(std::span<const uint8_t> body, std::vector<uint8_t>& replacement);
  Action copy_data(std::span<const uint8_t> body, std::vector<uint8_t>& replacement, protocol::ErrorInfo& refusal);
  void copy_out_started(std::span<const uint8_t> body);
  // A binary COPY message taken apart: where each field's bytes are (length -1: NULL).
  struct BinaryField {
    size_t offset = 0;
    int32_t length = -1;
  };
  struct BinaryCopyMessage {
    size_t header_bytes = 0;           // the file header, in the first message only
    std::vector<uint32_t> tuples;      // field count of each whole tuple, in order
    std::vector<BinaryField> fields;   // every tuple's fields, in order
    bool trailer = false;              // ends with the -1 trailer
  };
  bool parse_binary_copy(std::span<const uint8_t> body, BinaryCopyMessage& out) const;
  Action binary_copy_data(std::span<const uint8_t> body, std::vector<uint8_t>& replacement,
                          protocol::ErrorInfo& refusal);

  // `text` (a string in an error, notice, notification or COPY line) with its
  // findings rewritten, into `out`; false, and `out` untouched, when nothing was found.
  // Text that could not be scanned is replaced whole.
  bool mask_text(std::string_view text, std::string& out);
  // mask_text(), counting the findings for the audit outcome or not (parameters).
  // Scans free text with both tiers into found_.
  enum class TextScan : uint8_t { clean, found, unscanned };
  TextScan scan_text(std::string_view text);
  bool rewrite_text(std::string_view text, std::string& out, bool count_findings);
  void count(uint32_t pattern);
  void count_kind(std::string_view kind);
  void note_clear(std::string_view kind);
  void plan_column_rule(const protocol::ColumnDescription& column, ColumnPlan& plan);
  // Masks a value whole for its column rule (or as unverified); false: not such a column.
  bool mask_by_rule(const ColumnPlan& plan, std::string_view value, Replacement& out);
  TierSet tiers(bool pii) const;
  const PatternSpec& pattern(const Finding& f) const { return scanner_->patterns().pattern(f.pattern); }

  const std::shared_ptr<const Masking> masking_;
  const std::shared_ptr<Scanner> scanner_;
  const ColumnRuleSource columns_;
  std::shared_ptr<const TargetCatalog> catalog_;  // the snapshot the plan's rules point into
  uint64_t catalog_version_ = 0;

  // The current result set's columns, from its RowDescription. Invariant: empty with
  // `described_` false between results (after CommandComplete, an error, Sync...).
  std::vector<ColumnPlan> plan_;
  bool described_ = false;
  bool after_parameter_description_ = false;  // a RowDescription now describes a statement
  bool copy_binary_ = false;                  // the COPY TO STDOUT under way is binary
  bool copy_header_pending_ = false;          // its file header has not been seen yet
  BinaryCopyMessage binary_copy_;             // scratch

  // Scratch, reused from row to row.
  std::vector<protocol::RowValue> values_;
  std::vector<std::string_view> scan_values_;
  std::vector<std::string> decoded_;  // hex-decoded bytea values, by column
  ScanResult found_;
  std::vector<Replacement> replacements_;
  std::vector<protocol::RowValue> row_out_;  // the rewritten row's values
  Replacement text_rep_;
  std::string masked_text_;
  std::vector<std::pair<std::string, uint64_t>> counts_;
  std::vector<std::pair<std::string, uint64_t>> clear_counts_;
};

}  // namespace sluice::mask
