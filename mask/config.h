// The [mask] section of the configuration (docs/masking.md, docs/configuration.md):
// which pattern tiers scan what leaves the database, how findings are replaced,
// who is exempt, and the operator's own patterns ([[mask.pattern]]). Loaded from a
// parsed TOML document like the policy; every problem is reported with its line.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/toml.h"
#include "mask/patterns.h"
#include "policy/policy.h"
#include "mask/scanner.h"
#include "mask/strategy.h"
#include "mask/token_key.h"

namespace sluice::mask {

// [[mask.column]]: mask a column wherever it leaves, by the catalog's name for it
// (table OID and attribute number in RowDescription), so an alias cannot dodge it.
struct ColumnRule {
  std::vector<std::string> targets;     // empty: every target
  policy::NamePattern table;            // "schema.table" or "table" ('*' wildcards); "*" by default
  std::string column;                   // the column's name as the catalog spells it ('*' wildcards)
  std::string kind;                     // for placeholders and audit counts; default: the column
  StrategySpec strategy;                // redact by default
  std::vector<std::string> exempt_groups;  // members see clear text
  int line = 0;

  bool applies_to_target(std::string_view target) const;
  bool matches(std::string_view schema, std::string_view table, std::string_view column) const;
  bool exempts(const std::vector<std::string>& groups) const;
};

struct Config {
  bool enabled = true;
  // Tier 1 (secrets: keys, tokens, private keys, credentials in URIs) on every value
  // that can hold text, in every channel.
  bool scan_secrets = true;
  // Tier 2 (PII shapes: card numbers, SSNs, IBANs, emails, phones, IPv4) on free-text
  // columns (text, varchar, json...) and on error, notice and notification text.
  bool scan_pii = true;
  // Members of these groups see clear text; their sessions' audit records say so.
  std::vector<std::string> exempt_groups;
  // Key for the token strategy; required when any kind uses it.
  std::string token_key_file;
  // Per-kind strategy overrides ([mask.strategies] kind = "partial:4").
  std::vector<std::pair<std::string, StrategySpec>> strategies;
  // The operator's patterns, added to the built-in pack.
  std::vector<PatternSpec> user_patterns;
  // Column rules, first match wins for a column.
  std::vector<ColumnRule> column_rules;
  // How often the catalog is reread anyway (besides after DDL through sluice).
  uint32_t catalog_refresh_seconds = 60;
};

// What the gateway needs at run time: the compiled patterns and the key, shared by
// every shard (immutable; a reload builds a new one).
struct Masking {
  Config config;
  std::shared_ptr<const PatternSet> patterns;
  std::shared_ptr<const TokenKey> token_key;  // null when no kind uses the token strategy
};

struct MaskProblem {
  int line = 0;  // 1-based; 0 = the whole file
  std::string message;
  bool is_error = true;
};

struct LoadedMasking {
  std::shared_ptr<const Masking> masking;  // set exactly when no problem is an error
  std::vector<MaskProblem> problems;
};

// The top-level key load_masking() reads.
inline constexpr std::string_view kMaskTopLevelKeys[] = {"mask"};

// Loads [mask] (absent: the defaults above), compiles the patterns and loads the
// token key. Relative key paths resolve against base_dir.
LoadedMasking load_masking(const core::toml::Value& root, const std::string& base_dir);

}  // namespace sluice::mask
