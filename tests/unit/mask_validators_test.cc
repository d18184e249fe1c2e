// Tests for mask/validators: each checksum and range check on known-good and
// near-miss values, the randomness and placeholder heuristics, the context-sensitive
// IPv4 and e-mail checks, and hostile bytes.
#include "mask/validators.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::mask {
namespace {

using namespace std::string_view_literals;

Span whole(std::string_view value) { return {0, static_cast<uint32_t>(value.size())}; }

// The span of `needle` inside `value` (first occurrence).
Span span_of(std::string_view value, std::string_view needle) {
  const size_t at = value.find(needle);
  EXPECT_NE(at, std::string_view::npos) << needle;
  return {static_cast<uint32_t>(at), static_cast<uint32_t>(at + needle.size())};
}

TEST(MaskValidators, Luhn) {
  EXPECT_TRUE(luhn_valid("4111111111111111"));
  EXPECT_TRUE(luhn_valid("4111 1111 1111 1111"));
  EXPECT_TRUE(luhn_valid("4111-1111-1111-1111"));
  EXPECT_TRUE(luhn_valid("378282246310005"));      // 15 digits (Amex test number)
  EXPECT_TRUE(luhn_valid("4222222222222"));        // 13 digits
  EXPECT_TRUE(luhn_valid("6304000000000000018"));  // 19 digits
  EXPECT_FALSE(luhn_valid("4111111111111112"));
  EXPECT_FALSE(luhn_valid("4111 1111 1111 1112"));
  EXPECT_FALSE(luhn_valid("411111111111"));          // 12 digits
  EXPECT_FALSE(luhn_valid("41111111111111111111"));  // 20 digits
  EXPECT_FALSE(luhn_valid("4111.1111.1111.1111"));   // '.' is not a card separator
  EXPECT_FALSE(luhn_valid(" 4111111111111111"));
  EXPECT_FALSE(luhn_valid(""));
  EXPECT_FALSE(luhn_valid("4111111111111111\0"sv));
}

TEST(MaskValidators, UsSsn) {
  EXPECT_TRUE(us_ssn_valid("536-90-4399"));
  EXPECT_TRUE(us_ssn_valid("536904399"));
  EXPECT_TRUE(us_ssn_valid("001-01-0001"));
  EXPECT_TRUE(us_ssn_valid("899-99-9999"));
  EXPECT_FALSE(us_ssn_valid("000-12-3456"));  // area 000
  EXPECT_FALSE(us_ssn_valid("666-12-3456"));  // area 666
  EXPECT_FALSE(us_ssn_valid("900-12-3456"));  // 9xx: ITIN range
  EXPECT_FALSE(us_ssn_valid("536-00-4399"));  // group 00
  EXPECT_FALSE(us_ssn_valid("536-90-0000"));  // serial 0000
  EXPECT_FALSE(us_ssn_valid("078-05-1120"));  // the Woolworth wallet card
  EXPECT_FALSE(us_ssn_valid("123-45-6789"));
  EXPECT_FALSE(us_ssn_valid("219-09-9999"));
  EXPECT_FALSE(us_ssn_valid("536-904-399"));
  EXPECT_FALSE(us_ssn_valid("536 90 4399"));
  EXPECT_FALSE(us_ssn_valid("53690439"));
  EXPECT_FALSE(us_ssn_valid("53a904399"));
}

TEST(MaskValidators, Iban) {
  EXPECT_TRUE(iban_valid("DE89370400440532013000"));
  EXPECT_TRUE(iban_valid("DE89 3704 0044 0532 0130 00"));
  EXPECT_TRUE(iban_valid("de89370400440532013000"));
  EXPECT_TRUE(iban_valid("GB29NWBK60161331926819"));
  EXPECT_TRUE(iban_valid("FR1420041010050500013M02606"));
  EXPECT_TRUE(iban_valid("NL91ABNA0417164300"));
  EXPECT_TRUE(iban_valid("CH7004830000000000000"));
  EXPECT_TRUE(iban_valid("NO9386011117947"));
  EXPECT_FALSE(iban_valid("DE88370400440532013000"));    // check digits
  EXPECT_FALSE(iban_valid("DE893704004405320130"));      // DE is 22 long
  EXPECT_FALSE(iban_valid("XX89370400440532013000"));    // unknown country
  EXPECT_FALSE(iban_valid("DE89-3704-0044-0532-0130-00"));
  EXPECT_FALSE(iban_valid("DE"));
  EXPECT_EQ(iban_length("DE"), 22u);
  EXPECT_EQ(iban_length("no"), 15u);
  EXPECT_EQ(iban_length("MT"), 31u);
  EXPECT_EQ(iban_length("US"), 0u);
  EXPECT_EQ(iban_length("D"), 0u);
}

TEST(MaskValidators, GithubClassicChecksum) {
  EXPECT_EQ(crc32("123456789"), 0xCBF43926u);  // the CRC-32 check value
  EXPECT_EQ(crc32(""), 0u);
  EXPECT_TRUE(github_classic_token_valid("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"));
  EXPECT_TRUE(github_classic_token_valid("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"));
  EXPECT_TRUE(github_classic_token_valid("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"));
  EXPECT_FALSE(github_classic_token_valid("ghp_iDXw0LrY1yFFrNNnXkqRi2Zn9wxv4l0IEx0j"));  // last char off
  EXPECT_FALSE(github_classic_token_valid("ghx_iDXw0LrY1yFFrNNnXkqRi2Zn9wxv4l0IEx0k"));  // unknown prefix
  EXPECT_FALSE(github_classic_token_valid("ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"));
  EXPECT_FALSE(github_classic_token_valid("ghp_iDXw0LrY1yFFrNNnXkqRi2Zn9wxv4l0IEx0"));
}

TEST(MaskValidators, JwtShape) {
  const std::string header = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";  // {"alg":"HS256","typ":"JWT"}
  const std::string payload = "eyJzdWIiOiIxMjM0NTY3ODkwIn0";          // {"sub":"1234567890"}
  EXPECT_TRUE(jwt_shape_valid(header + "." + payload + ".u-vPcH282G_EpBrJbZwp7K03hEcg5FsGs1aSUY8suAY"));
  EXPECT_TRUE(jwt_shape_valid(header + "." + payload + "."));  // alg none: empty signature
  EXPECT_FALSE(jwt_shape_valid(header));
  EXPECT_FALSE(jwt_shape_valid(header + "." + payload));
  EXPECT_FALSE(jwt_shape_valid(header + ".." + "abc"));
  EXPECT_FALSE(jwt_shape_valid(header + "." + payload + ".sig.extra"));
  EXPECT_FALSE(jwt_shape_valid("eyJ0eXAiOiJKV1QifQ." + payload + ".abc"));  // {"typ":"JWT"}: no alg
  EXPECT_FALSE(jwt_shape_valid("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ." + payload + ".abc"));  // cut JSON
  EXPECT_FALSE(jwt_shape_valid(header + "." + payload + ".a+b"));
  EXPECT_FALSE(jwt_shape_valid("W10." + payload + ".abc"));  // [] is not an object
}

TEST(MaskValidators, EntropyAndClasses) {
  EXPECT_DOUBLE_EQ(shannon_entropy(""), 0);
  EXPECT_DOUBLE_EQ(shannon_entropy("aaaa"), 0);
  EXPECT_DOUBLE_EQ(shannon_entropy("abab"), 1);
  EXPECT_DOUBLE_EQ(shannon_entropy("abcd"), 2);
  const CharClasses c = char_classes("aB3-\xff");
  EXPECT_EQ(c.lower, 1u);
  EXPECT_EQ(c.upper, 1u);
  EXPECT_EQ(c.digit, 1u);
  EXPECT_EQ(c.other, 2u);
  EXPECT_EQ(c.kinds(), 4);
}

TEST(MaskValidators, RandomSecret) {
  EXPECT_TRUE(looks_random_secret("dZDr3MMT9362mwmfaC2sNl8ZZh4Ul41Evtj5n9Cg"));
  EXPECT_TRUE(looks_random_secret("pdzPaEMM1ZA7V0FhHVJWDBt2hWdQZUm14QhoxhLP"));
  EXPECT_FALSE(looks_random_secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"));  // AWS docs
  EXPECT_FALSE(looks_random_secret("da39a3ee5e6b4b0d3255bfef95601890afd80709"));  // git SHA-1
  EXPECT_FALSE(looks_random_secret("DA39A3EE5E6B4B0D3255BFEF95601890AFD80709"));
  EXPECT_FALSE(looks_random_secret("ThisIsAVeryLongCamelCaseIdentifierNameXy"));  // no digit or symbol
  EXPECT_FALSE(looks_random_secret("getUserAccountSettingsForOrganization123"));  // low entropy
  EXPECT_FALSE(looks_random_secret("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1A"));
  EXPECT_FALSE(looks_random_secret("Ab1"));
}

TEST(MaskValidators, Placeholders) {
  for (std::string_view p : {"XXXXXXXXXXXXXXXX", "xxxxxxxxxxxx", "****", "********", "${AWS_SECRET_ACCESS_KEY}",
                             "{{ db_password }}", "<redacted>", "<your-token>", "REDACTED", "[REDACTED]",
                             "your-token-here", "YOUR_API_KEY_HERE", "xoxb-your-token-here",
                             "AKIAIOSFODNN7EXAMPLE", "sk_test_example_key_123", "[masked:github_token]", "$DB_PASS",
                             "%s", "%(password)s", "null", "None", "changeme_here", "sk-abc...xyz", "0000-0000",
                             "x", "", "password", "ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"}) {
    EXPECT_TRUE(is_placeholder(p)) << p;
  }
  for (std::string_view s : {"Tr0ub4dor&3", "hunter2", "dZDr3MMT9362mwmfaC2sNl8ZZh4Ul41Evtj5n9Cg", "$2b$12$abcdefghij",
                             "Yours2023!", "glpat-tKnP_VSGVBrYSuIb9OZi", "sk_live_E1zKLiSpYMZElLTCPPAwVv82"}) {
    EXPECT_FALSE(is_placeholder(s)) << s;
  }
}

TEST(MaskValidators, SecretValue) {
  EXPECT_TRUE(looks_like_secret_value("hunter2", 4));
  EXPECT_TRUE(looks_like_secret_value("Tr0ub4dor&3x", 4));
  EXPECT_TRUE(looks_like_secret_value("correcthorsebatterystaple", 8));  // long, one class
  EXPECT_FALSE(looks_like_secret_value("mypassword", 4));                // short, one class
  EXPECT_FALSE(looks_like_secret_value("abc1", 8));                      // too short
  EXPECT_FALSE(looks_like_secret_value("2024-06-01T00:00:00Z", 4));
  EXPECT_FALSE(looks_like_secret_value("3600", 4));
  EXPECT_FALSE(looks_like_secret_value("********", 4));
  EXPECT_FALSE(looks_like_secret_value("<redacted>", 4));
  EXPECT_FALSE(looks_like_secret_value("os.getenv(", 4));
  EXPECT_FALSE(looks_like_secret_value("process.env.DB_PASSWORD", 4));
  EXPECT_FALSE(looks_like_secret_value("settings.SECRET_KEY", 4));
  EXPECT_FALSE(looks_like_secret_value("required", 4));
}

TEST(MaskValidators, Ipv4) {
  auto check = [](std::string_view value, std::string_view address) {
    return ipv4_plausible(value, span_of(value, address));
  };
  EXPECT_TRUE(check("10.20.30.40", "10.20.30.40"));
  EXPECT_TRUE(check("host 192.168.1.254:5432 down", "192.168.1.254"));
  EXPECT_TRUE(check("8.8.8.8", "8.8.8.8"));
  EXPECT_TRUE(check("from 10.0.0.1/24.", "10.0.0.1"));
  EXPECT_TRUE(check("ssh alice@10.0.0.5", "10.0.0.5"));
  EXPECT_TRUE(check("line\\n10.1.2.3", "10.1.2.3"));  // after a JSON "\n" escape
  EXPECT_FALSE(check("127.0.0.1", "127.0.0.1"));
  EXPECT_FALSE(check("0.0.0.0", "0.0.0.0"));
  EXPECT_FALSE(check("255.255.255.255", "255.255.255.255"));
  EXPECT_FALSE(check("256.1.2.3", "256.1.2.3"));
  EXPECT_FALSE(check("10.0.19041.1", "10.0.19041.1"));
  EXPECT_FALSE(check("1.2.3.4.5", "1.2.3.4"));
  EXPECT_FALSE(check("1.2.3.4.5", "2.3.4.5"));
  EXPECT_FALSE(check("v1.2.3.4", "1.2.3.4"));
  EXPECT_FALSE(check("10.0.0.12", "10.0.0.1"));  // not the whole number
  EXPECT_FALSE(check("postgresql://10.0.3.17:5432/db", "10.0.3.17"));
  EXPECT_FALSE(check("postgresql://app@10.0.3.17:5432/db", "10.0.3.17"));
  EXPECT_FALSE(ipv4_plausible("1.2.3.4", Span{0, 99}));
  EXPECT_FALSE(ipv4_plausible("1.2.3.4", Span{3, 3}));
}

TEST(MaskValidators, Email) {
  auto check = [](std::string_view value, std::string_view address) {
    return email_plausible(value, span_of(value, address));
  };
  EXPECT_TRUE(check("alice.smith@example.com", "alice.smith@example.com"));
  EXPECT_TRUE(check("Contact: bob+news@corp.example.co.uk for details", "bob+news@corp.example.co.uk"));
  EXPECT_TRUE(check("mailto:eve@example.org", "eve@example.org"));
  EXPECT_TRUE(check("https://example.com/contact?email=carol@example.com", "carol@example.com"));
  EXPECT_TRUE(check("// owner: dmitri@example.com", "dmitri@example.com"));
  EXPECT_FALSE(check("image@2x.png", "image@2x.png"));
  EXPECT_FALSE(check("lodash@4.17.21", "lodash@4.17.21"));
  EXPECT_FALSE(check("git@github.com:org/repo.git", "git@github.com"));
  EXPECT_FALSE(check("alice@localhost", "alice@localhost"));
  EXPECT_FALSE(check("postgresql://app@db.internal:5432/x", "app@db.internal"));
  EXPECT_FALSE(check("https://user:pw@host.example.com/", "pw@host.example.com"));
  EXPECT_FALSE(check("postgresql://app:N7v!q2-Xw@db.internal/x", "q2-Xw@db.internal"));
  EXPECT_FALSE(check(".alice@example.com", ".alice@example.com"));
  EXPECT_FALSE(check("alice@example.com", "alice@example.co"));  // not the whole domain
  EXPECT_FALSE(check("a@-bad.example.com", "a@-bad.example.com"));
}

TEST(MaskValidators, TokenStart) {
  EXPECT_TRUE(token_starts_at("ghp_x", 0));
  EXPECT_TRUE(token_starts_at(" ghp_x", 1));
  EXPECT_TRUE(token_starts_at("\"ghp_x", 1));
  EXPECT_TRUE(token_starts_at("a\\nghp_x", 3));
  EXPECT_FALSE(token_starts_at("xghp_x", 1));
  EXPECT_FALSE(token_starts_at("x", 5));
}

TEST(MaskValidators, HostileBytesNeverCrash) {
  std::string junk;
  for (int i = 0; i < 512; ++i) junk.push_back(static_cast<char>((i * 131 + 7) & 0xFF));
  for (size_t len = 0; len <= junk.size(); len += 7) {
    const std::string_view v(junk.data(), len);
    luhn_valid(v);
    us_ssn_valid(v);
    iban_valid(v);
    github_classic_token_valid(v);
    jwt_shape_valid(v);
    looks_random_secret(v);
    is_placeholder(v);
    looks_like_secret_value(v, 0);
    if (len > 0) {
      ipv4_plausible(v, whole(v));
      email_plausible(v, whole(v));
    }
  }
  EXPECT_FALSE(jwt_shape_valid("eyJ\0.eyJ.x"sv));
  EXPECT_FALSE(iban_valid("DE89\0370400440532013000"sv));
}

}  // namespace
}  // namespace sluice::mask
