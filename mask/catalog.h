// Which result columns the column rules mask, by the catalog's identity of a column
// (relation OID + attribute number, what RowDescription carries), so `SELECT ssn AS x`
// is masked like `SELECT ssn`. One Catalog per process: a background thread reads each
// target's catalog over a sluice-owned libpq connection (with the target's own
// credentials, read-only), matches the column rules, resolves views to the base
// columns they expose, and publishes an immutable TargetCatalog per target. It rereads
// after DDL passes through sluice, when a result names a relation it does not know,
// and every catalog_refresh_seconds.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "mask/config.h"
#include "policy/protect.h"
#include "protocol/settings.h"

namespace sluice::mask {

// One column of a relation, as the loader reads it from pg_attribute.
struct CatalogColumn {
  uint32_t relid = 0;
  std::string schema;
  std::string relation;
  char relkind = 'r';  // r table, p partitioned, v view, m materialized view, f foreign table, S sequence
  int16_t attnum = 0;  // 0: a relation without columns (listed so it is known)
  std::string column;
};

// A view (or materialized view) output column and where PostgreSQL says its value
// comes from: a base column, or (origin_relid 0) an expression.
struct ViewColumn {
  uint32_t view = 0;
  int16_t attnum = 0;
  uint32_t origin_relid = 0;
  int16_t origin_attnum = 0;
};

// A column of a relation that a view's definition reads (pg_depend of its rewrite rule).
struct ViewDependency {
  uint32_t view = 0;
  uint32_t relid = 0;
  int16_t attnum = 0;
};

struct MaskedColumn {
  std::string schema;
  std::string relation;
  std::string column;
  uint32_t rule = 0;  // index into the Masking's column_rules this catalog was built with
};

// One target's catalog as matched against the column rules. Immutable once published.
struct TargetCatalog {
  std::shared_ptr<const Masking> masking;  // whose column_rules `MaskedColumn::rule` indexes
  bool loaded = false;                      // false: never read successfully
  std::string error;                        // the last read's failure ("" after a success)
  std::unordered_map<uint64_t, uint32_t> by_attribute;  // key(relid, attnum) -> index into `columns`
  std::vector<MaskedColumn> columns;
  std::unordered_set<uint32_t> relids;       // every relation read
  std::unordered_set<std::string> relations; // "schema.relation" of every relation read

  static uint64_t key(uint32_t relid, int16_t attnum) {
    return uint64_t{relid} << 16 | static_cast<uint16_t>(attnum);
  }
  const MaskedColumn* find(uint32_t relid, int16_t attnum) const {
    auto it = by_attribute.find(key(relid, attnum));
    return it == by_attribute.end() ? nullptr : &columns[it->second];
  }
  const ColumnRule& rule_of(const MaskedColumn& c) const { return masking->config.column_rules[c.rule]; }
};

// Matches the rules that apply to `target` against the columns (first rule wins),
// then masks each view column whose origin is a masked column, and each expression
// column of a view that reads a masked column (its value may be derived from it),
// repeating for views of views. The view inputs may be partial: views not described
// get only the expression rule through their dependencies.
std::shared_ptr<TargetCatalog> build_target_catalog(std::shared_ptr<const Masking> masking, std::string_view target,
                                                    const std::vector<CatalogColumn>& columns,
                                                    const std::vector<ViewColumn>& view_columns,
                                                    const std::vector<ViewDependency>& dependencies);

// Policy's summary of a target catalog for an identity in `groups`.
std::shared_ptr<const policy::ProtectedColumns> protected_columns_for(const TargetCatalog& catalog,
                                                                     const std::vector<std::string>& groups,
                                                                     uint64_t version);

// True when some column rule applies to `target` for an identity in `groups`.
bool column_rules_apply(const Masking& masking, std::string_view target, const std::vector<std::string>& groups);

class Catalog final : public policy::ProtectedColumnsSource {
 public:
  explicit Catalog(const protocol::Settings& settings);
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  // The masking whose column rules apply (startup and every reload): every target's
  // catalog is reread. Targets without a rule are not read at all.
  void install(std::shared_ptr<const Masking> masking);
  // Reads every target that has rules once, on this thread (bounded by the connect
  // timeout), then keeps them current from a background thread.
  void start();
  void stop();

  // DDL passed through sluice, or a result named a relation the snapshot lacks.
  void invalidate(std::string_view target) override;

  // Bumped by every publish.
  uint64_t version() const override { return version_.load(std::memory_order_acquire); }
  // The target's current catalog; null when no column rule applies to the target.
  std::shared_ptr<const TargetCatalog> target(std::string_view name) const;
  // The masked columns of an identity in `groups` on `target` (null: none apply).
  std::shared_ptr<const policy::ProtectedColumns> protected_columns(std::string_view target,
                                                                    const std::vector<std::string>& groups) override;

 private:
  struct Slot {
    std::shared_ptr<const TargetCatalog> catalog;
    std::chrono::steady_clock::time_point due{};  // next read
    std::chrono::steady_clock::time_point last_read{};
    bool wanted = false;                           // some rule applies to this target
  };
  void run();
  void read_due(bool all);
  std::shared_ptr<TargetCatalog> read(const protocol::Target& target, const std::shared_ptr<const Masking>& masking);

  const protocol::Settings& settings_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::shared_ptr<const Masking> masking_;
  std::vector<Slot> slots_;  // parallel to settings_.targets
  std::unordered_map<std::string, std::shared_ptr<const policy::ProtectedColumns>> protected_cache_;
  std::atomic<uint64_t> version_{1};
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace sluice::mask
