// libpg_query call and the conventions of its JSON output. The JSON reader itself is
// core::JsonDocument (iterative, depth-capped: a hostile statement's depth must not
// become stack depth).
#include "policy/parse_tree.h"

#include <pg_query.h>

namespace sluice::policy {

std::string_view ParseTree::Node::node_type() const {
  if (!is_object()) return {};
  const Node only = first();
  if (!only || only.next() || !only.is_object()) return {};
  const std::string_view name = only.key();
  // Node type names start with an upper-case letter (SelectStmt, A_Expr, String);
  // field names never do.
  if (name.empty() || name[0] < 'A' || name[0] > 'Z') return {};
  return name;
}

ParseTree::Node ParseTree::Node::node_body() const {
  if (node_type().empty()) return {};
  return first();
}

bool ParseTree::parse(std::string_view sql, SqlSyntaxError& error) {
  sql_.assign(sql.data(), sql.size());
  PgQueryParseResult result = pg_query_parse(sql_.c_str());
  if (result.error != nullptr) {
    error.message = result.error->message != nullptr ? result.error->message : "syntax error";
    error.position = result.error->cursorpos;
    pg_query_free_parse_result(result);
    json_.clear();
    return false;
  }
  const bool ok = load_json(result.parse_tree != nullptr ? std::string_view(result.parse_tree) : std::string_view());
  pg_query_free_parse_result(result);
  if (!ok) {
    error.message = "sluice could not read the parse tree of this statement";
    error.position = 0;
  }
  return ok;
}

}  // namespace sluice::policy
