// Name patterns, group lookups and the built-in rule packs. The packs are data: each
// rule says what it matches in the terms of policy/statement.h, and docs/policy.md
// lists them for operators.
#include "policy/policy.h"

#include <algorithm>

namespace sluice::policy {

namespace {

// '*' matches any run of characters; everything else must match exactly.
bool glob(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0, star = std::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

// Splits "a.b" at unquoted dots into parts, unquoting "..." parts. Unquoted parts
// are folded to lower case as PostgreSQL folds identifiers.
bool split_pattern(std::string_view text, std::vector<std::string>& parts) {
  std::string current;
  bool quoted_part = false;
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"') {
      ++i;
      quoted_part = true;
      for (;;) {
        if (i >= text.size()) return false;
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            current += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        current += text[i++];
      }
    } else if (c == '.') {
      if (current.empty() && !quoted_part) return false;
      parts.push_back(std::move(current));
      current.clear();
      quoted_part = false;
      ++i;
    } else {
      current += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
      ++i;
    }
  }
  if (current.empty() && !quoted_part) return false;
  parts.push_back(std::move(current));
  return true;
}

Rule rule(std::string name, std::vector<std::string> commands, uint32_t when = 0,
          std::vector<std::string_view> functions = {}, std::vector<StatementKind> kinds = {}) {
  Rule r;
  r.name = std::move(name);
  r.action = Action::block;
  r.commands = std::move(commands);
  r.when = when;
  r.kinds = std::move(kinds);
  for (std::string_view f : functions) {
    NamePattern p;
    parse_name_pattern(f, p);
    r.functions.push_back(std::move(p));
  }
  return r;
}

// The default pack for AI agents: see docs/policy.md, "The agent-default pack".
std::vector<Rule> make_agent_default_pack() {
  std::vector<Rule> pack;
  pack.push_back(rule("drop-objects", {"DROP DATABASE", "DROP SCHEMA", "DROP TABLE"}));
  pack.push_back(rule("truncate", {"TRUNCATE TABLE"}));
  pack.push_back(rule("alter-system", {"ALTER SYSTEM"}));
  pack.push_back(rule("unbounded-write", {"DELETE", "UPDATE"}, fact_missing_where | fact_constant_where));
  pack.push_back(rule("copy-program-or-file", {"COPY FROM", "COPY TO"}, fact_copy_program | fact_copy_server_file));
  pack.push_back(rule("server-files-and-large-objects", {}, 0,
                      {"pg_read_file", "pg_read_binary_file", "pg_stat_file", "pg_ls_*", "pg_file_*", "pg_logdir_ls",
                       "lo_*", "loread", "lowrite"}));
  pack.push_back(rule("dblink", {}, 0, {"dblink*"}));
  pack.push_back(rule("foreign-servers", {"CREATE SERVER", "CREATE USER MAPPING", "CREATE FOREIGN DATA WRAPPER",
                                          "IMPORT FOREIGN SCHEMA"}));
  pack.push_back(rule("roles", {"CREATE ROLE", "ALTER ROLE", "DROP ROLE"}));
  pack.push_back(rule("grant-revoke", {"GRANT", "REVOKE", "GRANT ROLE", "REVOKE ROLE", "ALTER DEFAULT PRIVILEGES"}));
  pack.push_back(rule("set-role", {}, fact_role_change));
  pack.push_back(rule("system-catalog", {}, fact_system_catalog));
  pack.push_back(rule("server-admin-functions", {}, 0,
                      {"pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile", "pg_promote",
                       "pg_switch_wal", "pg_create_restore_point", "pg_backup_*", "pg_start_backup", "pg_stop_backup",
                       "pg_wal_replay_*", "pg_create_*_replication_slot", "pg_drop_replication_slot",
                       "pg_copy_*_replication_slot", "pg_replication_slot_advance", "pg_replication_origin_*", "pg_logical_slot_*",
                       "pg_stat_reset*", "pg_log_backend_memory_contexts"}));
  pack.push_back(rule("dynamic-sql", {}, fact_dynamic_sql));
  pack.push_back(rule("do-blocks", {"DO"}));
  return pack;
}

}  // namespace

const char* access_mode_name(AccessMode mode) {
  switch (mode) {
    case AccessMode::read_only: return "read-only";
    case AccessMode::read_write: return "read-write";
    case AccessMode::admin: return "admin";
  }
  return "?";
}

const char* action_name(Action action) {
  switch (action) {
    case Action::allow: return "allow";
    case Action::block: return "block";
    case Action::review: return "review";
  }
  return "?";
}

bool parse_name_pattern(std::string_view text, NamePattern& out) {
  std::vector<std::string> parts;
  if (text.empty() || !split_pattern(text, parts) || parts.size() > 2) return false;
  out.text = std::string(text);
  if (parts.size() == 2) {
    out.schema = std::move(parts[0]);
    out.name = std::move(parts[1]);
  } else {
    out.schema.clear();
    out.name = std::move(parts[0]);
  }
  return !out.name.empty();
}

bool matches(const NamePattern& pattern, std::string_view schema, std::string_view name) {
  if (!pattern.schema.empty() && !glob(pattern.schema, schema)) return false;
  return glob(pattern.name, name);
}

bool Group::may_use_target(std::string_view target) const {
  return std::any_of(targets.begin(), targets.end(), [&](const std::string& t) { return t == "*" || t == target; });
}

const Group* Policy::find_group(std::string_view name) const {
  for (const Group& g : groups)
    if (g.name == name) return &g;
  return nullptr;
}

const std::vector<Rule>* builtin_pack(std::string_view name) {
  static const std::vector<Rule> agent_default = make_agent_default_pack();
  if (name == "agent-default") return &agent_default;
  return nullptr;
}

std::vector<std::string_view> builtin_pack_names() { return {"agent-default"}; }

}  // namespace sluice::policy
