// libpg_query's parse tree, held as a compact read-only JSON document. libpg_query
// prints every node as {"NodeType": {fields}}, generated from PostgreSQL's own node
// definitions, so walking the JSON generically finds every relation and function a
// statement names at any depth, including node types sluice has never heard of. That
// completeness is why policy reads the JSON form rather than the raw C structs.
//
// A ParseTree is reused for every statement a shard judges: parse() keeps its buffers,
// so steady-state parsing allocates nothing on the C++ side.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::policy {

struct SqlSyntaxError {
  std::string message;  // PostgreSQL's wording: "syntax error at or near \"SELEC\""
  int position = 0;     // 1-based character position as PostgreSQL reports it; 0 = none
};

class ParseTree {
 public:
  enum class Type : uint8_t { object, array, string, number, boolean, null };
  static constexpr uint32_t kNone = UINT32_MAX;

  // Deepest JSON nesting accepted. sql_guard bounds SQL nesting and operators well
  // below what would produce this; reaching it means "cannot judge".
  static constexpr uint32_t kMaxDepth = 100'000;

  // A position in the document. Cheap to copy; valid while the tree is unchanged.
  class Node {
   public:
    Node() = default;
    Node(const ParseTree* tree, uint32_t index) : tree_(tree), index_(index) {}
    bool valid() const { return tree_ != nullptr && index_ != kNone; }
    explicit operator bool() const { return valid(); }
    Type type() const;
    bool is_object() const { return valid() && type() == Type::object; }
    bool is_array() const { return valid() && type() == Type::array; }
    // The member key of this node inside its parent object ("" in arrays).
    std::string_view key() const;
    // Object member by key (linear: libpg_query nodes have a handful of fields).
    Node operator[](std::string_view key) const;
    // First child (object member or array element) and next sibling.
    Node first() const;
    Node next() const;
    // Scalars. string: decoded text; number: the digits as printed; boolean.
    std::string_view text() const;
    bool boolean() const;
    int64_t integer() const;  // number parsed as an integer (0 if not one)
    uint32_t index() const { return index_; }

    // libpg_query wraps each node as {"SelectStmt": {...}}: for such a one-member
    // object, its type name and its body; otherwise "" and an invalid node.
    std::string_view node_type() const;
    Node node_body() const;

   private:
    const ParseTree* tree_ = nullptr;
    uint32_t index_ = kNone;
  };

  // Parses `sql` (PostgreSQL 15 grammar). `sql` must be NUL-free; it is copied to
  // terminate it. Returns false and fills `error` when the text is not valid SQL (or,
  // never expected, when libpg_query's output cannot be read).
  bool parse(std::string_view sql, SqlSyntaxError& error);

  // The document root: {"version":..., "stmts":[{"stmt":{...}, "stmt_location":N}, ...]}.
  Node root() const { return Node(this, nodes_.empty() ? kNone : 0); }
  size_t node_count() const { return nodes_.size(); }

  // Builds the document from JSON text (exposed for tests and the fuzzer). Strings are
  // decoded in place in the tree's own copy of the text.
  bool load_json(std::string_view json);

 private:
  struct Entry {
    Type type;
    bool boolean = false;
    uint32_t key_offset = 0, key_length = 0;    // into text_
    uint32_t text_offset = 0, text_length = 0;  // string/number value, into text_
    uint32_t first_child = kNone;
    uint32_t next_sibling = kNone;
  };
  bool build();

  std::string text_;  // our copy of the JSON; strings are unescaped in place
  std::string sql_;   // NUL-terminated copy of the SQL for libpg_query
  std::vector<Entry> nodes_;
  std::vector<uint32_t> stack_;  // open containers while building
  std::vector<uint32_t> last_child_;
};

}  // namespace sluice::policy
