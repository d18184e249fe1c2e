// Tests for mask/scanner: row scanning and the mapping of findings back to columns,
// NUL separators (nothing matches across values), overlap merging, the per-value
// findings cap, user patterns and their compile errors, rewriting,
// and hostile input.
#include "mask/scanner.h"
#include "tests/unit/mask_support.h"
#include "mask/value_rewrite.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace sluice::mask {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

constexpr std::string_view kGithubToken = "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";

std::string kind_of(const Finding& f) { return builtin_set()->pattern(f.pattern).kind; }

PatternSpec user_pattern(std::string kind, std::string regex, Tier tier = Tier::secret) {
  PatternSpec p;
  p.kind = std::move(kind);
  p.regex = std::move(regex);
  p.tier = tier;
  return p;
}

std::string compile_error(std::vector<PatternSpec> patterns) {
  auto compiled = PatternSet::compile(std::move(patterns));
  EXPECT_FALSE(compiled.set);
  return compiled.error;
}

TEST(MaskScanner, RowFindingsMapToColumns) {
  Scanner scanner(builtin_set());
  ASSERT_TRUE(scanner.ready());
  const std::string token_text = "deploy key " + std::string(kGithubToken) + " expires";
  const std::vector<std::string_view> row = {"plain text", token_text, "", "mail alice.smith@example.com, ssn 536-90-4399",
                                             "42"};
  ScanResult result;
  ASSERT_EQ(scanner.scan_row(row, TierSet::all, result), ScanStatus::ok);
  ASSERT_EQ(result.findings.size(), 3u);
  EXPECT_TRUE(result.saturated.empty());

  EXPECT_EQ(result.findings[0], (Finding{1, 11, 11 + 40, 2}));
  EXPECT_EQ(kind_of(result.findings[0]), "github_token");
  EXPECT_EQ(result.findings[1].column, 3u);
  EXPECT_EQ(kind_of(result.findings[1]), "email");
  EXPECT_EQ(row[3].substr(result.findings[1].begin, result.findings[1].end - result.findings[1].begin),
            "alice.smith@example.com");
  EXPECT_EQ(result.findings[2].column, 3u);
  EXPECT_EQ(kind_of(result.findings[2]), "us_ssn");
  EXPECT_EQ(row[3].substr(result.findings[2].begin, result.findings[2].end - result.findings[2].begin), "536-90-4399");

  EXPECT_TRUE(result.of_column(0).empty());
  EXPECT_EQ(result.of_column(1).size(), 1u);
  EXPECT_TRUE(result.of_column(2).empty());
  EXPECT_EQ(result.of_column(3).size(), 2u);
  EXPECT_TRUE(result.of_column(9).empty());

  // Tier 1 only: the PII in column 3 is not looked for.
  ASSERT_EQ(scanner.scan_row(row, TierSet::secrets, result), ScanStatus::ok);
  ASSERT_EQ(result.findings.size(), 1u);
  EXPECT_EQ(result.findings[0].column, 1u);
}

TEST(MaskScanner, NothingMatchesAcrossValues) {
  Scanner scanner(builtin_set());
  ScanResult result;
  // A token split over two columns is two harmless halves.
  const std::vector<std::string_view> split = {kGithubToken.substr(0, 20), kGithubToken.substr(20)};
  ASSERT_EQ(scanner.scan_row(split, TierSet::all, result), ScanStatus::ok);
  EXPECT_TRUE(result.findings.empty());
  // A PEM header in one column and a body in the next: the header alone is no key,
  // and the body alone has no header.
  const std::vector<std::string_view> pem = {"-----BEGIN RSA PRIVATE KEY-----",
                                             "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0\n"
                                             "-----END RSA PRIVATE KEY-----"};
  ASSERT_EQ(scanner.scan_row(pem, TierSet::all, result), ScanStatus::ok);
  EXPECT_TRUE(result.findings.empty());
  // The same in one value is a key, masked through its END line.
  const std::string joined = std::string(pem[0]) + "\n" + std::string(pem[1]);
  ASSERT_EQ(scanner.scan(joined, TierSet::all, result), ScanStatus::ok);
  ASSERT_EQ(result.findings.size(), 1u);
  EXPECT_EQ(result.findings[0].begin, 0u);
  EXPECT_EQ(result.findings[0].end, joined.size());
  // Whole-value SSN: exactly nine digits in the column, not in the row.
  const std::vector<std::string_view> bare = {"536904399", "x 536904399", "536904399 "};
  ASSERT_EQ(scanner.scan_row(bare, TierSet::all, result), ScanStatus::ok);
  ASSERT_EQ(result.findings.size(), 1u);
  EXPECT_EQ(result.findings[0], (Finding{0, 0, 9, static_cast<uint32_t>(builtin_set()->find("us_ssn_bare"))}));
}

TEST(MaskScanner, ValuesMayHoldNulAndInvalidUtf8) {
  Scanner scanner(builtin_set());
  ScanResult result;
  const std::string value = "\xff\xfe\0a\0"s + std::string(kGithubToken) + "\0\xc3("s;
  ASSERT_EQ(scanner.scan(value, TierSet::all, result), ScanStatus::ok);
  ASSERT_EQ(result.findings.size(), 1u);
  EXPECT_EQ(result.findings[0].begin, 5u);
  EXPECT_EQ(result.findings[0].end, 45u);
}

TEST(MaskScanner, UserPatternsMatchingAcrossValuesAreConfinedToEachValue) {
  // A user pattern may match a NUL; each value it touches gets its own piece.
  std::vector<PatternSpec> patterns = {user_pattern("across", "abc[^x]{1,4}def")};
  auto compiled = PatternSet::compile(patterns);
  ASSERT_TRUE(compiled.set) << compiled.error;
  Scanner scanner(compiled.set);
  ScanResult result;
  const std::vector<std::string_view> row = {"zzabc", "def"};
  ASSERT_EQ(scanner.scan_row(row, TierSet::all, result), ScanStatus::ok);
  ASSERT_EQ(result.findings.size(), 2u);
  EXPECT_EQ(result.findings[0], (Finding{0, 2, 5, 0}));
  EXPECT_EQ(result.findings[1], (Finding{1, 0, 3, 0}));
}

TEST(MaskScanner, OverlapsMergeAndTheMostSpecificNamesThem) {
  Scanner scanner(builtin_set());
  ScanResult result;
  // password_assignment and github_token cover the same bytes: the token names it.
  const std::string assignment = "password=" + std::string(kGithubToken);
  ASSERT_EQ(scanner.scan(assignment, TierSet::all, result), ScanStatus::ok);
  ASSERT_EQ(result.findings.size(), 1u);
  EXPECT_EQ(kind_of(result.findings[0]), "github_token");
  EXPECT_EQ(result.findings[0].begin, 9u);
  // A libpq DSN: the specific kind wins over password_assignment.
  ASSERT_EQ(scanner.scan("host=db user=app password=Xr7kP2qLm9Zt", TierSet::all, result), ScanStatus::ok);
  ASSERT_EQ(result.findings.size(), 1u);
  EXPECT_EQ(kind_of(result.findings[0]), "db_connection_string_password");

  // Partial overlap: the union is masked, named by the pattern listed first.
  std::vector<PatternSpec> patterns = {user_pattern("short_one", "abc[0-9]{4}"),
                                       user_pattern("long_one", "[0-9]{4}xyz[0-9]{2}")};
  auto compiled = PatternSet::compile(patterns);
  ASSERT_TRUE(compiled.set) << compiled.error;
  Scanner user(compiled.set);
  ASSERT_EQ(user.scan("--abc1234xyz56--", TierSet::all, result), ScanStatus::ok);
  ASSERT_EQ(result.findings.size(), 1u);
  EXPECT_EQ(result.findings[0], (Finding{0, 2, 14, 0}));
  // Adjacent findings stay separate.
  ASSERT_EQ(user.scan("abc12341234xyz56", TierSet::all, result), ScanStatus::ok);
  EXPECT_EQ(result.findings.size(), 2u);
}

TEST(MaskScanner, FindingsPerValueAreCapped) {
  ScanLimits limits;
  limits.max_findings_per_value = 3;
  Scanner scanner(builtin_set(), limits);
  ScanResult result;
  std::string many;
  for (int i = 0; i < 5; ++i) many.append("user").append(std::to_string(i)).append("@example.com ");
  const std::vector<std::string_view> row = {many, "one@example.com"};
  ASSERT_EQ(scanner.scan_row(row, TierSet::all, result), ScanStatus::ok);
  EXPECT_EQ(result.saturated, std::vector<uint32_t>{0});
  EXPECT_EQ(result.of_column(0).size(), 3u);
  EXPECT_EQ(result.of_column(1).size(), 1u);

  // The default cap, with enough findings to go through several compactions.
  Scanner defaults(builtin_set());
  std::string dense;
  for (int i = 0; i < 3000; ++i) dense.append("u").append(std::to_string(i)).append("@example.com,");
  ASSERT_EQ(defaults.scan(dense, TierSet::all, result), ScanStatus::ok);
  EXPECT_EQ(result.saturated, std::vector<uint32_t>{0});
  EXPECT_EQ(result.findings.size(), 1024u);
  EXPECT_EQ(result.findings.front().begin, 0u);
  for (size_t i = 1; i < result.findings.size(); ++i) EXPECT_LT(result.findings[i - 1].end, result.findings[i].begin);
}

TEST(MaskScanner, LongValuesAreScannedInFull) {
  Scanner scanner(builtin_set());
  ScanResult result;
  std::string big(3 << 20, 'a');
  for (size_t i = 0; i < big.size(); i += 80) big[i] = ' ';
  big += " " + std::string(kGithubToken);
  ASSERT_EQ(scanner.scan(big, TierSet::all, result), ScanStatus::ok);
  ASSERT_EQ(result.findings.size(), 1u);
  EXPECT_EQ(result.findings[0].end, big.size());
}

TEST(MaskScanner, UserPatternCompileErrorsNameThePattern) {
  auto with_builtins = [](PatternSpec extra) {
    std::vector<PatternSpec> patterns = builtin_patterns();
    patterns.push_back(std::move(extra));
    return patterns;
  };
  EXPECT_EQ(compile_error(with_builtins(user_pattern("employee_id", "EMP-(unclosed"))).rfind("pattern 'employee_id': ", 0),
            0u);
  EXPECT_NE(compile_error(with_builtins(user_pattern("github_token", "foo"))).find("'github_token': defined twice"),
            std::string::npos);
  EXPECT_NE(compile_error(with_builtins(user_pattern("Bad-Kind", "foo"))).find("snake_case"), std::string::npos);
  EXPECT_NE(compile_error(with_builtins(user_pattern("maybe_empty", "a*"))).find("'maybe_empty': the regex can match an "
                                                                                "empty string"),
            std::string::npos);
  EXPECT_NE(compile_error(with_builtins(user_pattern("no_regex", ""))).find("'no_regex': empty regex"), std::string::npos);
  PatternSpec end_only = user_pattern("end_only", "foo[0-9]+");
  end_only.match_start = false;
  EXPECT_NE(compile_error(with_builtins(end_only)).find("'end_only': match_start = false needs a validator"),
            std::string::npos);
  PatternSpec bad_tier = user_pattern("bad_tier", "foo");
  bad_tier.tier = static_cast<Tier>(7);
  EXPECT_NE(compile_error(with_builtins(bad_tier)).find("'bad_tier': tier"), std::string::npos);
  EXPECT_EQ(compile_error({}), "no patterns to compile");

  // A good user pattern joins the pack, with a named validator.
  PatternSpec employee = user_pattern("employee_id", "EMP-[0-9]{6}");
  employee.validator = find_validator("token");
  auto compiled = PatternSet::compile(with_builtins(employee));
  ASSERT_TRUE(compiled.set) << compiled.error;
  Scanner scanner(compiled.set);
  ScanResult result;
  ASSERT_EQ(scanner.scan("ticket for EMP-004211, not XEMP-004211", TierSet::secrets, result), ScanStatus::ok);
  ASSERT_EQ(result.findings.size(), 1u);
  EXPECT_EQ(compiled.set->pattern(result.findings[0].pattern).kind, "employee_id");
  EXPECT_EQ(result.findings[0].begin, 11u);
}

// A value rewritten from its findings, each by its pattern's strategy.
std::string rewritten(std::string_view value, std::span<const Finding> findings, const PatternSet& set) {
  Replacement out;
  rewrite_findings(classify_type(25), ValueFormat::text, value, findings, set, nullptr, out);
  return out.is_null ? "<NULL>" : out.bytes;
}

TEST(MaskScanner, FindingsAreRewrittenByTheirPatternsStrategies) {
  Scanner scanner(builtin_set());
  ScanResult result;
  const std::string value = "card 4539 1488 0343 6467, token " + std::string(kGithubToken) + ", mail bob@example.org.";
  ASSERT_EQ(scanner.scan(value, TierSet::all, result), ScanStatus::ok);
  ASSERT_EQ(result.findings.size(), 3u);
  EXPECT_EQ(rewritten(value, result.of_column(0), *builtin_set()),
            "card **** **** **** 6467, token [masked:github_token], mail [masked:email].");

  // Partial never shows more than a third of the letters and digits.
  PatternSpec code = user_pattern("pin", "PIN [0-9]{6}");
  code.strategy = {Strategy::partial, 4};
  auto compiled = PatternSet::compile({code});
  ASSERT_TRUE(compiled.set);
  Scanner pins(compiled.set);
  ASSERT_EQ(pins.scan("PIN 123456", TierSet::all, result), ScanStatus::ok);
  EXPECT_EQ(rewritten("PIN 123456", result.findings, *compiled.set), "*** ***456");  // nine letters and digits: three shown
}

TEST(MaskScanner, HostileRowsNeverCrash) {
  Scanner scanner(builtin_set());
  ScanResult result;
  std::mt19937 rng(12345);
  const std::string_view alphabet = "aA0:@./-_ \n\\=+\"'\0\xff{}$*eyJghp_AKIAsk-xoxb-"sv;
  for (int round = 0; round < 300; ++round) {
    std::vector<std::string> values(1 + rng() % 6);
    for (std::string& v : values) {
      const size_t len = rng() % 400;
      for (size_t i = 0; i < len; ++i) {
        v.push_back(rng() % 4 == 0 ? static_cast<char>(rng() & 0xFF) : alphabet[rng() % alphabet.size()]);
      }
    }
    std::vector<std::string_view> row(values.begin(), values.end());
    ASSERT_EQ(scanner.scan_row(row, TierSet::all, result), ScanStatus::ok);
    for (const Finding& f : result.findings) {
      ASSERT_LT(f.column, row.size());
      ASSERT_LT(f.begin, f.end);
      ASSERT_LE(f.end, row[f.column].size());
    }
    for (uint32_t c = 0; c < row.size(); ++c) rewritten(row[c], result.of_column(c), *builtin_set());
  }
  // Repetitions that make validators extend over long runs.
  for (std::string_view unit : {"glpat-"sv, "eyJhbGciOiJub25lIn0."sv, "-----BEGIN PRIVATE KEY-----\nAAAA"sv, "a@b.cc@"sv,
                                "1.1.1.1."sv, "password=x"sv, "postgres://a:b@"sv, "::1:"sv, "4111 "sv}) {
    std::string value;
    while (value.size() < (1 << 18)) value.append(unit);
    ASSERT_EQ(scanner.scan(value, TierSet::all, result), ScanStatus::ok) << unit;
  }
}

}  // namespace
}  // namespace sluice::mask

namespace sluice::mask {
namespace {

TEST(MaskScanner, PiiPrefilterPassesEveryBuiltinExampleAndSkipsPlainText) {
  for (const PatternSpec& p : builtin_patterns()) {
    if (p.tier != Tier::pii) continue;
    EXPECT_TRUE(may_hold_builtin_pii(p.example)) << p.kind << ": " << p.example;
  }
  EXPECT_FALSE(may_hold_builtin_pii("customer 123456"));
  EXPECT_FALSE(may_hold_builtin_pii("ordered 5 items, shipped to warehouse 12, no issues reported"));
  EXPECT_FALSE(may_hold_builtin_pii("v1.2.3 released"));
  EXPECT_TRUE(may_hold_builtin_pii("call 415 555 0132"));
  EXPECT_TRUE(may_hold_builtin_pii("host 10.0.0.7"));
  EXPECT_TRUE(may_hold_builtin_pii("mail me at a@b.co"));
}

// The prefilter takes 16 bytes at a time; its verdict must equal the byte-at-a-time
// reference for every value, whatever straddles a block boundary.
TEST(MaskScanner, PiiPrefilterAgreesWithItsReference) {
  std::mt19937 random(20261208);
  const std::string alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz/+.-_ ,\xc3\xa9\x80\xff";
  size_t positives = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string value(random() % 130, ' ');
    for (char& c : value) c = alphabet[random() % alphabet.size()];
    if (random() % 50 == 0 && !value.empty()) value[random() % value.size()] = random() % 2 ? '@' : ':';
    if (random() % 3 == 0) {  // mostly text without enough evidence, like real notes
      for (char& c : value)
        if (c >= '0' && c <= '9') c = 'x';
    }
    const bool expected = may_hold_builtin_pii_reference(value);
    positives += expected;
    ASSERT_EQ(may_hold_builtin_pii(value), expected) << "'" << value << "'";
  }
  EXPECT_GT(positives, 1000u);
  EXPECT_LT(positives, 19000u);
  // Streaks of base64 characters of 39 and 40 at every offset across block boundaries.
  for (size_t length : {size_t{39}, size_t{40}}) {
    for (size_t offset = 0; offset < 40; ++offset) {
      std::string value = std::string(offset, ' ') + std::string(length, 'k') + " tail";
      EXPECT_EQ(may_hold_builtin_pii(value), length >= 40) << "offset " << offset << ", streak " << length;
      EXPECT_EQ(may_hold_builtin_pii(value), may_hold_builtin_pii_reference(value));
    }
  }
}

TEST(MaskScanner, RowsThePrefilterClearsAreStillScannedForSecrets) {
  Scanner scanner(builtin_set());
  ScanResult result;
  const std::string_view row[] = {"customer 42", "deploy 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 now"};
  ASSERT_EQ(scanner.scan_row(row, TierSet::all, result), ScanStatus::ok);
  ASSERT_EQ(result.findings.size(), 1u);
  EXPECT_EQ(builtin_set()->pattern(result.findings[0].pattern).kind, "github_token");
}

TEST(MaskScanner, AnOperatorsPiiPatternTurnsThePrefilterOff) {
  std::vector<PatternSpec> patterns = builtin_patterns();
  PatternSpec badge;
  badge.kind = "badge";
  badge.regex = "BADGE-[a-z]{4}";
  badge.tier = Tier::pii;
  patterns.push_back(badge);
  auto compiled = PatternSet::compile(std::move(patterns));
  ASSERT_TRUE(compiled.set) << compiled.error;
  Scanner scanner(compiled.set);
  ScanResult result;
  ASSERT_EQ(scanner.scan("id BADGE-abcd here", TierSet::all, result), ScanStatus::ok);
  ASSERT_EQ(result.findings.size(), 1u) << "no digit, no '@': only the operator's pattern can see it";
}

}  // namespace
}  // namespace sluice::mask
