// What a SQL text does, as far as policy is concerned: for each statement its kind,
// the operations it performs (nested ones included: a DELETE inside a CTE, the target
// of EXPLAIN ANALYZE, the body of PREPARE), the relations it references and the
// functions it calls. Built from libpg_query's parse tree by classify.cc; names are
// as PostgreSQL's parser leaves them (identifiers case-folded, quotes removed).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::policy {

enum class StatementKind : uint8_t {
  read,         // SELECT, TABLE, VALUES, COPY TO STDOUT, plain EXPLAIN, SHOW, cursors
  write,        // INSERT, UPDATE, DELETE, MERGE, COPY FROM STDIN, SELECT of side-effecting functions
  ddl,          // CREATE/ALTER/DROP of schema objects, TRUNCATE, COMMENT, REINDEX, VACUUM, ANALYZE...
  dcl,          // roles and privileges: CREATE/ALTER/DROP ROLE, GRANT, REVOKE, SET ROLE
  admin,        // server administration: ALTER SYSTEM, CREATE/DROP DATABASE, CHECKPOINT, LOAD, extensions...
  transaction,  // BEGIN, COMMIT, ROLLBACK, SAVEPOINT, PREPARE TRANSACTION
  session,      // SET, RESET, DISCARD, LISTEN/NOTIFY/UNLISTEN
  procedural,   // DO, CALL, CREATE FUNCTION/PROCEDURE/TRIGGER
  utility,      // PREPARE/EXECUTE/DEALLOCATE, DECLARE/FETCH/CLOSE, LOCK...
};
inline constexpr int kStatementKindCount = 9;

const char* statement_kind_name(StatementKind kind);  // "read", "write", ...
std::optional<StatementKind> parse_statement_kind(std::string_view name);

enum class Access : uint8_t { read, write };

// Facts about one operation that rules can match on (`when = [...]` in the config).
enum Fact : uint32_t {
  fact_missing_where = 1u << 0,      // UPDATE/DELETE without WHERE
  fact_constant_where = 1u << 1,     // UPDATE/DELETE whose WHERE does not depend on the row (1=1, 'a'='a', x=x, ... OR true)
  fact_copy_program = 1u << 2,       // COPY ... TO/FROM PROGRAM
  fact_copy_server_file = 1u << 3,   // COPY ... TO/FROM 'server file'
  fact_system_catalog = 1u << 4,     // DDL on an object in pg_catalog or information_schema
  fact_executes = 1u << 5,           // EXPLAIN ANALYZE: the explained statement runs
  fact_role_change = 1u << 6,        // SET ROLE, SET SESSION AUTHORIZATION, set_config('role', ...)
  fact_dynamic_sql = 1u << 7,        // calls a function that runs SQL given as text (query_to_xml...)
};
inline constexpr int kFactCount = 8;

const char* fact_name(Fact fact);  // "missing_where", ...
std::optional<Fact> parse_fact(std::string_view name);

// A schema-qualified name as written; schema empty when unqualified.
struct QualifiedName {
  std::string schema;
  std::string name;
  bool qualified() const { return !schema.empty(); }
  std::string display() const { return schema.empty() ? name : schema + "." + name; }
};

struct RelationRef {
  QualifiedName name;
  Access access = Access::read;
  int location = -1;  // byte offset in the SQL text, -1 unknown
  std::string alias;             // `FROM customers c`: "c"; empty without an alias
  bool renames_columns = false;  // `FROM customers c(a, b)`: the alias renames columns
};

// A column reference as written: {"c", "ssn"}, {"ssn"}, {"c", "*"}, {"*"}. COPY's
// column list and a COPY of a whole table are recorded as references too.
struct ColumnUse {
  std::vector<std::string> fields;  // "*" stands for a star
  // The whole value of one output column of the statement's own result (a bare column
  // in the target list of the top-level SELECT, or of PREPARE's or EXPLAIN's SELECT):
  // the one place a masked column's value is rewritten on its way out.
  bool projected = false;
  int location = -1;
  std::string_view last() const { return fields.empty() ? std::string_view() : std::string_view(fields.back()); }
};

struct FunctionRef {
  QualifiedName name;
  int location = -1;
};

// SET/RESET/set_config of a run-time setting, or a transaction's READ ONLY/WRITE.
struct SettingChange {
  std::string name;                 // lower case; "all" for RESET ALL
  std::vector<std::string> values;  // the new value, one entry per list element
  bool reset = false;               // RESET or SET ... TO DEFAULT: back to the session default
  bool constant = true;             // false: set_config with a non-constant name or value
  // true (set_config): values[0] is the setting's text, a list to split like
  // search_path; false (SET): each value is one element, exactly as written.
  bool value_is_list_text = false;
};

// One thing a statement does. The first operation of a statement is the statement
// itself; nested ones follow (a data-modifying CTE, PREPARE's body, EXPLAIN's target).
struct Operation {
  StatementKind kind = StatementKind::utility;
  std::string command;  // PostgreSQL's command tag: "SELECT", "DELETE", "DROP TABLE", "ALTER SYSTEM"
  uint32_t facts = 0;   // Fact bits
};

struct StatementSummary {
  std::vector<Operation> operations;     // never empty
  std::vector<RelationRef> relations;    // every relation referenced, at any depth
  std::vector<FunctionRef> functions;    // every function called, at any depth
  std::vector<SettingChange> settings;   // settings changed (SET, RESET, set_config)
  std::vector<ColumnUse> columns;        // every column reference, at any depth
  std::vector<std::string> join_using;   // JOIN ... USING (names)
  bool natural_join = false;             // a NATURAL JOIN compares same-named columns
  bool orders_by_position = false;       // the result's SELECT sorts or groups by output position (ORDER BY 2)
  std::vector<FunctionRef> from_functions;  // functions in FROM (their rows sluice cannot see into)
  int location = 0;                      // byte offset of the statement in the SQL text

  const Operation& main() const { return operations.front(); }
  // The most privileged kind among the operations (what the statement needs).
  StatementKind effective_kind() const;
};

class ParseTree;

// Appends one summary per statement of `tree` to `out` (an empty or comment-only
// text has none). Statement types sluice does not know are classified `admin`, so
// only admin access may run them.
void classify(const ParseTree& tree, std::vector<StatementSummary>& out);

// Splits a search_path-style list ("a, \"B\", $user") into names the way PostgreSQL
// does: unquoted names are folded to lower case, quoted ones kept, "" unescaped.
std::vector<std::string> split_identifier_list(std::string_view text);

}  // namespace sluice::policy
