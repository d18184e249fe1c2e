// libpg_query's parse tree, held as a compact read-only JSON document. libpg_query
// prints every node as {"NodeType": {fields}}, generated from PostgreSQL's own node
// definitions, so walking the JSON generically finds every relation and function a
// statement names at any depth, including node types sluice has never heard of. That
// completeness is why policy reads the JSON form rather than the raw C structs.
//
// A ParseTree is reused for every statement a shard judges: parse() keeps its buffers,
// so steady-state parsing allocates nothing on the C++ side. The JSON itself is read
// by core::JsonDocument; this file adds libpg_query and its node conventions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/json.h"

namespace sluice::policy {

struct SqlSyntaxError {
  std::string message;  // PostgreSQL's wording: "syntax error at or near \"SELEC\""
  int position = 0;     // 1-based character position as PostgreSQL reports it; 0 = none
};

class ParseTree {
 public:
  using Type = core::JsonDocument::Type;
  static constexpr uint32_t kNone = core::JsonDocument::kNone;

  // Deepest JSON nesting accepted. sql_guard bounds SQL nesting and operators well
  // below what would produce this; reaching it means "cannot judge".
  static constexpr uint32_t kMaxDepth = 100'000;

  // A position in the document: core::JsonDocument's node, plus the libpg_query
  // node-wrapper accessors. Navigation returns ParseTree nodes so they chain.
  class Node : public core::JsonDocument::Node {
   public:
    Node() = default;
    Node(core::JsonDocument::Node node) : core::JsonDocument::Node(node) {}  // NOLINT: implicit on purpose
    Node operator[](std::string_view key) const { return core::JsonDocument::Node::operator[](key); }
    Node first() const { return core::JsonDocument::Node::first(); }
    Node next() const { return core::JsonDocument::Node::next(); }

    // libpg_query wraps each node as {"SelectStmt": {...}}: for such a one-member
    // object, its type name and its body; otherwise "" and an invalid node.
    std::string_view node_type() const;
    Node node_body() const;
  };

  // Parses `sql` (PostgreSQL 15 grammar). `sql` must be NUL-free; it is copied to
  // terminate it. Returns false and fills `error` when the text is not valid SQL (or,
  // never expected, when libpg_query's output cannot be read).
  bool parse(std::string_view sql, SqlSyntaxError& error);

  // The document root: {"version":..., "stmts":[{"stmt":{...}, "stmt_location":N}, ...]}.
  Node root() const { return json_.root(); }
  size_t node_count() const { return json_.node_count(); }

  // Builds the document from JSON text (exposed for tests and the fuzzer).
  bool load_json(std::string_view json) { return json_.load_json(json); }

 private:
  core::JsonDocument json_{kMaxDepth};
  std::string sql_;  // NUL-terminated copy of the SQL for libpg_query
};

}  // namespace sluice::policy
