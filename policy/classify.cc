// From libpg_query's parse tree to StatementSummary. Two passes per statement:
//  1. the statement's own node: its kind, command tag and facts (WHERE analysis,
//     COPY targets, settings), and which RangeVars it writes;
//  2. a generic, iterative walk over everything below it, collecting every relation
//     and function at any depth and an Operation for every nested statement (a DML
//     in a CTE, the query of PREPARE/EXPLAIN ANALYZE/CREATE TABLE AS/DECLARE/COPY).
// The walk is generic on purpose: a function call hidden in a node type this file
// never names is still found.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "policy/parse_tree.h"
#include "policy/statement.h"

namespace sluice::policy {

namespace {

using Node = ParseTree::Node;

// Past this depth the WHERE evaluator gives up and answers "maybe true" (which is
// flagged): only hostile statements nest constant logic this deep.
constexpr int kMaxEvalDepth = 200;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

bool is_system_schema(std::string_view schema) { return schema == "pg_catalog" || schema == "information_schema"; }

// A list of {"String":{"sval":...}} nodes as a qualified name (catalog.schema.name
// keeps schema and name).
QualifiedName name_from_list(Node list) {
  std::vector<std::string_view> parts;
  for (Node item = list.first(); item; item = item.next())
    if (item.node_type() == "String") parts.push_back(item.node_body()["sval"].text());
  QualifiedName name;
  if (!parts.empty()) name.name = std::string(parts.back());
  if (parts.size() >= 2) name.schema = std::string(parts[parts.size() - 2]);
  return name;
}

QualifiedName name_from_range_var(Node range_var) {
  QualifiedName name;
  name.schema = std::string(range_var["schemaname"].text());
  name.name = std::string(range_var["relname"].text());
  return name;
}

// "OBJECT_MATVIEW" -> "MATERIALIZED VIEW": the words PostgreSQL's command tags use.
std::string object_words(std::string_view objtype) {
  if (starts_with(objtype, "OBJECT_")) objtype.remove_prefix(7);
  static constexpr std::pair<std::string_view, std::string_view> kSpecial[] = {
      {"MATVIEW", "MATERIALIZED VIEW"},
      {"FDW", "FOREIGN DATA WRAPPER"},
      {"FOREIGN_SERVER", "SERVER"},
      {"STATISTIC_EXT", "STATISTICS"},
      {"TSCONFIGURATION", "TEXT SEARCH CONFIGURATION"},
      {"TSDICTIONARY", "TEXT SEARCH DICTIONARY"},
      {"TSPARSER", "TEXT SEARCH PARSER"},
      {"TSTEMPLATE", "TEXT SEARCH TEMPLATE"},
      {"OPCLASS", "OPERATOR CLASS"},
      {"OPFAMILY", "OPERATOR FAMILY"},
      {"ACCESS_METHOD", "ACCESS METHOD"},
      {"TABCONSTRAINT", "CONSTRAINT"},
      {"LARGEOBJECT", "LARGE OBJECT"},
      {"DEFACL", "DEFAULT PRIVILEGES"},
  };
  for (const auto& [from, to] : kSpecial)
    if (objtype == from) return std::string(to);
  std::string out(objtype);
  std::replace(out.begin(), out.end(), '_', ' ');
  return out;
}

// Object types whose creation or removal is server administration, not schema DDL.
bool is_admin_object(std::string_view objtype) {
  static constexpr std::string_view kAdmin[] = {
      "OBJECT_DATABASE",    "OBJECT_TABLESPACE",   "OBJECT_EXTENSION", "OBJECT_FOREIGN_SERVER", "OBJECT_FDW",
      "OBJECT_PUBLICATION", "OBJECT_SUBSCRIPTION", "OBJECT_LANGUAGE",  "OBJECT_EVENT_TRIGGER",  "OBJECT_ACCESS_METHOD",
  };
  return std::find(std::begin(kAdmin), std::end(kAdmin), objtype) != std::end(kAdmin);
}

bool is_role_object(std::string_view objtype) { return objtype == "OBJECT_ROLE"; }

// Kind of a statement that names an object type (DROP, ALTER ... RENAME, COMMENT...).
StatementKind kind_for_object(std::string_view objtype) {
  if (is_admin_object(objtype)) return StatementKind::admin;
  if (is_role_object(objtype)) return StatementKind::dcl;
  return StatementKind::ddl;
}

// The kind and command tag of statements identified by node type alone.
struct FixedStatement {
  std::string_view node;
  StatementKind kind;
  std::string_view command;
};
constexpr FixedStatement kFixedStatements[] = {
    {"InsertStmt", StatementKind::write, "INSERT"},
    {"UpdateStmt", StatementKind::write, "UPDATE"},
    {"DeleteStmt", StatementKind::write, "DELETE"},
    {"MergeStmt", StatementKind::write, "MERGE"},
    {"VariableShowStmt", StatementKind::read, "SHOW"},
    {"CreateStmt", StatementKind::ddl, "CREATE TABLE"},
    {"ViewStmt", StatementKind::ddl, "CREATE VIEW"},
    {"IndexStmt", StatementKind::ddl, "CREATE INDEX"},
    {"TruncateStmt", StatementKind::ddl, "TRUNCATE TABLE"},
    {"CommentStmt", StatementKind::ddl, "COMMENT"},
    {"SecLabelStmt", StatementKind::ddl, "SECURITY LABEL"},
    {"CreateSeqStmt", StatementKind::ddl, "CREATE SEQUENCE"},
    {"AlterSeqStmt", StatementKind::ddl, "ALTER SEQUENCE"},
    {"CreateSchemaStmt", StatementKind::ddl, "CREATE SCHEMA"},
    {"CreateDomainStmt", StatementKind::ddl, "CREATE DOMAIN"},
    {"AlterDomainStmt", StatementKind::ddl, "ALTER DOMAIN"},
    {"CompositeTypeStmt", StatementKind::ddl, "CREATE TYPE"},
    {"CreateEnumStmt", StatementKind::ddl, "CREATE TYPE"},
    {"CreateRangeStmt", StatementKind::ddl, "CREATE TYPE"},
    {"AlterEnumStmt", StatementKind::ddl, "ALTER TYPE"},
    {"AlterTypeStmt", StatementKind::ddl, "ALTER TYPE"},
    {"DefineStmt", StatementKind::ddl, "CREATE"},
    {"CreateStatsStmt", StatementKind::ddl, "CREATE STATISTICS"},
    {"AlterStatsStmt", StatementKind::ddl, "ALTER STATISTICS"},
    {"RefreshMatViewStmt", StatementKind::ddl, "REFRESH MATERIALIZED VIEW"},
    {"ReindexStmt", StatementKind::ddl, "REINDEX"},
    {"ClusterStmt", StatementKind::ddl, "CLUSTER"},
    {"CreatePolicyStmt", StatementKind::ddl, "CREATE POLICY"},
    {"AlterPolicyStmt", StatementKind::ddl, "ALTER POLICY"},
    {"AlterCollationStmt", StatementKind::ddl, "ALTER COLLATION"},
    {"CreateConversionStmt", StatementKind::ddl, "CREATE CONVERSION"},
    {"CreateCastStmt", StatementKind::ddl, "CREATE CAST"},
    {"CreateOpClassStmt", StatementKind::ddl, "CREATE OPERATOR CLASS"},
    {"CreateOpFamilyStmt", StatementKind::ddl, "CREATE OPERATOR FAMILY"},
    {"AlterOpFamilyStmt", StatementKind::ddl, "ALTER OPERATOR FAMILY"},
    {"AlterOperatorStmt", StatementKind::ddl, "ALTER OPERATOR"},
    {"AlterTSDictionaryStmt", StatementKind::ddl, "ALTER TEXT SEARCH DICTIONARY"},
    {"AlterTSConfigurationStmt", StatementKind::ddl, "ALTER TEXT SEARCH CONFIGURATION"},
    {"CreateForeignTableStmt", StatementKind::ddl, "CREATE FOREIGN TABLE"},
    {"CreateTransformStmt", StatementKind::ddl, "CREATE TRANSFORM"},
    {"AlterObjectDependsStmt", StatementKind::ddl, "ALTER"},
    {"CreateRoleStmt", StatementKind::dcl, "CREATE ROLE"},
    {"AlterRoleStmt", StatementKind::dcl, "ALTER ROLE"},
    {"AlterRoleSetStmt", StatementKind::dcl, "ALTER ROLE"},
    {"DropRoleStmt", StatementKind::dcl, "DROP ROLE"},
    {"AlterDefaultPrivilegesStmt", StatementKind::dcl, "ALTER DEFAULT PRIVILEGES"},
    {"ReassignOwnedStmt", StatementKind::dcl, "REASSIGN OWNED"},
    {"DropOwnedStmt", StatementKind::dcl, "DROP OWNED"},
    {"CreateUserMappingStmt", StatementKind::dcl, "CREATE USER MAPPING"},
    {"AlterUserMappingStmt", StatementKind::dcl, "ALTER USER MAPPING"},
    {"DropUserMappingStmt", StatementKind::dcl, "DROP USER MAPPING"},
    {"AlterSystemStmt", StatementKind::admin, "ALTER SYSTEM"},
    {"CreatedbStmt", StatementKind::admin, "CREATE DATABASE"},
    {"AlterDatabaseStmt", StatementKind::admin, "ALTER DATABASE"},
    {"AlterDatabaseSetStmt", StatementKind::admin, "ALTER DATABASE"},
    {"AlterDatabaseRefreshCollStmt", StatementKind::admin, "ALTER DATABASE"},
    {"DropdbStmt", StatementKind::admin, "DROP DATABASE"},
    {"CreateTableSpaceStmt", StatementKind::admin, "CREATE TABLESPACE"},
    {"DropTableSpaceStmt", StatementKind::admin, "DROP TABLESPACE"},
    {"AlterTableSpaceOptionsStmt", StatementKind::admin, "ALTER TABLESPACE"},
    {"AlterTableMoveAllStmt", StatementKind::admin, "ALTER TABLE"},
    {"CheckPointStmt", StatementKind::admin, "CHECKPOINT"},
    {"LoadStmt", StatementKind::admin, "LOAD"},
    {"CreateExtensionStmt", StatementKind::admin, "CREATE EXTENSION"},
    {"AlterExtensionStmt", StatementKind::admin, "ALTER EXTENSION"},
    {"AlterExtensionContentsStmt", StatementKind::admin, "ALTER EXTENSION"},
    {"CreateFdwStmt", StatementKind::admin, "CREATE FOREIGN DATA WRAPPER"},
    {"AlterFdwStmt", StatementKind::admin, "ALTER FOREIGN DATA WRAPPER"},
    {"CreateForeignServerStmt", StatementKind::admin, "CREATE SERVER"},
    {"AlterForeignServerStmt", StatementKind::admin, "ALTER SERVER"},
    {"ImportForeignSchemaStmt", StatementKind::admin, "IMPORT FOREIGN SCHEMA"},
    {"CreatePublicationStmt", StatementKind::admin, "CREATE PUBLICATION"},
    {"AlterPublicationStmt", StatementKind::admin, "ALTER PUBLICATION"},
    {"CreateSubscriptionStmt", StatementKind::admin, "CREATE SUBSCRIPTION"},
    {"AlterSubscriptionStmt", StatementKind::admin, "ALTER SUBSCRIPTION"},
    {"DropSubscriptionStmt", StatementKind::admin, "DROP SUBSCRIPTION"},
    {"CreateEventTrigStmt", StatementKind::admin, "CREATE EVENT TRIGGER"},
    {"AlterEventTrigStmt", StatementKind::admin, "ALTER EVENT TRIGGER"},
    {"CreatePLangStmt", StatementKind::admin, "CREATE LANGUAGE"},
    {"CreateAmStmt", StatementKind::admin, "CREATE ACCESS METHOD"},
    {"DiscardStmt", StatementKind::session, "DISCARD"},
    {"ListenStmt", StatementKind::session, "LISTEN"},
    {"UnlistenStmt", StatementKind::session, "UNLISTEN"},
    {"NotifyStmt", StatementKind::session, "NOTIFY"},
    {"ConstraintsSetStmt", StatementKind::session, "SET CONSTRAINTS"},
    {"DoStmt", StatementKind::procedural, "DO"},
    {"CallStmt", StatementKind::procedural, "CALL"},
    {"AlterFunctionStmt", StatementKind::procedural, "ALTER FUNCTION"},
    {"CreateTrigStmt", StatementKind::procedural, "CREATE TRIGGER"},
    {"RuleStmt", StatementKind::procedural, "CREATE RULE"},
    {"ReturnStmt", StatementKind::procedural, "RETURN"},
    {"ReplicaIdentityStmt", StatementKind::ddl, "ALTER TABLE"},
    {"PrepareStmt", StatementKind::utility, "PREPARE"},
    {"ExecuteStmt", StatementKind::utility, "EXECUTE"},
    {"DeallocateStmt", StatementKind::utility, "DEALLOCATE"},
    {"DeclareCursorStmt", StatementKind::utility, "DECLARE CURSOR"},
    {"ClosePortalStmt", StatementKind::utility, "CLOSE CURSOR"},
    {"LockStmt", StatementKind::utility, "LOCK TABLE"},
};

// Built-in functions whose call is more than a read. Matched when the call is
// unqualified or qualified with pg_catalog (unqualified names find pg_catalog first).
struct EffectfulFunction {
  std::string_view name;  // a trailing '*' matches any suffix
  StatementKind kind;
  uint32_t facts;
};
constexpr EffectfulFunction kEffectfulFunctions[] = {
    {"nextval", StatementKind::write, 0},
    {"setval", StatementKind::write, 0},
    {"lo_*", StatementKind::write, 0},
    {"loread", StatementKind::read, 0},
    {"lowrite", StatementKind::write, 0},
    {"pg_logical_emit_message", StatementKind::write, 0},
    {"pg_file_*", StatementKind::admin, 0},
    {"pg_read_file", StatementKind::admin, 0},
    {"pg_read_binary_file", StatementKind::admin, 0},
    {"pg_stat_file", StatementKind::admin, 0},
    {"pg_ls_*", StatementKind::admin, 0},
    {"pg_logdir_ls", StatementKind::admin, 0},
    {"pg_terminate_backend", StatementKind::admin, 0},
    {"pg_cancel_backend", StatementKind::admin, 0},
    {"pg_reload_conf", StatementKind::admin, 0},
    {"pg_rotate_logfile", StatementKind::admin, 0},
    {"pg_promote", StatementKind::admin, 0},
    {"pg_switch_wal", StatementKind::admin, 0},
    {"pg_create_restore_point", StatementKind::admin, 0},
    {"pg_backup_*", StatementKind::admin, 0},
    {"pg_start_backup", StatementKind::admin, 0},
    {"pg_stop_backup", StatementKind::admin, 0},
    {"pg_wal_replay_*", StatementKind::admin, 0},
    {"pg_create_physical_replication_slot", StatementKind::admin, 0},
    {"pg_create_logical_replication_slot", StatementKind::admin, 0},
    {"pg_drop_replication_slot", StatementKind::admin, 0},
    {"pg_copy_*_replication_slot", StatementKind::admin, 0},
    {"pg_replication_slot_advance", StatementKind::admin, 0},
    {"pg_replication_origin_*", StatementKind::admin, 0},
    {"pg_logical_slot_*", StatementKind::admin, 0},
    {"pg_stat_reset*", StatementKind::admin, 0},
    {"pg_log_backend_memory_contexts", StatementKind::admin, 0},
    {"pg_import_system_collations", StatementKind::admin, 0},
    {"dblink*", StatementKind::admin, 0},
    {"query_to_xml*", StatementKind::read, fact_dynamic_sql},
    {"query_to_xmlschema", StatementKind::read, fact_dynamic_sql},
    {"table_to_xml*", StatementKind::read, fact_dynamic_sql},
    {"schema_to_xml*", StatementKind::read, fact_dynamic_sql},
    {"database_to_xml*", StatementKind::read, fact_dynamic_sql},
    {"set_config", StatementKind::session, 0},
};

bool glob_match(std::string_view pattern, std::string_view text) {
  // Single-'*' globs are all this table and the rule packs need; general matching
  // lives in policy.cc.
  const size_t star = pattern.find('*');
  if (star == std::string_view::npos) return pattern == text;
  const std::string_view head = pattern.substr(0, star);
  const std::string_view tail = pattern.substr(star + 1);
  return text.size() >= head.size() + tail.size() && text.substr(0, head.size()) == head &&
         text.substr(text.size() - tail.size()) == tail;
}

const EffectfulFunction* effectful_function(const QualifiedName& name) {
  if (!name.schema.empty() && name.schema != "pg_catalog") return nullptr;
  for (const auto& f : kEffectfulFunctions)
    if (glob_match(f.name, name.name)) return &f;
  return nullptr;
}

// --- constant evaluation of WHERE clauses ---------------------------------
//
// Invariant the decision cache relies on (literal_shape.h): a number that is an
// operand beside a column reference (`col = 5`, `col + 5`, `col BETWEEN 1 AND 9`,
// `col IN (1, 2)`) or an element of a VALUES row never makes eval() or any other
// check's answer known: a comparison with a column is unknown whatever the constant,
// arithmetic is never folded, VALUES rows are never evaluated. Teaching eval() to
// reason about such constants (say, `col = 1 OR col <> 1`) would let a shape with $n
// be allowed where the text is refused; PolicyCorpus.LiteralShapesDecideAsTheirTexts
// and the policy fuzzer check this.

// What a WHERE sub-expression is known to be. `column` carries the ColumnRef's
// index so that x = x can be recognised.
struct Value {
  enum Kind { unknown, boolean, number, string, null, column } kind = unknown;
  bool truth = false;
  double number_value = 0;
  std::string_view text;
  uint32_t column_node = ParseTree::kNone;
};

Value make_bool(bool b) {
  Value v;
  v.kind = Value::boolean;
  v.truth = b;
  return v;
}

std::vector<std::string_view> column_fields(Node column_ref) {
  std::vector<std::string_view> fields;
  for (Node f = column_ref["fields"].first(); f; f = f.next())
    fields.push_back(f.node_type() == "String" ? f.node_body()["sval"].text() : std::string_view("*"));
  return fields;
}

// Two ColumnRefs naming the same column: equal field lists (t.id, t.id), or one
// unqualified and the other qualified with the same column name (orders.id, id):
// PostgreSQL resolves those to the same column or rejects the name as ambiguous.
bool same_column(Node a, Node b) {
  const std::vector<std::string_view> fa = column_fields(a), fb = column_fields(b);
  if (fa == fb) return true;
  if (fa.empty() || fb.empty() || fa.back() != fb.back()) return false;
  return fa.size() == 1 || fb.size() == 1;
}

bool parse_number(std::string_view text, double& out) {
  if (text.empty() || text.size() > 64) return false;
  char buffer[65];
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  char* end = nullptr;
  out = std::strtod(buffer, &end);
  return end == buffer + text.size();
}

Value eval(Node wrapped, int depth);

Value eval_const(Node body) {
  Value v;
  if (body["isnull"].boolean()) {
    v.kind = Value::null;
    return v;
  }
  if (Node b = body["boolval"]) return make_bool(b["boolval"].boolean());
  if (Node i = body["ival"]) {
    v.kind = Value::number;
    v.number_value = static_cast<double>(i["ival"].integer());
    return v;
  }
  if (Node f = body["fval"]) {
    if (parse_number(f["fval"].text(), v.number_value)) v.kind = Value::number;
    return v;
  }
  if (Node s = body["sval"]) {
    v.kind = Value::string;
    v.text = s["sval"].text();
    return v;
  }
  return v;
}

std::optional<bool> text_as_bool(std::string_view t) {
  const std::string l = lower(t);
  if (l == "t" || l == "true" || l == "yes" || l == "y" || l == "on" || l == "1") return true;
  if (l == "f" || l == "false" || l == "no" || l == "n" || l == "off" || l == "0") return false;
  return std::nullopt;
}

std::optional<int> compare(const Value& a, const Value& b) {
  double x = 0, y = 0;
  if (a.kind == Value::number && b.kind == Value::number) {
    x = a.number_value;
    y = b.number_value;
  } else if (a.kind == Value::string && b.kind == Value::string) {
    const int c = a.text.compare(b.text);
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  } else if ((a.kind == Value::number && b.kind == Value::string && parse_number(b.text, y)) ||
             (a.kind == Value::string && b.kind == Value::number && parse_number(a.text, x))) {
    if (a.kind == Value::number) x = a.number_value;
    if (b.kind == Value::number) y = b.number_value;
  } else if (a.kind == Value::boolean && b.kind == Value::boolean) {
    return static_cast<int>(a.truth) - static_cast<int>(b.truth);
  } else {
    return std::nullopt;
  }
  return x < y ? -1 : x > y ? 1 : 0;
}

Value eval_comparison(std::string_view op, const Value& l, const Value& r) {
  if (l.kind == Value::null || r.kind == Value::null) {
    Value v;
    v.kind = Value::null;  // NULL = x is NULL: filters every row, but it is constant
    return v;
  }
  if (l.kind == Value::column && r.kind == Value::column) {
    // x = x, x <= x, x >= x hold for every non-null x.
    if (op == "=" || op == "<=" || op == ">=") return make_bool(true);
    return {};
  }
  const std::optional<int> c = compare(l, r);
  if (!c) return {};
  if (op == "=") return make_bool(*c == 0);
  if (op == "<>" || op == "!=") return make_bool(*c != 0);
  if (op == "<") return make_bool(*c < 0);
  if (op == ">") return make_bool(*c > 0);
  if (op == "<=") return make_bool(*c <= 0);
  if (op == ">=") return make_bool(*c >= 0);
  return {};
}

Value eval(Node wrapped, int depth) {
  if (depth > kMaxEvalDepth) return make_bool(true);  // cannot tell: assume it may select every row
  const std::string_view type = wrapped.node_type();
  const Node body = wrapped.node_body();
  if (type == "A_Const") return eval_const(body);
  if (type == "ColumnRef") {
    Value v;
    v.kind = Value::column;
    v.column_node = wrapped.index();
    v.text = {};
    return v;
  }
  if (type == "TypeCast") {
    Value inner = eval(body["arg"], depth + 1);
    const QualifiedName type_name = name_from_list(body["typeName"]["names"]);
    if ((type_name.name == "bool" || type_name.name == "boolean") && inner.kind == Value::string) {
      if (auto b = text_as_bool(inner.text)) return make_bool(*b);
      return {};
    }
    return inner.kind == Value::column ? Value{} : inner;
  }
  if (type == "BoolExpr") {
    const std::string_view op = body["boolop"].text();
    bool all_true = true, any_true = false, all_false = true, any_false = false;
    int count = 0;
    for (Node arg = body["args"].first(); arg; arg = arg.next()) {
      const Value v = eval(arg, depth + 1);
      const bool is_true = v.kind == Value::boolean && v.truth;
      const bool is_false = v.kind == Value::boolean && !v.truth;
      all_true &= is_true;
      any_true |= is_true;
      all_false &= is_false;
      any_false |= is_false;
      ++count;
    }
    if (op == "AND_EXPR") {
      if (count > 0 && all_true) return make_bool(true);
      if (any_false) return make_bool(false);
      return {};
    }
    if (op == "OR_EXPR") {
      if (any_true) return make_bool(true);
      if (count > 0 && all_false) return make_bool(false);
      return {};
    }
    if (op == "NOT_EXPR" && count == 1) {
      if (any_true) return make_bool(false);
      if (any_false) return make_bool(true);
    }
    return {};
  }
  if (type == "A_Expr") {
    const std::string_view kind = body["kind"].text();
    const std::string_view op = body["name"].first().node_body()["sval"].text();
    if (kind == "AEXPR_OP") {
      if (!body["lexpr"]) return {};  // prefix operator
      const Value l = eval(body["lexpr"], depth + 1);
      const Value r = eval(body["rexpr"], depth + 1);
      if (l.kind == Value::column && r.kind == Value::column &&
          !same_column(body["lexpr"].node_body(), body["rexpr"].node_body()))
        return {};
      return eval_comparison(op, l, r);
    }
    if (kind == "AEXPR_IN") {
      const Value l = eval(body["lexpr"], depth + 1);
      if (l.kind == Value::column || l.kind == Value::unknown) return {};
      bool any = false, all_known = true;
      for (Node item = body["rexpr"].first(); item; item = item.next()) {
        const Value v = eval_comparison("=", l, eval(item, depth + 1));
        if (v.kind != Value::boolean) all_known = false;
        any |= v.kind == Value::boolean && v.truth;
      }
      const bool negated = op == "<>";
      if (any) return make_bool(!negated);
      if (all_known) return make_bool(negated);
      return {};
    }
    return {};
  }
  if (type == "NullTest") {
    const Value v = eval(body["arg"], depth + 1);
    const bool is_null_test = body["nulltesttype"].text() == "IS_NULL";
    if (v.kind == Value::null) return make_bool(is_null_test);
    if (v.kind == Value::boolean || v.kind == Value::number || v.kind == Value::string) return make_bool(!is_null_test);
    return {};
  }
  if (type == "BooleanTest") {
    const Value v = eval(body["arg"], depth + 1);
    const std::string_view test = body["booltesttype"].text();
    if (v.kind == Value::boolean) {
      if (test == "IS_TRUE" || test == "IS_NOT_FALSE") return make_bool(v.truth);
      if (test == "IS_FALSE" || test == "IS_NOT_TRUE") return make_bool(!v.truth);
      if (test == "IS_NOT_UNKNOWN") return make_bool(true);
      if (test == "IS_UNKNOWN") return make_bool(false);
    }
    if (v.kind == Value::null) return make_bool(test == "IS_NOT_TRUE" || test == "IS_NOT_FALSE" || test == "IS_UNKNOWN");
    return {};
  }
  return {};
}

// True when the subtree contains no ColumnRef at all (iterative).
bool references_no_column(Node root) {
  std::vector<Node> stack{root};
  while (!stack.empty()) {
    Node n = stack.back();
    stack.pop_back();
    if (n.node_type() == "ColumnRef") return false;
    for (Node child = n.first(); child; child = child.next())
      if (child.is_object() || child.is_array()) stack.push_back(child);
  }
  return true;
}

uint32_t where_facts(Node body) {
  const Node where = body["whereClause"];
  if (!where) return fact_missing_where;
  if (where.node_type() == "CurrentOfExpr") return 0;
  if (references_no_column(where)) return fact_constant_where;
  const Value v = eval(where, 0);
  return v.kind == Value::boolean && v.truth ? uint32_t{fact_constant_where} : 0u;
}

// --- settings ------------------------------------------------------------

std::string const_text(Node wrapped) {
  if (wrapped.node_type() != "A_Const") return {};
  const Node body = wrapped.node_body();
  if (Node s = body["sval"]) return std::string(s["sval"].text());
  if (Node i = body["ival"]) return std::to_string(i["ival"].integer());
  if (Node f = body["fval"]) return std::string(f["fval"].text());
  if (Node b = body["boolval"]) return b["boolval"].boolean() ? "on" : "off";
  return {};
}

// READ ONLY / READ WRITE options of BEGIN, SET TRANSACTION, SET SESSION CHARACTERISTICS.
void transaction_options(Node options, bool session_default, std::vector<SettingChange>& out) {
  for (Node item = options.first(); item; item = item.next()) {
    const Node def = item.node_body();
    if (def["defname"].text() != "transaction_read_only") continue;
    SettingChange change;
    change.name = session_default ? "default_transaction_read_only" : "transaction_read_only";
    const Node arg = def["arg"];
    change.values.push_back(arg && const_text(arg) != "0" ? "on" : "off");
    out.push_back(std::move(change));
  }
}

void variable_set(Node body, std::vector<SettingChange>& out) {
  const std::string_view kind = body["kind"].text();
  const std::string_view name = body["name"].text();
  if (kind == "VAR_SET_MULTI") {
    transaction_options(body["args"], name == "SESSION CHARACTERISTICS", out);
    return;
  }
  SettingChange change;
  change.name = kind == "VAR_RESET_ALL" ? "all" : lower(name);
  change.reset = kind == "VAR_RESET" || kind == "VAR_RESET_ALL" || kind == "VAR_SET_DEFAULT";
  if (kind == "VAR_SET_CURRENT") change.constant = false;  // SET x FROM CURRENT: value not in the text
  for (Node arg = body["args"].first(); arg; arg = arg.next()) {
    if (arg.node_type() == "A_Const") {
      change.values.push_back(const_text(arg));
    } else if (arg.node_type() == "TypeCast") {  // SET TIME ZONE INTERVAL '...'
      change.values.push_back(const_text(arg.node_body()["arg"]));
    } else {
      change.constant = false;
    }
  }
  out.push_back(std::move(change));
}

// set_config(name, value, is_local): a SET in function form.
void set_config_call(Node call, std::vector<SettingChange>& out) {
  SettingChange change;
  change.value_is_list_text = true;
  Node arg = call["args"].first();
  const std::string_view arg_type = arg.node_type();
  if (arg_type == "A_Const" && arg.node_body()["sval"]) {
    change.name = lower(const_text(arg));
  } else {
    change.constant = false;
  }
  Node value = arg.next();
  if (value.node_type() == "A_Const" && value.node_body()["sval"]) {
    change.values.push_back(const_text(value));
  } else if (value.node_type() == "A_Const" && value.node_body()["isnull"].boolean()) {
    change.reset = true;
  } else {
    change.constant = false;
  }
  out.push_back(std::move(change));
}

bool changes_role(const SettingChange& change) {
  if (change.name != "role" && change.name != "session_authorization") return false;
  if (!change.constant) return true;  // an unknown role: assume a change
  if (change.reset) return false;
  // SET ROLE NONE goes back to the login role.
  return !(change.name == "role" && change.values.size() == 1 && lower(change.values[0]) == "none");
}

// --- the statement itself -------------------------------------------------

class Classifier {
 public:
  Classifier(StatementSummary& summary) : s_(summary) {}

  void statement(Node wrapped) {
    walk(wrapped);
    for (const SettingChange& c : s_.settings)
      if (changes_role(c)) s_.operations.front().facts |= fact_role_change;
  }

 private:
  static constexpr uint32_t kNoScope = UINT32_MAX;
  struct Pending {
    Node node;
    bool explain_only;  // below a plain EXPLAIN: nothing here runs
    uint32_t scope;     // innermost CTE scope visible here (index into scopes_)
  };
  struct CteScope {
    uint32_t parent = kNoScope;
    std::vector<std::string_view> names;
  };

  // Describes one statement node (top level or nested) as an Operation, marks the
  // relations it writes and queues the subtrees whose statements do not run.
  void describe(Node wrapped, bool top) {
    const std::string_view type = wrapped.node_type();
    const Node body = wrapped.node_body();
    // A nested plain SELECT (subquery, UNION arm) adds nothing the outer one lacks.
    if (!top && type == "SelectStmt" && !body["intoClause"]) return;
    Operation op;
    bool known = false;
    for (const auto& f : kFixedStatements) {
      if (f.node == type) {
        op.kind = f.kind;
        op.command = std::string(f.command);
        known = true;
        break;
      }
    }
    if (type == "SelectStmt") {
      known = true;
      op.kind = StatementKind::read;
      op.command = "SELECT";
      if (Node into = body["intoClause"]) {
        op.kind = StatementKind::ddl;
        op.command = "SELECT INTO";
        mark_written(into["rel"]);
      }
    } else if (type == "InsertStmt" || type == "MergeStmt") {
      mark_written(body["relation"]);
    } else if (type == "UpdateStmt" || type == "DeleteStmt") {
      mark_written(body["relation"]);
      op.facts |= where_facts(body);
      const QualifiedName target = name_from_range_var(body["relation"]);
      if (target.name == "pg_settings" && (target.schema.empty() || target.schema == "pg_catalog")) {
        SettingChange change;  // UPDATE pg_settings is set_config() in disguise
        change.constant = false;
        s_.settings.push_back(std::move(change));
      }
    } else if (type == "CopyStmt") {
      known = true;
      const bool from = body["is_from"].boolean();
      op.kind = from ? StatementKind::write : StatementKind::read;
      op.command = from ? "COPY FROM" : "COPY TO";
      if (from) mark_written(body["relation"]);
      if (!from && body["relation"]) copied_columns(body);
      if (body["is_program"].boolean()) {
        op.facts |= fact_copy_program;
      } else if (body["filename"]) {
        op.facts |= fact_copy_server_file;
      }
    } else if (type == "ExplainStmt") {
      known = true;
      op.kind = StatementKind::read;
      op.command = "EXPLAIN";
      if (explain_analyze(body)) op.facts |= fact_executes;
    } else if (type == "CreateTableAsStmt") {
      known = true;
      const std::string_view objtype = body["objtype"].text();
      op.kind = StatementKind::ddl;
      op.command = body["is_select_into"].boolean() ? "SELECT INTO"
                   : objtype == "OBJECT_MATVIEW"    ? "CREATE MATERIALIZED VIEW"
                                                    : "CREATE TABLE AS";
      mark_written(body["into"]["rel"]);
    } else if (type == "CreateStmt" || type == "IndexStmt" || type == "AlterTableStmt" || type == "ViewStmt" ||
               type == "CreateForeignTableStmt" || type == "RefreshMatViewStmt" || type == "ClusterStmt" ||
               type == "CreateTrigStmt" || type == "RuleStmt" || type == "CreatePolicyStmt" ||
               type == "AlterPolicyStmt" || type == "CreateStatsStmt" || type == "LockStmt") {
      mark_written(body["relation"]);
      mark_written(body["view"]);
      mark_written(body["table"]);
      if (type == "AlterTableStmt") {
        known = true;
        op.kind = StatementKind::ddl;
        op.command = "ALTER " + object_words(body["objtype"].text());
      }
      if (type == "CreateForeignTableStmt") mark_written(body["base"]["relation"]);
    } else if (type == "TruncateStmt" || type == "VacuumStmt") {
      known = true;
      op.kind = StatementKind::ddl;
      op.command = type == "TruncateStmt" ? "TRUNCATE TABLE" : body["is_vacuumcmd"].boolean() ? "VACUUM" : "ANALYZE";
      for (Node rel = body["relations"].first(); rel; rel = rel.next()) mark_written(rel.node_body());
      for (Node rel = body["rels"].first(); rel; rel = rel.next()) mark_written(rel.node_body()["relation"]);
    } else if (type == "DropStmt") {
      known = true;
      const std::string_view objtype = body["removeType"].text();
      op.kind = kind_for_object(objtype);
      op.command = "DROP " + object_words(objtype);
      const bool is_relation = objtype == "OBJECT_TABLE" || objtype == "OBJECT_VIEW" || objtype == "OBJECT_MATVIEW" ||
                               objtype == "OBJECT_INDEX" || objtype == "OBJECT_SEQUENCE" ||
                               objtype == "OBJECT_FOREIGN_TABLE";
      for (Node object = body["objects"].first(); object; object = object.next()) {
        if (is_relation && object.node_type() == "List") add_written_name(name_from_list(object.node_body()["items"]));
        check_object_name(object);
      }
    } else if (type == "RenameStmt" || type == "AlterObjectSchemaStmt" || type == "AlterOwnerStmt" ||
               type == "CommentStmt" || type == "SecLabelStmt") {
      known = true;
      const std::string_view objtype =
          body["renameType"] ? body["renameType"].text() : body["objectType"] ? body["objectType"].text() : body["objtype"].text();
      op.kind = kind_for_object(objtype);
      op.command = type == "CommentStmt"    ? "COMMENT"
                   : type == "SecLabelStmt" ? "SECURITY LABEL"
                                            : "ALTER " + object_words(objtype);
      mark_written(body["relation"]);
      check_object_name(body["object"]);
      if (is_system_schema(body["newschema"].text())) writes_system_catalog_ = true;
    } else if (type == "GrantStmt") {
      known = true;
      op.kind = StatementKind::dcl;
      op.command = body["is_grant"].boolean() ? "GRANT" : "REVOKE";
    } else if (type == "GrantRoleStmt") {
      known = true;
      op.kind = StatementKind::dcl;
      op.command = body["is_grant"].boolean() ? "GRANT ROLE" : "REVOKE ROLE";
    } else if (type == "TransactionStmt") {
      known = true;
      op.kind = StatementKind::transaction;
      op.command = transaction_command(body["kind"].text());
      transaction_options(body["options"], false, s_.settings);
    } else if (type == "VariableSetStmt") {
      known = true;
      op.kind = StatementKind::session;
      op.command = body["kind"].text() == "VAR_RESET" || body["kind"].text() == "VAR_RESET_ALL" ? "RESET" : "SET";
      // Nested ones (CREATE FUNCTION ... SET x = y) apply inside that function only.
      if (top) variable_set(body, s_.settings);
    } else if (type == "AlterSystemStmt") {
      // ALTER SYSTEM's setting is not a session change: do not record it as one.
    } else if (type == "CreateFunctionStmt") {
      known = true;
      op.kind = StatementKind::procedural;
      op.command = body["is_procedure"].boolean() ? "CREATE PROCEDURE" : "CREATE FUNCTION";
      check_object_name(body["funcname"]);
    } else if (type == "CreateSchemaStmt") {
      if (is_system_schema(body["schemaname"].text())) op.facts |= fact_system_catalog;
    } else if (type == "FetchStmt") {
      known = true;
      op.kind = StatementKind::utility;
      op.command = body["ismove"].boolean() ? "MOVE" : "FETCH";
    } else if (type == "DefineStmt") {
      op.command = "CREATE " + object_words(body["kind"].text());
      check_object_name(body["defnames"]);
      // CREATE OPERATOR/AGGREGATE name a function that later runs without being
      // named: count it as called.
      for (Node item = body["definition"].first(); item; item = item.next()) {
        const Node def = item.node_body();
        const std::string_view what = def["defname"].text();
        if (what == "function" || what == "procedure" || what == "sfunc" || what == "finalfunc" || what == "combinefunc")
          function_reference(def["arg"]);
      }
    } else if (type == "CreateCastStmt") {
      function_reference(body["func"]);
    }
    if (!known) {
      // A statement type this table does not know: only admin access may run it.
      op.kind = StatementKind::admin;
      op.command = std::string(type);
    }
    if ((op.kind == StatementKind::ddl || op.kind == StatementKind::admin || op.kind == StatementKind::procedural) &&
        writes_system_catalog_)
      op.facts |= fact_system_catalog;
    writes_system_catalog_ = false;
    s_.operations.push_back(std::move(op));
  }

  // COPY table [(columns)] TO: each column it sends is a use of that column (all of
  // them, `table.*`, without a list).
  void copied_columns(Node copy) {
    const std::string table(copy["relation"]["relname"].text());
    const int location = static_cast<int>(copy["relation"]["location"].integer());
    if (!copy["attlist"].first()) {
      s_.columns.push_back(ColumnUse{{table, "*"}, false, location});
      return;
    }
    for (Node name = copy["attlist"].first(); name; name = name.next())
      s_.columns.push_back(ColumnUse{{table, std::string(name.node_body()["sval"].text())}, false, location});
  }

  static bool explain_analyze(Node body) {
    for (Node item = body["options"].first(); item; item = item.next()) {
      const Node def = item.node_body();
      if (def["defname"].text() != "analyze") continue;
      const Node arg = def["arg"];
      if (!arg) return true;
      const std::string value = arg.node_type() == "String" ? std::string(arg.node_body()["sval"].text()) : const_text(arg);
      const std::optional<bool> b = text_as_bool(value);
      return !b.has_value() || *b;  // an unreadable value: assume it runs
    }
    return false;
  }

  static std::string transaction_command(std::string_view kind) {
    static constexpr std::pair<std::string_view, std::string_view> kTags[] = {
        {"TRANS_STMT_BEGIN", "BEGIN"},
        {"TRANS_STMT_START", "START TRANSACTION"},
        {"TRANS_STMT_COMMIT", "COMMIT"},
        {"TRANS_STMT_ROLLBACK", "ROLLBACK"},
        {"TRANS_STMT_SAVEPOINT", "SAVEPOINT"},
        {"TRANS_STMT_RELEASE", "RELEASE"},
        {"TRANS_STMT_ROLLBACK_TO", "ROLLBACK"},
        {"TRANS_STMT_PREPARE", "PREPARE TRANSACTION"},
        {"TRANS_STMT_COMMIT_PREPARED", "COMMIT PREPARED"},
        {"TRANS_STMT_ROLLBACK_PREPARED", "ROLLBACK PREPARED"},
    };
    for (const auto& [k, tag] : kTags)
      if (k == kind) return std::string(tag);
    return "TRANSACTION";
  }

  // A RangeVar (unwrapped body) this statement writes or defines.
  void mark_written(Node range_var) {
    if (!range_var.is_object() || !range_var["relname"]) return;
    written_.push_back(range_var.index());
    const QualifiedName name = name_from_range_var(range_var);
    if (is_system_schema(name.schema) || (name.schema.empty() && starts_with(name.name, "pg_")))
      writes_system_catalog_ = true;
  }

  void add_written_name(QualifiedName name) {
    if (is_system_schema(name.schema) || (name.schema.empty() && starts_with(name.name, "pg_")))
      writes_system_catalog_ = true;
    RelationRef ref;
    ref.name = std::move(name);
    ref.access = Access::write;
    s_.relations.push_back(std::move(ref));
  }

  // An object named by a list of Strings (or a List, ObjectWithArgs, TypeName holding
  // one): flags pg_catalog / information_schema objects.
  void check_object_name(Node object) {
    if (!object) return;
    Node list = object;
    const std::string_view type = object.node_type();
    if (type == "List") list = object.node_body()["items"];
    if (type == "ObjectWithArgs") list = object.node_body()["objname"];
    if (type == "TypeName") list = object.node_body()["names"];
    if (type == "String") {
      if (is_system_schema(object.node_body()["sval"].text())) writes_system_catalog_ = true;
      return;
    }
    const QualifiedName name = name_from_list(list);
    if (is_system_schema(name.schema) || (name.schema.empty() && starts_with(name.name, "pg_")))
      writes_system_catalog_ = true;
    // schema.table.column (COMMENT ON COLUMN): the schema is the first part.
    if (Node head = list.first(); head.node_type() == "String" && is_system_schema(head.node_body()["sval"].text()))
      writes_system_catalog_ = true;
  }

  bool is_statement_node(std::string_view type) const {
    return type.size() > 4 && type.substr(type.size() - 4) == "Stmt" && type != "RawStmt";
  }

  // Iterative walk: statements become operations, RangeVars relations, FuncCalls
  // functions. explain_only is inherited by everything below a plain EXPLAIN.
  // CTE names are scoped as PostgreSQL scopes them, so that `FROM x` is known to
  // mean the CTE x (not a table) exactly where the CTE is visible: in the query
  // that owns the WITH, and in later (or, WITH RECURSIVE, all) CTEs of that WITH.
  void walk(Node start) {
    std::vector<Pending> stack;
    stack.push_back({start, false, kNoScope});
    bool first = true;
    while (!stack.empty()) {
      const Pending p = stack.back();
      stack.pop_back();
      Node n = p.node;
      bool below_explain_only = p.explain_only;
      uint32_t scope = p.scope;
      Node with_clause;
      const std::string_view type = n.node_type();
      if (!type.empty()) {
        if (is_statement_node(type)) {
          if (first || !p.explain_only) describe(n, first);
          note_projections(n, first);
          first = false;
          if (type == "ExplainStmt" && !explain_analyze(n.node_body())) below_explain_only = true;
          with_clause = n.node_body()["withClause"];
          if (with_clause) scope = push_cte_scope(with_clause, scope, UINT32_MAX);
        } else if (type == "FuncCall") {
          function_call(n.node_body());
        } else if (type == "ColumnRef") {
          column_ref(n);
        } else if (type == "JoinExpr") {
          const Node join = n.node_body();
          if (join["isNatural"].boolean()) s_.natural_join = true;
          for (Node name = join["usingClause"].first(); name; name = name.next())
            s_.join_using.emplace_back(name.node_body()["sval"].text());
        } else if (type == "RangeFunction") {
          from_functions(n.node_body());
        }
      } else if (n.is_object()) {
        if (n["relname"].valid()) {
          relation(n, scope);
        } else if (n.key() == "funccall") {  // CallStmt.funccall is an unwrapped FuncCall
          function_call(n);
        }
      }
      for (Node child = n.first(); child; child = child.next()) {
        if (!child.is_object() && !child.is_array()) continue;
        if (with_clause && child.index() == with_clause.index()) {
          push_cte_queries(with_clause, p.scope, below_explain_only, stack);
          continue;
        }
        stack.push_back({child, below_explain_only, scope});
      }
    }
  }

  // A scope holding the first `count` CTE names of a WITH clause (all if recursive).
  uint32_t push_cte_scope(Node with_clause, uint32_t parent, uint32_t count) {
    CteScope frame;
    frame.parent = parent;
    const bool recursive = with_clause["recursive"].boolean();
    uint32_t i = 0;
    for (Node cte = with_clause["ctes"].first(); cte; cte = cte.next(), ++i) {
      if (!recursive && i >= count) break;
      frame.names.push_back(cte.node_body()["ctename"].text());
    }
    scopes_.push_back(std::move(frame));
    return static_cast<uint32_t>(scopes_.size() - 1);
  }

  void push_cte_queries(Node with_clause, uint32_t outer, bool explain_only, std::vector<Pending>& stack) {
    uint32_t i = 0;
    for (Node cte = with_clause["ctes"].first(); cte; cte = cte.next(), ++i) {
      const uint32_t scope = push_cte_scope(with_clause, outer, i);
      for (Node child = cte.node_body().first(); child; child = child.next())
        if (child.is_object() || child.is_array()) stack.push_back({child, explain_only, scope});
    }
  }

  bool is_cte_name(std::string_view name, uint32_t scope) const {
    for (; scope != kNoScope; scope = scopes_[scope].parent)
      for (std::string_view cte : scopes_[scope].names)
        if (cte == name) return true;
    return false;
  }

  // The SELECTs whose output columns are the statement's result: the top-level one,
  // and the one PREPARE stores or EXPLAIN shows. A bare column in their target list is
  // `projected`. UNION arms (unwrapped larg/rarg) and subqueries are not.
  void note_projections(Node wrapped, bool top) {
    const std::string_view type = wrapped.node_type();
    const Node body = wrapped.node_body();
    if (type == "PrepareStmt" || type == "ExplainStmt") {
      projection_roots_.push_back(body["query"].index());
      return;
    }
    if (type != "SelectStmt" || body["intoClause"]) return;
    if (!top && std::find(projection_roots_.begin(), projection_roots_.end(), wrapped.index()) == projection_roots_.end())
      return;
    for (Node target = body["targetList"].first(); target; target = target.next()) {
      const Node value = target.node_body()["val"];
      if (value.node_type() == "ColumnRef") projected_.push_back(value.index());
    }
    // ORDER BY 2 / GROUP BY 2 work on an output column's real value, not the masked one.
    for (Node sort = body["sortClause"].first(); sort; sort = sort.next())
      if (sort.node_body()["node"].node_type() == "A_Const") s_.orders_by_position = true;
    for (Node group = body["groupClause"].first(); group; group = group.next())
      if (group.node_type() == "A_Const") s_.orders_by_position = true;
  }

  void column_ref(Node wrapped) {
    const Node body = wrapped.node_body();
    ColumnUse use;
    for (Node field = body["fields"].first(); field; field = field.next()) {
      if (field.node_type() == "A_Star") use.fields.emplace_back("*");
      else use.fields.emplace_back(field.node_body()["sval"].text());
    }
    use.location = static_cast<int>(body["location"].integer());
    use.projected = std::find(projected_.begin(), projected_.end(), wrapped.index()) != projected_.end();
    s_.columns.push_back(std::move(use));
  }

  void from_functions(Node range_function) {
    for (Node item = range_function["functions"].first(); item; item = item.next()) {
      for (Node part = item.node_body()["items"].first(); part; part = part.next()) {
        if (part.node_type() != "FuncCall") continue;
        FunctionRef ref;
        ref.name = name_from_list(part.node_body()["funcname"]);
        ref.location = static_cast<int>(part.node_body()["location"].integer());
        s_.from_functions.push_back(std::move(ref));
      }
    }
  }

  void relation(Node range_var, uint32_t scope) {
    RelationRef ref;
    ref.name = name_from_range_var(range_var);
    if (ref.name.schema.empty() && is_cte_name(ref.name.name, scope)) return;  // a CTE, not a table
    if (const Node alias = range_var["alias"]) {
      ref.alias = std::string(alias["aliasname"].text());
      ref.renames_columns = static_cast<bool>(alias["colnames"].first());
    }
    ref.location = static_cast<int>(range_var["location"].integer());
    ref.access = std::find(written_.begin(), written_.end(), range_var.index()) != written_.end() ? Access::write
                                                                                                   : Access::read;
    s_.relations.push_back(std::move(ref));
  }

  // A function named (not called) by DDL that makes it run later.
  void function_reference(Node named) {
    Node list = named;
    if (named.node_type() == "TypeName") list = named.node_body()["names"];
    else if (named.node_type() == "List") list = named.node_body()["items"];
    else if (named.is_object() && named["objname"]) list = named["objname"];
    FunctionRef ref;
    ref.name = name_from_list(list);
    if (!ref.name.name.empty()) s_.functions.push_back(std::move(ref));
  }

  void function_call(Node call) {
    FunctionRef ref;
    ref.name = name_from_list(call["funcname"]);
    ref.location = static_cast<int>(call["location"].integer());
    if (const EffectfulFunction* effect = effectful_function(ref.name)) {
      if (ref.name.name == "set_config") set_config_call(call, s_.settings);
      if (effect->kind != StatementKind::read || effect->facts != 0) {
        Operation op;
        op.kind = effect->kind;
        op.command = ref.name.name + "()";
        op.facts = effect->facts;
        s_.operations.push_back(std::move(op));
      }
    }
    s_.functions.push_back(std::move(ref));
  }

  StatementSummary& s_;
  std::vector<uint32_t> written_;  // node indexes of RangeVars the statement writes
  std::vector<uint32_t> projection_roots_;  // node indexes of SELECTs whose output is the result
  std::vector<uint32_t> projected_;         // node indexes of ColumnRefs that are whole output columns
  std::vector<CteScope> scopes_;
  bool writes_system_catalog_ = false;
};

}  // namespace

void classify(const ParseTree& tree, std::vector<StatementSummary>& out) {
  const Node statements = tree.root()["stmts"];
  for (Node raw = statements.first(); raw; raw = raw.next()) {
    const Node stmt = raw["stmt"];
    if (!stmt) continue;  // an empty statement between semicolons
    StatementSummary summary;
    summary.location = static_cast<int>(raw["stmt_location"].integer());
    Classifier(summary).statement(stmt);
    out.push_back(std::move(summary));
  }
}

std::vector<std::string> split_identifier_list(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  const size_t n = text.size();
  auto skip_space = [&] {
    while (i < n && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r')) ++i;
  };
  skip_space();
  if (i == n) return out;
  for (;;) {
    skip_space();
    std::string name;
    if (i < n && text[i] == '"') {
      ++i;
      for (;;) {
        if (i >= n) return {"\"unterminated"};  // not a valid list: a name no pattern allows
        if (text[i] == '"') {
          if (i + 1 < n && text[i + 1] == '"') {
            name += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        name += text[i++];
      }
    } else {
      while (i < n && text[i] != ',' && text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r')
        name += text[i++];
      name = lower(name);
    }
    out.push_back(std::move(name));
    skip_space();
    if (i >= n) break;
    if (text[i] != ',') return {"\"malformed"};
    ++i;
  }
  return out;
}

}  // namespace sluice::policy
