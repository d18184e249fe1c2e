// Text helpers for showing audit records to a person (sluicectl audit tail/search,
// replay). Record contents come from clients, so anything shown on a terminal is
// first made inert: control characters, C1 controls and bidirectional overrides are
// escaped, so a recorded statement cannot move the cursor, recolour the screen or
// reorder what the auditor reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/json.h"

namespace sluice::audit {

enum class Newlines {
  keep,    // multi-line output (replay): newlines and tabs stay
  symbol,  // one-line output (tables): newline becomes "␤", tab a space
};

// `text` with every byte that could act on a terminal escaped (\xNN, \u{NNNN}).
std::string terminal_safe(std::string_view text, Newlines newlines);

// Number of code points (a column count that is exact for the text sluice records
// most: ASCII and Latin scripts; East Asian wide characters count as one).
size_t display_width(std::string_view utf8);

// `utf8` cut to at most `width` columns, ending in "…" when cut.
std::string fit_width(std::string_view utf8, size_t width);

// `utf8` padded with spaces to `width` columns (never cut).
std::string pad(std::string_view utf8, size_t width);

// "2026-12-06T08:01:53.123456Z" -> "2026-12-06 08:01:53.123"; other text unchanged.
std::string display_time(std::string_view ts);

// 30 us -> "30 us"; 12345 us -> "12.3 ms"; 2500000 us -> "2.50 s".
std::string display_duration(uint64_t micros);

// A UTC time given on the command line or found in a record, as Unix microseconds:
// "2026-12-06", "2026-12-06T08:01", "2026-12-06 08:01:53", "2026-12-06T08:01:53.123456Z".
std::optional<int64_t> parse_time(std::string_view text);

// The texts of a JSON array's elements, joined by `separator`.
std::string join_texts(core::JsonDocument::Node array, std::string_view separator);

}  // namespace sluice::audit
