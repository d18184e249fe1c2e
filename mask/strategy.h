// The vocabulary masking is described in: what a value is replaced with
// (Strategy) and why (the kind of sensitive data that was found, "ssn",
// "github_token"). Column rules, pattern rules and the value rewriter all speak it.
#pragma once

#include <cstdint>
#include <string_view>

namespace sluice::mask {

enum class Strategy : uint8_t {
  redact,   // a placeholder: "[masked:ssn]" (or the column type's neutral value)
  partial,  // keep the last `keep_last` characters, the rest become '*'
  token,    // deterministic keyed token: HMAC-SHA256(key, value), equal in -> equal out
  null,     // SQL NULL
};

// How one finding or column is masked. `keep_last` matters only for partial.
struct StrategySpec {
  Strategy strategy = Strategy::redact;
  uint8_t keep_last = 4;
};

const char* strategy_name(Strategy strategy);  // "redact", "partial", "token", "null"

// Parses a strategy name as written in the config; false when unknown.
bool parse_strategy(std::string_view text, Strategy& out);

}  // namespace sluice::mask
