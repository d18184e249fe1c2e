// The credential sluice holds for PostgreSQL never reaches a client or the log: every
// byte a client receives is scanned for the backend passwords and for the pieces of
// their stored verifiers (SCRAM salt/StoredKey/ServerKey, the md5 hash).
#include <gtest/gtest.h>

#include "tests/integration/fixture.h"

namespace sluice::it {
namespace {

class Secrets : public GatewayTest {
 protected:
  SluicedOptions options() override {
    SluicedOptions o;
    o.log_level = "debug";  // the most talkative log is the one most likely to leak
    o.targets = default_targets();
    bad_password_ = "wrong-" + random_token(20);
    o.targets.push_back({"app_badpw", "app", "sluice_app", bad_password_});
    return o;
  }

  // Everything that must never appear, with a name for the failure message.
  std::vector<std::pair<std::string, std::string>> forbidden() {
    std::vector<std::pair<std::string, std::string>> out;
    const auto add_secret = [&](const std::string& name, const std::string& value) {
      out.emplace_back(name, value);
      out.emplace_back(name + " (base64)", base64_encode(value));
    };
    add_secret("sluice_app password", pg().app_password());
    add_secret("md5_user password", pg().md5_password());
    add_secret("plain_user password", pg().plain_password());
    add_secret("app_badpw password", bad_password_);

    Conn su(pg().superuser_conninfo());
    const Rows rows = query(su, "SELECT rolname, rolpassword FROM pg_authid "
                                "WHERE rolname IN ('sluice_app', 'md5_user', 'plain_user')");
    EXPECT_EQ(rows.size(), 3u);
    for (const Row& row : rows) {
      const std::string role = *row[0];
      const std::string stored = *row[1];
      out.emplace_back(role + " stored password", stored);
      if (stored.rfind("md5", 0) == 0) {
        out.emplace_back(role + " md5 hash", stored.substr(3));
        continue;
      }
      // SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>
      const auto dollar1 = stored.find('$');
      const auto colon1 = stored.find(':', dollar1);
      const auto dollar2 = stored.find('$', colon1);
      const auto colon2 = stored.find(':', dollar2);
      EXPECT_NE(colon2, std::string::npos) << stored;
      if (colon2 == std::string::npos) continue;
      const std::string pieces[][2] = {
          {"salt", stored.substr(colon1 + 1, dollar2 - colon1 - 1)},
          {"StoredKey", stored.substr(dollar2 + 1, colon2 - dollar2 - 1)},
          {"ServerKey", stored.substr(colon2 + 1)},
      };
      for (const auto& [what, b64] : pieces) {
        out.emplace_back(role + " " + what, b64);
        const std::optional<std::string> raw = base64_decode(b64);
        EXPECT_TRUE(raw.has_value()) << b64;
        if (raw) out.emplace_back(role + " " + what + " (raw bytes)", *raw);
      }
    }
    return out;
  }

  static void expect_absent(const std::string& haystack, const std::vector<std::pair<std::string, std::string>>& needles,
                            const std::string& where) {
    for (const auto& [name, needle] : needles)
      EXPECT_EQ(haystack.find(needle), std::string::npos) << name << " appears in " << where;
  }

  std::string bad_password_;
};

TEST_F(Secrets, BackendPasswordNeverReachesClientOrLog) {
  const auto needles = forbidden();
  ASSERT_GT(needles.size(), 20u);

  // Statements that show what the session knows about itself, or try to read credentials.
  const char* statements[] = {
      "SELECT current_user, session_user, current_database(), inet_server_port()",
      "SHOW password_encryption",
      "SELECT name, setting FROM pg_settings ORDER BY name",
      "SELECT rolname, rolpassword FROM pg_authid",
      "SELECT usename, passwd FROM pg_shadow",
      "SELECT * FROM pg_stat_activity",
      "SELECT 1/0",
      "SELECT pg_read_file('pg_hba.conf')",
  };
  std::string all_bytes;
  for (const char* target : {"app", "app_md5", "app_plain"}) {
    SCOPED_TRACE(target);
    RawClient raw;
    ASSERT_TRUE(login(raw, gw().port(), "alice", kAlicePassword, target));
    for (const char* sql : statements) simple_query(raw, sql);
    raw.send(wire::terminate());
    raw.wait_closed(5s);
    ASSERT_GT(raw.received().size(), 1000u);
    expect_absent(raw.received(), needles, std::string("bytes received through target ") + target);
    all_bytes += raw.received();
  }

  // A target whose configured password is wrong: the login fails; the failure tells
  // the client nothing about the credential.
  {
    RawClient raw;
    ASSERT_TRUE(raw.connect(gw().port()));
    const RawClient::StartupResult r = raw.startup("alice", "app_badpw", kAlicePassword);
    EXPECT_FALSE(r.ready) << "login with a wrong backend password succeeded";
    EXPECT_FALSE(r.error.empty()) << "no ErrorResponse when the backend login failed";
    raw.wait_closed(5s);
    expect_absent(raw.received(), needles, "bytes received through target app_badpw");
  }

  // Same through libpq (SSLRequest first, its own SCRAM), for good measure.
  {
    Conn c = gateway_conn();
    ASSERT_TRUE(c.ok()) << c.error();
    const Rows rows = query(c, "SELECT name, setting FROM pg_settings");
    std::string text;
    for (const Row& row : rows)
      for (const auto& v : row) text += v.value_or("") + "\n";
    expect_absent(text, needles, "pg_settings seen through sluice");
  }

  ASSERT_EQ(gw().stop(), 0);
  const std::string log = gw().log();
  EXPECT_FALSE(log.empty());
  expect_absent(log, needles, "the sluiced log");
  // Gateway users' plaintext passwords from the config are secrets too.
  EXPECT_EQ(log.find(kAlicePassword), std::string::npos) << "alice's password appears in the sluiced log";
  EXPECT_EQ(log.find(kBobPassword), std::string::npos) << "bob's password appears in the sluiced log";
}

}  // namespace
}  // namespace sluice::it
