// The policy every statement-corpus test judges with: one group, "agents", on every
// target, with the built-in agent rule pack; and its subject, user "agent" on "app".
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

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

// Each text, and two variants with every digit run turned into 0 and into 1 (so that
// `id = 5 OR 2 = 3` also arrives as `id = 1 OR 1 = 1`), judged in order by an engine
// with the decision cache (and so literal shapes) and by one without: the decisions
// must be the same. Returns how many texts had a literal shape, so callers can make
// sure the check was not vacuous.
inline size_t expect_shapes_decide_as_texts(std::shared_ptr<const Policy> policy, const Subject& subject,
                                            const std::vector<std::string>& texts) {
  auto uncached_policy = std::make_shared<Policy>(*policy);
  uncached_policy->decision_cache_entries = 0;
  Engine cached(policy), uncached(uncached_policy);
  Subject cached_subject = subject, uncached_subject = subject;
  LiteralShaper shaper;
  std::string shape;
  size_t shaped = 0;
  auto outcome = [](const Decision& d) { return d.allowed() ? std::string("allow") : "block " + d.rule; };
  auto digits_to = [](const std::string& text, char digit) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] >= '0' && text[i] <= '9') {
        out += digit;
        while (i + 1 < text.size() && text[i + 1] >= '0' && text[i + 1] <= '9') ++i;
      } else {
        out += text[i];
      }
    }
    return out;
  };
  for (const std::string& text : texts) {
    for (const std::string& variant : {text, digits_to(text, '0'), digits_to(text, '1')}) {
      shaped += shaper.shape(variant, shape);
      const std::string expected = outcome(uncached.judge(uncached_subject, variant));
      EXPECT_EQ(outcome(cached.judge(cached_subject, variant)), expected) << variant;
    }
  }
  return shaped;
}

}  // namespace sluice::policy::test_policies
