// The policy every statement-corpus test judges with: one group, "agents", on every
// target, with the built-in agent rule pack; and its subject, user "agent" on "app".
#pragma once

#include <memory>

#include "policy/engine.h"

namespace sluice::policy::test_policies {

inline std::shared_ptr<const Policy> agent_policy(AccessMode mode, bool with_pack = true) {
  auto policy = std::make_shared<Policy>();
  Group agents;
  agents.name = "agents";
  agents.targets = {"*"};
  agents.access = mode;
  if (with_pack) agents.packs = {"agent-default"};
  policy->groups.push_back(agents);
  return policy;
}

inline Subject agent_subject() {
  Subject s;
  s.user = "agent";
  s.groups = {"agents"};
  s.target = "app";
  s.search_path = {"public"};
  return s;
}

}  // namespace sluice::policy::test_policies
