// Names of statement kinds and facts, as the configuration and messages spell them.
#include "policy/statement.h"

#include <algorithm>

namespace sluice::policy {

namespace {

constexpr const char* kKindNames[kStatementKindCount] = {
    "read", "write", "ddl", "dcl", "admin", "transaction", "session", "procedural", "utility",
};

constexpr std::pair<Fact, const char*> kFactNames[kFactCount] = {
    {fact_missing_where, "missing_where"},   {fact_constant_where, "constant_where"},
    {fact_copy_program, "copy_program"},     {fact_copy_server_file, "copy_server_file"},
    {fact_system_catalog, "system_catalog"}, {fact_executes, "executes"},
    {fact_role_change, "role_change"},       {fact_dynamic_sql, "dynamic_sql"},
};

// How much a kind needs: the order in which access modes admit them.
int privilege(StatementKind kind) {
  switch (kind) {
    case StatementKind::read: return 0;
    case StatementKind::transaction:
    case StatementKind::session:
    case StatementKind::utility: return 1;
    case StatementKind::write: return 2;
    case StatementKind::ddl:
    case StatementKind::procedural: return 3;
    case StatementKind::dcl:
    case StatementKind::admin: return 4;
  }
  return 4;
}

}  // namespace

const char* statement_kind_name(StatementKind kind) { return kKindNames[static_cast<int>(kind)]; }

std::optional<StatementKind> parse_statement_kind(std::string_view name) {
  for (int i = 0; i < kStatementKindCount; ++i)
    if (name == kKindNames[i]) return static_cast<StatementKind>(i);
  return std::nullopt;
}

const char* fact_name(Fact fact) {
  for (const auto& [f, name] : kFactNames)
    if (f == fact) return name;
  return "unknown";
}

std::optional<Fact> parse_fact(std::string_view name) {
  for (const auto& [f, n] : kFactNames)
    if (name == n) return f;
  return std::nullopt;
}

StatementKind StatementSummary::effective_kind() const {
  StatementKind most = operations.front().kind;
  for (const Operation& op : operations)
    if (privilege(op.kind) > privilege(most)) most = op.kind;
  return most;
}

}  // namespace sluice::policy
