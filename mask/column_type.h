// What the value rewriter knows about a column's PostgreSQL type: which family of
// replacement values it accepts, how wide its binary form is, and how to turn a binary
// value back into the server's canonical text (so tokens agree across formats).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::mask {

// Format code of a value in a DataRow (RowDescription / Bind result formats).
enum class ValueFormat : uint8_t {
  text = 0,
  binary = 1,
};

// Families share one replacement rule. Anything not listed here is `unknown`, whose
// only safe replacement is SQL NULL: arrays, ranges, composites, enums, extension types
// (citext, hstore, vector...) unless the mask plan resolves them by name (string_type()).
enum class TypeFamily : uint8_t {
  unknown,
  string_like,  // text 25, varchar 1043, bpchar 1042, name 19, xml 142; citext by name
  single_char,  // "char" 18: one byte in binary
  json,         // json 114: binary form = text form
  jsonb,        // jsonb 3802: binary form = version byte 1 + text form
  integer,      // int2 21, int4 23, int8 20 (signed), oid 26 (unsigned 32 bits)
  floating,     // float4 700, float8 701
  numeric,      // numeric 1700
  boolean,      // bool 16
  uuid,         // uuid 2950
  date,         // date 1082
  time,         // time 1083
  timetz,       // timetz 1266
  timestamp,    // timestamp 1114
  timestamptz,  // timestamptz 1184
  interval,     // interval 1186
  bytea,        // bytea 17
  inet,         // inet 869
  cidr,         // cidr 650
  macaddr,      // macaddr 829 (6 bytes), macaddr8 774 (8 bytes)
  bit,          // bit 1560, varbit 1562
  money,        // money 790
};

struct ColumnType {
  TypeFamily family = TypeFamily::unknown;
  uint32_t oid = 0;
  // Bytes of the binary form for integer, floating and macaddr; 0 otherwise.
  uint8_t width = 0;
  bool is_unsigned = false;  // oid: 0..4294967295
};

// The family of a built-in type OID; unknown for every other OID.
ColumnType classify_type(uint32_t oid);

// A type the catalog names as a string type although its OID is not fixed (citext).
ColumnType string_type(uint32_t oid);

const char* family_name(TypeFamily family);

// The text PostgreSQL would send for `value` in text format, appended to `out`.
// Text values are taken as they are (the server sends its canonical form); binary
// integer, oid, uuid, numeric and jsonb values are converted the way the server's
// output functions do (int8out, uuid_out, numeric_out). Returns false when the
// binary value does not have the layout of its type (wrong length, bad digits) or the
// family has no conversion; `out` is then unspecified.
bool canonical_text(ColumnType type, ValueFormat format, std::string_view value, std::string& out);

// Big-endian unsigned integer of the first (at most 8) bytes of `value`.
uint64_t read_be(std::string_view value);
// `v` in decimal, appended to `out`.
void append_decimal(uint64_t v, std::string& out);

// True when a binary value has exactly the layout of its type (e.g. 4 bytes for int4,
// 8 + 2 * ndigits bytes for numeric). A value that fails this is treated as a type we
// do not know. Families without a checkable layout (strings, unknown) return true.
bool binary_layout_ok(ColumnType type, std::string_view value);

}  // namespace sluice::mask
