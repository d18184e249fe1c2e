// Tests for policy/config (through tools/config, as the operator meets it): [policy],
// [groups.NAME] and [[groups.NAME.rule]] map to a Policy, defaults apply, every class
// of mistake is reported with its line, references between sections are checked,
// and the documented examples load. Also the [[target]] search_path key, which exists
// for policy.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <sstream>
#include <string>

#include "policy/config.h"
#include "tools/config.h"

#include "tests/unit/test_support.h"

namespace sluice::policy {
namespace {

using tools::LoadedConfig;

// A SCRAM-SHA-256 verifier of the password "test-password" (4096 iterations).
constexpr const char* kVerifier =
    "SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$XsoIrEz3gOmu+XcvpRftNyw7YjWgMXEz5g8RraEbTnA=:"
    "DTFCY+oAenPTZMp1/UJOFpa3b3zkRTB749eMDPNiFV0=";

constexpr const char* kPasswordVariable = "SLUICE_POLICY_CONFIG_TEST_PASSWORD";

// Sets the targets' password variable for the scope of one test.
class PasswordEnv {
 public:
  explicit PasswordEnv(const char* name = kPasswordVariable) : name_(name) { setenv(name, "pw", 1); }
  ~PasswordEnv() { unsetenv(name_); }
  PasswordEnv(const PasswordEnv&) = delete;
  PasswordEnv& operator=(const PasswordEnv&) = delete;

 private:
  const char* name_;
};

LoadedConfig load(const std::string& text) { return tools::load_config_text(text, "sluice.toml", "/nonexistent"); }

using testing_support::count_errors;
using testing_support::report;

// Lines 1-10: targets app and reports. Lines 11-14: user alice in group dev.
std::string preamble(const std::string& groups = "[\"dev\"]") {
  std::string target =
      "host = \"127.0.0.1\"\nuser = \"u\"\npassword_env = \"" + std::string(kPasswordVariable) + "\"\n";
  return "[[target]]\nname = \"app\"\n" + target + "[[target]]\nname = \"reports\"\n" + target +
         "[[user]]\nname = \"alice\"\npassword = \"" + kVerifier + "\"\ngroups = " + groups + "\n";
}

// Line 15 onwards.
LoadedConfig load_after_preamble(const std::string& text) { return load(preamble() + text); }

TEST(PolicyConfig, DefaultsApplyWhenKeysAreAbsent) {
  PasswordEnv env;
  auto config = load_after_preamble("[groups.dev]\ntargets = [\"*\"]\n");
  ASSERT_TRUE(config.ok()) << report(config);
  EXPECT_TRUE(config.diagnostics.empty()) << report(config);
  ASSERT_NE(config.policy, nullptr);
  const Policy& policy = *config.policy;
  const Policy defaults;
  EXPECT_TRUE(policy.enabled);
  EXPECT_EQ(policy.limits.max_statement_bytes, defaults.limits.max_statement_bytes);
  EXPECT_EQ(policy.limits.max_statement_bytes, 1u << 20);
  EXPECT_EQ(policy.limits.max_nesting, 1000u);
  EXPECT_EQ(policy.limits.max_operators, 10'000u);
  EXPECT_EQ(policy.decision_cache_entries, 4096u);
  ASSERT_EQ(policy.groups.size(), 1u);
  const Group& dev = policy.groups[0];
  EXPECT_EQ(dev.name, "dev");
  EXPECT_EQ(dev.line, 15);
  EXPECT_EQ(dev.targets, (std::vector<std::string>{"*"}));
  EXPECT_TRUE(dev.may_use_target("reports"));
  EXPECT_EQ(dev.access, AccessMode::read_only);
  EXPECT_TRUE(dev.read.allow.empty());
  EXPECT_TRUE(dev.read.deny.empty());
  EXPECT_TRUE(dev.write.allow.empty());
  EXPECT_TRUE(dev.write.deny.empty());
  EXPECT_TRUE(dev.function_allow.empty());
  EXPECT_TRUE(dev.function_deny.empty());
  EXPECT_TRUE(dev.rules.empty());
  EXPECT_TRUE(dev.packs.empty());

  // An empty [policy] section means the same; so does a group named by a quoted key.
  auto quoted = load(preamble("[\"data team\"]") + "[policy]\n[groups.\"data team\"]\ntargets = [\"app\"]\n");
  ASSERT_TRUE(quoted.ok()) << report(quoted);
  EXPECT_TRUE(quoted.policy->enabled);
  ASSERT_NE(quoted.policy->find_group("data team"), nullptr);
  EXPECT_FALSE(quoted.policy->find_group("data team")->may_use_target("reports"));
}

TEST(PolicyConfig, FullConfigMapsToPolicy) {
  PasswordEnv env;
  auto config = load_after_preamble(R"([policy]
enabled = true
max_statement_bytes = "64 KiB"
max_nesting = 200
max_operators = 5000
decision_cache_entries = 0

[groups.dev]
targets = ["app", "reports"]
access = "read-write"
packs = ["agent-default"]
read_allow = ["public.*", "reporting.daily"]
read_deny = ["billing.*"]
write_allow = ["public.*"]
write_deny = ["public.audit_log"]
function_allow = ["public.safe_*"]
function_deny = ["pg_sleep"]

[[groups.dev.rule]]
name = "no-payroll-writes"
action = "block"
kinds = ["write", "ddl"]
commands = ["DELETE", " drop   table "]
when = ["missing_where", "constant_where"]
tables = ["payroll.*"]
table_access = "write"
functions = ["lo_*"]
message = "no bulk payroll changes"
hint = "ask the payroll team"

[[groups.dev.rule]]
name = "review-ddl"
action = "review"
kinds = ["ddl"]

[[groups.dev.rule]]
name = "reads-are-fine"
action = "allow"
tables = ["*"]
table_access = "read"

[groups.ops]
targets = ["reports"]
access = "admin"
)");
  ASSERT_TRUE(config.ok()) << report(config);
  EXPECT_TRUE(config.diagnostics.empty()) << report(config);
  const Policy& policy = *config.policy;
  EXPECT_TRUE(policy.enabled);
  EXPECT_EQ(policy.limits.max_statement_bytes, 64u << 10);
  EXPECT_EQ(policy.limits.max_nesting, 200u);
  EXPECT_EQ(policy.limits.max_operators, 5000u);
  EXPECT_EQ(policy.decision_cache_entries, 0u);

  ASSERT_EQ(policy.groups.size(), 2u);
  const Group* dev = policy.find_group("dev");
  ASSERT_NE(dev, nullptr);
  EXPECT_EQ(dev->line, 22);
  EXPECT_EQ(dev->targets, (std::vector<std::string>{"app", "reports"}));
  EXPECT_EQ(dev->access, AccessMode::read_write);
  EXPECT_EQ(dev->packs, (std::vector<std::string>{"agent-default"}));
  ASSERT_EQ(dev->read.allow.size(), 2u);
  EXPECT_EQ(dev->read.allow[0].schema, "public");
  EXPECT_EQ(dev->read.allow[0].name, "*");
  EXPECT_EQ(dev->read.allow[0].text, "public.*");
  EXPECT_EQ(dev->read.allow[1].schema, "reporting");
  EXPECT_EQ(dev->read.allow[1].name, "daily");
  ASSERT_EQ(dev->read.deny.size(), 1u);
  EXPECT_EQ(dev->read.deny[0].text, "billing.*");
  ASSERT_EQ(dev->write.allow.size(), 1u);
  ASSERT_EQ(dev->write.deny.size(), 1u);
  EXPECT_EQ(dev->write.deny[0].name, "audit_log");
  ASSERT_EQ(dev->function_allow.size(), 1u);
  EXPECT_EQ(dev->function_allow[0].name, "safe_*");
  ASSERT_EQ(dev->function_deny.size(), 1u);
  EXPECT_EQ(dev->function_deny[0].schema, "");  // no dot: any schema
  EXPECT_EQ(dev->function_deny[0].name, "pg_sleep");

  ASSERT_EQ(dev->rules.size(), 3u);  // the group's own rules only; packs stay by name
  const Rule& payroll = dev->rules[0];
  EXPECT_EQ(payroll.name, "no-payroll-writes");
  EXPECT_EQ(payroll.line, 33);
  EXPECT_EQ(payroll.action, Action::block);
  EXPECT_EQ(payroll.kinds, (std::vector<StatementKind>{StatementKind::write, StatementKind::ddl}));
  EXPECT_EQ(payroll.commands, (std::vector<std::string>{"DELETE", "DROP TABLE"}));
  EXPECT_EQ(payroll.when, uint32_t{fact_missing_where | fact_constant_where});
  ASSERT_EQ(payroll.tables.size(), 1u);
  EXPECT_EQ(payroll.tables[0].schema, "payroll");
  EXPECT_EQ(payroll.table_access, Access::write);
  ASSERT_EQ(payroll.functions.size(), 1u);
  EXPECT_EQ(payroll.functions[0].name, "lo_*");
  EXPECT_EQ(payroll.message, "no bulk payroll changes");
  EXPECT_EQ(payroll.hint, "ask the payroll team");
  const Rule& review = dev->rules[1];
  EXPECT_EQ(review.name, "review-ddl");
  EXPECT_EQ(review.line, 45);
  EXPECT_EQ(review.action, Action::review);
  EXPECT_FALSE(review.table_access.has_value());
  EXPECT_TRUE(review.message.empty());
  EXPECT_EQ(dev->rules[2].action, Action::allow);
  EXPECT_EQ(dev->rules[2].table_access, Access::read);

  const Group* ops = policy.find_group("ops");
  ASSERT_NE(ops, nullptr);
  EXPECT_EQ(ops->access, AccessMode::admin);
  EXPECT_TRUE(ops->may_use_target("reports"));
  EXPECT_FALSE(ops->may_use_target("app"));
}

TEST(PolicyConfig, PolicySectionTypesAndBounds) {
  PasswordEnv env;
  auto config = load_after_preamble(
      "[groups.dev]\ntargets = [\"*\"]\n"
      "[policy]\n"                        // 17
      "enabled = \"yes\"\n"               // 18
      "max_statement_bytes = \"512B\"\n"  // 19
      "max_nesting = 15\n"                // 20
      "max_operators = 1000001\n"         // 21
      "decision_cache_entries = -1\n"     // 22
      "max_nestng = 100\n");              // 23
  EXPECT_DIAGNOSTIC(config, "sluice.toml:18: error: 'enabled' in [policy] must be a boolean, not a string");
  EXPECT_DIAGNOSTIC(
      config, "sluice.toml:19: error: 'max_statement_bytes' in [policy] must be between 1KiB and 64MiB, not 512B");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:20: error: 'max_nesting' in [policy] must be between 16 and 10000, not 15");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:21: error: 'max_operators' in [policy] must be between 100 and 1000000, not 1000001");
  EXPECT_DIAGNOSTIC(
      config, "sluice.toml:22: error: 'decision_cache_entries' in [policy] must be between 0 and 1000000, not -1");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:23: error: unknown key 'max_nestng' in [policy] (did you mean 'max_nesting'?)");
  EXPECT_EQ(count_errors(config), 6u) << report(config);
  EXPECT_EQ(config.policy, nullptr);

  auto units = load_after_preamble(
      "[groups.dev]\ntargets = [\"*\"]\n"
      "[policy]\n"
      "max_statement_bytes = \"1MB\"\n");  // 18
  EXPECT_DIAGNOSTIC(units,
                    "sluice.toml:18: error: 'max_statement_bytes' in [policy]: invalid size '1MB': unit 'MB' is "
                    "ambiguous: sizes use binary units, write 1MiB");
  auto too_big = load_after_preamble("[groups.dev]\ntargets = [\"*\"]\n[policy]\nmax_statement_bytes = \"65MiB\"\n");
  EXPECT_DIAGNOSTIC(
      too_big, "sluice.toml:18: error: 'max_statement_bytes' in [policy] must be between 1KiB and 64MiB, not 65MiB");
  auto bytes = load_after_preamble("[groups.dev]\ntargets = [\"*\"]\n[policy]\nmax_statement_bytes = 1024\n");
  ASSERT_TRUE(bytes.ok()) << report(bytes);
  EXPECT_EQ(bytes.policy->limits.max_statement_bytes, 1024u);
}

TEST(PolicyConfig, DisabledPolicyWarnsAndSkipsTheUserChecks) {
  PasswordEnv env;
  // No group at all, and a user in a group that does not exist: fine with policy off.
  auto config = load(preamble("[\"nowhere\"]") + "[policy]\nenabled = false\n");
  ASSERT_TRUE(config.ok()) << report(config);
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:16: warning: policy is disabled: every user may run any statement on any target; "
                    "this is not for production");
  EXPECT_EQ(config.diagnostics.size(), 1u) << report(config);
  ASSERT_NE(config.policy, nullptr);
  EXPECT_FALSE(config.policy->enabled);

  // Groups are still checked: a typo is an error whether or not policy is on.
  auto groups = load(preamble() + "[policy]\nenabled = false\n[groups.dev]\ntargets = [\"ap\"]\n");
  EXPECT_DIAGNOSTIC(groups,
                    "sluice.toml:18: error: group 'dev' names target 'ap', which is not defined (did you mean 'app'?)");
}

TEST(PolicyConfig, UsersMustBeInDefinedGroups) {
  PasswordEnv env;
  auto config = load(preamble("[\"agnets\", \"agents\", \"xyzzy\"]") +  // groups on line 14
                     "[[user]]\nname = \"bob\"\npassword = \"" + kVerifier +
                     "\"\n"  // bob: 15-17, in no group
                     "[[user]]\nname = \"carol\"\npassword = \"" +
                     kVerifier +
                     "\"\ngroups = []\n"                       // carol: 18-21
                     "[groups.agents]\ntargets = [\"app\"]\n"  // 22
  );
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:14: error: user 'alice' is in group 'agnets', which is not defined (did you mean "
                    "'agents'?)");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:14: error: user 'alice' is in group 'xyzzy', which is not defined\n");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:15: warning: user 'bob' is in no group, so policy lets them use no target; add "
                    "groups = [\"...\"]");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:18: warning: user 'carol' is in no group");
  EXPECT_EQ(count_errors(config), 2u) << report(config);
  EXPECT_EQ(config.diagnostics.size(), 4u) << report(config);
  EXPECT_EQ(config.policy, nullptr);

  // Users but no group at all: one error for the whole file, not one per user.
  auto none = load(preamble() + "[[user]]\nname = \"bob\"\npassword = \"" + kVerifier + "\"\ngroups = [\"ops\"]\n");
  EXPECT_DIAGNOSTIC(none,
                    "sluice.toml: error: no [groups.NAME] section is defined: with policy enabled a user outside "
                    "every group is refused everything; define at least one group");
  EXPECT_EQ(none.diagnostics.size(), 1u) << report(none);
  EXPECT_EQ(none.diagnostics.front().line, 0);

  // No users, no groups: nothing to refuse, nothing to report about policy.
  auto no_users = load("[[target]]\nname = \"app\"\nhost = \"127.0.0.1\"\nuser = \"u\"\npassword_env = \"" +
                       std::string(kPasswordVariable) + "\"\n");
  ASSERT_TRUE(no_users.ok()) << report(no_users);
  EXPECT_EQ(no_users.diagnostics.size(), 1u) << report(no_users);  // "no [[user]] is defined"
  ASSERT_NE(no_users.policy, nullptr);
  EXPECT_TRUE(no_users.policy->groups.empty());
}

TEST(PolicyConfig, GroupTargets) {
  PasswordEnv env;
  auto config = load(preamble("[\"a\", \"b\", \"c\", \"d\", \"e\", \"f\"]") +
                     "[groups.a]\n"  // 15: no targets
                     "access = \"read-only\"\n"
                     "[groups.b]\n"
                     "targets = []\n"  // 18
                     "[groups.c]\n"
                     "targets = \"app\"\n"  // 20
                     "[groups.d]\n"
                     "targets = [\"app\", \"report\", \"nope\"]\n"  // 22
                     "[groups.e]\n"
                     "targets = [\"*\", \"app\"]\n"  // 24
                     "[groups.f]\n"
                     "targets = [\"app\", \"app\"]\n");  // 26
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:15: error: missing required key 'targets' in [groups.a]: list the targets the group "
                    "may use, or [\"*\"] for every target");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:18: error: 'targets' in [groups.b] must name at least one target, or [\"*\"] for "
                    "every target");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:20: error: 'targets' in [groups.c] must be an array of strings, e.g. targets = "
                    "[\"...\"], not a string");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:22: error: group 'd' names target 'report', which is not defined (did you mean "
                    "'reports'?)");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:22: error: group 'd' names target 'nope', which is not defined\n");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:24: error: 'targets' in [groups.e]: \"*\" already means every target; write targets "
                    "= [\"*\"] alone");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:26: warning: 'targets' in [groups.f]: target 'app' is listed twice");
  EXPECT_EQ(count_errors(config), 6u) << report(config);
}

TEST(PolicyConfig, GroupAccessPacksPatternsAndNames) {
  PasswordEnv env;
  std::string long_name(64, 'g');
  auto config = load(preamble() +
                     "[groups.dev]\n"
                     "targets = [\"*\"]\n"
                     "access = \"read-wrte\"\n"                   // 17
                     "packs = [\"agent-defualt\", \"strict\"]\n"  // 18
                     "read_allow = [\"public.\", \"a.b.c\"]\n"    // 19
                     "read_deny = [\"\"]\n"                       // 20
                     "write_deny = [\"\\\"unterminated\"]\n"      // 21
                     "function_deny = [\"pg_sleep\", 7]\n"        // 22
                     "function_allow = [\".x\"]\n"                // 23
                     "[groups." +
                     long_name +
                     "]\n"  // 24
                     "targets = [\"*\"]\n"
                     "[groups.\"bell\\u0007\"]\n"  // 26
                     "targets = [\"*\"]\n"
                     "[groups.ro]\n"  // 28
                     "targets = [\"*\"]\n"
                     "packs = [\"agent-default\", \"agent-default\"]\n"  // 30
                     "write_allow = [\"public.*\"]\n"                    // 31
                     "write_deny = []\n");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:17: error: 'access' in [groups.dev]: unknown access mode 'read-wrte' (did you mean "
                    "'read-write'?): use read-only, read-write or admin");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:18: error: 'packs' in [groups.dev]: unknown rule pack 'agent-defualt' (did you mean "
                    "'agent-default'?); the built-in packs are agent-default");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:18: error: 'packs' in [groups.dev]: unknown rule pack 'strict'; the built-in packs "
                    "are agent-default");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:19: error: 'read_allow' in [groups.dev]: invalid pattern 'public.': write "
                    "schema.name or name, with * as a wildcard");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:19: error: 'read_allow' in [groups.dev]: invalid pattern 'a.b.c'");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:20: error: 'read_deny' in [groups.dev]: invalid pattern ''");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:21: error: 'write_deny' in [groups.dev]: invalid pattern '\"unterminated'");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:22: error: 'function_deny' in [groups.dev] must be an array of strings, e.g. "
                    "function_deny = [\"...\"], not an array holding other values");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:23: error: 'function_allow' in [groups.dev]: invalid pattern '.x'");
  EXPECT_DIAGNOSTIC(
      config, "sluice.toml:24: error: group name '" + long_name.substr(0, 64) + "' must be 1 to 63 bytes long, not 64");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:26: error: group name 'bell\\u0007' must not contain control characters");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:30: warning: 'packs' in [groups.ro]: pack 'agent-default' is listed twice");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:31: warning: 'write_allow' in [groups.ro] has no effect: the group is read-only "
                    "(access = \"read-only\")");
  EXPECT_EQ(count_errors(config), 11u) << report(config);
}

TEST(PolicyConfig, RuleMistakes) {
  PasswordEnv env;
  std::string long_text(1025, 'x');
  auto config = load_after_preamble(
      "[groups.dev]\n"
      "targets = [\"*\"]\n"
      "[[groups.dev.rule]]\n"  // 17: no name, no action
      "kinds = [\"write\"]\n"
      "[[groups.dev.rule]]\n"
      "name = \"No Caps\"\n"              // 20
      "action = \"deny\"\n"               // 21
      "kinds = [\"wrte\", \"select\"]\n"  // 22
      "[[groups.dev.rule]]\n"
      "name = \"twice\"\n"  // 24
      "action = \"block\"\n"
      "commands = [\"DROP TABLE;\", \"\"]\n"  // 26
      "when = [\"missing-where\"]\n"          // 27
      "[[groups.dev.rule]]\n"
      "name = \"twice\"\n"  // 29
      "action = \"block\"\n"
      "table_access = \"modify\"\n"  // 31
      "tables = [\"t\"]\n"
      "message = \"line\\nbreak\"\n"  // 33
      "hint = \"" +
      long_text +
      "\"\n"                   // 34
      "[[groups.dev.rule]]\n"  // 35: no criterion
      "name = \"everything\"\n"
      "action = \"block\"\n"
      "message = \"no\"\n"
      "[[groups.dev.rule]]\n"  // 39: empty lists are no criterion either
      "name = \"empty-lists\"\n"
      "action = \"allow\"\n"
      "kinds = []\n"
      "tables = []\n"
      "table_access = \"read\"\n"  // 44
      "[[groups.dev.rule]]\n"
      "name = \"bad-kinds-only\"\n"
      "action = \"block\"\n"
      "kinds = \"write\"\n");  // 48: an error, but not also "no criterion"
  EXPECT_DIAGNOSTIC(config, "sluice.toml:17: error: missing required key 'name' in [[groups.dev.rule]]");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:17: error: missing required key 'action' in [[groups.dev.rule]]");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:20: error: 'name' in [[groups.dev.rule]] must be 1 to 63 characters from a-z 0-9 -, "
                    "not 'No Caps'");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:21: error: 'action' in [[groups.dev.rule]]: unknown action 'deny': use allow, block "
                    "or review");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:22: error: 'kinds' in [[groups.dev.rule]]: unknown statement kind 'wrte' (did you "
                    "mean 'write'?); the kinds are read, write, ddl, dcl, admin, transaction, session, procedural or "
                    "utility");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:22: error: 'kinds' in [[groups.dev.rule]]: unknown statement kind 'select'");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:26: error: 'commands' in [[groups.dev.rule]]: invalid command tag 'DROP TABLE;': "
                    "write it as PostgreSQL names it, in letters and spaces, e.g. \"DROP TABLE\"");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:26: error: 'commands' in [[groups.dev.rule]]: invalid command tag ''");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:27: error: 'when' in [[groups.dev.rule]]: unknown fact 'missing-where' (did you mean "
                    "'missing_where'?); the facts are missing_where, constant_where, copy_program, copy_server_file, "
                    "system_catalog, executes, role_change or dynamic_sql");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:29: error: duplicate rule name 'twice' in [groups.dev] (first defined on line 24)");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:31: error: 'table_access' in [[groups.dev.rule]]: unknown access 'modify': use read "
                    "or write");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:33: error: 'message' in [[groups.dev.rule]] must not contain control characters");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:34: error: 'hint' in [[groups.dev.rule]] must be at most 1024 bytes, not 1025");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:35: error: rule 'everything' in [groups.dev] sets no criterion, so it would match "
                    "every statement: set at least one of kinds, commands, when, tables or functions");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:39: error: rule 'empty-lists' in [groups.dev] sets no criterion");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:44: error: 'table_access' in [[groups.dev.rule]] applies to the tables the rule "
                    "names: set tables too (tables = [\"*\"] for any table)");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:48: error: 'kinds' in [[groups.dev.rule]] must be an array of strings, e.g. kinds = "
                    "[\"...\"], not a string");
  EXPECT_EQ(count_errors(config), 17u) << report(config);
  EXPECT_EQ(config.policy, nullptr);
}

TEST(PolicyConfig, UnknownKeysAndMisshapenSections) {
  PasswordEnv env;
  auto config = load_after_preamble(
      "[groups.dev]\n"
      "targets = [\"*\"]\n"
      "acess = \"admin\"\n"   // 17
      "[groups.dev.rules]\n"  // 18
      "[[groups.dev.rule]]\n"
      "name = \"r\"\n"
      "action = \"block\"\n"
      "tabels = [\"t\"]\n"  // 22
      "kinds = [\"ddl\"]\n"
      "[polcy]\n"        // 24
      "[group.ops]\n");  // 25
  EXPECT_DIAGNOSTIC(config, "sluice.toml:17: error: unknown key 'acess' in [groups.dev] (did you mean 'access'?)");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:18: error: unknown table [groups.dev.rules] (did you mean 'rule'?)");
  EXPECT_DIAGNOSTIC(config,
                    "sluice.toml:22: error: unknown key 'tabels' in [[groups.dev.rule]] (did you mean 'tables'?)");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:24: error: unknown table [polcy] (did you mean 'policy'?)");
  EXPECT_DIAGNOSTIC(config, "sluice.toml:25: error: unknown table [group] (did you mean 'groups'?)");
  EXPECT_EQ(count_errors(config), 5u) << report(config);

  auto shapes = load_after_preamble(
      "[[policy]]\n"         // 15
      "[groups]\n"           // 16
      "targets = [\"*\"]\n"  // 17
      "ops = 1\n"            // 18
      "[[groups.dev]]\n"     // 19
      "targets = [\"*\"]\n"
      "[groups.qa]\n"
      "targets = [\"*\"]\n"
      "rule = 1\n"  // 23
      "[groups.web]\n"
      "targets = [\"*\"]\n"
      "[groups.web.rule]\n"  // 26
      "name = \"x\"\n");
  EXPECT_DIAGNOSTIC(shapes, "sluice.toml:15: error: [[policy]] is not allowed: write [policy]");
  EXPECT_DIAGNOSTIC(shapes,
                    "sluice.toml:17: error: key 'targets' belongs in a [groups.NAME] section: [groups] holds one table "
                    "per group, e.g. [groups.agents]");
  EXPECT_DIAGNOSTIC(shapes, "sluice.toml:18: error: 'ops' in [groups] must be a [groups.ops] section, not an integer");
  EXPECT_DIAGNOSTIC(shapes, "sluice.toml:19: error: write [groups.dev], not [[groups.dev]]");
  EXPECT_DIAGNOSTIC(shapes,
                    "sluice.toml:23: error: 'rule' in [groups.qa] must be [[groups.qa.rule]] sections, not an integer");
  EXPECT_DIAGNOSTIC(shapes,
                    "sluice.toml:26: error: write [[groups.web.rule]], not [groups.web.rule]: there is one "
                    "[[groups.web.rule]] section per rule");
  // dev is misshapen, so alice's group is not defined either.
  EXPECT_DIAGNOSTIC(shapes, "sluice.toml:14: error: user 'alice' is in group 'dev', which is not defined");
  EXPECT_EQ(count_errors(shapes), 7u) << report(shapes);

  auto scalar = load("policy = true\ngroups = [\"dev\"]\n" + preamble());  // top-level keys come first
  EXPECT_DIAGNOSTIC(scalar, "sluice.toml:1: error: 'policy' must be a table: write a [policy] section, not a boolean");
  EXPECT_DIAGNOSTIC(scalar, "sluice.toml:2: error: 'groups' must be [groups.NAME] sections, not an array");
  auto array = load_after_preamble("[[groups]]\n");
  EXPECT_DIAGNOSTIC(array, "sluice.toml:15: error: write [groups.NAME], not [[groups]]");
}

TEST(PolicyConfig, TargetSearchPath) {
  PasswordEnv env;
  auto target = [](const std::string& name, const std::string& lines) {
    return "[[target]]\nname = \"" + name + "\"\nhost = \"127.0.0.1\"\nuser = \"u\"\npassword_env = \"" +
           kPasswordVariable + "\"\n" + lines;
  };
  std::string long_schema(64, 's');
  auto config = load(target("plain", "") +                                                     // 1-5
                     target("custom", "search_path = [\"$user\", \"Sales\", \"public\"]\n") +  // 6-11
                     target("none", "search_path = []\n") +                                    // 12-17
                     "[[user]]\nname = \"alice\"\npassword = \"" + kVerifier +
                     "\"\ngroups = [\"dev\"]\n[groups.dev]\ntargets = [\"*\"]\n");
  ASSERT_TRUE(config.ok()) << report(config);
  EXPECT_TRUE(config.diagnostics.empty()) << report(config);
  EXPECT_EQ(config.settings.find_target("plain")->search_path, (std::vector<std::string>{"public"}));
  EXPECT_EQ(config.settings.find_target("custom")->search_path, (std::vector<std::string>{"$user", "Sales", "public"}));
  EXPECT_TRUE(config.settings.find_target("none")->search_path.empty());

  auto bad = load(target("a", "search_path = \"public\"\n") +                 // 6
                  target("b", "search_path = [\"public\", \"\"]\n") +         // 12
                  target("c", "search_path = [\"" + long_schema + "\"]\n") +  // 18
                  target("d", "search_path = [\"tab\\there\"]\n") +           // 24
                  target("e", "search_pth = [\"public\"]\n"));                // 30
  EXPECT_DIAGNOSTIC(bad,
                    "sluice.toml:6: error: 'search_path' in [[target]] must be an array of schema names, e.g. "
                    "search_path = [\"public\"]");
  EXPECT_DIAGNOSTIC(bad, "sluice.toml:12: error: 'search_path' in [[target]] must be 1 to 63 bytes long, not 0");
  EXPECT_DIAGNOSTIC(bad, "sluice.toml:18: error: 'search_path' in [[target]] must be 1 to 63 bytes long, not 64");
  EXPECT_DIAGNOSTIC(bad, "sluice.toml:24: error: 'search_path' in [[target]] must not contain control characters");
  EXPECT_DIAGNOSTIC(bad, "sluice.toml:30: error: unknown key 'search_pth' in [[target]] (did you mean 'search_path'?)");
  EXPECT_EQ(count_errors(bad), 5u) << report(bad);
}

// The policy loader works on a parsed document alone, without tools/.
TEST(PolicyConfig, LoadPolicyStandsAlone) {
  auto parsed = core::toml::parse(
      "[[target]]\nname = \"app\"\n"
      "[groups.dev]\ntargets = [\"app\"]\naccess = \"admin\"\n"
      "[[groups.dev.rule]]\nname = \"r\"\naction = \"review\"\nkinds = [\"dcl\"]\n");
  ASSERT_TRUE(parsed.ok());
  LoadedPolicy loaded = load_policy(parsed.root);
  EXPECT_TRUE(loaded.problems.empty());
  ASSERT_NE(loaded.policy, nullptr);
  ASSERT_EQ(loaded.policy->groups.size(), 1u);
  EXPECT_EQ(loaded.policy->groups[0].rules.at(0).line, 6);

  auto broken = core::toml::parse("[groups.dev]\ntargets = [\"app\"]\n");  // no such target
  ASSERT_TRUE(broken.ok());
  LoadedPolicy refused = load_policy(broken.root);
  EXPECT_EQ(refused.policy, nullptr);
  ASSERT_EQ(refused.problems.size(), 1u);
  EXPECT_EQ(refused.problems[0].line, 2);
  EXPECT_TRUE(refused.problems[0].is_error);
}

#ifdef SLUICE_SOURCE_DIR
std::string read_source_file(const std::string& relative) {
  std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/" + relative, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}
#endif

// The "complete example" of docs/configuration.md is a valid file.
TEST(PolicyConfig, DocumentationExampleLoads) {
#ifdef SLUICE_SOURCE_DIR
  PasswordEnv env("SLUICE_APP_PASSWORD");
  const std::string doc = read_source_file("docs/configuration.md");
  const std::string marker = "<!-- This block is loaded by tests/unit/policy_config_test.cc";
  size_t at = doc.find(marker);
  ASSERT_NE(at, std::string::npos) << "docs/configuration.md lost its tested example";
  size_t begin = doc.find("```toml\n", at);
  ASSERT_NE(begin, std::string::npos);
  begin += 8;
  size_t end = doc.find("```", begin);
  ASSERT_NE(end, std::string::npos);
  auto config = load(doc.substr(begin, end - begin));
  ASSERT_TRUE(config.ok()) << report(config);
  EXPECT_TRUE(config.diagnostics.empty()) << report(config);
  const Group* agents = config.policy->find_group("agents");
  ASSERT_NE(agents, nullptr);
  EXPECT_EQ(agents->access, AccessMode::read_write);
  EXPECT_EQ(agents->packs, (std::vector<std::string>{"agent-default"}));
  ASSERT_EQ(agents->rules.size(), 2u);
  EXPECT_EQ(agents->rules[0].name, "no-payroll-writes");
  EXPECT_NE(config.policy->find_group("analysts"), nullptr);
#else
  GTEST_SKIP() << "SLUICE_SOURCE_DIR is not defined";
#endif
}

// tools/sluice.example.toml documents every policy key and loads without a warning
// (Config.ExampleFileLoads checks the rest of it).
TEST(PolicyConfig, ExampleFileHasAPolicy) {
#ifdef SLUICE_SOURCE_DIR
  PasswordEnv env("SLUICE_APP_PASSWORD");
  auto config = tools::load_config_file(std::string(SLUICE_SOURCE_DIR) + "/tools/sluice.example.toml");
  ASSERT_TRUE(config.ok()) << report(config);
  EXPECT_TRUE(config.diagnostics.empty()) << report(config);
  const Policy& policy = *config.policy;
  EXPECT_TRUE(policy.enabled);
  EXPECT_EQ(policy.groups.size(), 3u);
  const Group* agents = policy.find_group("agents");
  ASSERT_NE(agents, nullptr);
  EXPECT_EQ(agents->rules.size(), 1u);
  for (const auto& user : config.settings.users) {
    for (const auto& group : user.groups) EXPECT_NE(policy.find_group(group), nullptr) << group;
  }
  EXPECT_EQ(config.settings.find_target("app")->search_path, (std::vector<std::string>{"public"}));
#else
  GTEST_SKIP() << "SLUICE_SOURCE_DIR is not defined";
#endif
}

}  // namespace
}  // namespace sluice::policy
