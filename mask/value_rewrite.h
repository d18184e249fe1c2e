// Rewrites one DataRow value so nothing sensitive leaves while the client's driver still
// decodes it as the column's type, in text (format 0) and binary (format 1).
//
// Whole-value rules, mask_value() (the table is repeated in docs/masking.md):
//   null     -> SQL NULL, for every type.
//   redact   -> the type's neutral value:
//               string (text, varchar, bpchar, name, xml, citext)  "[masked:<kind>]"
//               "char"              "*"
//               json / jsonb        the JSON string "[masked:<kind>]" (jsonb binary: 0x01 + text)
//               bytea               the bytes "[masked:<kind>]" (text: \x + hex)
//               int2/int4/int8/oid  0            float4/float8  0         numeric  0
//               bool                false        uuid  00000000-0000-0000-0000-000000000000
//               date                1970-01-01   timestamp  1970-01-01 00:00:00
//               timestamptz         1970-01-01 00:00:00+00
//               time 00:00:00       timetz 00:00:00+00     interval  zero
//               inet 0.0.0.0        cidr 0.0.0.0/0         macaddr(8)  all zero
//               bit/varbit          the same number of bits, all 0
//               money, and every type not listed (arrays, enums, ranges, composites,
//               extension types)    SQL NULL: the only value every type accepts.
//   partial  -> string types only: every character but the last `keep_last` letters or
//               digits becomes '*', separators (space - . @ _ / ( ) + : ,) stay; a value
//               with at most 2 * keep_last letters/digits is starred entirely. Works on
//               UTF-8 code points; an invalid byte counts as one non-letter character.
//               Other types: as redact.
//   token    -> HMAC-SHA256(key, kind || 0x00 || canonical text of the value):
//               string types  "tok_" + 16 lowercase base32 characters (80 bits of the MAC)
//               json / jsonb  the JSON string of that token
//               integers      a non-negative integer within the column's width
//                             (int2 0..32767, int4/oid 0..2^31-1, int8 0..2^63-1)
//               numeric       the int8 token, as a numeric
//               uuid          the MAC's first 16 bytes as an RFC 9562 version-8 UUID
//               other types:  as redact. Without a key (nullptr): as redact.
//             The canonical text is what the server sends in text format; binary int,
//             oid, uuid, numeric and jsonb values are converted to it first, so a text
//             and a binary client get the same token for the same value.
//
// Values are hostile bytes of any length. A binary value whose length or layout does not
// match its type (a 3-byte int4) is a type we do not understand: SQL NULL, whatever the
// strategy. Text date/timestamp values that are not in DateStyle ISO, and interval
// values in an unrecognised IntervalStyle, also become NULL: we cannot write a value in a
// style we cannot see. Nothing on this path throws (except std::bad_alloc).
//
// A SQL NULL input has nothing to mask: callers pass it through as NULL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "mask/column_type.h"
#include "mask/scanner.h"
#include "mask/strategy.h"
#include "mask/token_key.h"

namespace sluice::mask {

// The new value of one column: SQL NULL or bytes. Reusable: `bytes` keeps its capacity.
struct Replacement {
  bool is_null = true;
  std::string bytes;  // meaningful only when !is_null

  void set_null() {
    is_null = true;
    bytes.clear();
  }
  std::string& set_bytes() {
    is_null = false;
    bytes.clear();
    return bytes;
  }
};

// Whole-value masking by the rules above. `kind` names what is masked ("ssn"); in
// placeholders, bytes other than [A-Za-z0-9_.-] in it are written as '_'. `value` must
// not point into `out.bytes` (it is cleared first).
void mask_value(StrategySpec spec, std::string_view kind, ColumnType type, ValueFormat format,
                std::string_view value, const TokenKey* key, Replacement& out);
Replacement mask_value(StrategySpec spec, std::string_view kind, uint32_t type_oid, ValueFormat format,
                       std::string_view value, const TokenKey* key);

// One pattern finding inside a value: bytes [begin, end) of the value exactly as it
// arrived (for jsonb binary, offset 0 is the version byte).
struct SpanFinding {
  size_t begin = 0;
  size_t end = 0;
  std::string_view kind;
  StrategySpec spec;
};

// Rewrites the findings inside a value. Rules (when in doubt, mask the whole value):
//   - Any finding with strategy null, or an empty/out-of-range span: the whole value is
//     masked by mask_value() with the most protective finding (null > redact > token >
//     partial; the first such finding's kind).
//   - String types (text and binary alike): each span is replaced by its strategy's
//     string form: "[masked:<kind>]", its partial form, or its token. Span edges that
//     fall inside a UTF-8 character are widened to the character; overlapping spans
//     merge and take the most protective strategy among them.
//   - json and jsonb: the same, but only when every span lies inside one JSON string
//     and starts and ends outside any escape sequence; the replacements contain no
//     quote, backslash or control character, so the document stays valid. Otherwise
//     (a span over a number, a key's quotes, half an escape) the whole value is masked.
//   - Every other type: the whole value is masked.
// Token of a span: HMAC over kind || 0x00 || the span's bytes, so a secret gets the same
// token in free text as in a column masked with the same kind.
void rewrite_spans(ColumnType type, ValueFormat format, std::string_view value,
                   std::span<const SpanFinding> findings, const TokenKey* key, Replacement& out);

// rewrite_spans() for the findings the scanner made in one value (ScanResult::of_column),
// each with its pattern's strategy. `value` is the value the scanner was given.
void rewrite_findings(ColumnType type, ValueFormat format, std::string_view value, std::span<const Finding> findings,
                      const PatternSet& patterns, const TokenKey* key, Replacement& out);

// The string forms, exposed for the filter and the tests.
// "[masked:<kind>]" with kind sanitised as above.
void append_placeholder(std::string_view kind, std::string& out);
// The partial form of a string (rules above); never longer than `text`.
void append_partial(std::string_view text, uint8_t keep_last, std::string& out);
// "tok_" + 16 base32 characters; false if the MAC failed (no key).
bool append_string_token(std::string_view kind, std::string_view text, const TokenKey& key, std::string& out);

// True when `text` may sit inside a JSON string as it is: no '"', '\\' or byte < 0x20.
bool is_json_string_safe(std::string_view text);

}  // namespace sluice::mask
