// Tests for mask/value_rewrite and mask/column_type: every strategy on every type
// family, in text and binary format, and each replacement checked to decode as its
// column's type (text by the type's input rules, binary by its exact layout); partial
// on UTF-8 and short values; tokens stable across calls and equal across formats;
// findings inside free text and JSON; hostile values (wrong binary lengths, any bytes).
#include "mask/value_rewrite.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <regex.h>

#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/json.h"
#include "mask/strategy.h"

namespace sluice::mask {
namespace {

constexpr ValueFormat kText = ValueFormat::text;
constexpr ValueFormat kBinary = ValueFormat::binary;
constexpr StrategySpec kRedact{Strategy::redact, 4};
constexpr StrategySpec kToken{Strategy::token, 4};
constexpr StrategySpec kNull{Strategy::null, 4};
constexpr StrategySpec partial(uint8_t keep) { return StrategySpec{Strategy::partial, keep}; }

TokenKey make_key(char fill = 'k') { return std::move(*TokenKey::from_bytes(std::string(32, fill))); }

std::string be(uint64_t v, int width) {
  std::string out;
  for (int i = width - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  return out;
}
std::string bytes(std::initializer_list<int> list) {
  std::string out;
  for (int b : list) out.push_back(static_cast<char>(b));
  return out;
}
uint64_t read_be(std::string_view s) {
  uint64_t v = 0;
  for (char c : s) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}
int64_t read_be_signed(std::string_view s) {
  const unsigned shift = 64 - 8 * static_cast<unsigned>(s.size());
  return static_cast<int64_t>(read_be(s) << shift) >> shift;
}

// A whole-string match with a POSIX extended regex, each pattern compiled once.
// (Not std::regex: GCC 12 warns inside it at -O1 with the sanitizers, and warnings
// are errors in CI.)
bool matches(const std::string& s, const char* pattern) {
  static std::map<std::string, std::unique_ptr<regex_t, void (*)(regex_t*)>> compiled;
  auto it = compiled.find(pattern);
  if (it == compiled.end()) {
    auto re = std::unique_ptr<regex_t, void (*)(regex_t*)>(new regex_t, [](regex_t* r) {
      regfree(r);
      delete r;
    });
    const std::string anchored = std::string("^(") + pattern + ")$";
    if (regcomp(re.get(), anchored.c_str(), REG_EXTENDED | REG_NOSUB) != 0) {
      ADD_FAILURE() << "bad test regex " << pattern;
      return false;
    }
    it = compiled.emplace(pattern, std::move(re)).first;
  }
  if (s.find('\0') != std::string::npos) return false;  // regexec stops at NUL
  return regexec(it->second.get(), s.c_str(), 0, nullptr, 0) == 0;
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    uint8_t c = static_cast<uint8_t>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<uint8_t>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

size_t utf8_chars(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
  return n;
}

bool valid_json(std::string_view text) {
  core::JsonDocument doc;
  return doc.load_json(text);
}

// A binary numeric value decoded to (valid layout, integer part as uint64 when it
// is a non-negative integer with dscale 0).
struct DecodedNumeric {
  bool ok = false;
  bool is_integer = false;
  uint64_t integer = 0;
};
DecodedNumeric decode_numeric(std::string_view v) {
  DecodedNumeric d;
  if (v.size() < 8) return d;
  int ndigits = static_cast<int16_t>(read_be(v.substr(0, 2)));
  int weight = static_cast<int16_t>(read_be(v.substr(2, 2)));
  uint64_t sign = read_be(v.substr(4, 2));
  uint64_t dscale = read_be(v.substr(6, 2));
  if (ndigits < 0 || v.size() != 8 + 2 * static_cast<size_t>(ndigits)) return d;
  if (sign != 0 && sign != 0x4000 && sign != 0xC000) return d;
  std::vector<uint64_t> digits;
  for (int i = 0; i < ndigits; ++i) {
    digits.push_back(read_be(v.substr(8 + 2 * i, 2)));
    if (digits.back() > 9999) return d;
  }
  if (!digits.empty() && digits.back() == 0) return d;  // not canonical: trailing zero digit
  d.ok = true;
  if (sign == 0 && dscale == 0 && weight >= ndigits - 1) {
    d.is_integer = true;
    for (int i = 0; i <= weight; ++i) d.integer = d.integer * 10000 + (i < ndigits ? digits[i] : 0);
  }
  return d;
}

// Whether a replacement decodes as `oid` in `format`: NULL always does.
::testing::AssertionResult decodes_as(uint32_t oid, ValueFormat format, const Replacement& r) {
  if (r.is_null) return ::testing::AssertionSuccess();
  const std::string& v = r.bytes;
  const bool text = format == kText;
  bool ok = false;
  auto int_text = [&](long double lo, long double hi) {
    if (!matches(v, "-?(0|[1-9][0-9]*)")) return false;
    long double x = std::strtold(v.c_str(), nullptr);
    return x >= lo && x <= hi;
  };
  switch (oid) {
    case 16: ok = text ? (v == "t" || v == "f") : (v.size() == 1 && (v[0] == 0 || v[0] == 1)); break;
    case 17: ok = text ? matches(v, R"(\\x([0-9a-f]{2})*)") : true; break;
    case 18: ok = text ? (!v.empty() && v.size() <= 4) : v.size() == 1; break;
    case 19: case 25: case 142: case 1042: case 1043: ok = valid_utf8(v); break;
    case 20: ok = text ? int_text(-9223372036854775808.0L, 9223372036854775807.0L) : v.size() == 8; break;
    case 21: ok = text ? int_text(-32768, 32767) : v.size() == 2; break;
    case 23: ok = text ? int_text(-2147483648.0L, 2147483647) : v.size() == 4; break;
    case 26: ok = text ? int_text(0, 4294967295.0L) : v.size() == 4; break;
    case 114: ok = valid_json(v); break;
    case 3802: ok = text ? valid_json(v) : (!v.empty() && v[0] == 1 && valid_json(std::string_view(v).substr(1))); break;
    case 700: case 701:
      if (text) {
        char* end = nullptr;
        std::strtod(v.c_str(), &end);
        ok = !v.empty() && end == v.c_str() + v.size();
      } else {
        ok = v.size() == (oid == 700 ? 4u : 8u);
      }
      break;
    case 1700: ok = text ? matches(v, R"(-?[0-9]+(\.[0-9]+)?|NaN)") : decode_numeric(v).ok; break;
    case 2950: ok = text ? matches(v, "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}") : v.size() == 16; break;
    case 1082: ok = text ? matches(v, "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])") : v.size() == 4; break;
    case 1083: ok = text ? matches(v, "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]+)?") : v.size() == 8; break;
    case 1266: ok = text ? matches(v, "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]+)?[+-][0-9]{2}(:[0-9]{2})?") : v.size() == 12; break;
    case 1114: ok = text ? matches(v, "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?") : v.size() == 8; break;
    case 1184: ok = text ? matches(v, "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?[+-][0-9]{2}(:[0-9]{2})?") : v.size() == 8; break;
    case 1186: ok = text ? (v == "00:00:00" || v == "@ 0" || v == "PT0S" || v == "0") : v.size() == 16; break;
    case 869:
    case 650: {
      if (text) {
        std::string address = v.substr(0, v.find('/'));
        in_addr a4{};
        in6_addr a6{};
        bool parsed = inet_pton(AF_INET, address.c_str(), &a4) == 1 || inet_pton(AF_INET6, address.c_str(), &a6) == 1;
        bool has_bits = v.find('/') != std::string::npos;
        ok = parsed && (oid == 869 || has_bits);
      } else {
        ok = v.size() >= 4 && ((v[0] == 2 && v[3] == 4 && v.size() == 8) || (v[0] == 3 && v[3] == 16 && v.size() == 20)) &&
             v[2] == (oid == 650 ? 1 : 0);
      }
      break;
    }
    case 829: ok = text ? matches(v, "([0-9a-f]{2}:){5}[0-9a-f]{2}") : v.size() == 6; break;
    case 774: ok = text ? matches(v, "([0-9a-f]{2}:){7}[0-9a-f]{2}") : v.size() == 8; break;
    case 1560: case 1562:
      ok = text ? matches(v, "[01]*") : (v.size() >= 4 && v.size() == 4 + (read_be(v.substr(0, 4)) + 7) / 8);
      break;
    default: ok = false;  // money and unknown types: only NULL
  }
  if (ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "oid " << oid << (text ? " text" : " binary") << " got '" << v << "'";
}

// One sample value per type, in both formats.
struct Sample {
  uint32_t oid;
  std::string text;
  std::string binary;
};

std::vector<Sample> samples() {
  return {
      {16, "t", bytes({1})},
      {17, "\\x0102ff", bytes({1, 2, 0xff})},
      {18, "a", "a"},
      {19, "alice", "alice"},
      {20, "-9000000000", be(static_cast<uint64_t>(-9000000000LL), 8)},
      {21, "-123", be(static_cast<uint64_t>(-123), 2)},
      {23, "123456", be(123456, 4)},
      {25, "ssn 123-45-6789", "ssn 123-45-6789"},
      {26, "4000000000", be(4000000000u, 4)},
      {114, R"({"a": "secret", "n": [1, 2]})", R"({"a": "secret", "n": [1, 2]})"},
      {142, "<a>secret</a>", "<a>secret</a>"},
      {650, "10.0.0.0/8", bytes({2, 8, 1, 4, 10, 0, 0, 0})},
      {700, "1.5", be(0x3fc00000, 4)},
      {701, "2.25", be(0x4002000000000000, 8)},
      {774, "08:00:2b:01:02:03:04:05", bytes({8, 0, 0x2b, 1, 2, 3, 4, 5})},
      {790, "$12.34", be(1234, 8)},
      {829, "08:00:2b:01:02:03", bytes({8, 0, 0x2b, 1, 2, 3})},
      {869, "192.168.0.1", bytes({2, 32, 0, 4, 192, 168, 0, 1})},
      {1042, "ab  ", "ab  "},
      {1043, "hello world", "hello world"},
      {1082, "2024-02-29", be(8825, 4)},
      {1083, "12:34:56", be(45296000000, 8)},
      {1114, "2024-02-29 12:34:56", be(762438896000000, 8)},
      {1184, "2024-02-29 12:34:56+01", be(762435296000000, 8)},
      {1186, "1 day 02:00:00", be(7200000000, 8) + be(1, 4) + be(0, 4)},
      {1266, "12:34:56+02", be(45296000000, 8) + be(static_cast<uint32_t>(-7200), 4)},
      {1560, "1011", bytes({0, 0, 0, 4, 0xB0})},
      {1562, "101", bytes({0, 0, 0, 3, 0xA0})},
      {1700, "1234.50", bytes({0, 2, 0, 0, 0, 0, 0, 2, 0x04, 0xD2, 0x13, 0x88})},
      {2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
       bytes({0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11})},
      {3802, R"({"a": "secret"})", "\x01" R"({"a": "secret"})"},
      {1009, "{a,b}", bytes({0, 0, 0, 1})},  // text[]: an array, not modelled
      {99999, "x", "x"},                     // an extension type
  };
}

const Sample& sample(uint32_t oid) {
  static const std::vector<Sample> all = samples();
  for (const Sample& s : all) {
    if (s.oid == oid) return s;
  }
  ADD_FAILURE() << "no sample for " << oid;
  return all.front();
}

// Types whose only replacement is NULL whatever the strategy.
bool always_null(uint32_t oid) { return oid == 790 || oid == 1009 || oid == 99999; }

TEST(MaskStrategy, NamesRoundTrip) {
  for (Strategy s : {Strategy::redact, Strategy::partial, Strategy::token, Strategy::null}) {
    Strategy parsed = Strategy::null;
    ASSERT_TRUE(parse_strategy(strategy_name(s), parsed)) << strategy_name(s);
    EXPECT_EQ(parsed, s);
  }
  Strategy untouched = Strategy::partial;
  EXPECT_FALSE(parse_strategy("hash", untouched));
  EXPECT_FALSE(parse_strategy("", untouched));
  EXPECT_FALSE(parse_strategy("Redact", untouched));
  EXPECT_EQ(untouched, Strategy::partial);
  EXPECT_STREQ(strategy_name(Strategy::token), "token");
}

TEST(MaskColumnType, ClassifiesBuiltins) {
  EXPECT_EQ(classify_type(25).family, TypeFamily::string_like);
  EXPECT_EQ(classify_type(1043).family, TypeFamily::string_like);
  EXPECT_EQ(classify_type(1042).family, TypeFamily::string_like);
  EXPECT_EQ(classify_type(19).family, TypeFamily::string_like);
  EXPECT_EQ(classify_type(18).family, TypeFamily::single_char);
  EXPECT_EQ(classify_type(21).width, 2);
  EXPECT_EQ(classify_type(23).width, 4);
  EXPECT_EQ(classify_type(20).width, 8);
  EXPECT_TRUE(classify_type(26).is_unsigned);
  EXPECT_EQ(classify_type(700).family, TypeFamily::floating);
  EXPECT_EQ(classify_type(3802).family, TypeFamily::jsonb);
  EXPECT_EQ(classify_type(1009).family, TypeFamily::unknown);  // text[]
  EXPECT_EQ(classify_type(0).family, TypeFamily::unknown);
  EXPECT_EQ(classify_type(4294967295u).family, TypeFamily::unknown);
  EXPECT_EQ(string_type(16385).family, TypeFamily::string_like);  // citext found by name
  for (const Sample& s : samples()) {
    EXPECT_STRNE(family_name(classify_type(s.oid).family), "") << s.oid;
    if (!always_null(s.oid)) {
      EXPECT_TRUE(binary_layout_ok(classify_type(s.oid), s.binary)) << s.oid;
    }
  }
}

TEST(MaskColumnType, CanonicalTextOfBinaryValues) {
  auto canon = [](uint32_t oid, const std::string& binary) {
    std::string out;
    if (!canonical_text(classify_type(oid), kBinary, binary, out)) return std::string("<fail>");
    return out;
  };
  EXPECT_EQ(canon(21, be(static_cast<uint64_t>(-123), 2)), "-123");
  EXPECT_EQ(canon(21, be(32767, 2)), "32767");
  EXPECT_EQ(canon(21, be(0x8000, 2)), "-32768");
  EXPECT_EQ(canon(23, be(0x80000000u, 4)), "-2147483648");
  EXPECT_EQ(canon(20, be(0x8000000000000000u, 8)), "-9223372036854775808");
  EXPECT_EQ(canon(20, be(0, 8)), "0");
  EXPECT_EQ(canon(26, be(4000000000u, 4)), "4000000000");
  EXPECT_EQ(canon(2950, sample(2950).binary), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
  EXPECT_EQ(canon(3802, "\x01{}"), "{}");
  // numeric: (ndigits, weight, sign, dscale, digits...) as numeric_send writes them.
  auto numeric = [](int ndigits, int weight, int sign, int dscale, std::initializer_list<int> digits) {
    std::string out = be(ndigits, 2) + be(static_cast<uint16_t>(weight), 2) + be(sign, 2) + be(dscale, 2);
    for (int d : digits) out += be(d, 2);
    return out;
  };
  EXPECT_EQ(canon(1700, numeric(2, 0, 0, 2, {1234, 5000})), "1234.50");
  EXPECT_EQ(canon(1700, numeric(0, 0, 0, 0, {})), "0");
  EXPECT_EQ(canon(1700, numeric(0, 0, 0, 3, {})), "0.000");
  EXPECT_EQ(canon(1700, numeric(1, -1, 0, 3, {10})), "0.001");
  EXPECT_EQ(canon(1700, numeric(3, 1, 0x4000, 1, {1234, 5678, 9000})), "-12345678.9");
  EXPECT_EQ(canon(1700, numeric(1, 2, 0, 0, {1})), "100000000");
  EXPECT_EQ(canon(1700, numeric(1, 0, 0, 0, {7})), "7");
  EXPECT_EQ(canon(1700, numeric(0, 0, 0xC000, 0, {})), "NaN");
  EXPECT_EQ(canon(1700, numeric(0, 0, 0xD000, 0, {})), "Infinity");
  EXPECT_EQ(canon(1700, numeric(0, 0, 0xF000, 0, {})), "-Infinity");
  // Layouts that are not numeric's.
  EXPECT_EQ(canon(1700, numeric(2, 0, 0, 0, {1})), "<fail>");        // too short for ndigits
  EXPECT_EQ(canon(1700, numeric(1, 0, 0, 0, {10000})), "<fail>");    // digit out of range
  EXPECT_EQ(canon(1700, numeric(1, 0, 0x1234, 0, {1})), "<fail>");   // bad sign
  EXPECT_EQ(canon(1700, numeric(0xFFFF, 0, 0, 0, {})), "<fail>");    // negative ndigits
  EXPECT_EQ(canon(1700, numeric(0, 0, 0, 0x4000, {})), "<fail>");    // dscale too large
  EXPECT_EQ(canon(1700, numeric(1, 0, 0xC000, 0, {1})), "<fail>");   // NaN with digits
  EXPECT_EQ(canon(1700, "\x00\x00"), "<fail>");
  EXPECT_EQ(canon(23, be(1, 3)), "<fail>");
  EXPECT_EQ(canon(1082, be(0, 4)), "<fail>");  // no conversion for dates
  // Text values are taken as sent.
  std::string out;
  EXPECT_TRUE(canonical_text(classify_type(23), kText, " 42", out));
  EXPECT_EQ(out, " 42");
}

// The central property: whatever the strategy, type and format, the replacement decodes
// as the column's type, and it is NULL exactly where the rules say.
TEST(MaskValue, EveryStrategyEveryTypeBothFormatsDecodes) {
  const TokenKey key = make_key();
  size_t checked = 0;
  for (const Sample& s : samples()) {
    for (StrategySpec spec : {kRedact, partial(4), partial(0), kToken, kNull}) {
      for (ValueFormat format : {kText, kBinary}) {
        const std::string& value = format == kText ? s.text : s.binary;
        Replacement r = mask_value(spec, "ssn", s.oid, format, value, &key);
        SCOPED_TRACE(std::string("strategy ") + strategy_name(spec.strategy) + " oid " + std::to_string(s.oid));
        EXPECT_TRUE(decodes_as(s.oid, format, r));
        const bool want_null = spec.strategy == Strategy::null || always_null(s.oid);
        EXPECT_EQ(r.is_null, want_null);
        if (!r.is_null) {
          EXPECT_NE(r.bytes, value);  // something was masked
        }
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, samples().size() * 5 * 2);
}

TEST(MaskValue, RedactValues) {
  auto text = [](uint32_t oid, std::string_view value) {
    Replacement r = mask_value(kRedact, "ssn", oid, kText, value, nullptr);
    return r.is_null ? std::string("<NULL>") : r.bytes;
  };
  auto binary = [](uint32_t oid, std::string_view value) {
    Replacement r = mask_value(kRedact, "ssn", oid, kBinary, value, nullptr);
    return r.is_null ? std::string("<NULL>") : r.bytes;
  };
  for (uint32_t oid : {19u, 25u, 142u, 1042u, 1043u}) {
    EXPECT_EQ(text(oid, "123-45-6789"), "[masked:ssn]");
    EXPECT_EQ(binary(oid, "123-45-6789"), "[masked:ssn]");
  }
  EXPECT_EQ(text(18, "a"), "*");
  EXPECT_EQ(binary(18, "a"), "*");
  EXPECT_EQ(text(114, "{}"), "\"[masked:ssn]\"");
  EXPECT_EQ(binary(114, "{}"), "\"[masked:ssn]\"");
  EXPECT_EQ(text(3802, "{}"), "\"[masked:ssn]\"");
  EXPECT_EQ(binary(3802, "\x01{}"), "\x01\"[masked:ssn]\"");
  EXPECT_EQ(text(17, "\\x00"), "\\x5b6d61736b65643a73736e5d");
  EXPECT_EQ(binary(17, std::string(1, '\0')), "[masked:ssn]");
  EXPECT_EQ(text(21, "7"), "0");
  EXPECT_EQ(binary(21, be(7, 2)), be(0, 2));
  EXPECT_EQ(binary(23, be(7, 4)), be(0, 4));
  EXPECT_EQ(binary(20, be(7, 8)), be(0, 8));
  EXPECT_EQ(binary(26, be(7, 4)), be(0, 4));
  EXPECT_EQ(text(700, "1.5"), "0");
  EXPECT_EQ(binary(700, be(0x3fc00000, 4)), be(0, 4));  // +0.0f
  EXPECT_EQ(binary(701, be(1, 8)), be(0, 8));
  EXPECT_EQ(text(1700, "12.5"), "0");
  EXPECT_EQ(binary(1700, sample(1700).binary), be(0, 8));  // ndigits 0, weight 0, sign +, dscale 0
  EXPECT_EQ(text(16, "t"), "f");
  EXPECT_EQ(binary(16, bytes({1})), bytes({0}));
  EXPECT_EQ(text(2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), "00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(binary(2950, std::string(16, 'x')), std::string(16, '\0'));
  EXPECT_EQ(text(1082, "2024-02-29"), "1970-01-01");
  EXPECT_EQ(text(1082, "0044-03-15 BC"), "1970-01-01");
  EXPECT_EQ(text(1082, "12345-01-01"), "1970-01-01");
  EXPECT_EQ(static_cast<int32_t>(read_be(binary(1082, be(8825, 4)))), -10957);
  EXPECT_EQ(text(1114, "2024-02-29 12:34:56.789"), "1970-01-01 00:00:00");
  EXPECT_EQ(text(1184, "2024-02-29 12:34:56+01"), "1970-01-01 00:00:00+00");
  EXPECT_EQ(read_be_signed(binary(1114, be(1, 8))), -946684800000000LL);
  EXPECT_EQ(read_be_signed(binary(1184, be(1, 8))), -946684800000000LL);
  EXPECT_EQ(text(1083, "12:34:56"), "00:00:00");
  EXPECT_EQ(binary(1083, be(1, 8)), be(0, 8));
  EXPECT_EQ(text(1266, "12:34:56+02"), "00:00:00+00");
  EXPECT_EQ(binary(1266, std::string(12, 'x')), std::string(12, '\0'));
  EXPECT_EQ(binary(1186, std::string(16, 'x')), std::string(16, '\0'));
  EXPECT_EQ(text(869, "192.168.0.1"), "0.0.0.0");
  EXPECT_EQ(text(869, "::1"), "0.0.0.0");
  EXPECT_EQ(binary(869, bytes({2, 32, 0, 4, 192, 168, 0, 1})), bytes({2, 32, 0, 4, 0, 0, 0, 0}));
  EXPECT_EQ(binary(869, bytes({3, 128, 0, 16}) + std::string(16, 'x')), bytes({2, 32, 0, 4, 0, 0, 0, 0}));
  EXPECT_EQ(text(650, "10.0.0.0/8"), "0.0.0.0/0");
  EXPECT_EQ(binary(650, bytes({2, 8, 1, 4, 10, 0, 0, 0})), bytes({2, 0, 1, 4, 0, 0, 0, 0}));
  EXPECT_EQ(text(829, "08:00:2b:01:02:03"), "00:00:00:00:00:00");
  EXPECT_EQ(binary(829, std::string(6, 'x')), std::string(6, '\0'));
  EXPECT_EQ(text(774, "08:00:2b:01:02:03:04:05"), "00:00:00:00:00:00:00:00");
  EXPECT_EQ(binary(774, std::string(8, 'x')), std::string(8, '\0'));
  EXPECT_EQ(text(1560, "1011"), "0000");
  EXPECT_EQ(text(1562, ""), "");
  EXPECT_EQ(binary(1560, bytes({0, 0, 0, 12, 0xFF, 0xF0})), bytes({0, 0, 0, 12, 0, 0}));
  EXPECT_EQ(text(1560, "10x1"), "<NULL>");  // not a bit string: not what we think it is
  EXPECT_EQ(text(790, "$12.34"), "<NULL>");
  EXPECT_EQ(binary(790, be(1234, 8)), "<NULL>");
  EXPECT_EQ(text(1009, "{a,b}"), "<NULL>");
}

TEST(MaskValue, KindIsSanitisedInPlaceholders) {
  Replacement r = mask_value(kRedact, "evil\"kind\\<x>&\n", 114, kText, "{}", nullptr);
  ASSERT_FALSE(r.is_null);
  EXPECT_EQ(r.bytes, "\"[masked:evil_kind__x___]\"");
  EXPECT_TRUE(valid_json(r.bytes));
  EXPECT_EQ(mask_value(kRedact, "", 25, kText, "x", nullptr).bytes, "[masked]");
  EXPECT_EQ(mask_value(kRedact, "aws.key-id_2", 25, kText, "x", nullptr).bytes, "[masked:aws.key-id_2]");
}

TEST(MaskValue, DateStylesOtherThanIsoBecomeNull) {
  for (const char* value : {"02/29/2024", "29.02.2024", "02-29-2024", "infinity", "-infinity", "", "2024"}) {
    EXPECT_TRUE(mask_value(kRedact, "k", 1082, kText, value, nullptr).is_null) << value;
  }
  for (const char* value : {"Thu Feb 29 12:34:56 2024", "02/29/2024 12:34:56", "29.02.2024 12:34:56 CET",
                            "infinity"}) {
    EXPECT_TRUE(mask_value(kRedact, "k", 1114, kText, value, nullptr).is_null) << value;
    EXPECT_TRUE(mask_value(kRedact, "k", 1184, kText, value, nullptr).is_null) << value;
  }
  // time and timetz read the same in every DateStyle.
  EXPECT_EQ(mask_value(kRedact, "k", 1083, kText, "anything", nullptr).bytes, "00:00:00");
}

TEST(MaskValue, IntervalFollowsTheIntervalStyle) {
  auto zero = [](const char* original) {
    Replacement r = mask_value(kRedact, "k", 1186, kText, original, nullptr);
    return r.is_null ? std::string("<NULL>") : r.bytes;
  };
  EXPECT_EQ(zero("1 day 02:00:00"), "00:00:00");           // postgres
  EXPECT_EQ(zero("-1 years -2 mons"), "00:00:00");         // postgres
  EXPECT_EQ(zero("02:00:00"), "00:00:00");                 // postgres, no units
  EXPECT_EQ(zero("-123:00:00.5"), "00:00:00");             // postgres, no units
  EXPECT_EQ(zero("@ 1 day 2 hours ago"), "@ 0");           // postgres_verbose
  EXPECT_EQ(zero("P1DT2H"), "PT0S");                       // iso_8601
  EXPECT_EQ(zero("1-2"), "0");                             // sql_standard
  EXPECT_EQ(zero("1 2:00:00"), "0");                       // sql_standard
  EXPECT_EQ(zero("infinity"), "<NULL>");                   // same in every style
  EXPECT_EQ(zero(""), "<NULL>");
  EXPECT_EQ(zero("\x01\x02"), "<NULL>");
}

TEST(MaskValue, NullStrategyAndUnknownTypesGiveNull) {
  const TokenKey key = make_key();
  for (const Sample& s : samples()) {
    EXPECT_TRUE(mask_value(kNull, "k", s.oid, kText, s.text, &key).is_null) << s.oid;
    EXPECT_TRUE(mask_value(kNull, "k", s.oid, kBinary, s.binary, &key).is_null) << s.oid;
  }
  for (uint32_t oid : {0u, 1009u, 3904u, 16385u, 4294967295u}) {
    for (StrategySpec spec : {kRedact, partial(2), kToken}) {
      EXPECT_TRUE(mask_value(spec, "k", oid, kText, "abc", &key).is_null) << oid;
      EXPECT_TRUE(mask_value(spec, "k", oid, kBinary, "abc", &key).is_null) << oid;
    }
  }
  // Resolved by name (citext), the same OID becomes a string type.
  Replacement r;
  mask_value(kRedact, "k", string_type(16385), kText, "abc", &key, r);
  EXPECT_EQ(r.bytes, "[masked:k]");
}

// A binary value that does not have its type's layout is not what we think it is.
TEST(MaskValue, WrongBinaryLayoutGivesNull) {
  const TokenKey key = make_key();
  const std::vector<std::pair<uint32_t, std::string>> wrong = {
      {16, ""}, {16, "\x01\x01"}, {18, ""}, {18, "ab"}, {20, be(1, 4)}, {21, be(1, 4)}, {21, "x"},
      {23, be(1, 3)}, {23, be(1, 8)}, {23, ""}, {26, be(1, 2)}, {700, be(1, 8)}, {701, be(1, 4)},
      {1700, bytes({0, 1, 0, 0, 0, 0, 0, 0})}, {1700, ""}, {1700, std::string(7, '\0')},
      {2950, std::string(15, 'x')}, {2950, std::string(17, 'x')}, {1082, be(1, 8)}, {1083, be(1, 4)},
      {1114, be(1, 4)}, {1184, std::string(9, 'x')}, {1186, std::string(12, 'x')}, {1266, std::string(8, 'x')},
      {869, bytes({2, 32, 0, 4, 1, 2, 3})}, {869, bytes({4, 32, 0, 4, 1, 2, 3, 4})},
      {869, bytes({2, 32, 0, 16, 1, 2, 3, 4})}, {650, ""}, {829, std::string(8, 'x')},
      {774, std::string(6, 'x')}, {1560, bytes({0, 0, 0, 9, 0xFF})}, {1560, bytes({0xFF, 0xFF, 0xFF, 0xFF})},
      {1562, bytes({0, 0})}, {3802, ""}, {3802, "\x02{}"}, {3802, "{}"}, {790, be(1, 4)},
  };
  for (const auto& [oid, value] : wrong) {
    for (StrategySpec spec : {kRedact, partial(4), kToken}) {
      EXPECT_TRUE(mask_value(spec, "k", oid, kBinary, value, &key).is_null)
          << "oid " << oid << " length " << value.size() << " " << strategy_name(spec.strategy);
    }
  }
}

TEST(MaskPartial, KeepsLastCharactersAndSeparators) {
  auto p = [](std::string_view text, uint8_t keep) {
    std::string out;
    append_partial(text, keep, out);
    return out;
  };
  EXPECT_EQ(p("123-45-6789", 4), "***-**-*789");  // nine digits: a third (3) shown, not 4
  EXPECT_EQ(p("4111 1111 1111 1111", 4), "**** **** **** 1111");
  EXPECT_EQ(p("john.doe@example.com", 4), "****.***@******e.com");
  EXPECT_EQ(p("+1 (555) 123-4567", 4), "+* (***) ***-*567");  // 11 digits: 3 shown
  EXPECT_EQ(p("abc-def-ghi", 0), "***-***-***");
  EXPECT_EQ(p("a\tb\"c\\d'efghijk", 2), std::string(13, '*') + "jk");  // tab, quote, backslash are not separators
  EXPECT_EQ(p("", 4), "");
}

TEST(MaskPartial, ShortValuesAreFullyStarred) {
  auto p = [](std::string_view text, uint8_t keep) {
    std::string out;
    append_partial(text, keep, out);
    return out;
  };
  EXPECT_EQ(p("12345", 4), "*****");
  EXPECT_EQ(p("1234-5678", 4), "*********");       // 8 letters/digits <= 2 * 4
  EXPECT_EQ(p("1234-56789", 4), "****-**789");     // 9 > 8, but never more than a third: 3 stay
  EXPECT_EQ(p("ab------------------", 4), std::string(20, '*'));  // only 2 letters
  EXPECT_EQ(p("ab", 1), "**");
  EXPECT_EQ(p("abc", 1), "**c");
  EXPECT_EQ(p("----", 0), "****");
}

TEST(MaskPartial, WorksOnUtf8CodePoints) {
  auto p = [](std::string_view text, uint8_t keep) {
    std::string out;
    append_partial(text, keep, out);
    return out;
  };
  // "Müller-Lüdenscheidt": each starred character is one '*', whatever its bytes.
  std::string name = "M\xc3\xbcller-L\xc3\xbc" "denscheidt";
  std::string masked = p(name, 4);
  EXPECT_EQ(masked, "******-********eidt");
  EXPECT_EQ(utf8_chars(masked), utf8_chars(name));
  // Kept characters keep all their bytes: "電話番号は" + fullwidth "09012345678".
  std::string jp = "\xe9\x9b\xbb\xe8\xa9\xb1\xe7\x95\xaa\xe5\x8f\xb7\xe3\x81\xaf"
                   "\xef\xbc\x90\xef\xbc\x99\xef\xbc\x90\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93"
                   "\xef\xbc\x94\xef\xbc\x95\xef\xbc\x96\xef\xbc\x97\xef\xbc\x98";
  EXPECT_EQ(p(jp, 4), std::string(12, '*') + "\xef\xbc\x95\xef\xbc\x96\xef\xbc\x97\xef\xbc\x98");
  // Emoji (4 bytes) and a 2-byte character kept whole at the end.
  EXPECT_EQ(p("abcdefgh\xf0\x9f\x98\x80\xc3\xa9", 2), std::string(8, '*') + "\xf0\x9f\x98\x80\xc3\xa9");
}

TEST(MaskPartial, InvalidUtf8IsStarredBytewise) {
  auto p = [](std::string_view text, uint8_t keep) {
    std::string out;
    append_partial(text, keep, out);
    return out;
  };
  // \xff, a truncated 3-byte sequence, an overlong '/', a surrogate: each byte one '*'.
  EXPECT_EQ(p("ab\xff" "cd\xe2\x82" "efghij", 2), std::string(11, '*') + "ij");
  EXPECT_EQ(p("abcdefghij\xc3", 2), std::string(8, '*') + "ij*");
  EXPECT_EQ(p("abcdefghij\xc0\xaf", 2), std::string(8, '*') + "ij**");
  EXPECT_EQ(p("abcdefghij\xed\xa0\x80", 2), std::string(8, '*') + "ij***");
  EXPECT_EQ(p("abcdefghij\xf4\x90\x80\x80", 2), std::string(8, '*') + "ij****");  // > U+10FFFF
  // Whatever the input, the output is valid UTF-8 and never longer.
  std::mt19937 rng(7);
  for (int round = 0; round < 2000; ++round) {
    std::string input(rng() % 40, '\0');
    for (char& c : input) c = static_cast<char>(rng());
    std::string out = p(input, static_cast<uint8_t>(rng() % 6));
    ASSERT_TRUE(valid_utf8(out)) << round;
    ASSERT_LE(out.size(), input.size());
  }
}

TEST(MaskPartial, OnlyForStringTypes) {
  EXPECT_EQ(mask_value(partial(4), "ssn", 25, kText, "123-45-6789", nullptr).bytes, "***-**-*789");
  EXPECT_EQ(mask_value(partial(4), "ssn", 1043, kBinary, "123-45-6789", nullptr).bytes, "***-**-*789");
  EXPECT_EQ(mask_value(partial(4), "ssn", 20, kText, "123456789", nullptr).bytes, "0");
  EXPECT_EQ(mask_value(partial(4), "ssn", 114, kText, "\"123-45-6789\"", nullptr).bytes, "\"[masked:ssn]\"");
  EXPECT_EQ(mask_value(partial(4), "ssn", 17, kBinary, "123-45-6789", nullptr).bytes, "[masked:ssn]");
}

TEST(MaskToken, StringTokensAreStableAndKeyed) {
  const TokenKey key = make_key('a');
  const TokenKey other = make_key('b');
  Replacement a = mask_value(kToken, "email", 25, kText, "alice@example.com", &key);
  Replacement again = mask_value(kToken, "email", 25, kText, "alice@example.com", &key);
  Replacement varchar = mask_value(kToken, "email", 1043, kBinary, "alice@example.com", &key);
  Replacement bob = mask_value(kToken, "email", 25, kText, "bob@example.com", &key);
  Replacement kind = mask_value(kToken, "login", 25, kText, "alice@example.com", &key);
  Replacement keyed = mask_value(kToken, "email", 25, kText, "alice@example.com", &other);
  ASSERT_FALSE(a.is_null);
  EXPECT_TRUE(matches(a.bytes, "tok_[a-z2-7]{16}")) << a.bytes;
  EXPECT_EQ(a.bytes, again.bytes);
  EXPECT_EQ(a.bytes, varchar.bytes);  // same kind, same text: joinable across string types
  EXPECT_NE(a.bytes, bob.bytes);
  EXPECT_NE(a.bytes, kind.bytes);
  EXPECT_NE(a.bytes, keyed.bytes);
  std::string direct;
  ASSERT_TRUE(append_string_token("email", "alice@example.com", key, direct));
  EXPECT_EQ(direct, a.bytes);
  // Empty values get a token too.
  EXPECT_TRUE(matches(mask_value(kToken, "email", 25, kText, "", &key).bytes, "tok_[a-z2-7]{16}"));
  // No collisions among many values (80 bits).
  std::set<std::string> seen;
  for (int i = 0; i < 5000; ++i) {
    seen.insert(mask_value(kToken, "n", 25, kText, std::to_string(i), &key).bytes);
  }
  EXPECT_EQ(seen.size(), 5000u);
}

TEST(MaskToken, WithoutKeyFallsBackToRedact) {
  EXPECT_EQ(mask_value(kToken, "ssn", 25, kText, "x", nullptr).bytes, "[masked:ssn]");
  EXPECT_EQ(mask_value(kToken, "ssn", 23, kBinary, be(5, 4), nullptr).bytes, be(0, 4));
}

TEST(MaskToken, TypesWithoutTokensAreRedacted) {
  const TokenKey key = make_key();
  EXPECT_EQ(mask_value(kToken, "k", 1082, kText, "2024-02-29", &key).bytes, "1970-01-01");
  EXPECT_EQ(mask_value(kToken, "k", 16, kText, "t", &key).bytes, "f");
  EXPECT_EQ(mask_value(kToken, "k", 701, kBinary, be(1, 8), &key).bytes, be(0, 8));
  EXPECT_EQ(mask_value(kToken, "k", 17, kBinary, "abc", &key).bytes, "[masked:k]");
  EXPECT_EQ(mask_value(kToken, "k", 869, kText, "10.1.2.3", &key).bytes, "0.0.0.0");
  EXPECT_EQ(mask_value(kToken, "k", 18, kText, "a", &key).bytes, "*");
}

// An integer token must fit its column in both formats, and a text client and a binary
// client must see the same number for the same value.
TEST(MaskToken, IntegerTokensFitTheWidthAndAgreeAcrossFormats) {
  const TokenKey key = make_key();
  struct Width {
    uint32_t oid;
    int bytes;
    uint64_t max;
  };
  for (Width w : {Width{21, 2, 32767}, Width{23, 4, 2147483647}, Width{20, 8, 9223372036854775807u},
                  Width{26, 4, 2147483647}}) {
    uint64_t largest = 0;
    std::set<std::string> distinct;
    for (int64_t i = -300; i < 300; ++i) {
      int64_t v = i * 977;
      if (w.oid == 21) v = i * 97;
      if (w.oid == 26) v = (i + 300) * 7000001;
      const std::string text_value = std::to_string(v);
      const std::string binary_value = be(static_cast<uint64_t>(v), w.bytes);
      Replacement t = mask_value(kToken, "id", w.oid, kText, text_value, &key);
      Replacement b = mask_value(kToken, "id", w.oid, kBinary, binary_value, &key);
      ASSERT_TRUE(decodes_as(w.oid, kText, t));
      ASSERT_TRUE(decodes_as(w.oid, kBinary, b));
      ASSERT_TRUE(matches(t.bytes, "0|[1-9][0-9]*")) << t.bytes;  // non-negative
      const uint64_t from_binary = read_be(b.bytes);
      ASSERT_LE(from_binary, w.max);
      ASSERT_EQ(std::to_string(from_binary), t.bytes) << "oid " << w.oid << " value " << v;
      largest = std::max(largest, from_binary);
      distinct.insert(t.bytes);
    }
    EXPECT_GT(largest, w.max / 2) << "tokens use the whole range";
    EXPECT_GE(distinct.size(), w.oid == 21 ? 575u : 600u);
  }
  // Same value, same token, call after call.
  EXPECT_EQ(mask_value(kToken, "id", 23, kText, "42", &key).bytes, mask_value(kToken, "id", 23, kText, "42", &key).bytes);
}

TEST(MaskToken, UuidTokensAreVersion8AndAgreeAcrossFormats) {
  const TokenKey key = make_key();
  std::set<std::string> seen;
  for (const Sample& s : samples()) {
    if (s.oid != 2950) continue;
    Replacement t = mask_value(kToken, "user", 2950, kText, s.text, &key);
    Replacement b = mask_value(kToken, "user", 2950, kBinary, s.binary, &key);
    ASSERT_TRUE(matches(t.bytes, "[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")) << t.bytes;
    ASSERT_EQ(b.bytes.size(), 16u);
    std::string canonical;
    ASSERT_TRUE(canonical_text(classify_type(2950), kBinary, b.bytes, canonical));
    EXPECT_EQ(canonical, t.bytes);
  }
  std::mt19937 rng(3);
  for (int i = 0; i < 500; ++i) {
    std::string binary(16, '\0');
    for (char& c : binary) c = static_cast<char>(rng());
    std::string text;
    ASSERT_TRUE(canonical_text(classify_type(2950), kBinary, binary, text));
    Replacement t = mask_value(kToken, "user", 2950, kText, text, &key);
    Replacement b = mask_value(kToken, "user", 2950, kBinary, binary, &key);
    std::string from_binary;
    ASSERT_TRUE(canonical_text(classify_type(2950), kBinary, b.bytes, from_binary));
    ASSERT_EQ(from_binary, t.bytes);
    ASSERT_EQ(static_cast<uint8_t>(b.bytes[6]) >> 4, 8);
    ASSERT_EQ(static_cast<uint8_t>(b.bytes[8]) >> 6, 2);
    seen.insert(t.bytes);
  }
  EXPECT_EQ(seen.size(), 500u);
}

TEST(MaskToken, NumericTokensAreIntegersInBothFormats) {
  const TokenKey key = make_key();
  Replacement t = mask_value(kToken, "amount", 1700, kText, "1234.50", &key);
  Replacement b = mask_value(kToken, "amount", 1700, kBinary, sample(1700).binary, &key);
  ASSERT_TRUE(matches(t.bytes, "0|[1-9][0-9]*")) << t.bytes;
  DecodedNumeric d = decode_numeric(b.bytes);
  ASSERT_TRUE(d.ok);
  ASSERT_TRUE(d.is_integer);
  EXPECT_EQ(std::to_string(d.integer), t.bytes);
  EXPECT_LE(d.integer, 9223372036854775807u);
  // Different scale, different text, different token ("1234.5" is not "1234.50").
  EXPECT_NE(mask_value(kToken, "amount", 1700, kText, "1234.5", &key).bytes, t.bytes);
  // Many values: the binary encoding of every token decodes back to the text token.
  for (int i = 0; i < 300; ++i) {
    Replacement ti = mask_value(kToken, "n", 1700, kText, std::to_string(i), &key);
    std::string binary = i == 0 ? be(0, 8) : be(1, 2) + be(0, 2) + be(0, 2) + be(0, 2) + be(static_cast<uint64_t>(i), 2);
    Replacement bi = mask_value(kToken, "n", 1700, kBinary, binary, &key);
    DecodedNumeric di = decode_numeric(bi.bytes);
    ASSERT_TRUE(di.ok && di.is_integer) << i;
    ASSERT_EQ(std::to_string(di.integer), ti.bytes) << i;
  }
}

TEST(MaskToken, JsonTokensAreJsonStringsAndAgreeAcrossFormats) {
  const TokenKey key = make_key();
  const std::string doc = R"({"email": "alice@example.com"})";
  Replacement json_text = mask_value(kToken, "email", 114, kText, doc, &key);
  Replacement json_binary = mask_value(kToken, "email", 114, kBinary, doc, &key);
  Replacement jsonb_text = mask_value(kToken, "email", 3802, kText, doc, &key);
  Replacement jsonb_binary = mask_value(kToken, "email", 3802, kBinary, "\x01" + doc, &key);
  EXPECT_TRUE(matches(json_text.bytes, "\"tok_[a-z2-7]{16}\"")) << json_text.bytes;
  EXPECT_EQ(json_text.bytes, json_binary.bytes);
  EXPECT_EQ(json_text.bytes, jsonb_text.bytes);
  EXPECT_EQ("\x01" + jsonb_text.bytes, jsonb_binary.bytes);
  // The token inside is the string token of the document's text.
  std::string token;
  ASSERT_TRUE(append_string_token("email", doc, key, token));
  EXPECT_EQ(json_text.bytes, "\"" + token + "\"");
}

// Tokens are computed over the canonical text, so text- and binary-format clients
// see the same token for every token-capable family.
TEST(MaskToken, TextAndBinaryClientsSeeTheSameToken) {
  const TokenKey key = make_key();
  for (const Sample& s : samples()) {
    const TypeFamily family = classify_type(s.oid).family;
    Replacement t = mask_value(kToken, "k", s.oid, kText, s.text, &key);
    Replacement b = mask_value(kToken, "k", s.oid, kBinary, s.binary, &key);
    if (t.is_null) {
      EXPECT_TRUE(b.is_null) << s.oid;
      continue;
    }
    std::string b_as_text;
    switch (family) {
      case TypeFamily::integer:
      case TypeFamily::uuid:
        ASSERT_TRUE(canonical_text(classify_type(s.oid), kBinary, b.bytes, b_as_text));
        break;
      case TypeFamily::numeric:
        b_as_text = std::to_string(decode_numeric(b.bytes).integer);
        break;
      case TypeFamily::jsonb:
        b_as_text = b.bytes.substr(1);
        break;
      default:
        continue;  // redacted families: the neutral values are checked elsewhere
    }
    EXPECT_EQ(b_as_text, t.bytes) << "oid " << s.oid;
  }
  // string types: the bytes are the same in both formats.
  EXPECT_EQ(mask_value(kToken, "k", 25, kText, "x", &key).bytes, mask_value(kToken, "k", 25, kBinary, "x", &key).bytes);
}

// --- findings inside a value ---

Replacement spans(uint32_t oid, ValueFormat format, std::string_view value, std::vector<SpanFinding> findings,
                  const TokenKey* key = nullptr) {
  Replacement out;
  rewrite_spans(classify_type(oid), format, value, findings, key, out);
  return out;
}

SpanFinding at(std::string_view value, std::string_view secret, std::string_view kind, StrategySpec spec) {
  size_t begin = value.find(secret);
  EXPECT_NE(begin, std::string_view::npos) << secret;
  return SpanFinding{begin, begin + secret.size(), kind, spec};
}

TEST(MaskSpans, StringValuesGetEachSpanReplaced) {
  const TokenKey key = make_key();
  const std::string v = "ssn 123-45-6789, card 4111 1111 1111 1111, key ghp_abcdefghijklmnopqrstuvwxyz0123456789";
  Replacement r = spans(25, kText, v,
                        {at(v, "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "github_token", kToken),
                         at(v, "123-45-6789", "ssn", kRedact), at(v, "4111 1111 1111 1111", "card", partial(4))},
                        &key);
  ASSERT_FALSE(r.is_null);
  std::string token;
  ASSERT_TRUE(append_string_token("github_token", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", key, token));
  EXPECT_EQ(r.bytes, "ssn [masked:ssn], card **** **** **** 1111, key " + token);
  // The same secret in a column masked with the same kind gets the same token.
  EXPECT_EQ(mask_value(kToken, "github_token", 25, kText, "ghp_abcdefghijklmnopqrstuvwxyz0123456789", &key).bytes,
            token);
  // Binary format of a string type: the same bytes.
  EXPECT_EQ(spans(1043, kBinary, v, {at(v, "123-45-6789", "ssn", kRedact)}).bytes,
            "ssn [masked:ssn], card 4111 1111 1111 1111, key ghp_abcdefghijklmnopqrstuvwxyz0123456789");
  // No findings: the value as it was.
  EXPECT_EQ(spans(25, kText, v, {}).bytes, v);
}

TEST(MaskSpans, OverlapsMergeIntoTheMostProtective) {
  const std::string v = "aaa 0123456789 bbb";
  // partial [4,14) and redact [8,18): one region [4,18) redacted.
  Replacement r = spans(25, kText, v, {SpanFinding{8, 18, "b", kRedact}, SpanFinding{4, 14, "a", partial(2)}});
  EXPECT_EQ(r.bytes, "aaa [masked:b]");
  // Two partials: the smaller keep_last wins.
  r = spans(25, kText, v, {SpanFinding{4, 10, "a", partial(4)}, SpanFinding{6, 14, "a", partial(1)}});
  EXPECT_EQ(r.bytes, "aaa *********9 bbb");
  // Touching spans stay separate.
  r = spans(25, kText, v, {SpanFinding{4, 9, "a", kRedact}, SpanFinding{9, 14, "b", kRedact}});
  EXPECT_EQ(r.bytes, "aaa [masked:a][masked:b] bbb");
}

TEST(MaskSpans, SpanEdgesInsideUtf8CharactersAreWidened) {
  const std::string v = "x caf\xc3\xa9\xc3\xa9 y";  // "x caféé y"
  // A span from the middle of the first 'é' to the middle of the second.
  Replacement r = spans(25, kText, v, {SpanFinding{6, 8, "k", kRedact}});
  EXPECT_EQ(r.bytes, "x caf[masked:k] y");
  EXPECT_TRUE(valid_utf8(r.bytes));
}

TEST(MaskSpans, DoubtMasksTheWholeValue) {
  const std::string v = "ssn 123-45-6789";
  // A null finding: the whole value is NULL.
  EXPECT_TRUE(spans(25, kText, v, {at(v, "123-45-6789", "ssn", kRedact), SpanFinding{0, 3, "x", kNull}}).is_null);
  // Spans out of range or empty: the whole value, by the strongest finding.
  EXPECT_EQ(spans(25, kText, v, {SpanFinding{4, 99, "ssn", kRedact}}).bytes, "[masked:ssn]");
  EXPECT_EQ(spans(25, kText, v, {SpanFinding{4, 4, "ssn", partial(4)}}).bytes, "*** ***-**-6789");
  EXPECT_EQ(spans(25, kText, v, {SpanFinding{5, 2, "ssn", kRedact}}).bytes, "[masked:ssn]");
  EXPECT_EQ(spans(25, kText, v, {SpanFinding{static_cast<size_t>(-1), 3, "ssn", kRedact}}).bytes, "[masked:ssn]");
  // A type that is not a string: the whole value by its rules.
  const TokenKey key = make_key();
  Replacement n = spans(20, kText, "4111111111111111", {SpanFinding{0, 16, "card", kToken}}, &key);
  EXPECT_EQ(n.bytes, mask_value(kToken, "card", 20, kText, "4111111111111111", &key).bytes);
  EXPECT_EQ(spans(17, kBinary, "sk_live_123", {SpanFinding{0, 11, "stripe", kRedact}}).bytes, "[masked:stripe]");
  EXPECT_TRUE(spans(1009, kText, "{sk_live_123}", {SpanFinding{1, 12, "stripe", kRedact}}).is_null);
}

TEST(MaskSpans, JsonStaysValidWhenSpansAreInsideStrings) {
  const TokenKey key = make_key();
  const std::string doc = R"({"note": "call 555-123-4567 or mail bob@example.com", "n": 1})";
  Replacement r = spans(114, kText, doc,
                        {at(doc, "555-123-4567", "phone", partial(4)), at(doc, "bob@example.com", "email", kToken)}, &key);
  ASSERT_FALSE(r.is_null);
  EXPECT_TRUE(valid_json(r.bytes)) << r.bytes;
  std::string token;
  append_string_token("email", "bob@example.com", key, token);
  EXPECT_EQ(r.bytes, R"({"note": "call ***-***-*567 or mail )" + token + R"(", "n": 1})");
  // jsonb in binary: offsets count the version byte, which stays.
  const std::string binary = "\x01" + doc;
  Replacement rb = spans(3802, kBinary, binary, {at(binary, "bob@example.com", "email", kRedact)});
  ASSERT_FALSE(rb.is_null);
  EXPECT_EQ(rb.bytes[0], '\x01');
  EXPECT_TRUE(valid_json(std::string_view(rb.bytes).substr(1)));
  EXPECT_NE(rb.bytes.find("[masked:email]"), std::string::npos);
  // A whole string including its escapes: the replacement removes them cleanly.
  const std::string escaped = R"(["a\"b\\c\u0041 secret-value\n"])";
  Replacement re = spans(3802, kText, escaped, {SpanFinding{2, escaped.size() - 2, "k", partial(3)}});
  EXPECT_TRUE(valid_json(re.bytes)) << re.bytes;
  EXPECT_EQ(re.bytes.find('\\'), std::string::npos);
}

TEST(MaskSpans, JsonUncertainSpansMaskTheWholeValue) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"card": 4111111111111111})", "4111111111111111"},  // a number
      {R"({"a": "x", "b": "y"})", R"(x", "b": "y)"},           // across two strings
      {R"({"a": "secret"})", R"("secret")"},                   // the quotes themselves
      {R"({"a": "secret"})", R"(secret")"},                    // the closing quote
      {R"({"secret": 1})", R"({"secret)"},                     // starts outside a string
  };
  for (const auto& [doc, secret] : cases) {
    Replacement r = spans(114, kText, doc, {at(doc, secret, "k", kRedact)});
    EXPECT_EQ(r.bytes, "\"[masked:k]\"") << doc << " / " << secret;
  }
  // Spans starting or ending inside an escape sequence.
  const std::string doc = R"({"a": "\u0041BCDEF \nsecret"})";
  const size_t u = doc.find("\\u");
  const size_t n = doc.find("\\n");
  for (SpanFinding f : {SpanFinding{u + 1, u + 8, "k", kRedact},    // after the backslash
                        SpanFinding{u + 3, u + 8, "k", kRedact},    // inside the hex digits
                        SpanFinding{u, u + 4, "k", kRedact},        // ends inside the hex digits
                        SpanFinding{n + 1, n + 8, "k", kRedact},    // after the backslash of \n
                        SpanFinding{n - 2, n + 1, "k", kRedact}}) { // ends between \ and n
    Replacement r = spans(114, kText, doc, {f});
    EXPECT_EQ(r.bytes, "\"[masked:k]\"") << f.begin << ".." << f.end;
  }
  // A span around a whole escape is fine.
  Replacement ok = spans(114, kText, doc, {SpanFinding{n, n + 8, "k", kRedact}});
  EXPECT_EQ(ok.bytes, R"({"a": "\u0041BCDEF [masked:k]"})");
  // jsonb binary: a span over the version byte; a bad version byte.
  const std::string binary = std::string("\x01") + R"(["secret"])";
  EXPECT_EQ(spans(3802, kBinary, binary, {SpanFinding{0, 5, "k", kRedact}}).bytes, "\x01\"[masked:k]\"");
  EXPECT_TRUE(spans(3802, kBinary, "\x02[\"secret\"]", {SpanFinding{3, 8, "k", kRedact}}).is_null);
  // Malformed JSON strings (raw control byte, bad escape): the whole value.
  EXPECT_EQ(spans(114, kText, "[\"a\x01 secret\"]", {SpanFinding{5, 11, "k", kRedact}}).bytes, "\"[masked:k]\"");
  EXPECT_EQ(spans(114, kText, R"(["\q secret"])", {SpanFinding{6, 12, "k", kRedact}}).bytes, "\"[masked:k]\"");
}

// Random spans with random strategies over JSON documents: the result is always valid
// JSON (or NULL), whatever the spans cut through.
TEST(MaskSpans, RandomSpansNeverBreakJson) {
  const TokenKey key = make_key();
  const std::vector<std::string> docs = {
      R"({"a": "secret value 123-45-6789", "b": [1, 2.5, true, null, "x\"y\\z\u00e9\n"], "c": {"d": ""}})",
      R"(["caf\u00e9 \ud83d\ude00 tok", "Müller-Lüdenscheidt", "\u0000", 12345678901234567890])",
      R"("just a string with sk_live_abcdef")",
      R"({"nested": {"deep": [{"k": "4111 1111 1111 1111"}]}, "escaped\"key": "v"})",
  };
  std::mt19937 rng(11);
  const StrategySpec strategies[] = {kRedact, partial(2), partial(0), kToken};
  size_t rewritten_in_place = 0;
  for (int round = 0; round < 4000; ++round) {
    const std::string& doc = docs[rng() % docs.size()];
    const uint32_t oid = rng() % 2 == 0 ? 3802 : 114;
    const ValueFormat format = rng() % 2 == 0 ? kBinary : kText;
    const bool version_byte = oid == 3802 && format == kBinary;
    const std::string value = version_byte ? "\x01" + doc : doc;
    std::vector<SpanFinding> findings;
    const int count = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < count; ++i) {
      const size_t begin = rng() % value.size();
      const size_t end = std::min(value.size(), begin + 1 + rng() % 12);
      findings.push_back(SpanFinding{begin, end, "k", strategies[rng() % 4]});
    }
    Replacement r = spans(oid, format, value, findings, &key);
    ASSERT_FALSE(r.is_null);
    std::string_view json = r.bytes;
    if (version_byte) {
      ASSERT_EQ(json[0], '\x01');
      json.remove_prefix(1);
    }
    ASSERT_TRUE(valid_json(json)) << "round " << round << ": " << r.bytes;
    if (json.front() != '"') ++rewritten_in_place;  // not replaced by a whole-value string
  }
  // Random spans often cut a quote; enough of them fall inside strings to exercise both paths.
  EXPECT_GT(rewritten_in_place, 200u) << "some rounds should rewrite inside strings, not mask everything";
}

// --- hostile values ---

TEST(MaskHostile, RandomValuesOfEveryTypeDecodeOrAreNull) {
  const TokenKey key = make_key();
  std::mt19937 rng(5);
  const std::vector<Sample> all = samples();
  const StrategySpec strategies[] = {kRedact, partial(3), kToken, kNull};
  for (int round = 0; round < 20000; ++round) {
    const Sample& s = all[rng() % all.size()];
    std::string value(rng() % 24, '\0');
    for (char& c : value) c = static_cast<char>(rng() % 4 == 0 ? rng() % 4 : rng());
    if (rng() % 3 == 0) value = rng() % 2 ? s.binary : s.text;  // sometimes well-formed
    const ValueFormat format = rng() % 2 ? kText : kBinary;
    const StrategySpec spec = strategies[rng() % 4];
    Replacement r = mask_value(spec, "k", s.oid, format, value, &key);
    ASSERT_TRUE(decodes_as(s.oid, format, r)) << "round " << round;
    std::vector<SpanFinding> findings;
    if (!value.empty()) {
      size_t begin = rng() % value.size();
      findings.push_back(SpanFinding{begin, begin + 1 + rng() % (value.size() - begin), "k", spec});
    }
    rewrite_spans(classify_type(s.oid), format, value, findings, &key, r);
    // Strings and JSON keep the bytes around a span: only whole-value families are
    // checked here (JSON has its own property test with valid documents).
    const TypeFamily family = classify_type(s.oid).family;
    if (!findings.empty() && family != TypeFamily::string_like && family != TypeFamily::json &&
        family != TypeFamily::jsonb) {
      ASSERT_TRUE(decodes_as(s.oid, format, r)) << "spans, round " << round;
    }
  }
}

TEST(MaskHostile, LargeValues) {
  const TokenKey key = make_key();
  std::string big(8u << 20, '\0');
  std::mt19937 rng(9);
  for (char& c : big) c = static_cast<char>(rng());
  Replacement r;
  mask_value(partial(4), "k", classify_type(25), kText, big, &key, r);
  EXPECT_TRUE(valid_utf8(r.bytes));
  EXPECT_LE(r.bytes.size(), big.size());
  mask_value(kToken, "k", classify_type(25), kText, big, &key, r);
  EXPECT_TRUE(matches(r.bytes, "tok_[a-z2-7]{16}"));
  mask_value(kRedact, "k", classify_type(1562), kBinary, big, &key, r);
  EXPECT_TRUE(r.is_null);  // not a varbit layout
  std::string bits(4u << 20, '1');
  mask_value(kRedact, "k", classify_type(1562), kText, bits, &key, r);
  EXPECT_EQ(r.bytes, std::string(bits.size(), '0'));
  // A large numeric (maximum digits) converts without reading past its end.
  std::string numeric = be(32767, 2) + be(0, 2) + be(0, 2) + be(0x3FFF, 2);
  for (int i = 0; i < 32767; ++i) numeric += be(9999, 2);
  mask_value(kToken, "k", classify_type(1700), kBinary, numeric, &key, r);
  EXPECT_TRUE(decode_numeric(r.bytes).is_integer);
  // Replacement is reusable: NULL then bytes then NULL.
  mask_value(kNull, "k", classify_type(25), kText, "x", &key, r);
  EXPECT_TRUE(r.is_null);
  EXPECT_TRUE(r.bytes.empty());
}

TEST(MaskJsonSafety, ReplacementAlphabetIsJsonSafe) {
  const TokenKey key = make_key();
  std::string out;
  append_placeholder("a\"b\\c\x01", out);
  EXPECT_TRUE(is_json_string_safe(out));
  out.clear();
  ASSERT_TRUE(append_string_token("k", "\"\\\n", key, out));
  EXPECT_TRUE(is_json_string_safe(out));
  out.clear();
  append_partial("\"\\\x01\x1f abcdefghijk\"", 3, out);
  EXPECT_TRUE(is_json_string_safe(out)) << out;
  EXPECT_FALSE(is_json_string_safe("a\"b"));
  EXPECT_FALSE(is_json_string_safe("a\\b"));
  EXPECT_FALSE(is_json_string_safe("a\nb"));
}

}  // namespace
}  // namespace sluice::mask
