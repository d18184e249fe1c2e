// Helpers for checking configuration values, shared by every configuration loader
// (tools/config for [gateway], [[target]] and [[user]]; policy/config for [policy] and
// [groups.NAME]) so that sizes, quoting and typo suggestions read the same in every
// section.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/toml.h"

namespace sluice::core {

inline constexpr int64_t kKiB = 1024;
inline constexpr int64_t kMiB = 1024 * kKiB;
inline constexpr int64_t kGiB = 1024 * kMiB;

// 'text', made printable and cut to a readable length. Never use it on a secret.
std::string quote(std::string_view text, size_t max_bytes = 64);

// A key as written in a header, in single quotes unless format_key double-quoted it.
std::string quote_key(std::string_view key);

// True if `text` holds a byte below 0x20 or DEL.
bool has_control_character(std::string_view text);

// Optimal string alignment distance (Levenshtein plus transpositions), ASCII case folded.
size_t edit_distance(std::string_view a, std::string_view b);

// The known word closest to `word`, if it is close enough to be a likely typo.
std::optional<std::string_view> closest(std::string_view word, std::span<const std::string_view> known);

// " (did you mean 'word'?)" for the closest known word, or "".
std::string did_you_mean(std::string_view word, std::span<const std::string_view> known);

// "<digits>[ ]<unit>": splits the text; false if it does not start with a digit.
// `too_large` is set when the number is far above every bound (it stops growing).
bool split_quantity(std::string_view text, uint64_t& number, std::string_view& unit, bool& too_large);

// A unit suffix and what one of it is worth (in ms for durations, bytes for sizes).
struct UnitFactor {
  std::string_view unit;
  int64_t factor;
};

// The factor of `unit` in `table` (case-sensitive), or 0 if it is not there.
template <size_t N>
int64_t unit_factor(const UnitFactor (&table)[N], std::string_view unit) {
  for (const UnitFactor& u : table)
    if (u.unit == unit) return u.factor;
  return 0;
}

// 65536 -> "64KiB"; sizes that are not a whole number of a unit print in bytes.
std::string format_size(int64_t bytes);

// Parses "64MiB", "16 KiB", "512B". On failure, `problem` says why.
std::optional<int64_t> parse_size(std::string_view text, std::string& problem);

// True for an array of tables written as [[name]] sections.
inline bool is_header_array(const toml::Value& value) {
  return value.type == toml::Type::array && value.defined_by_header;
}

// The typed access a configuration loader needs. A loader derives from it and
// implements error(); each accessor reports a problem there, naming the key as
// "'key' in LABEL" (LABEL: "[gateway]", "[[groups.agents.rule]]", ...).
class ValueChecker {
 public:
  virtual ~ValueChecker() = default;

 protected:
  virtual void error(int line, std::string message) = 0;

  static std::string where(std::string_view key, std::string_view label);

  // The value of `key` when present with the expected type; reports any other type.
  const toml::Value* get(const toml::Value& table, std::string_view key, toml::Type type, std::string_view label);
  // get(), and reports the key when it is missing.
  const toml::Value* require(const toml::Value& table, std::string_view key, toml::Type type, std::string_view label);

  // Reports every key of `table` that `known` does not list. `path` is the table's
  // header path ("groups.agents"), for naming unknown subtables.
  void check_keys(const toml::Value& table, const std::string& label, const std::string& path,
                  std::span<const std::string_view> known);

  // The elements of an array of strings; empty when absent, nullopt when reported.
  std::optional<std::vector<const toml::Value*>> strings(const toml::Value& table, std::string_view key,
                                                         const std::string& label);

  // Integer in [low, high]; `out` is kept when absent or wrong. False when reported.
  template <typename T>
  bool integer(const toml::Value& table, std::string_view key, int64_t low, int64_t high, std::string_view label,
               T& out) {
    std::optional<int64_t> value;
    if (!integer_value(table, key, low, high, label, value)) return false;
    if (value) out = static_cast<T>(*value);
    return true;
  }

  // Size in [low, high] bytes: an integer or a string with a binary unit. `out` is
  // kept when absent or wrong. False when reported.
  template <typename T>
  bool size(const toml::Value& table, std::string_view key, int64_t low, int64_t high, std::string_view label,
            T& out) {
    std::optional<int64_t> value;
    if (!size_value(table, key, low, high, label, value)) return false;
    if (value) out = static_cast<T>(*value);
    return true;
  }

 private:
  bool size_value(const toml::Value& table, std::string_view key, int64_t low, int64_t high, std::string_view label,
                  std::optional<int64_t>& out);
  bool integer_value(const toml::Value& table, std::string_view key, int64_t low, int64_t high,
                     std::string_view label, std::optional<int64_t>& out);
};

}  // namespace sluice::core
