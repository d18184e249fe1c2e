// The statement policy as the operator configured it: groups of identities, the
// targets each group may use, its access mode, table scopes, function lists and
// ordered rules. Immutable once built (by policy/config.cc from TOML, or by tests);
// shards share one through a shared_ptr and a reload swaps in a new one.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/statement.h"

namespace sluice::policy {

// What a group may do at most. Rules and scopes narrow it further; nothing widens it.
enum class AccessMode : uint8_t {
  read_only,   // read, transaction, session, utility; the backend session is read-only too
  read_write,  // + write, ddl, procedural
  admin,       // + dcl, admin (roles, grants, server administration)
};

enum class Action : uint8_t {
  allow,
  block,
  review,  // held for a human; until approvals exist it is answered like block
};

const char* access_mode_name(AccessMode mode);  // "read-only", "read-write", "admin"
const char* action_name(Action action);         // "allow", "block", "review"

// A schema.name pattern: '*' matches any run of characters, matching is exact
// otherwise (names are compared after PostgreSQL's case folding, so write them as
// the catalog spells them). A pattern without a dot names objects in any schema.
struct NamePattern {
  std::string schema;  // empty: any schema
  std::string name;
  std::string text;    // as written, for messages
};

// Parses "schema.table", "table", "*", "public.*", "\"Odd.Name\"". Returns false on a
// malformed pattern (empty parts, more than one unquoted dot).
bool parse_name_pattern(std::string_view text, NamePattern& out);

// True when the pattern matches schema.name ('*' wildcards, exact otherwise).
bool matches(const NamePattern& pattern, std::string_view schema, std::string_view name);

// A rule matches a statement when every criterion it sets holds (an empty list is
// no criterion; within a list any entry may match): one of its operations has one of
// `kinds`, one of `commands` and one of the facts in `when`; one referenced relation matches `tables` (with the access in
// `table_access` if set); one called function matches `functions`.
struct Rule {
  std::string name;
  Action action = Action::block;
  std::vector<StatementKind> kinds;
  std::vector<std::string> commands;  // command tags, upper case: "DELETE", "DROP TABLE"
  uint32_t when = 0;                  // Fact bits; one of them must be set on the operation
  std::vector<NamePattern> tables;
  std::optional<Access> table_access;  // read or write; unset: either
  std::vector<NamePattern> functions;
  std::string message;  // what the client is told; empty: a message built from the match
  std::string hint;     // how to get access; empty: a default naming the group
  int line = 0;         // where it was defined (0: built in)
};

struct TableScope {
  std::vector<NamePattern> allow;  // empty: every table not denied
  std::vector<NamePattern> deny;
};

struct Group {
  std::string name;
  std::vector<std::string> targets;  // target names or "*"
  AccessMode access = AccessMode::read_only;
  TableScope read;
  TableScope write;
  std::vector<NamePattern> function_allow;  // non-empty: only these may be called, built-ins included
  std::vector<NamePattern> function_deny;
  // Evaluated in order, first match decides. Group rules come first, then the rules
  // of each pack in `packs`, in order.
  std::vector<Rule> rules;
  std::vector<std::string> packs;  // built-in rule packs, e.g. "agent-default"
  int line = 0;

  bool may_use_target(std::string_view target) const;
};

// Limits that protect the gateway from hostile SQL (see policy/sql_guard.h).
struct SqlLimits {
  uint32_t max_statement_bytes = 1u << 20;  // one Query or Parse string
  uint32_t max_nesting = 1000;              // depth of ( ) and [ ] (subqueries, ARRAY[...], calls)
  uint32_t max_operators = 10'000;          // operator and chaining-keyword tokens per SQL text
};

struct Policy {
  // false: policy is off; every authenticated identity may run anything on any target
  // (the gateway still authenticates, audits and masks). Only for trusted callers.
  bool enabled = true;
  SqlLimits limits;
  uint32_t decision_cache_entries = 4096;  // per shard; 0 disables the cache
  std::vector<Group> groups;

  const Group* find_group(std::string_view name) const;
};

// The built-in rule packs, by name ("agent-default"); nullptr if unknown.
const std::vector<Rule>* builtin_pack(std::string_view name);
// Names of every built-in pack, for messages.
std::vector<std::string_view> builtin_pack_names();

}  // namespace sluice::policy
