// The policy part of the configuration loader: the [policy] section and the
// [groups.NAME] sections (with their [[groups.NAME.rule]] lists) of a parsed TOML
// document become a Policy. Every problem is reported, each with its line, and the
// loader keeps going after one. The format is documented in docs/configuration.md.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/toml.h"
#include "policy/policy.h"

namespace sluice::policy {

struct ConfigProblem {
  int line = 0;  // 1-based; 0 = the whole file
  std::string message;
  bool is_error = true;  // false: a warning, the policy is still usable
};

struct LoadedPolicy {
  std::shared_ptr<const Policy> policy;  // set exactly when no problem is an error
  std::vector<ConfigProblem> problems;   // in the order found
};

// The top-level keys load_policy() reads; the rest of the loader leaves them to it.
inline constexpr std::string_view kPolicyTopLevelKeys[] = {"policy", "groups"};

// Loads [policy] and [groups.*] from the document's root table. Group targets are
// checked against the root's [[target]] names and, when policy is enabled, every
// [[user]]'s `groups` against the groups defined; malformed [[target]] and [[user]]
// sections are the rest of the loader's to report and are skipped here.
LoadedPolicy load_policy(const core::toml::Value& root);

}  // namespace sluice::policy
