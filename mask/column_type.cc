// Built-in type OIDs -> replacement families, binary layouts, and binary -> canonical
// text for the types a token is computed over. Every reader here checks lengths first:
// values are hostile bytes of any length.
#include "mask/column_type.h"

#include <cstring>

namespace sluice::mask {
namespace {

uint16_t read_u16(const char* p) {
  return static_cast<uint16_t>((static_cast<uint8_t>(p[0]) << 8) | static_cast<uint8_t>(p[1]));
}


// numeric's binary form (numeric_send): int16 ndigits, int16 weight, uint16 sign,
// uint16 dscale, then ndigits base-10000 digits, most significant first.
constexpr uint16_t kNumericPos = 0x0000;
constexpr uint16_t kNumericNeg = 0x4000;
constexpr uint16_t kNumericNaN = 0xC000;
constexpr uint16_t kNumericPInf = 0xD000;
constexpr uint16_t kNumericNInf = 0xF000;
constexpr uint16_t kNumericMaxDscale = 0x3FFF;

struct NumericView {
  int16_t ndigits = 0;
  int16_t weight = 0;
  uint16_t sign = 0;
  uint16_t dscale = 0;
  const char* digits = nullptr;
  int digit(int i) const { return read_u16(digits + 2 * i); }
};

bool parse_numeric(std::string_view value, NumericView& out) {
  if (value.size() < 8) return false;
  const char* p = value.data();
  out.ndigits = static_cast<int16_t>(read_u16(p));
  out.weight = static_cast<int16_t>(read_u16(p + 2));
  out.sign = read_u16(p + 4);
  out.dscale = read_u16(p + 6);
  out.digits = p + 8;
  if (out.ndigits < 0 || value.size() != 8 + 2 * static_cast<size_t>(out.ndigits)) return false;
  if (out.dscale > kNumericMaxDscale) return false;
  switch (out.sign) {
    case kNumericPos:
    case kNumericNeg:
      break;
    case kNumericNaN:
    case kNumericPInf:
    case kNumericNInf:
      return out.ndigits == 0;
    default:
      return false;
  }
  for (int i = 0; i < out.ndigits; ++i) {
    if (out.digit(i) > 9999) return false;
  }
  return true;
}

// numeric_out (get_str_from_var): sign, integer part without leading zeros, then
// exactly dscale fraction digits.
void numeric_to_text(const NumericView& n, std::string& out) {
  if (n.sign == kNumericNaN) {
    out += "NaN";
    return;
  }
  if (n.sign == kNumericPInf) {
    out += "Infinity";
    return;
  }
  if (n.sign == kNumericNInf) {
    out += "-Infinity";
    return;
  }
  if (n.sign == kNumericNeg) out.push_back('-');
  auto digit_at = [&](int d) { return d >= 0 && d < n.ndigits ? n.digit(d) : 0; };
  int d = 0;
  if (n.weight < 0) {
    d = n.weight + 1;
    out.push_back('0');
  } else {
    for (d = 0; d <= n.weight; ++d) {
      int dig = digit_at(d);
      char four[4] = {static_cast<char>('0' + dig / 1000), static_cast<char>('0' + dig / 100 % 10),
                      static_cast<char>('0' + dig / 10 % 10), static_cast<char>('0' + dig % 10)};
      int first = 0;
      if (d == 0) {
        while (first < 3 && four[first] == '0') ++first;  // no leading zeros
      }
      out.append(four + first, 4 - first);
    }
  }
  if (n.dscale > 0) {
    out.push_back('.');
    size_t end = out.size() + n.dscale;
    for (int i = 0; i < n.dscale; ++d, i += 4) {
      int dig = digit_at(d);
      char four[4] = {static_cast<char>('0' + dig / 1000), static_cast<char>('0' + dig / 100 % 10),
                      static_cast<char>('0' + dig / 10 % 10), static_cast<char>('0' + dig % 10)};
      out.append(four, 4);
    }
    out.resize(end);
  }
}

void uuid_to_text(std::string_view value, std::string& out) {  // value.size() == 16
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    uint8_t b = static_cast<uint8_t>(value[i]);
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
}

}  // namespace

uint64_t read_be(std::string_view value) {
  uint64_t v = 0;
  for (char c : value.substr(0, 8)) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

void append_decimal(uint64_t v, std::string& out) {
  char digits[20];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) out.push_back(digits[--n]);
}

ColumnType classify_type(uint32_t oid) {
  auto make = [oid](TypeFamily family, uint8_t width = 0, bool is_unsigned = false) {
    return ColumnType{family, oid, width, is_unsigned};
  };
  switch (oid) {
    case 16: return make(TypeFamily::boolean);
    case 17: return make(TypeFamily::bytea);
    case 18: return make(TypeFamily::single_char);
    case 19: return make(TypeFamily::string_like);    // name
    case 20: return make(TypeFamily::integer, 8);     // int8
    case 21: return make(TypeFamily::integer, 2);     // int2
    case 23: return make(TypeFamily::integer, 4);     // int4
    case 25: return make(TypeFamily::string_like);    // text
    case 26: return make(TypeFamily::integer, 4, true);  // oid
    case 114: return make(TypeFamily::json);
    case 142: return make(TypeFamily::string_like);   // xml
    case 650: return make(TypeFamily::cidr);
    case 700: return make(TypeFamily::floating, 4);
    case 701: return make(TypeFamily::floating, 8);
    case 774: return make(TypeFamily::macaddr, 8);    // macaddr8
    case 790: return make(TypeFamily::money);
    case 829: return make(TypeFamily::macaddr, 6);
    case 869: return make(TypeFamily::inet);
    case 1042: return make(TypeFamily::string_like);  // bpchar
    case 1043: return make(TypeFamily::string_like);  // varchar
    case 1082: return make(TypeFamily::date);
    case 1083: return make(TypeFamily::time);
    case 1114: return make(TypeFamily::timestamp);
    case 1184: return make(TypeFamily::timestamptz);
    case 1186: return make(TypeFamily::interval);
    case 1266: return make(TypeFamily::timetz);
    case 1560: return make(TypeFamily::bit);
    case 1562: return make(TypeFamily::bit);          // varbit
    case 1700: return make(TypeFamily::numeric);
    case 2950: return make(TypeFamily::uuid);
    case 3802: return make(TypeFamily::jsonb);
    default: return make(TypeFamily::unknown);
  }
}

ColumnType string_type(uint32_t oid) { return ColumnType{TypeFamily::string_like, oid, 0, false}; }

const char* family_name(TypeFamily family) {
  switch (family) {
    case TypeFamily::unknown: return "unknown";
    case TypeFamily::string_like: return "string";
    case TypeFamily::single_char: return "char";
    case TypeFamily::json: return "json";
    case TypeFamily::jsonb: return "jsonb";
    case TypeFamily::integer: return "integer";
    case TypeFamily::floating: return "float";
    case TypeFamily::numeric: return "numeric";
    case TypeFamily::boolean: return "bool";
    case TypeFamily::uuid: return "uuid";
    case TypeFamily::date: return "date";
    case TypeFamily::time: return "time";
    case TypeFamily::timetz: return "timetz";
    case TypeFamily::timestamp: return "timestamp";
    case TypeFamily::timestamptz: return "timestamptz";
    case TypeFamily::interval: return "interval";
    case TypeFamily::bytea: return "bytea";
    case TypeFamily::inet: return "inet";
    case TypeFamily::cidr: return "cidr";
    case TypeFamily::macaddr: return "macaddr";
    case TypeFamily::bit: return "bit";
    case TypeFamily::money: return "money";
  }
  return "unknown";
}

bool binary_layout_ok(ColumnType type, std::string_view value) {
  const size_t n = value.size();
  switch (type.family) {
    case TypeFamily::integer:
    case TypeFamily::floating:
    case TypeFamily::macaddr:
      return type.width != 0 && n == type.width;
    case TypeFamily::single_char:
    case TypeFamily::boolean:
      return n == 1;
    case TypeFamily::uuid:
    case TypeFamily::interval:  // int64 microseconds, int32 days, int32 months
      return n == 16;
    case TypeFamily::date:
      return n == 4;
    case TypeFamily::time:
    case TypeFamily::timestamp:
    case TypeFamily::timestamptz:
    case TypeFamily::money:
      return n == 8;
    case TypeFamily::timetz:  // int64 microseconds, int32 zone offset
      return n == 12;
    case TypeFamily::numeric: {
      NumericView ignored;
      return parse_numeric(value, ignored);
    }
    case TypeFamily::jsonb:
      return n >= 1 && value[0] == '\x01';
    case TypeFamily::inet:
    case TypeFamily::cidr: {
      // family (2 = IPv4, 3 = IPv6), bits, is_cidr, address length, address bytes
      if (n < 4) return false;
      uint8_t family = static_cast<uint8_t>(value[0]);
      uint8_t length = static_cast<uint8_t>(value[3]);
      bool v4 = family == 2 && length == 4;
      bool v6 = family == 3 && length == 16;
      return (v4 || v6) && n == 4u + length;
    }
    case TypeFamily::bit: {  // int32 bit length, then ceil(bits / 8) bytes
      if (n < 4) return false;
      uint64_t bits = read_be(value.substr(0, 4));
      if (bits > 0x7FFFFFFF) return false;
      return n == 4 + (bits + 7) / 8;
    }
    case TypeFamily::string_like:
    case TypeFamily::json:
    case TypeFamily::bytea:
    case TypeFamily::unknown:
      return true;
  }
  return false;
}

bool canonical_text(ColumnType type, ValueFormat format, std::string_view value, std::string& out) {
  if (format == ValueFormat::text) {
    out.append(value);
    return true;
  }
  if (!binary_layout_ok(type, value)) return false;
  switch (type.family) {
    case TypeFamily::string_like:
    case TypeFamily::json:
      out.append(value);  // textsend / json_send: the text itself
      return true;
    case TypeFamily::jsonb:
      out.append(value.substr(1));
      return true;
    case TypeFamily::integer: {
      uint64_t raw = read_be(value);
      if (type.is_unsigned) {
        append_decimal(raw, out);
        return true;
      }
      // Sign-extend from the column width.
      const unsigned shift = 64 - 8 * type.width;
      int64_t v = static_cast<int64_t>(raw << shift) >> shift;
      if (v < 0) {
        out.push_back('-');
        append_decimal(static_cast<uint64_t>(0) - static_cast<uint64_t>(v), out);
      } else {
        append_decimal(static_cast<uint64_t>(v), out);
      }
      return true;
    }
    case TypeFamily::uuid:
      uuid_to_text(value, out);
      return true;
    case TypeFamily::numeric: {
      NumericView n;
      if (!parse_numeric(value, n)) return false;
      numeric_to_text(n, out);
      return true;
    }
    default:
      return false;
  }
}

}  // namespace sluice::mask
