// The catalog reader (catalog.h). Matching and view resolution are pure functions of
// what was read, so they are tested without a database; the libpq part only reads.
#include "mask/catalog.h"

#include <libpq-fe.h>

#include <algorithm>
#include <charconv>

#include "core/log.h"

namespace sluice::mask {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kRetryAfterFailure = std::chrono::seconds(2);
// DDL is judged before it runs: reread a little later, when it has most likely committed
// (and again at the next periodic refresh).
constexpr auto kAfterDdl = std::chrono::milliseconds(300);
constexpr int kMaxViewRounds = 8;  // views of views of views...
// Rereads asked for by sessions come at most this often per target, so a relation the
// catalog query cannot list does not turn every result into a catalog read.
constexpr auto kMinInvalidatedInterval = std::chrono::seconds(1);

class Builder {
 public:
  Builder(std::shared_ptr<const Masking> masking, std::string_view target) {
    catalog_ = std::make_shared<TargetCatalog>();
    catalog_->masking = std::move(masking);
    catalog_->loaded = true;
    const auto& rules = catalog_->masking->config.column_rules;
    for (uint32_t i = 0; i < rules.size(); ++i)
      if (rules[i].applies_to_target(target)) applicable_.push_back(i);
  }

  void columns(const std::vector<CatalogColumn>& columns) {
    const auto& rules = catalog_->masking->config.column_rules;
    for (const CatalogColumn& c : columns) {
      catalog_->relids.insert(c.relid);
      catalog_->relations.insert(c.schema + "." + c.relation);
      // Temporary tables live in pg_temp_N; a statement names them through pg_temp.
      if (c.schema.rfind("pg_temp_", 0) == 0) catalog_->relations.insert("pg_temp." + c.relation);
      if (c.attnum <= 0) continue;
      by_key_.emplace(TargetCatalog::key(c.relid, c.attnum), &c);
      for (uint32_t r : applicable_) {
        if (!rules[r].matches(c.schema, c.relation, c.column)) continue;
        add(c, r);
        break;
      }
    }
  }

  void views(const std::vector<ViewColumn>& view_columns, const std::vector<ViewDependency>& dependencies) {
    for (int round = 0; round < kMaxViewRounds; ++round) {
      bool changed = false;
      for (const ViewColumn& v : view_columns) {
        if (v.origin_relid == 0 || catalog_->find(v.view, v.attnum)) continue;
        if (const MaskedColumn* origin = catalog_->find(v.origin_relid, v.origin_attnum))
          changed |= add_key(v.view, v.attnum, origin->rule);
      }
      for (const ViewDependency& d : dependencies) {
        const MaskedColumn* read = catalog_->find(d.relid, d.attnum);
        if (read == nullptr) continue;
        const uint32_t rule = read->rule;
        for (const ViewColumn& v : view_columns)
          if (v.view == d.view && v.origin_relid == 0 && !catalog_->find(v.view, v.attnum))
            changed |= add_key(v.view, v.attnum, rule);
      }
      if (!changed) break;
    }
  }

  std::shared_ptr<TargetCatalog> take() { return std::move(catalog_); }

 private:
  bool add_key(uint32_t relid, int16_t attnum, uint32_t rule) {
    auto it = by_key_.find(TargetCatalog::key(relid, attnum));
    if (it == by_key_.end()) return false;
    add(*it->second, rule);
    return true;
  }

  void add(const CatalogColumn& c, uint32_t rule) {
    const uint64_t key = TargetCatalog::key(c.relid, c.attnum);
    if (catalog_->by_attribute.count(key)) return;
    catalog_->by_attribute.emplace(key, static_cast<uint32_t>(catalog_->columns.size()));
    catalog_->columns.push_back(MaskedColumn{c.schema, c.relation, c.column, rule});
  }

  std::shared_ptr<TargetCatalog> catalog_;
  std::vector<uint32_t> applicable_;
  std::unordered_map<uint64_t, const CatalogColumn*> by_key_;
};

// --- libpq ---------------------------------------------------------------

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;
using Result = std::unique_ptr<PGresult, ResultDeleter>;

std::string one_line(const char* message) {
  std::string out(message ? message : "");
  for (char& c : out)
    if (c == '\n' || c == '\r') c = ' ';
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

template <typename T>
T number(const PGresult* r, int row, int column) {
  const char* text = PQgetvalue(r, row, column);
  T value{};
  std::from_chars(text, text + std::char_traits<char>::length(text), value);
  return value;
}

constexpr const char* kColumnsQuery =
    "SELECT c.oid, n.nspname, c.relname, c.relkind, coalesce(a.attnum, 0), coalesce(a.attname, '') "
    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
    "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND n.nspname NOT LIKE 'pg\\_toast%'";

// Columns of relations that each view's (or materialized view's) rewrite rule reads.
constexpr const char* kDependenciesQuery =
    "SELECT DISTINCT r.ev_class, d.refobjid, d.refobjsubid FROM pg_catalog.pg_rewrite r "
    "JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid "
    "AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjsubid > 0 "
    "WHERE r.ev_class <> d.refobjid";

void describe_view(PGconn* conn, uint32_t view, const std::vector<CatalogColumn>& columns,
                            std::vector<ViewColumn>& out) {
  const std::string oid = std::to_string(view);
  const char* params[] = {oid.c_str()};
  Result def(PQexecParams(conn, "SELECT pg_catalog.pg_get_viewdef($1::pg_catalog.oid)", 1, nullptr, params, nullptr,
                          nullptr, 0));
  bool ok = PQresultStatus(def.get()) == PGRES_TUPLES_OK && PQntuples(def.get()) == 1 && !PQgetisnull(def.get(), 0, 0);
  if (ok) {
    Result prepared(PQprepare(conn, "", PQgetvalue(def.get(), 0, 0), 0, nullptr));
    ok = PQresultStatus(prepared.get()) == PGRES_COMMAND_OK;
  }
  Result described;
  if (ok) {
    described.reset(PQdescribePrepared(conn, ""));
    ok = PQresultStatus(described.get()) == PGRES_COMMAND_OK;
  }
  if (ok) {
    for (int i = 0; i < PQnfields(described.get()); ++i)
      out.push_back(ViewColumn{view, static_cast<int16_t>(i + 1), PQftable(described.get(), i),
                               static_cast<int16_t>(PQftablecol(described.get(), i))});
    return;
  }
  // The definition could not be described: every column of the view counts as an
  // expression over what it reads, so each is masked if it reads a masked column.
  LOG_WARN("masking: could not describe view %u (%s); all its columns are masked", view,
           one_line(PQerrorMessage(conn)).c_str());
  for (const CatalogColumn& c : columns)
    if (c.relid == view && c.attnum > 0) out.push_back(ViewColumn{view, c.attnum, 0, 0});
}

}  // namespace

std::shared_ptr<TargetCatalog> build_target_catalog(std::shared_ptr<const Masking> masking, std::string_view target,
                                                    const std::vector<CatalogColumn>& columns,
                                                    const std::vector<ViewColumn>& view_columns,
                                                    const std::vector<ViewDependency>& dependencies) {
  Builder builder(std::move(masking), target);
  builder.columns(columns);
  builder.views(view_columns, dependencies);
  return builder.take();
}

std::shared_ptr<const policy::ProtectedColumns> protected_columns_for(const TargetCatalog& catalog,
                                                                     const std::vector<std::string>& groups,
                                                                     uint64_t version) {
  auto p = std::make_shared<policy::ProtectedColumns>();
  p->version = version;
  p->ready = catalog.loaded;
  p->unavailable = catalog.error.empty() ? "the catalog has not been read yet" : catalog.error;
  p->known_relations = catalog.relations;
  for (const MaskedColumn& c : catalog.columns) {
    if (catalog.rule_of(c).exempts(groups)) continue;
    auto& columns = p->relations[c.schema + "." + c.relation];
    if (std::find(columns.begin(), columns.end(), c.column) == columns.end()) columns.push_back(c.column);
    p->column_names.insert(c.column);
    if (c.schema.rfind("pg_temp_", 0) == 0) p->relations["pg_temp." + c.relation].push_back(c.column);
  }
  return p;
}

bool column_rules_apply(const Masking& masking, std::string_view target, const std::vector<std::string>& groups) {
  const auto& rules = masking.config.column_rules;
  return std::any_of(rules.begin(), rules.end(),
                     [&](const ColumnRule& r) { return r.applies_to_target(target) && !r.exempts(groups); });
}

// ---------------------------------------------------------------------------
// Catalog

Catalog::Catalog(const protocol::Settings& settings) : settings_(settings), slots_(settings.targets.size()) {}

Catalog::~Catalog() { stop(); }

void Catalog::install(std::shared_ptr<const Masking> masking) {
  std::lock_guard lock(mutex_);
  masking_ = std::move(masking);
  for (size_t i = 0; i < slots_.size(); ++i) {
    const std::string& name = settings_.targets[i].name;
    const bool wanted = masking_ && masking_->config.enabled &&
                        std::any_of(masking_->config.column_rules.begin(), masking_->config.column_rules.end(),
                                    [&](const ColumnRule& r) { return r.applies_to_target(name); });
    slots_[i].wanted = wanted;
    slots_[i].due = Clock::now();
    if (!wanted) {
      slots_[i].catalog = nullptr;
    } else {
      // Wanted but not read under these rules (never, or they were reloaded): an empty
      // snapshot that refuses, rather than old columns under the new rules' indexes.
      auto pending = std::make_shared<TargetCatalog>();
      pending->masking = masking_;
      if (slots_[i].catalog) pending->error = "the masking rules were reloaded and the catalog is being reread";
      slots_[i].catalog = std::move(pending);
    }
  }
  protected_cache_.clear();
  version_.fetch_add(1, std::memory_order_acq_rel);
  wake_.notify_all();
}

void Catalog::start() {
  read_due(true);
  std::lock_guard lock(mutex_);
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void Catalog::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Catalog::invalidate(std::string_view target) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (settings_.targets[i].name != target || !slots_[i].wanted) continue;
    const auto soon = std::max(Clock::now() + kAfterDdl, slots_[i].last_read + kMinInvalidatedInterval);
    if (slots_[i].due > soon) slots_[i].due = soon;
  }
  wake_.notify_all();
}

std::shared_ptr<const TargetCatalog> Catalog::target(std::string_view name) const {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < slots_.size(); ++i)
    if (settings_.targets[i].name == name) {
      return slots_[i].wanted ? slots_[i].catalog : nullptr;  // wanted: at least the unread snapshot install() left
    }
  return nullptr;
}

std::shared_ptr<const policy::ProtectedColumns> Catalog::protected_columns(std::string_view target_name,
                                                                           const std::vector<std::string>& groups) {
  std::shared_ptr<const TargetCatalog> catalog = target(target_name);
  if (!catalog || !catalog->masking || !column_rules_apply(*catalog->masking, target_name, groups)) return nullptr;
  const uint64_t v = version();
  std::string key(target_name);
  for (const std::string& g : groups) key += '\0' + g;
  std::lock_guard lock(mutex_);
  auto it = protected_cache_.find(key);
  if (it != protected_cache_.end() && it->second->version == v) return it->second;
  auto built = protected_columns_for(*catalog, groups, v);
  protected_cache_[key] = built;
  return built;
}

void Catalog::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    auto next = Clock::now() + std::chrono::seconds(3600);
    for (const Slot& s : slots_)
      if (s.wanted) next = std::min(next, s.due);
    wake_.wait_until(lock, next);
    if (stopping_) break;
    lock.unlock();
    read_due(false);
    lock.lock();
  }
}

void Catalog::read_due(bool all) {
  for (size_t i = 0; i < slots_.size(); ++i) {
    std::shared_ptr<const Masking> masking;
    {
      std::lock_guard lock(mutex_);
      if (!slots_[i].wanted || (!all && slots_[i].due > Clock::now())) continue;
      masking = masking_;
      slots_[i].last_read = Clock::now();
      slots_[i].due = slots_[i].last_read + std::chrono::seconds(masking->config.catalog_refresh_seconds);
    }
    std::shared_ptr<TargetCatalog> fresh = read(settings_.targets[i], masking);
    std::lock_guard lock(mutex_);
    if (masking != masking_) continue;  // a reload came in meanwhile; it scheduled a reread
    if (!fresh->loaded) {
      // Keep what was known (the columns do not unmask because the target is down),
      // and say why the latest read failed; retry soon.
      if (slots_[i].catalog && slots_[i].catalog->loaded) {
        auto stale = std::make_shared<TargetCatalog>(*slots_[i].catalog);
        stale->error = fresh->error;
        fresh = std::move(stale);
      }
      slots_[i].due = Clock::now() + kRetryAfterFailure;
    }
    slots_[i].catalog = std::move(fresh);
    protected_cache_.clear();
    version_.fetch_add(1, std::memory_order_acq_rel);
  }
}

std::shared_ptr<TargetCatalog> Catalog::read(const protocol::Target& target,
                                             const std::shared_ptr<const Masking>& masking) {
  auto failed = [&](std::string why) {
    auto c = std::make_shared<TargetCatalog>();
    c->masking = masking;
    c->error = "reading the catalog of target \"" + target.name + "\" failed: " + why;
    LOG_WARN("masking: %s", c->error.c_str());
    return c;
  };
  const std::string port = std::to_string(target.port);
  const std::string& password = target.password.reveal();
  // The metadata connection crosses the same network as the sessions: same TLS rules.
  static constexpr const char* kSslModes[] = {"disable", "prefer", "require", "verify-ca", "verify-full"};
  const char* sslmode = kSslModes[static_cast<int>(target.sslmode)];
  auto optional = [](const std::string& text) { return text.empty() ? nullptr : text.c_str(); };
  const char* keys[] = {"host",    "port",        "dbname",  "user",   "password", "connect_timeout", "application_name",
                        "options", "sslmode",     "sslrootcert", "sslcert", "sslkey", nullptr};
  const char* values[] = {target.host.c_str(),
                          port.c_str(),
                          target.database.c_str(),
                          target.user.c_str(),
                          password.empty() ? nullptr : password.c_str(),
                          "5",
                          "sluice-catalog",
                          "-c default_transaction_read_only=on -c statement_timeout=30000",
                          sslmode,
                          optional(target.sslrootcert),
                          optional(target.sslcert),
                          optional(target.sslkey),
                          nullptr};
  Conn conn(PQconnectdbParams(keys, values, 0));
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK) return failed(one_line(PQerrorMessage(conn.get())));

  std::vector<CatalogColumn> columns;
  {
    Result r(PQexecParams(conn.get(), kColumnsQuery, 0, nullptr, nullptr, nullptr, nullptr, 0));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) return failed(one_line(PQresultErrorMessage(r.get())));
    const int rows = PQntuples(r.get());
    columns.reserve(static_cast<size_t>(rows));
    for (int i = 0; i < rows; ++i) {
      CatalogColumn c;
      c.relid = number<uint32_t>(r.get(), i, 0);
      c.schema = PQgetvalue(r.get(), i, 1);
      c.relation = PQgetvalue(r.get(), i, 2);
      c.relkind = PQgetvalue(r.get(), i, 3)[0];
      c.attnum = number<int16_t>(r.get(), i, 4);
      c.column = PQgetvalue(r.get(), i, 5);
      columns.push_back(std::move(c));
    }
  }
  std::vector<ViewDependency> dependencies;
  {
    Result r(PQexecParams(conn.get(), kDependenciesQuery, 0, nullptr, nullptr, nullptr, nullptr, 0));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) return failed(one_line(PQresultErrorMessage(r.get())));
    for (int i = 0; i < PQntuples(r.get()); ++i)
      dependencies.push_back(
          ViewDependency{number<uint32_t>(r.get(), i, 0), number<uint32_t>(r.get(), i, 1), number<int16_t>(r.get(), i, 2)});
  }

  // Views that read a masked column: ask PostgreSQL where each of their output columns
  // comes from by describing the view's definition (parse analysis only; nothing runs).
  std::vector<ViewColumn> view_columns;
  std::unordered_set<uint32_t> described;
  std::shared_ptr<TargetCatalog> built;
  for (int round = 0; round <= kMaxViewRounds; ++round) {
    built = build_target_catalog(masking, target.name, columns, view_columns, dependencies);
    std::vector<uint32_t> todo;
    for (const ViewDependency& d : dependencies)
      if (!described.count(d.view) && built->find(d.relid, d.attnum) &&
          std::find(todo.begin(), todo.end(), d.view) == todo.end())
        todo.push_back(d.view);
    if (todo.empty() || round == kMaxViewRounds) break;
    for (uint32_t view : todo) {
      described.insert(view);
      describe_view(conn.get(), view, columns, view_columns);
    }
  }
  return built;
}

}  // namespace sluice::mask
