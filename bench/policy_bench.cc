// What judging one SQL text costs a shard: the whole Engine::judge() path with and
// without the decision cache, and its stages (guard, libpg_query parse + JSON load,
// classify, evaluate) alone, for statements from a pgbench-sized SELECT to ~20 KB.
#include <benchmark/benchmark.h>
#include <pg_query.h>

#include <charconv>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "policy/engine.h"
#include "policy/parse_tree.h"
#include "policy/sql_guard.h"
#include "policy/statement.h"

namespace {

using namespace sluice::policy;

// pgbench -S's statement, as the builtin select-only script sends it.
const std::string kShortSelect = "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;";

// An agent's reporting query: five tables, WHERE, GROUP BY, ORDER BY, LIMIT.
const std::string kJoin5 =
    "SELECT c.name, p.category, count(*) AS orders, sum(oi.quantity * oi.unit_price) AS revenue\n"
    "FROM customers c\n"
    "JOIN orders o ON o.customer_id = c.id\n"
    "JOIN order_items oi ON oi.order_id = o.id\n"
    "JOIN products p ON p.id = oi.product_id\n"
    "JOIN suppliers s ON s.id = p.supplier_id\n"
    "WHERE o.created_at >= now() - interval '30 days' AND s.country = 'DE' AND o.status IN ('paid', 'shipped')\n"
    "GROUP BY c.name, p.category\n"
    "ORDER BY revenue DESC\n"
    "LIMIT 20;";

// A deterministic pseudo-random sequence (no <random>: same text on every libstdc++).
struct Lcg {
  uint64_t state;
  uint32_t next() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33);
  }
};

// INSERT of 100 rows into pgbench_history.
std::string insert_100_rows() {
  Lcg rng{1};
  std::string sql = "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES\n";
  for (int i = 0; i < 100; ++i) {
    if (i) sql += ",\n";
    sql += "(" + std::to_string(rng.next() % 100 + 1) + ", " + std::to_string(rng.next() % 10 + 1) + ", " +
           std::to_string(rng.next() % 1000000 + 1) + ", " + std::to_string(static_cast<int>(rng.next() % 10001) - 5000) +
           ", '2026-11-22 07:" + std::to_string(10 + i % 50) + ":00')";
  }
  sql += ";";
  return sql;
}

// ~20 KB: 40 CASE expressions of five WHENs each, then an IN list of constants.
std::string large_query() {
  Lcg rng{2};
  std::string sql = "SELECT aid, bid, abalance";
  for (int k = 0; k < 40; ++k) {
    sql += ",\n  CASE";
    for (int w = 0; w < 5; ++w)
      sql += " WHEN abalance < " + std::to_string(static_cast<int>(rng.next() % 20000) - 10000) + " THEN 'band_" +
             std::to_string(k) + "_" + std::to_string(w) + "'";
    sql += " ELSE 'other' END AS band_" + std::to_string(k);
  }
  sql += "\nFROM pgbench_accounts\nWHERE aid IN (";
  for (int i = 0; sql.size() < 20000 - 32; ++i) {
    if (i) sql += ", ";
    sql += std::to_string(rng.next() % 1000000 + 1);
  }
  sql += ")\nORDER BY aid;";
  return sql;
}

const std::string kInsert100 = insert_100_rows();
const std::string kLarge = large_query();

std::shared_ptr<Policy> agent_policy(uint32_t cache_entries) {
  auto policy = std::make_shared<Policy>();
  policy->decision_cache_entries = cache_entries;
  Group group;
  group.name = "agents";
  group.targets = {"*"};
  group.access = AccessMode::read_write;
  group.packs = {"agent-default"};
  policy->groups.push_back(std::move(group));
  return policy;
}

Subject agent_subject() {
  Subject subject;
  subject.user = "agent";
  subject.groups = {"agents"};
  subject.target = "app";
  subject.search_path = {"public"};
  return subject;
}

void set_rates(benchmark::State& state, size_t sql_bytes) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * sql_bytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}

// guard -> parse -> classify -> evaluate on every call (decision_cache_entries = 0).
void BM_JudgeUncached(benchmark::State& state, const std::string* sql) {
  Engine engine(agent_policy(0));
  Subject subject = agent_subject();
  if (!engine.judge(subject, *sql).allowed()) {
    state.SkipWithError(("not allowed: " + engine.judge(subject, *sql).message).c_str());
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(&engine.judge(subject, *sql));
  set_rates(state, sql->size());
}
BENCHMARK_CAPTURE(BM_JudgeUncached, short_select, &kShortSelect);
BENCHMARK_CAPTURE(BM_JudgeUncached, join5, &kJoin5);
BENCHMARK_CAPTURE(BM_JudgeUncached, insert100, &kInsert100);
BENCHMARK_CAPTURE(BM_JudgeUncached, large20k, &kLarge)->Unit(benchmark::kMicrosecond);

// Stage 1: the linear guard scan.
void BM_Guard(benchmark::State& state, const std::string* sql) {
  const SqlLimits limits;
  if (guard_sql(*sql, limits).result != GuardResult::ok) {
    state.SkipWithError("guard refused the statement");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(guard_sql(*sql, limits));
  set_rates(state, sql->size());
}
BENCHMARK_CAPTURE(BM_Guard, short_select, &kShortSelect);
BENCHMARK_CAPTURE(BM_Guard, join5, &kJoin5);
BENCHMARK_CAPTURE(BM_Guard, insert100, &kInsert100);
BENCHMARK_CAPTURE(BM_Guard, large20k, &kLarge);

// Stage 2: libpg_query's parse to JSON, then loading the JSON into the ParseTree.
void BM_Parse(benchmark::State& state, const std::string* sql) {
  ParseTree tree;
  SqlSyntaxError error;
  for (auto _ : state) {
    if (!tree.parse(*sql, error)) {
      state.SkipWithError(error.message.c_str());
      break;
    }
  }
  state.counters["tree_nodes"] = static_cast<double>(tree.node_count());
  set_rates(state, sql->size());
}
BENCHMARK_CAPTURE(BM_Parse, short_select, &kShortSelect);
BENCHMARK_CAPTURE(BM_Parse, join5, &kJoin5);
BENCHMARK_CAPTURE(BM_Parse, insert100, &kInsert100);
BENCHMARK_CAPTURE(BM_Parse, large20k, &kLarge)->Unit(benchmark::kMicrosecond);

// Stage 2 split: libpg_query alone (raw parse + printing the tree as JSON)...
void BM_PgQueryParseJson(benchmark::State& state, const std::string* sql) {
  size_t json_bytes = 0;
  for (auto _ : state) {
    PgQueryParseResult result = pg_query_parse(sql->c_str());
    if (result.error != nullptr) state.SkipWithError(result.error->message);
    json_bytes = result.parse_tree != nullptr ? std::char_traits<char>::length(result.parse_tree) : 0;
    pg_query_free_parse_result(result);
  }
  state.counters["json_bytes"] = static_cast<double>(json_bytes);
  set_rates(state, sql->size());
}
BENCHMARK_CAPTURE(BM_PgQueryParseJson, short_select, &kShortSelect);
BENCHMARK_CAPTURE(BM_PgQueryParseJson, join5, &kJoin5);
BENCHMARK_CAPTURE(BM_PgQueryParseJson, insert100, &kInsert100);
BENCHMARK_CAPTURE(BM_PgQueryParseJson, large20k, &kLarge)->Unit(benchmark::kMicrosecond);

// ...and ParseTree::load_json alone on libpg_query's output (bytes/s are JSON bytes).
void BM_LoadJson(benchmark::State& state, const std::string* sql) {
  PgQueryParseResult result = pg_query_parse(sql->c_str());
  if (result.error != nullptr || result.parse_tree == nullptr) {
    state.SkipWithError("libpg_query refused the statement");
    pg_query_free_parse_result(result);
    return;
  }
  const std::string json = result.parse_tree;
  pg_query_free_parse_result(result);
  ParseTree tree;
  for (auto _ : state)
    if (!tree.load_json(json)) state.SkipWithError("load_json failed");
  set_rates(state, json.size());
}
BENCHMARK_CAPTURE(BM_LoadJson, short_select, &kShortSelect);
BENCHMARK_CAPTURE(BM_LoadJson, join5, &kJoin5);
BENCHMARK_CAPTURE(BM_LoadJson, insert100, &kInsert100);
BENCHMARK_CAPTURE(BM_LoadJson, large20k, &kLarge);

// Stage 3: walking the parse tree into StatementSummary (the engine reuses the vector).
void BM_Classify(benchmark::State& state, const std::string* sql) {
  ParseTree tree;
  SqlSyntaxError error;
  if (!tree.parse(*sql, error)) {
    state.SkipWithError(error.message.c_str());
    return;
  }
  std::vector<StatementSummary> statements;
  for (auto _ : state) {
    statements.clear();
    classify(tree, statements);
    benchmark::DoNotOptimize(statements.data());
  }
  set_rates(state, sql->size());
}
BENCHMARK_CAPTURE(BM_Classify, short_select, &kShortSelect);
BENCHMARK_CAPTURE(BM_Classify, join5, &kJoin5);
BENCHMARK_CAPTURE(BM_Classify, insert100, &kInsert100);
BENCHMARK_CAPTURE(BM_Classify, large20k, &kLarge);

// Stage 4: evaluating the summaries against the group's rules, mode and scopes.
void BM_Evaluate(benchmark::State& state, const std::string* sql) {
  ParseTree tree;
  SqlSyntaxError error;
  if (!tree.parse(*sql, error)) {
    state.SkipWithError(error.message.c_str());
    return;
  }
  std::vector<StatementSummary> statements;
  classify(tree, statements);
  const auto policy = agent_policy(0);
  const Subject subject = agent_subject();
  for (auto _ : state) benchmark::DoNotOptimize(evaluate(*policy, subject, statements));
  set_rates(state, sql->size());
}
BENCHMARK_CAPTURE(BM_Evaluate, short_select, &kShortSelect);
BENCHMARK_CAPTURE(BM_Evaluate, join5, &kJoin5);
BENCHMARK_CAPTURE(BM_Evaluate, insert100, &kInsert100);
BENCHMARK_CAPTURE(BM_Evaluate, large20k, &kLarge);

// A repeated statement with the default cache: a hash lookup of the text. Target: < 1 us.
void BM_JudgeCached(benchmark::State& state, const std::string* sql) {
  Engine engine(agent_policy(Policy{}.decision_cache_entries));
  Subject subject = agent_subject();
  engine.judge(subject, *sql);  // warm
  const uint64_t hits_before = engine.stats().cache_hits;
  for (auto _ : state) benchmark::DoNotOptimize(&engine.judge(subject, *sql));
  if (engine.stats().cache_hits - hits_before != static_cast<uint64_t>(state.iterations())) state.SkipWithError("decision was not cached");
  set_rates(state, sql->size());
  state.SetLabel("target < 1 us per cached decision");
}
BENCHMARK_CAPTURE(BM_JudgeCached, short_select, &kShortSelect);
BENCHMARK_CAPTURE(BM_JudgeCached, join5, &kJoin5);

// pgbench -S in simple mode: the same SELECT with a new constant each time. With the
// constant beside its column (`aid = N`, pgbench's text) the literal shape is cached:
// each call misses the text, lexes it and finds `aid = $1`. Written `N = aid`, the shaper leaves
// it alone, so every call misses, is judged in full, inserted, and evicts an entry of
// the full cache (the cost before literal shapes).
void BM_JudgeDistinct(benchmark::State& state, bool shaped) {
  Engine engine(agent_policy(Policy{}.decision_cache_entries));
  Subject subject = agent_subject();
  char sql[128];
  auto next_sql = [&, aid = uint64_t{1}]() mutable -> std::string_view {
    const std::string_view head = shaped ? "SELECT abalance FROM pgbench_accounts WHERE aid = " : "SELECT abalance FROM pgbench_accounts WHERE ";
    head.copy(sql, head.size());
    char* end = std::to_chars(sql + head.size(), sql + 64, aid++).ptr;
    const std::string_view tail = shaped ? ";" : " = aid;";
    end = tail.copy(end, tail.size()) + end;
    return std::string_view(sql, static_cast<size_t>(end - sql));
  };
  for (uint32_t i = 0; i < engine.policy().decision_cache_entries; ++i) engine.judge(subject, next_sql());  // fill
  const uint64_t hits_before = engine.stats().cache_hits;
  size_t bytes = 0;
  for (auto _ : state) {
    const std::string_view text = next_sql();
    bytes += text.size();
    benchmark::DoNotOptimize(&engine.judge(subject, text));
  }
  const uint64_t hits = engine.stats().cache_hits - hits_before;
  if (shaped && hits != static_cast<uint64_t>(state.iterations())) state.SkipWithError("the literal shape was not cached");
  if (!shaped && hits != 0) state.SkipWithError("unexpected cache hit");
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK_CAPTURE(BM_JudgeDistinct, literal_shape_hit, true);
BENCHMARK_CAPTURE(BM_JudgeDistinct, no_shape_full_parse, false);

}  // namespace
