// Whole-value and in-value (span) masking with type-valid replacements. The rules are
// written in value_rewrite.h; this file follows them type by type.
#include "mask/value_rewrite.h"

#include <algorithm>
#include <cassert>
#include <vector>

namespace sluice::mask {
namespace {

constexpr char kBase32[] = "abcdefghijklmnopqrstuvwxyz234567";  // RFC 4648, lower case
constexpr char kHex[] = "0123456789abcdef";

// 1970-01-01 relative to PostgreSQL's epoch 2000-01-01.
constexpr int32_t kUnixEpochDays = -10957;
constexpr int64_t kUnixEpochMicros = -946684800000000;

bool is_ascii_alnum(uint8_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_kind_char(char c) { return is_ascii_alnum(static_cast<uint8_t>(c)) || c == '_' || c == '.' || c == '-'; }
bool is_separator(uint8_t c) {
  switch (c) {
    case ' ': case '-': case '.': case '@': case '_': case '/': case '(': case ')': case '+': case ':': case ',':
      return true;
    default:
      return false;
  }
}
bool is_continuation(uint8_t c) { return (c & 0xC0) == 0x80; }

// Length of the well-formed UTF-8 sequence at text[i] (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF), or 0 when the byte there does not start one.
size_t utf8_length(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  const uint8_t b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t n;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (text.size() - i < n) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (!is_continuation(byte(i + k))) return 0;
  }
  return n;
}

void append_be(uint64_t v, unsigned width, std::string& out) {
  for (unsigned i = width; i-- > 0;) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

uint64_t read_be64(const uint8_t* p) { return read_be(std::string_view(reinterpret_cast<const char*>(p), 8)); }

// numeric's binary form of a non-negative integer: base-10000 digits, trailing zero
// digits dropped (as make_result does), dscale 0. Zero is ndigits 0, weight 0.
void append_numeric_binary(uint64_t v, std::string& out) {
  uint16_t groups[5];  // least significant first; 2^64 < 10000^5
  int n = 0;
  while (v != 0) {
    groups[n++] = static_cast<uint16_t>(v % 10000);
    v /= 10000;
  }
  int low_zeros = 0;
  while (low_zeros < n && groups[low_zeros] == 0) ++low_zeros;
  const int weight = n == 0 ? 0 : n - 1;
  append_be(static_cast<uint64_t>(n - low_zeros), 2, out);  // ndigits
  append_be(static_cast<uint16_t>(weight), 2, out);
  append_be(0, 2, out);  // sign: positive
  append_be(0, 2, out);  // dscale
  for (int i = n - 1; i >= low_zeros; --i) append_be(groups[i], 2, out);
}

void append_uuid_text(const uint8_t* b, std::string& out) {
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 15]);
  }
}

// DateStyle ISO writes dates as YYYY-MM-DD (at least four year digits); every other
// style starts with two digits or a weekday name.
bool is_iso_date(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && is_digit(text[i])) ++i;
  return i >= 4 && i < text.size() && text[i] == '-';
}

// The zero interval in the IntervalStyle the server used for `text`, or nullptr when
// the style cannot be told (e.g. "infinity", which reads the same in every style).
const char* zero_interval_like(std::string_view text) {
  if (text.empty() || text == "infinity" || text == "-infinity") return nullptr;
  if (text[0] == '@') return "@ 0";  // postgres_verbose
  if (text[0] == 'P') return "PT0S";  // iso_8601
  bool letters = false;
  bool sql_standard_chars = true;
  for (char c : text) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) letters = true;
    if (!(is_digit(c) || c == '-' || c == '+' || c == ' ' || c == ':' || c == '.')) sql_standard_chars = false;
  }
  if (letters) return "00:00:00";  // postgres: "1 year 2 mons 3 days 04:05:06"
  if (!sql_standard_chars) return nullptr;
  // postgres without units is [-]HH:MM:SS[.f] with at least two hour digits.
  std::string_view t = text;
  if (!t.empty() && t[0] == '-') t.remove_prefix(1);
  size_t hours = 0;
  while (hours < t.size() && is_digit(t[hours])) ++hours;
  if (hours >= 2 && hours < t.size() && t[hours] == ':') return "00:00:00";
  return "0";  // sql_standard: "1-2", "3 4:05:06"
}

// "tok_" + the first 80 bits of the MAC in base32: two groups of 40 bits, 8 characters each.
void append_token_text(const uint8_t (&mac)[TokenKey::kMacBytes], std::string& out) {
  out += "tok_";
  for (int group = 0; group < 2; ++group) {
    uint64_t bits = 0;
    for (int i = 0; i < 5; ++i) bits = (bits << 8) | mac[group * 5 + i];
    for (int i = 7; i >= 0; --i) out.push_back(kBase32[(bits >> (5 * i)) & 31]);
  }
}

void append_placeholder_json(std::string_view kind, bool jsonb_binary, std::string& out) {
  if (jsonb_binary) out.push_back('\x01');
  out.push_back('"');
  append_placeholder(kind, out);
  out.push_back('"');
}

// The type's neutral value (header table); NULL where there is none we can be sure of.
void write_redacted(std::string_view kind, ColumnType type, ValueFormat format, std::string_view value,
                    Replacement& out) {
  const bool text = format == ValueFormat::text;
  switch (type.family) {
    case TypeFamily::string_like:
      append_placeholder(kind, out.set_bytes());
      return;
    case TypeFamily::single_char:
      out.set_bytes() = "*";
      return;
    case TypeFamily::json:
      append_placeholder_json(kind, false, out.set_bytes());
      return;
    case TypeFamily::jsonb:
      append_placeholder_json(kind, !text, out.set_bytes());
      return;
    case TypeFamily::bytea: {
      std::string& bytes = out.set_bytes();
      if (!text) {
        append_placeholder(kind, bytes);
        return;
      }
      std::string marker;
      append_placeholder(kind, marker);
      bytes = "\\x";
      for (char c : marker) {
        bytes.push_back(kHex[static_cast<uint8_t>(c) >> 4]);
        bytes.push_back(kHex[static_cast<uint8_t>(c) & 15]);
      }
      return;
    }
    case TypeFamily::integer:
    case TypeFamily::floating:
      if (text) {
        out.set_bytes() = "0";
      } else {
        out.set_bytes().assign(type.width, '\0');
      }
      return;
    case TypeFamily::numeric:
      if (text) {
        out.set_bytes() = "0";
      } else {
        append_numeric_binary(0, out.set_bytes());
      }
      return;
    case TypeFamily::boolean:
      out.set_bytes() = text ? "f" : std::string(1, '\0');
      return;
    case TypeFamily::uuid:
      if (text) {
        out.set_bytes() = "00000000-0000-0000-0000-000000000000";
      } else {
        out.set_bytes().assign(16, '\0');
      }
      return;
    case TypeFamily::date:
      if (!text) {
        append_be(static_cast<uint32_t>(kUnixEpochDays), 4, out.set_bytes());
      } else if (is_iso_date(value)) {
        out.set_bytes() = "1970-01-01";
      } else {
        out.set_null();
      }
      return;
    case TypeFamily::timestamp:
    case TypeFamily::timestamptz:
      if (!text) {
        append_be(static_cast<uint64_t>(kUnixEpochMicros), 8, out.set_bytes());
      } else if (is_iso_date(value)) {
        out.set_bytes() = type.family == TypeFamily::timestamp ? "1970-01-01 00:00:00" : "1970-01-01 00:00:00+00";
      } else {
        out.set_null();
      }
      return;
    case TypeFamily::time:  // time and timetz read the same in every DateStyle
      if (text) {
        out.set_bytes() = "00:00:00";
      } else {
        out.set_bytes().assign(8, '\0');
      }
      return;
    case TypeFamily::timetz:
      if (text) {
        out.set_bytes() = "00:00:00+00";
      } else {
        out.set_bytes().assign(12, '\0');  // midnight, zone offset 0
      }
      return;
    case TypeFamily::interval:
      if (!text) {
        out.set_bytes().assign(16, '\0');
      } else if (const char* zero = zero_interval_like(value)) {
        out.set_bytes() = zero;
      } else {
        out.set_null();
      }
      return;
    case TypeFamily::inet:
      if (text) {
        out.set_bytes() = "0.0.0.0";
      } else {
        out.set_bytes().assign({'\x02', '\x20', '\x00', '\x04', '\x00', '\x00', '\x00', '\x00'});
      }
      return;
    case TypeFamily::cidr:
      if (text) {
        out.set_bytes() = "0.0.0.0/0";
      } else {
        out.set_bytes().assign({'\x02', '\x00', '\x01', '\x04', '\x00', '\x00', '\x00', '\x00'});
      }
      return;
    case TypeFamily::macaddr:
      if (text) {
        out.set_bytes() = type.width == 8 ? "00:00:00:00:00:00:00:00" : "00:00:00:00:00:00";
      } else {
        out.set_bytes().assign(type.width, '\0');
      }
      return;
    case TypeFamily::bit:
      // The same number of bits, all zero: bit(n) keeps its length.
      if (!text) {
        std::string& bytes = out.set_bytes();
        bytes.assign(value.substr(0, 4));  // layout checked by the caller
        bytes.append(value.size() - 4, '\0');
      } else if (std::all_of(value.begin(), value.end(), [](char c) { return c == '0' || c == '1'; })) {
        out.set_bytes().assign(value.size(), '0');
      } else {
        out.set_null();
      }
      return;
    case TypeFamily::money:  // its text form depends on lc_monetary
    case TypeFamily::unknown:
      out.set_null();
      return;
  }
  out.set_null();
}

// The token rules of the header; false when the family has none (or no key / MAC
// failure): the caller then redacts.
bool write_token(std::string_view kind, ColumnType type, ValueFormat format, std::string_view value,
                 const TokenKey* key, Replacement& out) {
  if (key == nullptr) return false;
  switch (type.family) {
    case TypeFamily::string_like:
    case TypeFamily::json:
    case TypeFamily::jsonb:
    case TypeFamily::numeric:
    case TypeFamily::uuid:
      break;
    case TypeFamily::integer:
      if (type.width != 2 && type.width != 4 && type.width != 8) return false;
      break;
    default:
      return false;
  }
  const bool text = format == ValueFormat::text;
  // The MAC input is the text form, so both formats give the same token.
  std::string converted;
  std::string_view canonical = value;
  if (!text) {
    if (type.family == TypeFamily::jsonb) {
      canonical = value.substr(1);  // layout (version byte) checked by the caller
    } else if (type.family != TypeFamily::string_like && type.family != TypeFamily::json) {
      if (!canonical_text(type, format, value, converted)) return false;
      canonical = converted;
    }
  }
  uint8_t mac[TokenKey::kMacBytes];
  if (!key->mac(kind, canonical, mac)) return false;

  std::string& bytes = out.set_bytes();
  switch (type.family) {
    case TypeFamily::string_like:
    case TypeFamily::json:
    case TypeFamily::jsonb: {
      const bool quoted = type.family != TypeFamily::string_like;
      if (type.family == TypeFamily::jsonb && !text) bytes.push_back('\x01');
      if (quoted) bytes.push_back('"');
      append_token_text(mac, bytes);
      if (quoted) bytes.push_back('"');
      return true;
    }
    case TypeFamily::integer: {
      // Non-negative and within the width: int2 15 bits, int4/oid 31, int8 63.
      const unsigned bits = 8u * type.width - 1;
      const uint64_t v = read_be64(mac) & ((uint64_t{1} << bits) - 1);
      if (text) {
        append_decimal(v, bytes);
      } else {
        append_be(v, type.width, bytes);
      }
      return true;
    }
    case TypeFamily::numeric: {
      const uint64_t v = read_be64(mac) & ((uint64_t{1} << 63) - 1);
      if (text) {
        append_decimal(v, bytes);
      } else {
        append_numeric_binary(v, bytes);
      }
      return true;
    }
    case TypeFamily::uuid: {
      uint8_t b[16];
      std::copy(mac, mac + 16, b);
      b[6] = static_cast<uint8_t>((b[6] & 0x0F) | 0x80);  // version 8
      b[8] = static_cast<uint8_t>((b[8] & 0x3F) | 0x80);  // variant 10
      if (text) {
        append_uuid_text(b, bytes);
      } else {
        bytes.assign(reinterpret_cast<const char*>(b), 16);
      }
      return true;
    }
    default:
      return false;
  }
}

int protection(Strategy s) {  // higher reveals less
  switch (s) {
    case Strategy::partial: return 0;
    case Strategy::token: return 1;
    case Strategy::redact: return 2;
    case Strategy::null: return 3;
  }
  return 3;
}

struct Region {
  size_t begin;
  size_t end;
  std::string_view kind;
  StrategySpec spec;
};

// The more protective of two specs; partial with partial keeps the fewer characters.
void strengthen(Region& into, const Region& other) {
  const int a = protection(into.spec.strategy);
  const int b = protection(other.spec.strategy);
  if (b > a) {
    into.kind = other.kind;
    into.spec = other.spec;
  } else if (a == b && into.spec.strategy == Strategy::partial) {
    into.spec.keep_last = std::min(into.spec.keep_last, other.spec.keep_last);
  }
}

// True when every region of `body` starts and ends inside one and the same JSON string,
// outside any escape sequence. Regions are sorted and disjoint; offsets are relative
// to `body`. A malformed string (bad escape, raw control byte) answers false.
bool regions_inside_json_strings(std::string_view body, const std::vector<Region>& regions) {
  constexpr size_t kNone = static_cast<size_t>(-1);
  size_t string_open = kNone;  // offset of the opening quote of the string we are in
  int escape = 0;              // -1: after a backslash; n > 0: hex digits of \uXXXX to come
  size_t region = 0;
  bool at_end = false;         // next check is regions[region].end (else .begin)
  size_t region_string = kNone;
  for (size_t i = 0; i <= body.size() && region < regions.size(); ++i) {
    while (region < regions.size()) {
      const size_t check = at_end ? regions[region].end : regions[region].begin;
      if (check != i) break;
      if (string_open == kNone || escape != 0) return false;
      if (!at_end) {
        region_string = string_open;
        at_end = true;
      } else {
        if (string_open != region_string) return false;
        at_end = false;
        ++region;
      }
    }
    if (i == body.size()) break;
    const uint8_t c = static_cast<uint8_t>(body[i]);
    if (string_open == kNone) {
      if (c == '"') string_open = i;
    } else if (escape == -1) {
      if (c == 'u') {
        escape = 4;
      } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
        escape = 0;
      } else {
        return false;
      }
    } else if (escape > 0) {
      if (!(is_digit(static_cast<char>(c)) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
      --escape;
    } else if (c == '\\') {
      escape = -1;
    } else if (c == '"') {
      string_open = kNone;
    } else if (c < 0x20) {
      return false;
    }
  }
  return region == regions.size();
}

// Per-thread scratch for rewrite_spans: keeps its capacity (a handful of findings).
thread_local std::vector<Region> t_regions;

}  // namespace

void append_placeholder(std::string_view kind, std::string& out) {
  if (kind.empty()) {
    out += "[masked]";
    return;
  }
  out += "[masked:";
  for (char c : kind) out.push_back(is_kind_char(c) ? c : '_');
  out.push_back(']');
}

void append_partial(std::string_view text, uint8_t keep_last, std::string& out) {
  // Pass 1: how many letters/digits (ASCII alphanumerics and non-ASCII characters).
  size_t keepable = 0;
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_length(text, i);
    if (n > 1 || (n == 1 && is_ascii_alnum(static_cast<uint8_t>(text[i])))) ++keepable;
    i += n == 0 ? 1 : n;
  }
  // Short values are starred entirely, and no value shows more than a third of its
  // letters and digits (a 9-digit SSN with keep_last 4 shows 3).
  const bool all_stars = keepable <= 2 * static_cast<size_t>(keep_last);
  const size_t kept = all_stars ? 0 : std::min<size_t>(keep_last, keepable / 3);
  const size_t first_kept = keepable - kept;
  // Pass 2: one output character per input character (code point or invalid byte).
  size_t seen = 0;
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_length(text, i);
    const uint8_t c = static_cast<uint8_t>(text[i]);
    if (n > 1 || (n == 1 && is_ascii_alnum(c))) {
      if (seen++ >= first_kept) {
        out.append(text.substr(i, n));
      } else {
        out.push_back('*');
      }
    } else if (n == 1 && !all_stars && is_separator(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('*');
    }
    i += n == 0 ? 1 : n;
  }
}

void rewrite_findings(ColumnType type, ValueFormat format, std::string_view value, std::span<const Finding> findings,
                      const PatternSet& patterns, const TokenKey* key, Replacement& out) {
  std::vector<SpanFinding> spans;
  spans.reserve(findings.size());
  for (const Finding& f : findings) {
    const PatternSpec& pattern = patterns.pattern(f.pattern);
    spans.push_back(SpanFinding{f.begin, f.end, pattern.kind, pattern.strategy});
  }
  rewrite_spans(type, format, value, spans, key, out);
}

bool append_string_token(std::string_view kind, std::string_view text, const TokenKey& key, std::string& out) {
  uint8_t mac[TokenKey::kMacBytes];
  if (!key.mac(kind, text, mac)) return false;
  append_token_text(mac, out);
  return true;
}

bool is_json_string_safe(std::string_view text) {
  return std::none_of(text.begin(), text.end(),
                      [](char c) { return c == '"' || c == '\\' || static_cast<uint8_t>(c) < 0x20; });
}

void mask_value(StrategySpec spec, std::string_view kind, ColumnType type, ValueFormat format,
                std::string_view value, const TokenKey* key, Replacement& out) {
  if (spec.strategy == Strategy::null || type.family == TypeFamily::unknown) {
    out.set_null();
    return;
  }
  // A binary value that does not have its type's layout: we do not know what it is.
  if (format == ValueFormat::binary && !binary_layout_ok(type, value)) {
    out.set_null();
    return;
  }
  if (spec.strategy == Strategy::partial && type.family == TypeFamily::string_like) {
    append_partial(value, spec.keep_last, out.set_bytes());
    return;
  }
  if (spec.strategy == Strategy::token && write_token(kind, type, format, value, key, out)) return;
  write_redacted(kind, type, format, value, out);
}

Replacement mask_value(StrategySpec spec, std::string_view kind, uint32_t type_oid, ValueFormat format,
                       std::string_view value, const TokenKey* key) {
  Replacement out;
  mask_value(spec, kind, classify_type(type_oid), format, value, key, out);
  return out;
}

void rewrite_spans(ColumnType type, ValueFormat format, std::string_view value,
                   std::span<const SpanFinding> findings, const TokenKey* key, Replacement& out) {
  if (findings.empty()) {
    out.set_bytes().assign(value);
    return;
  }
  const SpanFinding* strongest = &findings[0];
  bool ranges_ok = true;
  for (const SpanFinding& f : findings) {
    if (protection(f.spec.strategy) > protection(strongest->spec.strategy)) strongest = &f;
    ranges_ok = ranges_ok && f.begin < f.end && f.end <= value.size();
  }
  auto whole_value = [&] { mask_value(strongest->spec, strongest->kind, type, format, value, key, out); };
  if (!ranges_ok || strongest->spec.strategy == Strategy::null) return whole_value();

  size_t body_offset = 0;  // where the text starts (after jsonb's version byte)
  bool json = false;
  switch (type.family) {
    case TypeFamily::string_like:
      break;
    case TypeFamily::json:
      json = true;
      break;
    case TypeFamily::jsonb:
      json = true;
      if (format == ValueFormat::binary) {
        if (!binary_layout_ok(type, value)) return whole_value();  // -> NULL
        body_offset = 1;
      }
      break;
    default:
      return whole_value();
  }

  // Sorted, widened to whole UTF-8 characters, overlaps merged.
  std::vector<Region>& regions = t_regions;
  regions.clear();
  for (const SpanFinding& f : findings) regions.push_back(Region{f.begin, f.end, f.kind, f.spec});
  std::sort(regions.begin(), regions.end(), [](const Region& a, const Region& b) { return a.begin < b.begin; });
  size_t merged = 0;
  for (Region r : regions) {
    for (int k = 0; k < 3 && r.begin > 0 && is_continuation(static_cast<uint8_t>(value[r.begin])); ++k) --r.begin;
    for (int k = 0; k < 3 && r.end < value.size() && is_continuation(static_cast<uint8_t>(value[r.end])); ++k) ++r.end;
    if (merged > 0 && r.begin < regions[merged - 1].end) {
      Region& last = regions[merged - 1];
      last.begin = std::min(last.begin, r.begin);
      last.end = std::max(last.end, r.end);
      strengthen(last, r);
    } else {
      regions[merged++] = r;
    }
  }
  regions.resize(merged);

  if (json) {
    if (regions.front().begin < body_offset) return whole_value();
    for (Region& r : regions) {
      r.begin -= body_offset;
      r.end -= body_offset;
    }
    const bool inside = regions_inside_json_strings(value.substr(body_offset), regions);
    for (Region& r : regions) {
      r.begin += body_offset;
      r.end += body_offset;
    }
    if (!inside) return whole_value();
  }

  std::string& bytes = out.set_bytes();
  bytes.reserve(value.size());
  size_t copied = 0;
  for (const Region& r : regions) {
    bytes.append(value.substr(copied, r.begin - copied));
    const size_t mark = bytes.size();
    const std::string_view secret = value.substr(r.begin, r.end - r.begin);
    switch (r.spec.strategy) {
      case Strategy::partial:
        append_partial(secret, r.spec.keep_last, bytes);
        break;
      case Strategy::token:
        if (key != nullptr && append_string_token(r.kind, secret, *key, bytes)) break;
        append_placeholder(r.kind, bytes);
        break;
      case Strategy::redact:
      case Strategy::null:  // excluded above
        append_placeholder(r.kind, bytes);
        break;
    }
    if (json) {
      // The replacement alphabet never needs escaping inside a JSON string.
      const bool safe = is_json_string_safe(std::string_view(bytes).substr(mark));
      assert(safe);
      if (!safe) return whole_value();
    }
    copied = r.end;
  }
  bytes.append(value.substr(copied));
}

}  // namespace sluice::mask
