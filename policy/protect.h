// Closing the ways around masking (docs/masking.md, "What masked identities may not
// run"). Rewriting result values only works for a masked column that leaves as a bare
// output column: `ssn || ''`, `encode(ssn::bytea, 'base64')`, `row_to_json(c)`,
// `WHERE ssn LIKE '1%'` (an oracle), COPY, RETURNING or a subquery would carry its
// value (or facts about it) out in a form no column rule sees. So, for an identity
// with masked columns on its target, a statement is refused when it uses one anywhere
// else, uses a whole row or `*` of a relation that has one outside a bare projection,
// reads a relation sluice's catalog snapshot does not know (it may expose anything),
// or reaches a side channel (pg_stats, pg_stat_activity, query_to_xml, dblink, ...).
//
// The masked columns come from mask/catalog.h (the target's catalog matched against
// the column rules, exempt groups already applied); policy only reads this summary.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "policy/statement.h"

namespace sluice::policy {

struct Decision;
struct Subject;

// The masked columns of one identity on one target. Immutable once built.
struct ProtectedColumns {
  // Changes whenever the content may have (a catalog refresh, a reload).
  uint64_t version = 0;
  // false: the target's catalog could not be read, so nothing is known about which
  // columns are masked: every statement is refused (with `unavailable` as the reason).
  bool ready = true;
  std::string unavailable;
  // "schema.relation" as the catalog spells it -> its masked columns (tables, views,
  // materialized views and foreign tables; a view column that exposes a masked column
  // is masked itself).
  std::unordered_map<std::string, std::vector<std::string>> relations;
  // Every relation in the catalog snapshot, "schema.relation"; relations in any
  // session's temporary schema are listed as "pg_temp.relation" too.
  std::unordered_set<std::string> known_relations;
  // Every masked column name (for references sluice cannot tie to one relation).
  std::unordered_set<std::string> column_names;
};

// Where sessions get their ProtectedColumns (mask::Catalog); policy does not read
// catalogs itself. Thread-safe: every shard's sessions ask.
class ProtectedColumnsSource {
 public:
  virtual ~ProtectedColumnsSource() = default;
  // Changes whenever protected_columns() may answer differently.
  virtual uint64_t version() const = 0;
  // null: no column is masked for this identity on this target.
  virtual std::shared_ptr<const ProtectedColumns> protected_columns(std::string_view target,
                                                                    const std::vector<std::string>& groups) = 0;
  // DDL is about to run, or a statement named a relation the snapshot lacks: reread.
  virtual void invalidate(std::string_view target) = 0;
};

// The refusal for `statements` under `columns`, or nothing when they may run.
std::optional<Decision> check_protected(const ProtectedColumns& columns, const Subject& subject,
                                        const std::vector<StatementSummary>& statements);

}  // namespace sluice::policy
