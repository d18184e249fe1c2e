// libFuzzer target: the whole policy path a statement takes (guard, libpg_query,
// the JSON parse tree, classify, evaluate, the decision cache) must never crash,
// hang or leak on any input, and must decide the same way twice and the same way as
// an engine without the decision cache (whose literal shapes, literal_shape.h, must
// never allow what the text itself is refused). The subject has masked columns, so
// the masking checks (protect.cc) run on every parsed statement.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "policy/engine.h"

namespace {

std::shared_ptr<sluice::policy::Policy> fuzz_policy() {
  static std::shared_ptr<sluice::policy::Policy> policy = [] {
    auto p = std::make_shared<sluice::policy::Policy>();
    sluice::policy::Group g;
    g.name = "agents";
    g.targets = {"*"};
    g.access = sluice::policy::AccessMode::read_write;
    g.packs = {"agent-default"};
    sluice::policy::NamePattern deny;
    sluice::policy::parse_name_pattern("secret.*", deny);
    g.read.deny.push_back(deny);
    p->groups.push_back(g);
    p->limits.max_statement_bytes = 64 << 10;
    p->decision_cache_entries = 64;
    return p;
  }();
  return policy;
}

sluice::policy::Engine& engine() {
  static sluice::policy::Engine e(fuzz_policy());
  return e;
}

sluice::policy::Engine& uncached_engine() {
  static sluice::policy::Engine e([] {
    auto p = std::make_shared<sluice::policy::Policy>(*fuzz_policy());
    p->decision_cache_entries = 0;
    return p;
  }());
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sluice::policy::Subject subject = [] {
    sluice::policy::Subject s;
    s.user = "fuzz";
    s.groups = {"agents"};
    s.target = "app";
    s.search_path = {"public"};
    auto masked = std::make_shared<sluice::policy::ProtectedColumns>();
    masked->version = 1;
    masked->relations["public.customers"] = {"ssn", "email"};
    for (const char* r : {"public.customers", "public.orders", "pg_catalog.pg_class"}) masked->known_relations.insert(r);
    masked->column_names = {"ssn", "email"};
    s.protected_columns = masked;
    return s;
  }();
  const std::string_view sql(reinterpret_cast<const char*>(data), size);
  const sluice::policy::Decision first = engine().judge(subject, sql);
  const sluice::policy::Decision& again = engine().judge(subject, sql);
  if (first.action != again.action || first.rule != again.rule) __builtin_trap();
  static sluice::policy::Subject uncached_subject = subject;
  const sluice::policy::Decision& fresh = uncached_engine().judge(uncached_subject, sql);
  if (first.action != fresh.action || first.rule != fresh.rule) __builtin_trap();
  return 0;
}
