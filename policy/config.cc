// The policy loader: [policy] and [groups.NAME] (with [[groups.NAME.rule]]) -> Policy.
// Like the rest of the configuration loader it checks every key against the keys it
// knows and every value against its type and bounds, and keeps going after a problem
// so that one run reports all of them. Cross-references (a group's targets, a user's
// groups) are checked against the document itself, so it needs nothing from tools/.
#include "policy/config.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/config_values.h"

namespace sluice::policy {
namespace {

using core::toml::Type;
using core::toml::Value;

using core::did_you_mean;
using core::quote;

// PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes; group names follow the
// same rule as the names users list in `groups`.
constexpr size_t kMaxNameBytes = 63;
// A rule's message and hint go to the client in an ErrorResponse.
constexpr size_t kMaxTextBytes = 1024;

constexpr std::string_view kPolicyKeys[] = {"enabled", "max_statement_bytes", "max_nesting", "max_operators",
                                            "decision_cache_entries"};
constexpr std::string_view kGroupKeys[] = {"targets",     "access",     "packs",          "read_allow",    "read_deny",
                                           "write_allow", "write_deny", "function_allow", "function_deny", "rule"};
constexpr std::string_view kRuleKeys[] = {"name",   "action",       "kinds",     "commands", "when",
                                          "tables", "table_access", "functions", "message",  "hint"};

// "a, b or c"
std::string one_of(std::span<const std::string_view> words) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += i + 1 == words.size() ? " or " : ", ";
    out += words[i];
  }
  return out;
}

// A rule name: [a-z0-9-]+, short enough to read in an error message and an audit record.
bool valid_rule_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

// A command tag as written -> PostgreSQL's spelling: upper case, words separated by one
// space. Empty when it holds anything but letters and blanks.
std::string normalise_command(std::string_view text) {
  std::string out;
  bool pending_space = false;
  for (char c : text) {
    if (c == ' ' || c == '\t') {
      pending_space = !out.empty();
      continue;
    }
    bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    if (!letter) return "";
    if (pending_space) out += ' ';
    pending_space = false;
    out += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  }
  return out;
}

using core::is_header_array;

class PolicyLoader : private core::ValueChecker {
 public:
  LoadedPolicy load(const Value& root) {
    const Value* policy = section(root, "policy");
    const Value* groups = root.find("groups");
    if (groups != nullptr && groups->type != Type::table) {
      if (is_header_array(*groups))
        error(groups->line, "write [groups.NAME], not [[groups]]: there is one [groups.NAME] section per group");
      else
        error(groups->line,
              "'groups' must be [groups.NAME] sections, not " + std::string(core::toml::type_name(groups->type)));
      groups = nullptr;
    }
    collect_targets(root);
    if (policy != nullptr) load_policy_section(*policy);
    if (groups != nullptr) {
      for (const auto& [name, value] : groups->entries) load_group(name, value);
    }
    if (policy_.enabled) check_users(root);

    LoadedPolicy result;
    bool ok = std::none_of(problems_.begin(), problems_.end(), [](const ConfigProblem& p) { return p.is_error; });
    if (ok) result.policy = std::make_shared<const Policy>(std::move(policy_));
    result.problems = std::move(problems_);
    return result;
  }

 private:
  void error(int line, std::string message) override { problems_.push_back(ConfigProblem{line, std::move(message), true}); }
  void warning(int line, std::string message) { problems_.push_back(ConfigProblem{line, std::move(message), false}); }

  // root[key] when it is a [key] table; reports any other shape.
  const Value* section(const Value& root, std::string_view key) {
    const Value* value = root.find(key);
    if (value == nullptr || value->type == Type::table) return value;
    std::string k(key);
    if (is_header_array(*value))
      error(value->line, "[[" + k + "]] is not allowed: write [" + k + "] (there is one " + k + " section)");
    else
      error(value->line, "'" + k + "' must be a table: write a [" + k + "] section, not " +
                             std::string(core::toml::type_name(value->type)));
    return nullptr;
  }

  // --- typed access --------------------------------------------------------------------

  // Optional free text (a rule's message or hint): short, no control characters.
  void text(const Value& table, std::string_view key, const std::string& label, std::string& out) {
    const Value* value = get(table, key, Type::string, label);
    if (value == nullptr) return;
    if (value->string.size() > kMaxTextBytes) {
      error(value->line, where(key, label) + " must be at most " + std::to_string(kMaxTextBytes) + " bytes, not " +
                             std::to_string(value->string.size()));
    } else if (core::has_control_character(value->string)) {
      error(value->line, where(key, label) + " must not contain control characters");
    } else {
      out = value->string;
    }
  }

  // Every element of the array `key` through parse_name_pattern. False when reported.
  bool patterns(const Value& table, std::string_view key, const std::string& label, std::vector<NamePattern>& out) {
    auto items = strings(table, key, label);
    if (!items) return false;
    bool valid = true;
    for (const Value* item : *items) {
      NamePattern pattern;
      if (!parse_name_pattern(item->string, pattern)) {
        error(item->line, where(key, label) + ": invalid pattern " + quote(item->string) +
                              ": write schema.name or name, with * as a wildcard (e.g. \"public.*\"), "
                              "and double-quote a part that holds a dot");
        valid = false;
        continue;
      }
      out.push_back(std::move(pattern));
    }
    return valid;
  }

  // --- [policy] --------------------------------------------------------------------------

  void load_policy_section(const Value& table) {
    const std::string label = "[policy]";
    check_keys(table, label, "policy", kPolicyKeys);
    if (const Value* enabled = get(table, "enabled", Type::boolean, label)) {
      policy_.enabled = enabled->boolean;
      if (!enabled->boolean)
        warning(enabled->line,
                "policy is disabled: every user may run any statement on any target; "
                "this is not for production (remove 'enabled = false' from [policy])");
    }
    SqlLimits& limits = policy_.limits;
    size(table, "max_statement_bytes", core::kKiB, 64 * core::kMiB, label, limits.max_statement_bytes);
    integer(table, "max_nesting", 16, 10'000, label, limits.max_nesting);
    integer(table, "max_operators", 100, 1'000'000, label, limits.max_operators);
    integer(table, "decision_cache_entries", 0, 1'000'000, label, policy_.decision_cache_entries);
  }

  // --- [[target]] names ----------------------------------------------------------------

  void collect_targets(const Value& root) {
    const Value* targets = root.find("target");
    if (targets == nullptr) {
      targets_known_ = true;  // none defined: every named target is missing
      return;
    }
    if (!is_header_array(*targets)) return;  // reported by the rest of the loader
    targets_known_ = true;
    for (const auto& table : targets->array) {
      const Value* name = table.find("name");
      if (name != nullptr && name->type == Type::string) target_names_.push_back(name->string);
    }
  }

  // --- [groups.NAME] -------------------------------------------------------------------

  void load_group(const std::string& name, const Value& table) {
    const std::string path = "groups." + core::toml::format_key(name);
    if (table.type != Type::table) {
      if (is_header_array(table)) {
        error(table.line, "write [" + path + "], not [[" + path + "]]: there is one section per group");
      } else if (std::find(std::begin(kGroupKeys), std::end(kGroupKeys), name) != std::end(kGroupKeys)) {
        error(table.line, "key " + core::quote_key(name) +
                              " belongs in a [groups.NAME] section: [groups] holds one table per group, "
                              "e.g. [groups.agents]");
      } else {
        error(table.line, "'" + name + "' in [groups] must be a [" + path + "] section, not " +
                              std::string(core::toml::type_name(table.type)));
      }
      return;
    }
    const std::string label = "[" + path + "]";
    group_names_.push_back(name);
    Group group;
    group.name = name;
    group.line = table.line;
    if (name.empty() || name.size() > kMaxNameBytes) {
      error(table.line, "group name " + quote(name) + " must be 1 to " + std::to_string(kMaxNameBytes) +
                            " bytes long, not " + std::to_string(name.size()));
    } else if (core::has_control_character(name)) {
      error(table.line, "group name " + quote(name) + " must not contain control characters");
    }
    check_keys(table, label, path, kGroupKeys);
    load_group_targets(table, label, group);
    if (const Value* access = get(table, "access", Type::string, label)) {
      constexpr AccessMode kModes[] = {AccessMode::read_only, AccessMode::read_write, AccessMode::admin};
      std::vector<std::string_view> names;
      for (AccessMode mode : kModes) names.push_back(access_mode_name(mode));
      auto at = std::find(names.begin(), names.end(), access->string);
      if (at != names.end())
        group.access = kModes[at - names.begin()];
      else
        error(access->line, where("access", label) + ": unknown access mode " + quote(access->string) +
                                did_you_mean(access->string, names) + ": use " + one_of(names));
    }
    load_packs(table, label, group);
    patterns(table, "read_allow", label, group.read.allow);
    patterns(table, "read_deny", label, group.read.deny);
    patterns(table, "write_allow", label, group.write.allow);
    patterns(table, "write_deny", label, group.write.deny);
    patterns(table, "function_allow", label, group.function_allow);
    patterns(table, "function_deny", label, group.function_deny);
    if (group.access == AccessMode::read_only) {
      for (std::string_view key : {"write_allow", "write_deny"}) {
        const Value* value = table.find(key);
        if (value != nullptr && value->type == Type::array && !value->array.empty())
          warning(value->line, where(key, label) + " has no effect: the group is read-only (access = \"" +
                                   access_mode_name(AccessMode::read_only) + "\")");
      }
    }
    load_rules(table, label, path, group);
    policy_.groups.push_back(std::move(group));
  }

  void load_group_targets(const Value& table, const std::string& label, Group& group) {
    if (table.find("targets") == nullptr) {
      error(table.line, "missing required key " + where("targets", label) +
                            ": list the targets the group may use, or [\"*\"] for every target");
      return;
    }
    auto items = strings(table, "targets", label);
    if (!items) return;
    if (items->empty()) {
      error(table.find("targets")->line,
            where("targets", label) + " must name at least one target, or [\"*\"] for every target");
      return;
    }
    bool wildcard = std::any_of(items->begin(), items->end(), [](const Value* v) { return v->string == "*"; });
    if (wildcard && items->size() > 1) {
      error(table.find("targets")->line,
            where("targets", label) + ": \"*\" already means every target; write targets = [\"*\"] alone");
      return;
    }
    std::vector<std::string_view> known(target_names_.begin(), target_names_.end());
    for (const Value* item : *items) {
      const std::string& target = item->string;
      if (std::find(group.targets.begin(), group.targets.end(), target) != group.targets.end()) {
        warning(item->line, where("targets", label) + ": target " + quote(target) + " is listed twice");
        continue;
      }
      if (target != "*" && targets_known_ &&
          std::find(target_names_.begin(), target_names_.end(), target) == target_names_.end()) {
        error(item->line, "group " + quote(group.name) + " names target " + quote(target) + ", which is not defined" +
                              did_you_mean(target, known));
        continue;
      }
      group.targets.push_back(target);
    }
  }

  void load_packs(const Value& table, const std::string& label, Group& group) {
    auto items = strings(table, "packs", label);
    if (!items) return;
    for (const Value* item : *items) {
      const std::string& pack = item->string;
      if (builtin_pack(pack) == nullptr) {
        std::vector<std::string_view> names = builtin_pack_names();
        error(item->line, where("packs", label) + ": unknown rule pack " + quote(pack) + did_you_mean(pack, names) +
                              "; the built-in packs are " + one_of(names));
      } else if (std::find(group.packs.begin(), group.packs.end(), pack) != group.packs.end()) {
        warning(item->line, where("packs", label) + ": pack " + quote(pack) + " is listed twice");
      } else {
        group.packs.push_back(pack);
      }
    }
  }

  // --- [[groups.NAME.rule]] ------------------------------------------------------------

  void load_rules(const Value& table, const std::string& group_label, const std::string& path, Group& group) {
    const Value* rules = table.find("rule");
    if (rules == nullptr) return;
    const std::string label = "[[" + path + ".rule]]";
    if (!is_header_array(*rules)) {
      if (rules->type == Type::table)
        error(rules->line, "write " + label + ", not [" + path + ".rule]: there is one " + label + " section per rule");
      else
        error(rules->line, "'rule' in " + group_label + " must be " + label + " sections, not " +
                               std::string(core::toml::type_name(rules->type)));
      return;
    }
    std::map<std::string, int, std::less<>> first_lines;  // rule name -> line of its definition
    for (const auto& rule_table : rules->array) {
      Rule rule;
      if (load_rule(rule_table, group_label, label, path + ".rule", rule)) {
        auto [first, inserted] = first_lines.emplace(rule.name, rule_table.find("name")->line);
        if (!inserted)
          error(rule_table.find("name")->line, "duplicate rule name " + quote(rule.name) + " in " + group_label +
                                                   " (first defined on line " + std::to_string(first->second) + ")");
      }
      group.rules.push_back(std::move(rule));
    }
  }

  // Fills `rule`; true when it has a valid name (for the uniqueness check).
  bool load_rule(const Value& table, const std::string& group_label, const std::string& label, const std::string& path,
                 Rule& rule) {
    rule.line = table.line;
    check_keys(table, label, path, kRuleKeys);
    bool named = false;
    if (const Value* name = require(table, "name", Type::string, label)) {
      if (valid_rule_name(name->string)) {
        rule.name = name->string;
        named = true;
      } else {
        error(name->line, where("name", label) + " must be 1 to " + std::to_string(kMaxNameBytes) +
                              " characters from a-z 0-9 -, not " + quote(name->string));
      }
    }
    if (const Value* action = require(table, "action", Type::string, label)) {
      constexpr Action kActions[] = {Action::allow, Action::block, Action::review};
      std::vector<std::string_view> names;
      for (Action a : kActions) names.push_back(action_name(a));
      auto at = std::find(names.begin(), names.end(), action->string);
      if (at != names.end())
        rule.action = kActions[at - names.begin()];
      else
        error(action->line, where("action", label) + ": unknown action " + quote(action->string) +
                                did_you_mean(action->string, names) + ": use " + one_of(names));
    }

    // Criteria. A criterion with an error still counts as set, so that its error is
    // not followed by a "no criterion" one.
    bool has_criterion = false;
    has_criterion |= !load_kinds(table, label, rule) || !rule.kinds.empty();
    has_criterion |= !load_commands(table, label, rule) || !rule.commands.empty();
    has_criterion |= !load_facts(table, label, rule) || rule.when != 0;
    has_criterion |= !patterns(table, "tables", label, rule.tables) || !rule.tables.empty();
    has_criterion |= !patterns(table, "functions", label, rule.functions) || !rule.functions.empty();

    if (const Value* access = get(table, "table_access", Type::string, label)) {
      if (access->string == "read")
        rule.table_access = Access::read;
      else if (access->string == "write")
        rule.table_access = Access::write;
      else
        error(access->line,
              where("table_access", label) + ": unknown access " + quote(access->string) + ": use read or write");
      const Value* tables = table.find("tables");
      if (tables == nullptr || (tables->type == Type::array && tables->array.empty()))
        error(access->line,
              where("table_access", label) +
                  " applies to the tables the rule names: set tables too (tables = [\"*\"] for any table)");
    }
    text(table, "message", label, rule.message);
    text(table, "hint", label, rule.hint);

    if (!has_criterion) {
      std::string shown = rule.name.empty() ? "a rule" : "rule " + quote(rule.name);
      error(table.line, shown + " in " + group_label +
                            " sets no criterion, so it would match every statement: set at least one of kinds, "
                            "commands, when, tables or functions");
    }
    return named;
  }

  bool load_kinds(const Value& table, const std::string& label, Rule& rule) {
    auto items = strings(table, "kinds", label);
    if (!items) return false;
    bool valid = true;
    for (const Value* item : *items) {
      if (auto kind = parse_statement_kind(item->string)) {
        if (std::find(rule.kinds.begin(), rule.kinds.end(), *kind) == rule.kinds.end()) rule.kinds.push_back(*kind);
        continue;
      }
      std::vector<std::string_view> names;
      for (int i = 0; i < kStatementKindCount; ++i) names.push_back(statement_kind_name(static_cast<StatementKind>(i)));
      error(item->line, where("kinds", label) + ": unknown statement kind " + quote(item->string) +
                            did_you_mean(item->string, names) + "; the kinds are " + one_of(names));
      valid = false;
    }
    return valid;
  }

  bool load_commands(const Value& table, const std::string& label, Rule& rule) {
    auto items = strings(table, "commands", label);
    if (!items) return false;
    bool valid = true;
    for (const Value* item : *items) {
      std::string command = normalise_command(item->string);
      if (command.empty()) {
        error(item->line, where("commands", label) + ": invalid command tag " + quote(item->string) +
                              ": write it as PostgreSQL names it, in letters and spaces, e.g. \"DROP TABLE\"");
        valid = false;
      } else if (std::find(rule.commands.begin(), rule.commands.end(), command) == rule.commands.end()) {
        rule.commands.push_back(std::move(command));
      }
    }
    return valid;
  }

  bool load_facts(const Value& table, const std::string& label, Rule& rule) {
    auto items = strings(table, "when", label);
    if (!items) return false;
    bool valid = true;
    for (const Value* item : *items) {
      if (auto fact = parse_fact(item->string)) {
        rule.when |= *fact;
        continue;
      }
      std::vector<std::string_view> names;
      for (int i = 0; i < kFactCount; ++i) names.push_back(fact_name(static_cast<Fact>(1u << i)));
      error(item->line, where("when", label) + ": unknown fact " + quote(item->string) +
                            did_you_mean(item->string, names) + "; the facts are " + one_of(names));
      valid = false;
    }
    return valid;
  }

  // --- [[user]] groups -----------------------------------------------------------------

  void check_users(const Value& root) {
    const Value* users = root.find("user");
    if (users == nullptr || !is_header_array(*users) || users->array.empty()) return;
    if (group_names_.empty()) {
      error(0,
            "no [groups.NAME] section is defined: with policy enabled a user outside every group is refused "
            "everything; define at least one group and list it in the users' groups (docs/configuration.md, "
            "\"Policy\")");
      return;
    }
    std::vector<std::string_view> known(group_names_.begin(), group_names_.end());
    for (const auto& user : users->array) {
      const Value* name = user.find("name");
      std::string shown = name != nullptr && name->type == Type::string ? "user " + quote(name->string) : "a user";
      const Value* groups = user.find("groups");
      if (groups == nullptr || (groups->type == Type::array && groups->array.empty())) {
        warning(user.line, shown + " is in no group, so policy lets them use no target; add groups = [\"...\"]");
        continue;
      }
      if (groups->type != Type::array) continue;  // reported by the rest of the loader
      for (const auto& group : groups->array) {
        if (group.type != Type::string) continue;
        if (std::find(group_names_.begin(), group_names_.end(), group.string) != group_names_.end()) continue;
        if (group.string.empty()) continue;  // reported by the rest of the loader
        error(group.line, shown + " is in group " + quote(group.string) + ", which is not defined" +
                              did_you_mean(group.string, known));
      }
    }
  }

  Policy policy_;
  std::vector<ConfigProblem> problems_;
  std::vector<std::string> target_names_;
  bool targets_known_ = false;  // false: [[target]] is malformed, skip the target check
  std::vector<std::string> group_names_;
};

}  // namespace

LoadedPolicy load_policy(const core::toml::Value& root) { return PolicyLoader().load(root); }

}  // namespace sluice::policy
