// The [mask] loader: [mask], [mask.strategies] and [[mask.pattern]] -> Masking. Like
// the other loaders it checks every key and value, keeps going after a problem, and
// reports each with its line; it also compiles the patterns (so a bad regex is a
// config error, not a startup surprise) and loads the token key.
#include "mask/config.h"

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <optional>
#include <utility>

#include "core/config_values.h"

namespace sluice::mask {
namespace {

using core::quote;
using core::toml::Type;
using core::toml::Value;

constexpr std::string_view kMaskKeys[] = {"enabled",        "secrets",    "pii",    "exempt_groups",
                                          "token_key_file", "strategies", "pattern", "column",
                                          "catalog_refresh_seconds"};
constexpr std::string_view kColumnKeys[] = {"target", "table", "column", "kind", "strategy", "exempt_groups"};
constexpr size_t kMaxColumnRules = 1024;
constexpr std::string_view kPatternKeys[] = {"kind", "regex", "tier", "validator", "strategy", "description"};
// Kinds appear in placeholders ("[masked:kind]") and as audit record keys.
constexpr size_t kMaxKindBytes = 48;
constexpr size_t kMaxRegexBytes = 4096;
constexpr size_t kMaxUserPatterns = 256;

bool valid_kind(std::string_view kind) {
  if (kind.empty() || kind.size() > kMaxKindBytes || !(kind[0] >= 'a' && kind[0] <= 'z')) return false;
  return std::all_of(kind.begin(), kind.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

// "redact", "null", "token", "partial" (keeps 4) or "partial:N" with N in 1..32.
bool parse_strategy_spec(std::string_view text, StrategySpec& out) {
  std::string_view name = text;
  std::optional<int> keep;
  if (size_t colon = text.find(':'); colon != std::string_view::npos) {
    name = text.substr(0, colon);
    std::string_view digits = text.substr(colon + 1);
    if (digits.empty() || digits.size() > 2) return false;
    int n = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return false;
      n = n * 10 + (c - '0');
    }
    keep = n;
  }
  Strategy strategy;
  if (!parse_strategy(name, strategy)) return false;
  if (keep && (strategy != Strategy::partial || *keep < 1 || *keep > 32)) return false;
  out.strategy = strategy;
  out.keep_last = static_cast<uint8_t>(keep.value_or(4));
  return true;
}

// Everything about a pattern list that the compiled set depends on.
std::string cache_key(const std::vector<PatternSpec>& patterns, TierSet tiers) {
  std::string key(1, static_cast<char>(tiers));
  for (const PatternSpec& p : patterns) {
    key += p.kind + '\0' + p.regex + '\0' + p.validator_name + '\0';
    key += static_cast<char>(p.tier);
    key += static_cast<char>(p.strategy.strategy);
    key += static_cast<char>(p.strategy.keep_last);
    key += static_cast<char>(p.match_start);
    key.append(reinterpret_cast<const char*>(&p.validator), sizeof p.validator);
  }
  return key;
}

// Compiling the pack is most of startup (0.3 s; seconds under the sanitizers), and a
// reload or a configuration check usually compiles the same list again: the last set
// compiled is kept and reused for an identical list. PatternSet is immutable, so
// sharing it is safe.
PatternSet::Compiled compile_cached(std::vector<PatternSpec> patterns, TierSet tiers) {
  static std::mutex mutex;
  static std::string last_key;
  static std::shared_ptr<const PatternSet> last_set;
  std::string key = cache_key(patterns, tiers);
  {
    std::lock_guard lock(mutex);
    if (last_set && key == last_key) return PatternSet::Compiled{last_set, {}};
  }
  // With both tiers, the secrets-only database too: rows that cannot hold PII (and
  // columns that are not free text) are scanned with tier 1 alone.
  PatternSet::Compiled compiled = tiers == TierSet::all
                                      ? PatternSet::compile(std::move(patterns), {TierSet::secrets, TierSet::all})
                                      : PatternSet::compile(std::move(patterns), {tiers});
  if (compiled.set) {
    std::lock_guard lock(mutex);
    last_key = std::move(key);
    last_set = compiled.set;
  }
  return compiled;
}

constexpr const char* kStrategyForms = "\"redact\", \"partial\", \"partial:N\" (N from 1 to 32), \"token\" or \"null\"";

class MaskLoader : private core::ValueChecker {
 public:
  explicit MaskLoader(std::string base_dir) : base_dir_(std::move(base_dir)) {}

  LoadedMasking load(const Value& root) {
    const Value* mask = root.find("mask");
    if (mask != nullptr && mask->type != Type::table) {
      error(mask->line, core::is_header_array(*mask)
                            ? "[[mask]] is not allowed: write [mask] (there is one mask section)"
                            : "'mask' must be a table: write a [mask] section, not " +
                                  std::string(core::toml::type_name(mask->type)));
      mask = nullptr;
    }
    if (mask != nullptr) load_section(*mask);
    std::vector<PatternSpec> patterns = builtin_patterns();
    for (auto& pattern : config_.user_patterns) patterns.push_back(pattern);
    apply_strategy_overrides(patterns);

    LoadedMasking result;
    auto masking = std::make_shared<Masking>();
    if (config_.enabled && !has_errors()) {
      // Only the database the masker will ask for: compiling is most of startup.
      const TierSet tiers = config_.scan_secrets && config_.scan_pii ? TierSet::all
                            : config_.scan_secrets                   ? TierSet::secrets
                                                                     : TierSet::pii;
      PatternSet::Compiled compiled = compile_cached(std::move(patterns), tiers);
      if (!compiled.set) error(line_of_failed_pattern(compiled.error), compiled.error);
      masking->patterns = std::move(compiled.set);
      const bool columns_use_token = std::any_of(config_.column_rules.begin(), config_.column_rules.end(),
                                                 [](const ColumnRule& r) { return r.strategy.strategy == Strategy::token; });
      if ((masking->patterns && needs_token_key(*masking->patterns)) || columns_use_token) load_token_key(*masking);
    }
    if (!has_errors()) {
      masking->config = std::move(config_);
      result.masking = std::move(masking);
    }
    result.problems = std::move(problems_);
    return result;
  }

 private:
  void error(int line, std::string message) override { problems_.push_back(MaskProblem{line, std::move(message), true}); }
  void warning(int line, std::string message) { problems_.push_back(MaskProblem{line, std::move(message), false}); }
  bool has_errors() const {
    return std::any_of(problems_.begin(), problems_.end(), [](const MaskProblem& p) { return p.is_error; });
  }

  void load_section(const Value& table) {
    const std::string label = "[mask]";
    line_ = table.line;
    check_keys(table, label, "mask", kMaskKeys);
    if (const Value* v = get(table, "enabled", Type::boolean, label)) config_.enabled = v->boolean;
    if (const Value* v = get(table, "secrets", Type::boolean, label)) config_.scan_secrets = v->boolean;
    if (const Value* v = get(table, "pii", Type::boolean, label)) config_.scan_pii = v->boolean;
    if (auto groups = strings(table, "exempt_groups", label)) {
      for (const Value* group : *groups) config_.exempt_groups.push_back(group->string);
    }
    if (const Value* v = get(table, "token_key_file", Type::string, label)) {
      if (v->string.empty()) error(v->line, "'token_key_file' in [mask] must name a file");
      config_.token_key_file = v->string;
      token_key_line_ = v->line;
    }
    if (const Value* strategies = table.find("strategies")) load_strategies(*strategies);
    if (const Value* patterns = table.find("pattern"))
      load_sections(*patterns, "pattern", kMaxUserPatterns, [this](const Value& t) { load_pattern(t); });
    if (const Value* columns = table.find("column"))
      load_sections(*columns, "column", kMaxColumnRules, [this](const Value& t) { load_column(t); });
    if (const Value* v = get(table, "catalog_refresh_seconds", Type::integer, label)) {
      if (v->integer < 5 || v->integer > 86400)
        error(v->line, "'catalog_refresh_seconds' in [mask] must be from 5 to 86400");
      else
        config_.catalog_refresh_seconds = static_cast<uint32_t>(v->integer);
    }
  }

  void load_column(const Value& table) {
    const std::string label = "[[mask.column]]";
    check_keys(table, label, "mask.column", kColumnKeys);
    ColumnRule rule;
    rule.line = table.line;
    bool ok = true;
    if (const Value* t = table.find("target"); t != nullptr && t->type == Type::string) {
      rule.targets.push_back(t->string);  // one target, or a list of them
    } else if (auto targets = strings(table, "target", label)) {
      for (const Value* each : *targets) rule.targets.push_back(each->string);
    }
    std::string table_text = "*";
    if (const Value* t = get(table, "table", Type::string, label)) table_text = t->string;
    if (!policy::parse_name_pattern(table_text, rule.table)) {
      error(table.line, "'table' in [[mask.column]] must be \"schema.table\" or \"table\" ('*' matches any run of "
                        "characters), not " + quote(table_text));
      ok = false;
    }
    if (const Value* c = require(table, "column", Type::string, label)) {
      rule.column = c->string;
      if (rule.column.empty() || rule.column.size() > 128 || rule.column == "*") {
        error(c->line, "'column' in [[mask.column]] must name a column or a pattern such as \"*ssn*\" "
                       "(not empty, not \"*\": masking every column is what the policy's table scopes are for)");
        ok = false;
      }
    } else {
      ok = false;
    }
    if (const Value* kind = get(table, "kind", Type::string, label)) {
      rule.kind = kind->string;
      if (!valid_kind(rule.kind)) {
        error(kind->line, "'kind' in [[mask.column]] must be 1 to " + std::to_string(kMaxKindBytes) +
                              " characters of a-z, 0-9 and _, starting with a letter, not " + quote(rule.kind));
        ok = false;
      }
    } else {
      rule.kind = column_kind(rule.column);
    }
    if (const Value* strategy = get(table, "strategy", Type::string, label)) {
      if (!parse_strategy_spec(strategy->string, rule.strategy)) {
        error(strategy->line, "'strategy' in [[mask.column]] must be one of " + std::string(kStrategyForms));
        ok = false;
      }
    }
    if (auto groups = strings(table, "exempt_groups", label)) {
      for (const Value* g : *groups) rule.exempt_groups.push_back(g->string);
    }
    if (ok) config_.column_rules.push_back(std::move(rule));
  }

  // A kind for placeholders from a column pattern: "*ssn*" -> "ssn", "Email" -> "email".
  static std::string column_kind(std::string_view column) {
    std::string kind;
    for (char c : column) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') kind += c;
      else if (!kind.empty() && kind.back() != '_') kind += '_';
    }
    while (!kind.empty() && kind.back() == '_') kind.pop_back();
    while (!kind.empty() && !(kind[0] >= 'a' && kind[0] <= 'z')) kind.erase(0, 1);
    if (kind.size() > kMaxKindBytes) kind.resize(kMaxKindBytes);
    return kind.empty() ? "column" : kind;
  }

  // [mask.strategies]: kind = "strategy", checked against the kinds once all are known.
  void load_strategies(const Value& table) {
    if (table.type != Type::table) {
      error(table.line, "'strategies' in [mask] must be a [mask.strategies] section of kind = \"strategy\" lines");
      return;
    }
    for (const auto& [kind, value] : table.entries) {
      StrategySpec spec;
      if (value.type != Type::string || !parse_strategy_spec(value.string, spec)) {
        error(value.line, "[mask.strategies] " + core::quote_key(kind) + " must be one of " + kStrategyForms);
        continue;
      }
      config_.strategies.emplace_back(kind, spec);
      strategy_lines_.push_back(value.line);
    }
  }

  // [[mask.KEY]] sections, at most `max` of them, each handed to `load`.
  template <typename Load>
  void load_sections(const Value& value, const std::string& key, size_t max, Load load) {
    const std::string header = "[[mask." + key + "]]";
    if (!core::is_header_array(value)) {
      error(value.line, "'" + key + "' in [mask] must be " + header + " sections, one each");
      return;
    }
    if (value.array.size() > max) {
      error(value.line, "at most " + std::to_string(max) + " " + header + " sections are allowed");
      return;
    }
    for (const Value& table : value.array) load(table);
  }

  void load_pattern(const Value& table) {
    const std::string label = "[[mask.pattern]]";
    check_keys(table, label, "mask.pattern", kPatternKeys);
    PatternSpec spec;
    bool ok = true;
    if (const Value* kind = require(table, "kind", Type::string, label)) {
      spec.kind = kind->string;
      if (!valid_kind(spec.kind)) {
        error(kind->line, "'kind' in [[mask.pattern]] must be 1 to " + std::to_string(kMaxKindBytes) +
                              " characters of a-z, 0-9 and _, starting with a letter, not " + quote(spec.kind));
        ok = false;
      } else if (is_known_kind(spec.kind)) {
        error(kind->line, "kind " + quote(spec.kind) +
                              " is already defined (built-in kinds are listed in docs/masking.md); choose another name");
        ok = false;
      }
    } else {
      ok = false;
    }
    if (const Value* regex = require(table, "regex", Type::string, label)) {
      if (regex->string.empty() || regex->string.size() > kMaxRegexBytes) {
        error(regex->line, "'regex' in [[mask.pattern]] must be 1 to " + std::to_string(kMaxRegexBytes) + " bytes");
        ok = false;
      }
      spec.regex = regex->string;
    } else {
      ok = false;
    }
    spec.tier = Tier::secret;
    if (const Value* tier = get(table, "tier", Type::string, label)) {
      if (tier->string == "secret") spec.tier = Tier::secret;
      else if (tier->string == "pii") spec.tier = Tier::pii;
      else {
        error(tier->line, "'tier' in [[mask.pattern]] must be \"secret\" (every text value) or \"pii\" "
                          "(free-text columns), not " + quote(tier->string));
        ok = false;
      }
    }
    if (const Value* validator = get(table, "validator", Type::string, label)) {
      bool found = false;
      spec.validator = find_validator(validator->string, &found);
      spec.validator_name = validator->string;
      if (!found) {
        error(validator->line, "unknown validator " + quote(validator->string) + " in [[mask.pattern]]: use one of " +
                                   validator_names());
        ok = false;
      }
    }
    if (const Value* strategy = get(table, "strategy", Type::string, label)) {
      if (!parse_strategy_spec(strategy->string, spec.strategy)) {
        error(strategy->line, "'strategy' in [[mask.pattern]] must be one of " + std::string(kStrategyForms));
        ok = false;
      }
    }
    if (const Value* description = get(table, "description", Type::string, label)) spec.description = description->string;
    if (spec.description.empty()) spec.description = "operator pattern";
    if (!ok) return;
    config_.user_patterns.push_back(std::move(spec));
    pattern_lines_.push_back(table.line);
  }

  // The line of the [[mask.pattern]] a compile error names ("pattern 'kind': ...").
  int line_of_failed_pattern(const std::string& message) const {
    for (size_t i = 0; i < config_.user_patterns.size(); ++i)
      if (message.find("'" + config_.user_patterns[i].kind + "'") != std::string::npos) return pattern_lines_[i];
    return line_;
  }

  bool is_known_kind(std::string_view kind) const {
    const auto& builtin = builtin_patterns();
    auto named = [&](const PatternSpec& p) { return p.kind == kind; };
    return std::any_of(builtin.begin(), builtin.end(), named) ||
           std::any_of(config_.user_patterns.begin(), config_.user_patterns.end(), named);
  }

  void apply_strategy_overrides(std::vector<PatternSpec>& patterns) {
    for (size_t i = 0; i < config_.strategies.size(); ++i) {
      const auto& [kind, spec] = config_.strategies[i];
      bool applied = false;
      for (auto& pattern : patterns) {
        if (pattern.kind != kind) continue;
        pattern.strategy = spec;
        applied = true;
      }
      if (!applied) error(strategy_lines_[i], "[mask.strategies] names unknown kind " + quote(kind) +
                                                  " (built-in kinds are listed in docs/masking.md)");
    }
  }

  bool needs_token_key(const PatternSet& set) const {
    for (size_t i = 0; i < set.size(); ++i)
      if (set.pattern(static_cast<uint32_t>(i)).strategy.strategy == Strategy::token) return true;
    return false;
  }

  void load_token_key(Masking& masking) {
    if (config_.token_key_file.empty()) {
      error(line_, "the token strategy needs a key: set token_key_file in [mask] (e.g. a file made with "
                   "`openssl rand -hex 32 > /etc/sluice/token.key; chmod 600 /etc/sluice/token.key`)");
      return;
    }
    std::filesystem::path path(config_.token_key_file);
    if (path.is_relative() && !base_dir_.empty()) path = std::filesystem::path(base_dir_) / path;
    TokenKeyLoad loaded = TokenKey::load_file(path.string());
    if (!loaded.key) {
      error(token_key_line_, loaded.error);
      return;
    }
    if (!loaded.warning.empty()) warning(token_key_line_, loaded.warning);
    masking.token_key = std::make_shared<const TokenKey>(std::move(*loaded.key));
  }

  std::string base_dir_;
  Config config_;
  std::vector<MaskProblem> problems_;
  std::vector<int> strategy_lines_;  // parallel to config_.strategies
  int line_ = 0;                     // of [mask]
  int token_key_line_ = 0;
  std::vector<int> pattern_lines_;   // parallel to config_.user_patterns
};

}  // namespace

bool ColumnRule::applies_to_target(std::string_view target) const {
  return targets.empty() || std::find(targets.begin(), targets.end(), target) != targets.end();
}

bool ColumnRule::matches(std::string_view schema, std::string_view table_name, std::string_view column_name) const {
  policy::NamePattern column_pattern;
  column_pattern.name = column;
  return policy::matches(table, schema, table_name) && policy::matches(column_pattern, "", column_name);
}

bool ColumnRule::exempts(const std::vector<std::string>& groups) const {
  return std::any_of(groups.begin(), groups.end(), [&](const std::string& g) {
    return std::find(exempt_groups.begin(), exempt_groups.end(), g) != exempt_groups.end();
  });
}

LoadedMasking load_masking(const core::toml::Value& root, const std::string& base_dir) {
  return MaskLoader(base_dir).load(root);
}

}  // namespace sluice::mask
