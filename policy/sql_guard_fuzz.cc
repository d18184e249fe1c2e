// libFuzzer target for policy/sql_guard.cc: any bytes, under limits picked by the
// input, must give a verdict that agrees with an independent UTF-8 decoder, with the
// figures of an unlimited scan and with the limits, and describe() must render it.
// Input: 3 bytes choosing the limits, then the SQL text.
//   clang++-14 -std=c++20 -fsanitize=fuzzer,address,undefined -I. policy/sql_guard_fuzz.cc \
//     policy/sql_guard.cc -o /tmp/sql_guard_fuzz && /tmp/sql_guard_fuzz tests/fuzz/sql_guard
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>

#include "policy/sql_guard.h"

namespace {

using sluice::policy::GuardResult;
using sluice::policy::GuardVerdict;
using sluice::policy::SqlLimits;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

// Offset of the first character that is not well-formed UTF-8 (or is NUL), or size:
// decodes code points and checks their range, unlike the guard's byte-range tables.
size_t first_invalid_utf8(const uint8_t* s, size_t size) {
  size_t i = 0;
  while (i < size) {
    const uint8_t c = s[i];
    size_t len;
    uint32_t cp;
    if (c == 0) return i;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xe0) == 0xc0) len = 2, cp = c & 0x1f;
    else if ((c & 0xf0) == 0xe0) len = 3, cp = c & 0x0f;
    else if ((c & 0xf8) == 0xf0) len = 4, cp = c & 0x07;
    else return i;
    if (size - i < len) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    const uint32_t min_for_len = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    if (cp < min_for_len || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += len;
  }
  return size;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  SqlLimits limits;
  limits.max_nesting = data[0] % 16;
  limits.max_operators = data[1] % 32;
  limits.max_statement_bytes = data[2] < 224 ? std::numeric_limits<uint32_t>::max() : data[2] - 224u;
  data += 3;
  size -= 3;
  const std::string_view sql(reinterpret_cast<const char*>(data), size);

  // Unlimited: only the encoding can fail, exactly where the reference decoder says.
  SqlLimits unlimited;
  unlimited.max_statement_bytes = unlimited.max_nesting = unlimited.max_operators = std::numeric_limits<uint32_t>::max();
  const GuardVerdict full = sluice::policy::guard_sql(sql, unlimited);
  const size_t bad = first_invalid_utf8(data, size);
  if (bad == size) {
    check(full.result == GuardResult::ok && full.offset == 0);
  } else {
    check(full.result == GuardResult::invalid_utf8 && full.offset == bad);
  }
  check(full.max_depth_seen <= size && full.operators_seen <= size);

  // Limited: the first limit crossed, consistent with the unlimited figures.
  const GuardVerdict v = sluice::policy::guard_sql(sql, limits);
  check(v.max_depth_seen <= full.max_depth_seen && v.operators_seen <= full.operators_seen);
  switch (v.result) {
    case GuardResult::ok:
      check(full.result == GuardResult::ok && v.offset == 0);
      check(v.max_depth_seen == full.max_depth_seen && v.operators_seen == full.operators_seen);
      check(v.max_depth_seen <= limits.max_nesting && v.operators_seen <= limits.max_operators);
      break;
    case GuardResult::too_long:
      check(size > limits.max_statement_bytes);
      break;
    case GuardResult::invalid_utf8:
      check(v.offset == bad && v.offset < size);
      check(v.max_depth_seen <= limits.max_nesting && v.operators_seen <= limits.max_operators);
      break;
    case GuardResult::too_deeply_nested:
      check(v.max_depth_seen == limits.max_nesting + 1u && v.offset < bad);
      check(sql[v.offset] == '(' || sql[v.offset] == '[');
      break;
    case GuardResult::too_many_operators:
      check(v.operators_seen == limits.max_operators + 1u && v.offset < bad);
      break;
  }
  if (v.result != GuardResult::too_long) {
    check(size <= limits.max_statement_bytes);
    // A limit is crossed exactly when the full scan's figures exceed it before any bad byte.
    const bool over = full.max_depth_seen > limits.max_nesting || full.operators_seen > limits.max_operators;
    if (full.result == GuardResult::ok) check(over == (v.result != GuardResult::ok));
  }

  const sluice::policy::GuardError error = sluice::policy::describe(v, sql, limits);
  check((v.result == GuardResult::ok) == error.message.empty());
  check(v.result == GuardResult::ok || std::string_view(error.sqlstate).size() == 5);
  return 0;
}
