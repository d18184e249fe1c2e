// Tests for mask/patterns: the built-in pack compiles; every kind finds its own example
// (alone, inside text, with its tier alone) and masks the right bytes; every kind has
// near misses it must not report; clean text reports nothing.
#include "mask/patterns.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "mask/scanner.h"
#include "tests/unit/mask_support.h"

namespace sluice::mask {
namespace {

std::string describe(const PatternSet& set, std::string_view value, const ScanResult& result) {
  std::string out;
  for (const Finding& f : result.findings) {
    out += "  " + set.pattern(f.pattern).kind + " [" + std::to_string(f.begin) + "," + std::to_string(f.end) +
           ") '" + std::string(value.substr(f.begin, f.end - f.begin)) + "'\n";
  }
  return out.empty() ? "  (no findings)\n" : out;
}

// Near misses per kind: each must not be reported as that kind. Every built-in kind
// needs at least one (TEST EveryKindHasNearMisses).
const std::map<std::string, std::vector<std::string>>& near_misses() {
  static const std::map<std::string, std::vector<std::string>> table = {
      {"aws_access_key_id", {"AKIAIOSFODNN7EXAMPLE", "AKIAVQJXXVBOTHD2WTF", "akiavqjxxvbothd2wtfl", "AKIA0189018901890189",
                             "XAKIAVQJXXVBOTHD2WTFL"}},
      {"aws_secret_access_key",
       {"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key = ${AWS_SECRET}",
        "aws_secret_access_key = pdzPaEMM1ZA7V0FhHVJWDBt2hWdQZUm14QhoxhLPextra"}},
      {"github_token", {"ghp_iDXw0LrY1yFFrNNnXkqRi2Zn9wxv4l0IEx0j", "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k"}},
      {"github_oauth_token", {"gho_GtqnoG0dkTGdzd85FsyKMSTO34IEAV3j6lB8"}},
      {"github_user_token", {"ghu_vdiQBBId3luqZvzz3jSpmpoLhip4ON1qc1lX"}},
      {"github_app_token", {"ghs_uQ6yiI0NjCADK9wuQnwlcs4McKRowH0ZIaz"}},
      {"github_refresh_token", {"ghr_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"}},
      {"github_fine_grained_token",
       {"github_pat_xRmXBYQ0DVbpag1xYKiuMw_7TpHD8BHbNdZU0NYJ2gClNbc7Hrd0APsmYaUSRCsllZq3ZycZOkN8gaW18"}},
      {"gitlab_pat", {"glpat-xxxxxxxxxxxxxxxxxxxx", "glpat-short", "key-glpat-tKnP_VSGVBrYSuIb9OZi"}},
      {"gitlab_pipeline_trigger_token", {"glptt-short123"}},
      {"gitlab_runner_token", {"glrt-XXXXXXXXXXXXXXXXXXXX"}},
      {"gitlab_deploy_token", {"gldt-<your-deploy-token>"}},
      {"gitlab_feed_token", {"glft-abc"}},
      {"gitlab_oauth_secret", {"gloas-d8b6da25a43a846eb31e7ea468c6414ce9"}},
      {"slack_bot_token", {"xoxb-your-token-here", "xoxb-814330992618-922217975610-XXXXXXXXXXXXXXXXXXXXXXXX"}},
      {"slack_user_token", {"xoxp-123-456-789-abc"}},
      {"slack_legacy_token", {"xoxa-2-xxxxxxxx"}},
      {"slack_config_token", {"xoxe.xoxp-1-XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"}},
      {"slack_app_token", {"xapp-1-A123-your-token"}},
      {"slack_webhook_url", {"https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
                             "https://hooks.slack.com/services/"}},
      {"stripe_secret_key", {"pk_live_E1zKLiSpYMZElLTCPPAwVv82", "sk_live_xxxxxxxxxxxxxxxxxxxxxxxx",
                             "task_live_E1zKLiSpYMZElLTCPPAwVv82"}},
      {"stripe_restricted_key", {"rk_live_short"}},
      {"stripe_webhook_secret", {"whsec_gUsWlY8A1myEVIR6LFYh"}},
      {"openai_project_key", {"sk-proj-your-api-key-here-xxxxxxxxxxxxxxxxxxxxxxxxxx", "sk-learn"}},
      {"openai_service_account_key", {"sk-svcacct-REDACTED"}},
      {"openai_admin_key", {"sk-admin-1234"}},
      {"openai_api_key", {"sk-QOvJ92sxOoOFyIA8g7yCT3BlbkFXfqcrFfmEIHLKXZPEnx21"}},
      {"anthropic_api_key", {"sk-ant-api03-REDACTED"}},
      {"anthropic_admin_key",
       {"sk-ant-admin01-1g1aKfux6fX1L3dd4u2dDGqt1NvVeIWmQmcVFzbjcoP95wL0rKA53zmg7srxirfu19Ac_kKd2Lq1D595WXjjOt6v3rzKEAB"}},
      {"google_api_key", {"AIza4RNo88yLVvlwEpgnR74KLO1", "AIza4RNo88yLVvlwEpgnR74KLO10yZ2ChVIHNaQQ"}},
      {"google_oauth_access_token", {"ya29.short"}},
      {"google_oauth_client_secret", {"GOCSPX-juJUBEoAXHmGRZ2XsTS5"}},
      {"jwt", {"eyJhbGciOiJIUzI1NiJ9", "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc"}},
      {"pem_private_key",
       {"-----BEGIN PRIVATE KEY-----", "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----",
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n-----END PUBLIC KEY-----",
        "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n-----END CERTIFICATE-----"}},
      {"postgres_uri_password", {"postgresql://app:${DB_PASSWORD}@db.internal/appdb", "postgresql://app@db.internal:5432/appdb",
                                 "postgresql://db.internal:5432/appdb", "postgresql://app:****@db.internal/appdb"}},
      {"mysql_uri_password", {"mysql://root@localhost:3306/shop"}},
      {"mongodb_uri_password", {"mongodb+srv://app:****@cluster0.a1b2c.mongodb.net/"}},
      {"redis_uri_password", {"redis://cache.internal:6379/0"}},
      {"amqp_uri_password", {"amqp://guest:<password>@localhost:5672/"}},
      {"uri_password", {"https://example.com:8443/path", "https://user:password@example.com/"}},
      {"db_connection_string_password", {"host=db.internal port=5432 dbname=appdb user=app password=********"}},
      {"password_assignment", {"password: ********", "password=${DB_PASSWORD}", "password_hash=abc123def456",
                               "Forgot your password? Reset it here.", "password: required"}},
      {"secret_assignment", {"api_key = <redacted>", "token_expires_at=2024-06-01T00:00:00Z", "max_tokens=4096",
                             "token: 3600", "secret: os.getenv(\"SECRET\")", "Please rotate your API key every 90 days."}},
      {"authorization_header", {"Authorization: Bearer <token>", "Use a Bearer token in the header."}},
      {"npm_token", {"npm_install_dependencies_for_project1234"}},
      {"pypi_token", {"pypi-AgEIcHlwaS5vcmc"}},
      {"twilio_api_key", {"SK7bd8ecef4e670d262b1e23cc47c3ee3"}},
      {"sendgrid_api_key", {"SG.abc.def"}},
      {"vault_token", {"hvs.short"}},
      {"digitalocean_token", {"dop_v1_718cde22967e79f252019e78d0e2292d76334d306f5ef11798d409eb75962fd"}},
      {"shopify_token", {"shpat_01a84cc84eab845e9c9d83589a8070f"}},
      {"dockerhub_token", {"dckr_pat_short"}},
      {"huggingface_token", {"hf_abcdefghijklmnopqrstuvwxyzabcdefgh"}},
      {"azure_storage_key", {"AccountKey=wvoSFxhfrEw0bVCTvmiaXcaAK9G0Wuiw6rWIj0LEiRlwYjqzertEmtWSgz3FSDw0wO0sO=="}},
      {"age_secret_key", {"AGE-SECRET-KEY-1JFUS9GNHR7SJZ4FTM9RSH4LCHK55FJR8YN3YWDNZPP49G4DTZFEKH0N9S"}},
      {"linear_api_key", {"lin_api_zi0MBXUqwXR366l4blF6VIFhH4vOHL3lWIze9iX"}},
      {"postman_api_key", {"PMAK-f7e19d98e652463b9af6db66-f211fed21c5e19e1afc0f106d090678f8"}},
      {"databricks_token", {"dapiE8642499F717C63ED5B47FD113E37FEE"}},
      {"newrelic_user_key", {"NRAK-SPNLG2B0DLJ6FOT6122D0KTVR0"}},
      {"grafana_service_account_token", {"glsa_2ahM4e8yxXs4ZBVkakQtoXnco1tc6x3O_353b191"}},
      {"doppler_token", {"dp.pt.VASaxQvPRCkMDn6oxURwGV191t8BOXfH4Xpks48f7h"}},
      {"square_access_token", {"sq0atp-LpFPPwmSVMmEExYuemQxH"}},
      {"square_oauth_secret", {"sq0csp-dXxr6X4wH7QoY-lM4egoBy4oz6-njrxSQN5ONc8_4D"}},
      {"aws_secret_access_key_bare", {"da39a3ee5e6b4b0d3255bfef95601890afd80709", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                      "ThisIsAVeryLongCamelCaseIdentifierNameXy",
                                      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}},
      {"card_number", {"4111 1111 1111 1112", "1700000000123", "9876543210123456", "4111 1111-1111 1111",
                       "DE89 3704 0044 0532 0130 00", "41111111111111111111", "x4111111111111111", "1.4111111111111111"}},
      {"us_ssn", {"078-05-1120", "123-45-6789", "666-12-3456", "900-12-3456", "536-00-4399", "2024-06-01",
                  "1-536-90-4399"}},
      {"us_ssn_bare", {"order 536904399", "5369043991", "078051120"}},
      {"iban", {"DE88370400440532013000", "DE8937040044053201300", "XX89370400440532013000"}},
      {"email", {"image@2x.png", "lodash@4.17.21", "git@github.com:org/repo.git", "@alice_smith", "alice@localhost"}},
      {"phone_number", {"978-3-16-148410-0", "ORD-2024-403378", "v1.2.3", "10.0.19041.1", "2024-06-01",
                        "1700000000123", "123-456-7890"}},
      {"ipv4_address", {"10.0.19041.1", "127.0.0.1", "256.1.2.3", "1.2.3.4.5", "http://10.0.0.5:8080/"}},
      {"ipv6_address", {"12:30:45", "::1", "std::string", "Abc::def", "00:1a:2b:3c:4d:5e"}},
  };
  return table;
}

// More values each kind must find (as written: the finding must cover `masked`, or the
// whole value when `masked` is empty).
struct Positive {
  std::string kind, value, masked;
};
const std::vector<Positive>& more_positives() {
  static const std::vector<Positive> table = {
      {"aws_access_key_id", "key id: ASIAVQJXXVBOTHD2WTFL, region eu-west-1", "ASIAVQJXXVBOTHD2WTFL"},
      {"aws_secret_access_key", "\"SecretAccessKey\": \"pdzPaEMM1ZA7V0FhHVJWDBt2hWdQZUm14QhoxhLP\"",
       "pdzPaEMM1ZA7V0FhHVJWDBt2hWdQZUm14QhoxhLP"},
      {"github_token", "{\"msg\":\"line one\\n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\"}",
       "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"},
      {"gitlab_pat", "export GITLAB_TOKEN=glpat-tKnP_VSGVBrYSuIb9OZi.", "glpat-tKnP_VSGVBrYSuIb9OZi"},
      {"stripe_secret_key", "sk_test_E1zKLiSpYMZElLTCPPAwVv82", ""},
      {"jwt", "Authorization: Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxMjM0In0.",
       "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxMjM0In0."},
      {"pem_private_key",
       "{\"private_key\": \"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\\n-----END PRIVATE "
       "KEY-----\\n\"}",
       "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\\n-----END PRIVATE KEY-----"},
      {"pem_private_key",
       "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,3F17F5316E2BAC89\n\n"
       "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunV\n",
       "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,3F17F5316E2BAC89\n\n"
       "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunV"},
      {"pem_private_key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n",
       "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"},
      {"redis_uri_password", "REDIS_URL=rediss://:Hq8sLw2ZmR4tVb9XkP3n@cache.internal:6380", "Hq8sLw2ZmR4tVb9XkP3n"},
      {"db_connection_string_password", "Server=tcp:db.internal,1433;Database=app;User Id=svc;Password=Xr7kP2qLm9Zt;",
       "Xr7kP2qLm9Zt"},
      {"password_assignment", "{\"username\": \"app\", \"password\": \"hunter2!\"}", "hunter2!"},
      {"password_assignment", "PGPASSWORD='s3cr3t-Pass' psql -h db", "s3cr3t-Pass"},
      {"secret_assignment", "x-api-key: 9fQ2xLr7ZpK4mW8tB3nV", "9fQ2xLr7ZpK4mW8tB3nV"},
      {"card_number", "charged on 2024-06-15 4111111111111111 ok", "4111111111111111"},
      {"card_number", "card 4111 1111 1111 1111 exp 12/25", "4111 1111 1111 1111"},
      {"card_number", "amex 3782 822463 10005", "3782 822463 10005"},
      {"card_number", "mc 5555-5555-5555-4444.", "5555-5555-5555-4444"},
      {"us_ssn", "SSN: 536-90-4399.", "536-90-4399"},
      {"iban", "IBAN GB29 NWBK 6016 1331 9268 19, BIC NWBKGB2L", "GB29 NWBK 6016 1331 9268 19"},
      {"iban", "NO9386011117947", ""},
      {"email", "From: \"Eve\" <eve.o'neil@mail.example.org>", "eve.o'neil@mail.example.org"},
      {"phone_number", "call (201) 555-0123 today", "(201) 555-0123"},
      {"phone_number", "tel:+447912345678", "+447912345678"},
      {"phone_number", "Berlin office +49 30 1234567.", "+49 30 1234567"},
      {"phone_number", "201-555-0123", ""},
      {"ipv4_address", "client 192.168.1.254:5432 connected", "192.168.1.254"},
      {"ipv6_address", "from fe80::1ff:fe23:4567:890a%eth0", "fe80::1ff:fe23:4567:890a"},
  };
  return table;
}

// For kinds whose finding is only part of the example, the part that must be masked.
const std::map<std::string, std::string>& masked_part() {
  static const std::map<std::string, std::string> table = {
      {"aws_secret_access_key", "pdzPaEMM1ZA7V0FhHVJWDBt2hWdQZUm14QhoxhLP"},
      {"postgres_uri_password", "N7v!q2-Xw_9rLm4z"},
      {"mysql_uri_password", "Qm3vT8xWb2LpRz"},
      {"mongodb_uri_password", "Zk4pW9sQe2RtYb7N"},
      {"redis_uri_password", "Hq8sLw2ZmR4tVb9XkP3n"},
      {"amqp_uri_password", "Tf6yQp2LmZ8wXr4s"},
      {"uri_password", "Vb7nQ2xLp9Zs4Rt"},
      {"db_connection_string_password", "Xr7kP2qLm9Zt"},
      {"password_assignment", "Tr0ub4dor!3x"},
      {"secret_assignment", "9fQ2xLr7ZpK4mW8t"},
      {"authorization_header", "dXNlcjpzM2NyZXQtcGFzcw=="},
      {"azure_storage_key",
       "wvoSFxhfrEw0bVCTvmiaXcaAK9G0Wuiw6rWIj0LEiRlwYjqzertEmtWSgz3FSDw0wO0sOZgjON+ytr2FhhKtnE=="},
  };
  return table;
}

TEST(MaskPatterns, PackIsWellFormed) {
  const auto& pack = builtin_patterns();
  EXPECT_GE(pack.size(), 40u);
  std::set<std::string> kinds;
  for (const PatternSpec& p : pack) {
    EXPECT_TRUE(kinds.insert(p.kind).second) << "duplicate kind " << p.kind;
    EXPECT_FALSE(p.description.empty()) << p.kind;
    EXPECT_FALSE(p.example.empty()) << p.kind;
    EXPECT_FALSE(p.validator_name.empty()) << p.kind;
    EXPECT_NE(p.validator, nullptr) << p.kind;
    // Tier 1 runs on every value: a validator must refute a random-looking match.
    EXPECT_TRUE(p.tier == Tier::secret || p.tier == Tier::pii) << p.kind;
  }
  ASSERT_TRUE(builtin_set());
  EXPECT_EQ(builtin_set()->size(), pack.size());
  EXPECT_EQ(builtin_set()->find("github_token"), 2);
  EXPECT_EQ(builtin_set()->find("no_such_kind"), -1);
}

TEST(MaskPatterns, EveryKindFindsItsExample) {
  auto set = builtin_set();
  ASSERT_TRUE(set);
  Scanner scanner(set);
  ASSERT_TRUE(scanner.ready());
  ScanResult result;
  for (uint32_t i = 0; i < set->size(); ++i) {
    const PatternSpec& p = set->pattern(i);
    const std::string expected = masked_part().count(p.kind) ? masked_part().at(p.kind) : p.example;
    const size_t at = p.example.find(expected);
    ASSERT_NE(at, std::string::npos) << p.kind;

    // Alone, with its own tier only, and with both tiers.
    for (TierSet tiers : {p.tier == Tier::secret ? TierSet::secrets : TierSet::pii, TierSet::all}) {
      ASSERT_EQ(scanner.scan(p.example, tiers, result), ScanStatus::ok);
      bool found = false;
      for (const Finding& f : result.findings) {
        if (f.pattern == i && f.begin <= at && f.end >= at + expected.size()) found = true;
      }
      EXPECT_TRUE(found) << p.kind << " example not found; got:\n" << describe(*set, p.example, result);
      // The finding for the example is named for its own kind (not a generic one).
      EXPECT_EQ(result.findings.size(), 1u) << p.kind << ":\n" << describe(*set, p.example, result);
    }
    // Inside text, between other words (not for a pattern that needs the whole value).
    if (p.kind != "us_ssn_bare") {
      const std::string text = "see (" + p.example + ") and more";
      ASSERT_EQ(scanner.scan(text, TierSet::all, result), ScanStatus::ok);
      bool found = false;
      for (const Finding& f : result.findings) found = found || f.pattern == i;
      EXPECT_TRUE(found) << p.kind << " not found in text; got:\n" << describe(*set, text, result);
    }
    // A tier-1 kind is not found by a PII-only scan and vice versa.
    const TierSet other = p.tier == Tier::secret ? TierSet::pii : TierSet::secrets;
    ASSERT_EQ(scanner.scan(p.example, other, result), ScanStatus::ok);
    for (const Finding& f : result.findings) EXPECT_NE(f.pattern, i) << p.kind << " found by the other tier";
  }
}

TEST(MaskPatterns, MorePositives) {
  auto set = builtin_set();
  ASSERT_TRUE(set);
  Scanner scanner(set);
  ScanResult result;
  for (const Positive& p : more_positives()) {
    const int index = set->find(p.kind);
    ASSERT_GE(index, 0) << p.kind;
    const std::string masked = p.masked.empty() ? p.value : p.masked;
    const size_t at = p.value.find(masked);
    ASSERT_NE(at, std::string::npos) << p.kind;
    ASSERT_EQ(scanner.scan(p.value, TierSet::all, result), ScanStatus::ok);
    bool found = false;
    for (const Finding& f : result.findings) {
      found = found || (f.pattern == static_cast<uint32_t>(index) && f.begin <= at && f.end >= at + masked.size());
    }
    EXPECT_TRUE(found) << p.kind << " not found in '" << p.value << "':\n" << describe(*set, p.value, result);
  }
}

TEST(MaskPatterns, EveryKindHasNearMisses) {
  for (const PatternSpec& p : builtin_patterns()) {
    auto it = near_misses().find(p.kind);
    EXPECT_TRUE(it != near_misses().end() && !it->second.empty()) << p.kind << " has no near-miss test";
  }
  for (const auto& [kind, values] : near_misses()) {
    EXPECT_GE(builtin_set()->find(kind), 0) << "near misses for unknown kind " << kind;
  }
}

TEST(MaskPatterns, NearMissesAreNotReported) {
  auto set = builtin_set();
  ASSERT_TRUE(set);
  Scanner scanner(set);
  ScanResult result;
  for (const auto& [kind, values] : near_misses()) {
    const int index = set->find(kind);
    ASSERT_GE(index, 0) << kind;
    for (const std::string& value : values) {
      ASSERT_EQ(scanner.scan(value, TierSet::all, result), ScanStatus::ok);
      for (const Finding& f : result.findings) {
        EXPECT_NE(f.pattern, static_cast<uint32_t>(index))
            << kind << " reported for near miss '" << value << "':\n"
            << describe(*set, value, result);
      }
    }
  }
}

TEST(MaskPatterns, CleanTextHasNoFindings) {
  auto set = builtin_set();
  ASSERT_TRUE(set);
  Scanner scanner(set);
  ScanResult result;
  const std::vector<std::string> clean = {
      "The quick brown fox jumps over the lazy dog.",
      "SELECT id, name FROM users WHERE created_at > '2024-06-01' ORDER BY id LIMIT 50;",
      "commit da39a3ee5e6b4b0d3255bfef95601890afd80709 (HEAD -> main)",
      "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      "request 3f2504e0-4f89-41d3-9a0c-0305e82c3301 took 12.5 ms at 10:42:17",
      "Release v2.14.3 (build 10.0.19041.1) ships lodash@4.17.21 and image@2x.png",
      "Order ORD-2024-403378 shipped; ISBN 978-3-16-148410-0; total 1234.56 EUR",
      "Connect with postgresql://app@db.internal:5432/appdb (password from the vault)",
      "api_key = <redacted>; password: ********; token_expires_at=2024-06-01T00:00:00Z",
      "pk_live_E1zKLiSpYMZElLTCPPAwVv82 is the publishable key; sk-learn is a library",
      "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n-----END CERTIFICATE-----",
      "git@github.com:org/repo.git at 127.0.0.1; std::vector<int> v; a::b::c",
      "Call me maybe. Price: $1,299.99. Epoch 1700000000123. Version 1.2.3.4.5.",
  };
  for (const std::string& text : clean) {
    ASSERT_EQ(scanner.scan(text, TierSet::all, result), ScanStatus::ok);
    EXPECT_TRUE(result.findings.empty()) << text << ":\n" << describe(*set, text, result);
  }
}

TEST(MaskPatterns, DocsListEveryKindAndValidator) {
  std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/docs/masking.md");
  const std::string docs((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(docs.empty());
  for (const PatternSpec& p : builtin_patterns()) {
    EXPECT_NE(docs.find("| `" + p.kind + "` | " + std::to_string(static_cast<int>(p.tier)) + " |"), std::string::npos)
        << p.kind << " is missing from the table in docs/masking.md";
  }
  std::string names = validator_names() + ", ";
  for (size_t start = 0, comma; (comma = names.find(", ", start)) != std::string::npos; start = comma + 2) {
    const std::string name = names.substr(start, comma - start);
    EXPECT_NE(docs.find("| `" + name + "` |"), std::string::npos) << "validator " << name << " is not documented";
  }
}

TEST(MaskPatterns, NamedValidators) {
  bool found = false;
  EXPECT_EQ(find_validator("none", &found), nullptr);
  EXPECT_TRUE(found);
  EXPECT_NE(find_validator("luhn", &found), nullptr);
  EXPECT_TRUE(found);
  EXPECT_EQ(find_validator("no-such", &found), nullptr);
  EXPECT_FALSE(found);
  EXPECT_NE(validator_names().find("entropy"), std::string::npos);
  Validator luhn = find_validator("luhn");
  Span span{0, 16};
  EXPECT_TRUE(luhn("4111111111111111", span));
  EXPECT_FALSE(luhn("4111111111111112", span));
}

}  // namespace
}  // namespace sluice::mask
