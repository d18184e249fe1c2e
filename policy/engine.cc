// Evaluation order for each statement of a text (the first statement blocked
// decides for the whole text, as nothing of a multi-statement Query may run then):
//   1. pinned settings: what sluice itself relies on (see check_pinned_settings);
//   2. for each of the subject's groups that grants the target, in the subject's
//      order: rules (group rules, then packs; first match decides; an `allow` rule
//      ends rule matching), access mode, function lists, table scopes.
//      The statement is allowed if one group allows it (groups add up, like roles).
#include "policy/engine.h"

#include <algorithm>
#include <functional>

#include "policy/sql_guard.h"

namespace sluice::policy {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// "a read", "an admin", "a DDL": the statement kind with its article.
std::string with_article(std::string_view kind) {
  if (kind == "ddl") return "a DDL";
  if (kind == "dcl") return "a DCL";
  const bool vowel = !kind.empty() && std::string_view("aeiou").find(kind[0]) != std::string_view::npos;
  return (vowel ? "an " : "a ") + std::string(kind);
}

bool mode_admits(AccessMode mode, StatementKind kind) {
  switch (kind) {
    case StatementKind::read:
    case StatementKind::transaction:
    case StatementKind::session:
    case StatementKind::utility: return true;
    case StatementKind::write:
    case StatementKind::ddl:
    case StatementKind::procedural: return mode != AccessMode::read_only;
    case StatementKind::dcl:
    case StatementKind::admin: return mode == AccessMode::admin;
  }
  return false;
}

Decision block(std::string rule, std::string group, std::string message, std::string hint) {
  Decision d;
  d.action = Action::block;
  d.rule = std::move(rule);
  d.group = std::move(group);
  d.sqlstate = "42501";
  d.message = std::move(message);
  d.hint = std::move(hint);
  return d;
}

std::string default_hint(const Group& group, const std::string& rule_name, bool builtin) {
  std::string where = builtin ? "the built-in rule pack of [groups." + group.name + "]" : "[groups." + group.name + "]";
  return "sluice's policy for group " + quoted(group.name) + " does not allow this (rule " + quoted(rule_name) + " in " +
         where + "); if you need it, ask the gateway's operator to change that policy or to add you to a group that allows it";
}

// Candidate (schema, name) pairs an unqualified name can resolve to: the schemas of
// the pinned search_path, and pg_catalog (searched first) for names that start with
// pg_, which every pg_catalog relation does.
template <typename Visit>
bool any_candidate(const QualifiedName& name, const Subject& subject, Visit visit) {
  if (name.qualified()) return visit(std::string_view(name.schema), std::string_view(name.name));
  if (name.name.rfind("pg_", 0) == 0 && visit(std::string_view("pg_catalog"), std::string_view(name.name))) return true;
  for (const std::string& schema : subject.search_path)
    if (visit(std::string_view(schema), std::string_view(name.name))) return true;
  return false;
}

template <typename Visit>
bool all_candidates(const QualifiedName& name, const Subject& subject, Visit visit) {
  return !any_candidate(name, subject, [&](std::string_view s, std::string_view n) { return !visit(s, n); });
}

bool any_pattern(const std::vector<NamePattern>& patterns, std::string_view schema, std::string_view name) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const NamePattern& p) { return matches(p, schema, name); });
}

// A function pattern without a schema matches the name in any schema. An
// unqualified call matches a schema-qualified pattern when the pattern's schema is
// pg_catalog or one of the search_path schemas (where PostgreSQL would look).
bool function_matches(const std::vector<NamePattern>& patterns, const QualifiedName& fn, const Subject& subject) {
  if (fn.qualified()) return any_pattern(patterns, fn.schema, fn.name);
  if (any_pattern(patterns, "pg_catalog", fn.name)) return true;
  for (const std::string& schema : subject.search_path)
    if (any_pattern(patterns, schema, fn.name)) return true;
  return false;
}

std::string join(const std::vector<std::string>& items, const char* sep = ", ") {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += sep;
    out += items[i];
  }
  return out;
}

bool truthy_setting(std::string_view value) {
  const std::string v = lower(value);
  return v == "on" || v == "true" || v == "yes" || v == "1" || v == "t" || v == "y";
}

// Settings sluice depends on to judge statements the way the server will run them.
// Applies to every identity while policy is enabled.
std::optional<Decision> check_pinned_settings(const StatementSummary& s, const Subject& subject, AccessMode mode) {
  for (const SettingChange& c : s.settings) {
    if (c.name.empty() && !c.constant) {
      return block("pinned-setting", "",
                   "statement blocked by sluice policy: it changes a setting sluice cannot identify (set_config() with a "
                   "name that is not a constant, or a write to pg_settings)",
                   "sluice must see which setting a statement changes; use SET, or set_config() with the name as a string literal");
    }
    const std::string& name = c.name;
    const bool pinned = name == "standard_conforming_strings" || name == "client_encoding" || name == "search_path" ||
                        name == "default_transaction_read_only" || name == "transaction_read_only";
    if (!pinned || c.reset) continue;
    if (!c.constant)
      return block("pinned-setting", "", "statement blocked by sluice policy: " + name + " set to a value that is not a constant",
                   "sluice pins " + name + "; write the value as a string literal");
    if (name == "standard_conforming_strings" && !(c.values.size() == 1 && truthy_setting(c.values[0])))
      return block("pinned-setting", "",
                   "statement blocked by sluice policy: standard_conforming_strings must stay on",
                   "sluice parses statements with standard_conforming_strings on, as PostgreSQL does by default; use E'...' "
                   "strings for backslash escapes");
    if (name == "client_encoding") {
      const std::string v = c.values.size() == 1 ? lower(c.values[0]) : "";
      if (v != "utf8" && v != "utf-8" && v != "unicode")
        return block("pinned-setting", "", "statement blocked by sluice policy: client_encoding must stay UTF8",
                     "sluice reads statements as UTF-8; convert text to UTF-8 in the client");
    }
    if (name == "search_path") {
      std::vector<std::string> schemas;
      for (const std::string& v : c.values) {
        if (!c.value_is_list_text) {
          if (!v.empty()) schemas.push_back(v);  // SET search_path TO '' empties the path
          continue;
        }
        for (std::string& part : split_identifier_list(v)) schemas.push_back(std::move(part));
      }
      for (const std::string& schema : schemas) {
        if (std::find(subject.search_path.begin(), subject.search_path.end(), schema) == subject.search_path.end())
          return block("pinned-setting", "",
                       "statement blocked by sluice policy: search_path is pinned to " + join(subject.search_path) +
                           " for target " + quoted(subject.target) + "; it cannot include " + quoted(schema),
                       "sluice must know which schema an unqualified table name means; qualify the name (schema.table) "
                       "instead, or ask the operator to change the target's search_path");
      }
    }
    if ((name == "default_transaction_read_only" || name == "transaction_read_only") && mode == AccessMode::read_only &&
        !(c.values.size() == 1 && truthy_setting(c.values[0])))
      return block("access-mode", "",
                   "statement blocked by sluice policy: the session is read-only for user " + quoted(subject.user) +
                       " and cannot be made read-write",
                   "your groups have read-only access to target " + quoted(subject.target) +
                       "; ask the gateway's operator for a group with read-write access");
  }
  return std::nullopt;
}

bool rule_matches(const Rule& rule, const StatementSummary& s, const Subject& subject, std::string& matched) {
  const bool wants_operation = !rule.kinds.empty() || !rule.commands.empty() || rule.when != 0;
  if (wants_operation) {
    bool any = false;
    for (const Operation& op : s.operations) {
      if (!rule.kinds.empty() && std::find(rule.kinds.begin(), rule.kinds.end(), op.kind) == rule.kinds.end()) continue;
      if (!rule.commands.empty() && std::find(rule.commands.begin(), rule.commands.end(), op.command) == rule.commands.end())
        continue;
      if (rule.when != 0 && (op.facts & rule.when) == 0) continue;
      any = true;
      matched = op.command;
      for (int bit = 0; bit < kFactCount; ++bit)
        if (op.facts & rule.when & (1u << bit)) matched += std::string(" (") + fact_name(static_cast<Fact>(1u << bit)) + ")";
      break;
    }
    if (!any) return false;
  }
  if (!rule.tables.empty()) {
    // A block or review rule matches when one table matches; an allow rule only when
    // every table of the statement (with that access) does, so that allowing
    // `TRUNCATE staging.*` does not also allow `TRUNCATE staging.a, public.orders`.
    const bool every = rule.action == Action::allow;
    bool any = false, all = true;
    for (const RelationRef& r : s.relations) {
      if (rule.table_access && *rule.table_access != r.access) continue;
      const bool hit = every ? all_candidates(r.name, subject, [&](std::string_view sc, std::string_view n) {
                                 return any_pattern(rule.tables, sc, n);
                               })
                             : any_candidate(r.name, subject, [&](std::string_view sc, std::string_view n) {
                                 return any_pattern(rule.tables, sc, n);
                               });
      all &= hit;
      if (hit && !any) {
        any = true;
        matched += (matched.empty() ? "" : " on ") + std::string("table ") + r.name.display();
        if (!every) break;
      }
    }
    if (!any || (every && !all)) return false;
  }
  if (!rule.functions.empty()) {
    bool any = false;
    for (const FunctionRef& f : s.functions) {
      if (function_matches(rule.functions, f.name, subject)) {
        any = true;
        matched += (matched.empty() ? "" : " calling ") + std::string("function ") + f.name.display() + "()";
        break;
      }
    }
    if (!any) return false;
  }
  return true;
}

Decision rule_decision(const Rule& rule, const Group& group, const std::string& matched, bool builtin) {
  Decision d;
  d.action = rule.action;
  d.rule = rule.name;
  d.group = group.name;
  d.sqlstate = "42501";
  if (rule.action == Action::review) {
    d.message = "statement requires approval under sluice policy: rule " + quoted(rule.name) + " (group " + quoted(group.name) +
                ") matched " + matched + "; approval required, and this gateway cannot hold statements for approval yet, "
                "so it was not run";
  } else {
    d.message = rule.message.empty()
                    ? "statement blocked by sluice policy: rule " + quoted(rule.name) + " (group " + quoted(group.name) + ") matched " + matched
                    : "statement blocked by sluice policy: " + rule.message + " (rule " + quoted(rule.name) + ")";
  }
  d.hint = rule.hint.empty() ? default_hint(group, rule.name, builtin) : rule.hint;
  return d;
}

// One group's verdict on one statement: nullopt = allowed.
std::optional<Decision> evaluate_group(const Group& group, const StatementSummary& s, const Subject& subject) {
  // 1. Rules: the group's own, then each pack's.
  bool allowed_by_rule = false;
  std::string matched;
  auto run_rules = [&](const std::vector<Rule>& rules, bool builtin) -> std::optional<Decision> {
    for (const Rule& rule : rules) {
      matched.clear();
      if (!rule_matches(rule, s, subject, matched)) continue;
      if (rule.action == Action::allow) {
        allowed_by_rule = true;
        return std::nullopt;
      }
      return rule_decision(rule, group, matched, builtin);
    }
    return std::nullopt;
  };
  if (auto d = run_rules(group.rules, false)) return d;
  for (const std::string& pack_name : group.packs) {
    if (allowed_by_rule) break;
    if (const std::vector<Rule>* pack = builtin_pack(pack_name))
      if (auto d = run_rules(*pack, true)) return d;
  }

  // 2. Access mode: every operation's kind must be within it.
  for (const Operation& op : s.operations) {
    if (mode_admits(group.access, op.kind)) continue;
    return block("access-mode", group.name,
                 "statement blocked by sluice policy: " + op.command + " is " + with_article(statement_kind_name(op.kind)) +
                     " statement and group " + quoted(group.name) + " has " + access_mode_name(group.access) + " access",
                 "ask the gateway's operator for a group whose access includes " + std::string(statement_kind_name(op.kind)) +
                     " statements on target " + quoted(subject.target));
  }

  // 3. Function lists.
  for (const FunctionRef& f : s.functions) {
    if (!group.function_deny.empty() && function_matches(group.function_deny, f.name, subject))
      return block("function-deny", group.name,
                   "statement blocked by sluice policy: function " + f.name.display() + "() is on group " + quoted(group.name) +
                       "'s function deny list",
                   "ask the gateway's operator to remove it from function_deny in [groups." + group.name + "]");
    if (!group.function_allow.empty() && !function_matches(group.function_allow, f.name, subject))
      return block("function-allow", group.name,
                   "statement blocked by sluice policy: function " + f.name.display() + "() is not on group " +
                       quoted(group.name) + "'s function allow list",
                   "ask the gateway's operator to add it to function_allow in [groups." + group.name + "]");
  }

  // 4. Table scopes: a deny matching any place the name can resolve to blocks; an
  // allow list must cover every place it can resolve to.
  for (const RelationRef& r : s.relations) {
    const TableScope& scope = r.access == Access::write ? group.write : group.read;
    const char* what = r.access == Access::write ? "write" : "read";
    const bool denied =
        !scope.deny.empty() &&
        any_candidate(r.name, subject, [&](std::string_view sc, std::string_view n) { return any_pattern(scope.deny, sc, n); });
    const bool outside =
        !scope.allow.empty() &&
        !all_candidates(r.name, subject, [&](std::string_view sc, std::string_view n) { return any_pattern(scope.allow, sc, n); });
    if (denied || outside)
      return block(std::string(what) + "-scope", group.name,
                   "statement blocked by sluice policy: group " + quoted(group.name) + " may not " + what + " table " +
                       r.name.display() + (r.name.qualified() ? "" : " (unqualified: checked in schemas " + join(subject.search_path) + ")"),
                   std::string("ask the gateway's operator to add it to ") + what + "_allow (or remove it from " + what +
                       "_deny) in [groups." + group.name + "]");
  }
  (void)allowed_by_rule;
  return std::nullopt;
}

}  // namespace

Admission admit(const Policy& policy, const Subject& subject) {
  Admission a;
  if (!policy.enabled) {
    a.allowed = true;
    a.mode = AccessMode::admin;
    return a;
  }
  for (const std::string& name : subject.groups) {
    const Group* g = policy.find_group(name);
    if (g == nullptr || !g->may_use_target(subject.target)) continue;
    if (!a.allowed || static_cast<int>(g->access) > static_cast<int>(a.mode)) a.mode = g->access;
    a.allowed = true;
  }
  if (!a.allowed)
    a.refusal = "permission denied for database " + quoted(subject.target) + ": none of user " + quoted(subject.user) +
                "'s groups may use this target";
  return a;
}

Decision evaluate(const Policy& policy, const Subject& subject, const std::vector<StatementSummary>& statements) {
  Decision allow;
  allow.statements = static_cast<uint32_t>(statements.size());
  if (!policy.enabled) return allow;
  const Admission admission = admit(policy, subject);
  if (!admission.allowed) {
    Decision d = block("target", "", "statement blocked by sluice policy: " + admission.refusal,
                       "ask the gateway's operator to grant one of your groups this target");
    return d;
  }
  for (const StatementSummary& s : statements) {
    if (auto d = check_pinned_settings(s, subject, admission.mode)) {
      d->statements = allow.statements;
      return *d;
    }
    std::optional<Decision> first_refusal;
    bool allowed = false;
    for (const std::string& name : subject.groups) {
      const Group* g = policy.find_group(name);
      if (g == nullptr || !g->may_use_target(subject.target)) continue;
      std::optional<Decision> d = evaluate_group(*g, s, subject);
      if (!d) {
        allowed = true;
        break;
      }
      if (!first_refusal || (first_refusal->action == Action::block && d->action == Action::review)) first_refusal = std::move(d);
    }
    if (!allowed && first_refusal) {
      first_refusal->statements = allow.statements;
      return *first_refusal;
    }
  }
  return allow;
}

// ---------------------------------------------------------------------------
// Engine
// ---------------------------------------------------------------------------

size_t Engine::CacheKeyHash::operator()(const CacheKey& k) const {
  return std::hash<std::string_view>()(k.sql) ^ (static_cast<size_t>(k.subject) * 0x9E3779B97F4A7C15ull);
}

Engine::Engine(std::shared_ptr<const Policy> policy) : policy_(std::move(policy)) {}

void Engine::install(std::shared_ptr<const Policy> policy) {
  policy_ = std::move(policy);
  ++generation_;
  cache_.clear();
  subjects_.clear();
}

uint32_t Engine::intern(Subject& subject) {
  if (subject.generation == generation_) return subject.id;
  // The user is part of the key: refusals name the user.
  std::string key = subject.user;
  key += '\0';
  key += subject.target;
  for (const std::string& g : subject.groups) {
    key += '\0';
    key += g;
  }
  key += '\1';
  for (const std::string& s : subject.search_path) {
    key += '\0';
    key += s;
  }
  // Bounded: distinct (target, groups, path) combinations are few; if an identity
  // provider invents many, start over (the cache's entries name old ids).
  if (subjects_.size() >= 65536) {
    subjects_.clear();
    cache_.clear();
    ++generation_;
  }
  auto [it, inserted] = subjects_.emplace(std::move(key), static_cast<uint32_t>(subjects_.size()));
  subject.generation = generation_;
  subject.id = it->second;
  return subject.id;
}

const Decision& Engine::judge(Subject& subject, std::string_view sql) {
  ++stats_.judged;
  if (subject.protected_columns && subject.protected_columns->version > protected_version_) {
    // The masked columns changed: decisions made under the old ones no longer hold.
    protected_version_ = subject.protected_columns->version;
    cache_.clear();
  }
  const uint32_t id = intern(subject);
  const bool cacheable = policy_->decision_cache_entries > 0 && sql.size() <= kMaxCachedStatementBytes;
  const Decision& decision = cacheable ? judge_cacheable(subject, id, sql) : decide(subject, sql);
  if (!decision.allowed()) ++stats_.blocked;
  return decision;
}

const Decision& Engine::judge_cacheable(const Subject& subject, uint32_t id, std::string_view sql) {
  if (const Decision* exact = cached(id, sql)) return *exact;
  // The checks never read the literals a shape replaces (literal_shape.h), so where
  // the shape parses it is decided as the text is. Where `$n` cannot stand (SET x = 5)
  // the shape is refused as a syntax error: so only an allowed shape stands for the
  // text, and a refusal is always the text's own.
  if (shaper_.shape(sql, shape_) && shape_.size() <= 2 * kMaxCachedStatementBytes) {
    const Decision* general = cached(id, shape_);
    if (general == nullptr) general = &remember(id, shape_, decide(subject, shape_));
    // The guard's limits are the text's: its shape has fewer operators (no signs).
    if (general->allowed() && guard_sql(sql, policy_->limits).result == GuardResult::ok) return *general;
  }
  return remember(id, sql, decide(subject, sql));
}

const Decision* Engine::cached(uint32_t id, std::string_view sql) {
  probe_.subject = id;
  probe_.sql.assign(sql.data(), sql.size());
  auto it = cache_.find(probe_);
  if (it == cache_.end()) return nullptr;
  ++stats_.cache_hits;
  return &it->second;
}

const Decision& Engine::remember(uint32_t id, std::string_view sql, const Decision& decision) {
  if (cache_.size() >= policy_->decision_cache_entries) cache_.erase(cache_.begin());
  return cache_.emplace(CacheKey{id, std::string(sql)}, decision).first->second;
}

const Decision& Engine::decide(const Subject& subject, std::string_view sql) {
  scratch_ = Decision{};
  if (!policy_->enabled) return scratch_;
  const GuardVerdict verdict = guard_sql(sql, policy_->limits);
  if (verdict.result != GuardResult::ok) {
    GuardError error = describe(verdict, sql, policy_->limits);
    scratch_.action = Action::block;
    scratch_.rule = "statement-limits";
    scratch_.sqlstate = error.sqlstate;
    scratch_.message = std::move(error.message);
    scratch_.hint = std::move(error.hint);
    return scratch_;
  }
  SqlSyntaxError syntax;
  if (!tree_.parse(sql, syntax)) {
    scratch_.action = Action::block;
    scratch_.rule = "syntax";
    scratch_.sqlstate = "42601";
    scratch_.message = std::move(syntax.message);
    scratch_.position = syntax.position;
    return scratch_;
  }
  statements_.clear();
  classify(tree_, statements_);
  scratch_ = evaluate(*policy_, subject, statements_);
  for (const StatementSummary& s : statements_)
    for (const Operation& op : s.operations)
      if (op.kind == StatementKind::ddl || op.kind == StatementKind::admin || op.kind == StatementKind::procedural)
        scratch_.changes_schema = true;
  if (scratch_.allowed() && subject.protected_columns) {
    if (std::optional<Decision> refusal = check_protected(*subject.protected_columns, subject, statements_)) {
      refusal->statements = scratch_.statements;
      refusal->changes_schema = scratch_.changes_schema;
      scratch_ = std::move(*refusal);
    }
  }
  return scratch_;
}

}  // namespace sluice::policy
