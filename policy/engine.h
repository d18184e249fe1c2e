// The policy decision for one SQL text: guard (length, nesting, UTF-8) -> decision
// cache -> libpg_query parse -> classify -> evaluate against the identity's groups.
// One Engine per shard (not thread-safe, allocation-free on a cache hit); a reload
// installs a new Policy, which also empties the cache.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/literal_shape.h"
#include "policy/parse_tree.h"
#include "policy/policy.h"
#include "policy/protect.h"
#include "policy/statement.h"

namespace sluice::policy {

// Who asks, on which target. Built once per session; the engine interns it.
struct Subject {
  std::string user;
  std::vector<std::string> groups;
  std::string target;
  // The target's pinned search_path with "$user" already replaced by the backend
  // role: where an unqualified table name can be found.
  std::vector<std::string> search_path;
  // The columns masked for this identity on its target (null: none). Whoever builds
  // the subject keeps it current; a new version empties the engine's decision cache.
  std::shared_ptr<const ProtectedColumns> protected_columns;

  // Engine bookkeeping: the interned id for `generation`.
  uint64_t generation = 0;
  uint32_t id = 0;
};

struct Decision {
  Action action = Action::allow;
  std::string rule;      // the rule or built-in check that decided ("truncate", "syntax", "read-scope")
  std::string group;     // the group whose policy decided ("" for checks before groups)
  std::string sqlstate;  // for block/review: "42501"; "42601" for syntax errors; guard errors' own
  std::string message;
  std::string hint;
  int position = 0;      // 1-based character position for syntax errors, else 0
  uint32_t statements = 0;
  bool changes_schema = false;  // DDL: relations or columns may differ once it ran
  bool allowed() const { return action == Action::allow; }
};

// What a subject may do on its target at all (checked once, at login).
struct Admission {
  bool allowed = false;
  AccessMode mode = AccessMode::read_only;  // the widest mode among the granting groups
  std::string refusal;                      // why not, for the client
};

// Pure evaluation of classified statements (exposed for tests).
Decision evaluate(const Policy& policy, const Subject& subject, const std::vector<StatementSummary>& statements);
Admission admit(const Policy& policy, const Subject& subject);

class Engine {
 public:
  explicit Engine(std::shared_ptr<const Policy> policy);

  void install(std::shared_ptr<const Policy> policy);
  const Policy& policy() const { return *policy_; }
  const std::shared_ptr<const Policy>& policy_ptr() const { return policy_; }
  uint64_t generation() const { return generation_; }

  Admission admit(const Subject& subject) const { return policy::admit(*policy_, subject); }

  // Judges one SQL text (a Query string or a Parse statement). The reference is valid
  // until the next call. Cached under the text's bytes; a text seen for the first
  // time whose literal shape (literal_shape.h) is allowed gets the shape's decision.
  const Decision& judge(Subject& subject, std::string_view sql);

  struct Stats {
    uint64_t judged = 0;
    uint64_t cache_hits = 0;
    uint64_t blocked = 0;
  };
  const Stats& stats() const { return stats_; }

  // Statements longer than this are judged every time rather than cached (bounds
  // the cache's memory at decision_cache_entries x twice this: a literal shape can be
  // longer than its text).
  static constexpr size_t kMaxCachedStatementBytes = 4096;

 private:
  struct CacheKey {
    uint32_t subject;
    std::string sql;
    bool operator==(const CacheKey& other) const { return subject == other.subject && sql == other.sql; }
  };
  struct CacheKeyHash {
    size_t operator()(const CacheKey& k) const;
  };

  uint32_t intern(Subject& subject);
  const Decision& judge_cacheable(const Subject& subject, uint32_t id, std::string_view sql);
  const Decision* cached(uint32_t id, std::string_view sql);  // counts a hit
  const Decision& remember(uint32_t id, std::string_view sql, const Decision& decision);
  const Decision& decide(const Subject& subject, std::string_view sql);

  std::shared_ptr<const Policy> policy_;
  uint64_t generation_ = 1;
  uint64_t protected_version_ = 0;  // of the newest ProtectedColumns a subject brought
  std::unordered_map<std::string, uint32_t> subjects_;  // interned "target\0group\0group..." -> id
  std::unordered_map<CacheKey, Decision, CacheKeyHash> cache_;
  CacheKey probe_;  // reused lookup key (its string keeps its capacity)
  LiteralShaper shaper_;
  std::string shape_;  // the current text's literal shape (reused buffer)
  ParseTree tree_;
  std::vector<StatementSummary> statements_;
  Decision scratch_;
  Stats stats_;
};

}  // namespace sluice::policy
