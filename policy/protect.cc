// check_protected(): the parse-tree half of masking (protect.h). Conservative by
// design: where sluice cannot prove a masked column's value leaves only through a
// bare output column (which the result masker rewrites), the statement is refused
// with a message naming the column, never forwarded on a guess.
#include "policy/protect.h"

#include <algorithm>
#include <array>
#include <string_view>

#include "policy/engine.h"

namespace sluice::policy {
namespace {

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

bool in_catalog_schema(const QualifiedName& name) { return name.schema.empty() || name.schema == "pg_catalog"; }

// Relations whose rows quote other tables' values or statements: column statistics
// (most common values, histograms), other sessions' query text, per-role settings,
// large objects.
bool side_channel_relation(const QualifiedName& name) {
  static constexpr std::array<std::string_view, 12> kNames = {
      "pg_stats",           "pg_stats_ext",        "pg_stats_ext_exprs", "pg_statistic",
      "pg_statistic_ext_data", "pg_stat_activity", "pg_stat_statements", "pg_stat_statements_info",
      "pg_db_role_setting", "pg_largeobject",      "pg_largeobject_metadata", "pg_user_mapping"};
  return std::find(kNames.begin(), kNames.end(), name.name) != kNames.end();
}

// Functions that run SQL given as text, reach other databases, read large objects,
// send values to listeners or show other sessions' statements.
bool side_channel_function(const QualifiedName& fn) {
  if (!in_catalog_schema(fn) && fn.schema != "public") return false;
  const std::string_view n = fn.name;
  static constexpr std::array<std::string_view, 6> kPrefixes = {"query_to_xml", "table_to_xml", "cursor_to_xml",
                                                                "schema_to_xml", "database_to_xml", "dblink"};
  for (std::string_view prefix : kPrefixes)
    if (n.substr(0, prefix.size()) == prefix) return true;
  if (n.substr(0, 3) == "lo_" || n == "loread" || n == "lowrite") return true;
  return n == "pg_notify" || n == "pg_stat_get_activity" || n == "pg_stat_statements" || n == "xmlexists" ||
         n == "xpath" || n == "xpath_exists";
}

// Built-in set-returning functions: their columns never come from a table.
bool builtin_row_source(const QualifiedName& fn) {
  if (!in_catalog_schema(fn)) return false;
  static constexpr std::array<std::string_view, 22> kNames = {
      "generate_series",       "generate_subscripts",    "unnest",
      "json_each",             "json_each_text",         "jsonb_each",
      "jsonb_each_text",       "json_array_elements",    "json_array_elements_text",
      "jsonb_array_elements",  "jsonb_array_elements_text", "json_to_record",
      "json_to_recordset",     "jsonb_to_record",        "jsonb_to_recordset",
      "json_object_keys",      "jsonb_object_keys",      "regexp_matches",
      "regexp_split_to_table", "string_to_table",        "pg_get_keywords",
      "pg_options_to_table"};
  return std::find(kNames.begin(), kNames.end(), fn.name) != kNames.end();
}

Decision refuse(std::string rule, std::string message, std::string hint, std::string sqlstate = "42501") {
  Decision d;
  d.action = Action::block;
  d.rule = std::move(rule);
  d.sqlstate = std::move(sqlstate);
  d.message = "statement blocked by sluice masking: " + std::move(message);
  d.hint = std::move(hint);
  return d;
}

constexpr const char* kBareHint =
    "masked columns may only be selected as bare columns (SELECT ssn FROM ...), where sluice masks their values; "
    "if you need more, ask the gateway's operator for an exempt group or a narrower masking rule";

// A relation of the statement that has masked columns, as the statement names it.
struct MaskedRelation {
  const RelationRef* ref;
  const std::vector<std::string>* columns;
  std::string resolved;  // "schema.relation"
};

class Checker {
 public:
  Checker(const ProtectedColumns& columns, const Subject& subject) : cols_(columns), subject_(subject) {}

  std::optional<Decision> statement(const StatementSummary& s) {
    masked_.clear();
    names_.clear();
    for (const FunctionRef& fn : s.functions)
      if (side_channel_function(fn.name))
        return refuse("masking-side-channel",
                      "function " + quoted(fn.name.display()) + " can carry masked values out of the database",
                      "masked identities cannot call it; ask the gateway's operator if you need it");
    for (const Operation& op : s.operations)
      if (op.command == "DO")
        return refuse("masking-side-channel", "a DO block's body cannot be analyzed for masked columns",
                      "run the statements themselves instead");
    for (const RelationRef& r : s.relations)
      if (auto refusal = relation(r)) return refusal;
    bool opaque_source = false;  // rows from a function whose columns sluice cannot tie to tables
    for (const FunctionRef& fn : s.from_functions)
      if (!builtin_row_source(fn.name)) opaque_source = true;
    if (opaque_source)
      for (const std::string& name : cols_.column_names) names_.push_back(&name);
    if (masked_.empty() && !opaque_source) return std::nullopt;
    for (const MaskedRelation& m : masked_) {
      if (m.ref->renames_columns)
        return refuse("masking-column-alias",
                      "relation " + quoted(m.resolved) + " has masked columns and its alias renames them",
                      "select its columns under their own names");
      for (const std::string& c : *m.columns) names_.push_back(&c);
    }
    for (const std::string& name : s.join_using)
      if (is_masked_name(name))
        return refuse("masked-column", "masked column " + quoted(name) + " is compared by JOIN ... USING", kBareHint);
    if (s.natural_join && !masked_.empty())
      return refuse("masked-column", "a NATURAL JOIN compares columns of " + quoted(masked_.front().resolved) +
                                         ", which has masked columns",
                    "name the join condition without masked columns");
    for (const ColumnUse& use : s.columns) {
      if (auto refusal = column(use, opaque_source)) return refusal;
      if (s.orders_by_position && use.projected && (is_masked_name(use.last()) || use.last() == "*"))
        return refuse("masked-column",
                      "the result is sorted or grouped by position, and a masked column is among its columns",
                      "sort or group by columns that are not masked");
    }
    return std::nullopt;
  }

 private:
  std::optional<Decision> relation(const RelationRef& r) {
    if (side_channel_relation(r.name))
      return refuse("masking-side-channel",
                    "relation " + quoted(r.name.display()) +
                        " shows values or statements of other tables and sessions (statistics, query text)",
                    "masked identities cannot read it; ask the gateway's operator if you need it");
    std::string resolved = resolve(r.name);
    if (resolved.empty()) {
      // Created or renamed since the catalog was read (or misspelled): sluice cannot
      // tell which of its columns are masked. Writing into it leaks nothing.
      if (r.access == Access::write) return std::nullopt;
      return refuse("masking-unknown-relation",
                    "relation " + quoted(r.name.display()) + " is not in sluice's catalog snapshot of target " +
                        quoted(subject_.target) + ", so sluice cannot tell which of its columns are masked",
                    "if the relation was just created, retry in a few seconds (sluice rereads the catalog after DDL); "
                    "otherwise check its name",
                    "55000");
    }
    if (auto it = cols_.relations.find(resolved); it != cols_.relations.end())
      masked_.push_back(MaskedRelation{&r, &it->second, std::move(resolved)});
    return std::nullopt;
  }

  // "schema.relation" for a name as PostgreSQL would find it (temporary schema, then
  // pg_catalog, then the pinned search_path); "" when the snapshot has no such relation.
  std::string resolve(const QualifiedName& name) const {
    auto known = [&](std::string_view schema) {
      std::string key = std::string(schema) + "." + name.name;
      return cols_.known_relations.count(key) ? key : std::string();
    };
    if (name.qualified()) return known(name.schema.rfind("pg_temp", 0) == 0 ? "pg_temp" : name.schema);
    for (std::string_view schema : {std::string_view("pg_temp"), std::string_view("pg_catalog")})
      if (std::string key = known(schema); !key.empty()) return key;
    for (const std::string& schema : subject_.search_path)
      if (std::string key = known(schema); !key.empty()) return key;
    return {};
  }

  std::optional<Decision> column(const ColumnUse& use, bool opaque_source) const {
    const std::string_view last = use.last();
    if (last == "*") {
      const bool qualified = use.fields.size() >= 2;
      const std::string_view qualifier = qualified ? std::string_view(use.fields[use.fields.size() - 2]) : "";
      if (use.projected && !(opaque_source && !qualified)) return std::nullopt;
      if (qualified ? names_masked_relation(qualifier) : (!masked_.empty() || opaque_source))
        return refuse("masked-column",
                      std::string(qualified ? quoted(std::string(qualifier) + ".*") : "*") +
                          " here carries masked columns' values" +
                          (use.projected ? " from a function sluice cannot see into" : " outside a bare select list"),
                      kBareHint);
      return std::nullopt;
    }
    if (use.fields.size() == 1 && !is_masked_name(last) && names_masked_relation(last))
      return refuse("masked-column",
                    "the whole-row value " + quoted(last) + " carries the masked columns of " + quoted(last),
                    kBareHint);
    if (is_masked_name(last) && !use.projected)
      return refuse("masked-column",
                    "masked column " + quoted(last) +
                        " is used outside a bare select list (in an expression, a condition, an ordering, a "
                        "subquery, RETURNING, COPY or a write)",
                    kBareHint);
    return std::nullopt;
  }

  bool is_masked_name(std::string_view name) const {
    return std::any_of(names_.begin(), names_.end(), [&](const std::string* n) { return *n == name; });
  }

  bool names_masked_relation(std::string_view name) const {
    return std::any_of(masked_.begin(), masked_.end(),
                       [&](const MaskedRelation& m) { return m.ref->alias == name || m.ref->name.name == name; });
  }

  const ProtectedColumns& cols_;
  const Subject& subject_;
  std::vector<MaskedRelation> masked_;
  std::vector<const std::string*> names_;  // masked column names in scope of the statement
};

}  // namespace

std::optional<Decision> check_protected(const ProtectedColumns& columns, const Subject& subject,
                                        const std::vector<StatementSummary>& statements) {
  if (!columns.ready)
    return refuse("masking-unavailable",
                  "sluice cannot read the catalog of target " + quoted(subject.target) +
                      ", so it cannot tell which columns to mask (" + columns.unavailable + ")",
                  "retry in a moment; if this persists, the gateway's operator should check sluiced's log",
                  "55000");
  Checker checker(columns, subject);
  for (const StatementSummary& s : statements)
    if (auto refusal = checker.statement(s)) return refusal;
  return std::nullopt;
}

}  // namespace sluice::policy
