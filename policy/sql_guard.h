// The cheap checks every SQL text passes before libpg_query sees it. libpg_query's
// stack-depth guard is compiled out: `SELECT 1+1+...` with 64,000 terms overflows an
// 8 MiB stack in its tree walkers, and 20,000 nested parentheses exhaust the parser.
// So sluice bounds the text's length, its nesting depth and its number of operator
// tokens with a single linear scan that understands just enough of PostgreSQL's
// lexical rules (comments, quoted strings and identifiers, dollar quotes) not to count
// what is inside them, and it refuses text that is not valid UTF-8 (libpg_query and
// the server must see the same characters).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "policy/policy.h"

namespace sluice::policy {

enum class GuardResult : uint8_t {
  ok,
  too_long,           // longer than limits.max_statement_bytes
  invalid_utf8,       // not valid UTF-8 (or contains a NUL byte)
  too_deeply_nested,  // nesting deeper than limits.max_nesting
  too_many_operators, // more operator tokens than limits.max_operators
};

struct GuardVerdict {
  GuardResult result = GuardResult::ok;
  // For invalid_utf8: byte offset of the first bad byte. For nesting/operators: byte
  // offset where the limit was crossed. 0 otherwise.
  size_t offset = 0;
  // The measured figures (for messages and tests); the scan stops at the first
  // limit crossed, so they are lower bounds when result != ok.
  uint32_t max_depth_seen = 0;
  uint32_t operators_seen = 0;
};

// Scans `sql` once. Never reads past sql.size(); never allocates.
GuardVerdict guard_sql(std::string_view sql, const SqlLimits& limits);

// The SQLSTATE and message PostgreSQL-style for a failed verdict:
// too_long -> 54000 "statement of N bytes exceeds sluice's limit of M bytes";
// invalid_utf8 -> 22021 "invalid byte sequence for encoding \"UTF8\": 0xNN";
// too_deeply_nested / too_many_operators -> 54001 "statement is too complex ..."
// (with the limit's name so an operator knows what to raise).
struct GuardError {
  const char* sqlstate = "";
  std::string message;
  std::string hint;
};
GuardError describe(const GuardVerdict& verdict, std::string_view sql, const SqlLimits& limits);

}  // namespace sluice::policy
