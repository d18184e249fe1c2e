// The pattern pack: what sensitive text looks like. Each pattern is a Hyperscan regular
// expression for the shape plus a validator that confirms a match (checksum, range,
// randomness, boundaries) and settles the exact span to mask. Built-in patterns are
// written from the formats' public descriptions; operators add their own in the same
// struct (docs/masking.md, "Pattern kinds").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mask/strategy.h"
#include "mask/validators.h"

namespace sluice::mask {

// Tier 1 runs on every text value of every row: secrets, each anchored on a literal
// (a prefix such as "ghp_" or a keyword such as "password="), so it is cheap on clean
// text. Tier 2 runs only where a column is free text: PII shapes (cards, SSNs, IBANs,
// e-mail, phones, addresses) and bare high-entropy strings, which are costlier to
// find and more ambiguous out of context.
enum class Tier : uint8_t { secret = 1, pii = 2 };

// The tiers one scan runs.
enum class TierSet : uint8_t { secrets = 1, pii = 2, all = 3 };

// Confirms one raw match inside one value and settles its span: it may trim the span
// (to the password of a URL), extend it (a token's body, a PEM block up to its END
// line), or refuse the match. On entry `span` is what Hyperscan matched, except for
// patterns with `match_start == false`, where begin == end == the match's end. The
// span it leaves must satisfy begin < end <= value.size().
using Validator = bool (*)(std::string_view value, Span& span);

struct PatternSpec {
  std::string kind;         // snake_case, unique in a set: "github_token", "us_ssn"
  std::string description;  // one line, for operators: what it matches
  std::string example;      // a synthetic value it must find (tests and docs use it)
  std::string regex;        // Hyperscan syntax; see docs/masking.md for the rules
  Tier tier = Tier::secret;
  Validator validator = nullptr;  // nullptr: every match is a finding, as matched
  std::string validator_name;     // what confirms a match, in words ("CRC32 checksum")
  StrategySpec strategy;          // the default when no column rule says otherwise
  // False when the validator finds what to mask from the match's end alone (the value
  // after "password=" or before "@"): Hyperscan then need not track where matches
  // start, which is cheaper. Patterns of fixed width never need it.
  bool match_start = true;
};

// The built-in pack, in priority order: when two findings cover the same bytes and
// are equally long, the earlier pattern names the finding (specific before generic).
const std::vector<PatternSpec>& builtin_patterns();

// Validators an operator can name for a user-defined pattern ("luhn", "entropy", ...);
// nullptr for an unknown name. "none" is valid and returns nullptr with `found` true.
Validator find_validator(std::string_view name, bool* found = nullptr);
// The names find_validator accepts, for error messages.
std::string validator_names();

}  // namespace sluice::mask
