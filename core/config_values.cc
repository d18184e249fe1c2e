#include "core/config_values.h"

#include <algorithm>
#include <vector>

namespace sluice::core {

std::string quote(std::string_view text, size_t max_bytes) { return "'" + toml::printable(text, max_bytes) + "'"; }

std::string quote_key(std::string_view key) {
  std::string shown = toml::format_key(key);
  return shown.front() == '"' ? shown : "'" + shown + "'";
}

bool has_control_character(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

size_t edit_distance(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) && lower(a[i - 2]) == lower(b[j - 1]))
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

std::optional<std::string_view> closest(std::string_view word, std::span<const std::string_view> known) {
  if (word.size() > 64) return std::nullopt;  // not a typo of anything known; keeps the work bounded
  std::optional<std::string_view> best;
  size_t best_distance = 0;
  for (std::string_view candidate : known) {
    size_t distance = edit_distance(word, candidate);
    size_t allowed = std::max(word.size(), candidate.size()) <= 4 ? 1 : 2;
    if (distance <= allowed && (!best || distance < best_distance)) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

// Known words may be names from the document (targets, groups): quoted printable.
std::string did_you_mean(std::string_view word, std::span<const std::string_view> known) {
  auto match = closest(word, known);
  return match ? " (did you mean " + quote(*match) + "?)" : "";
}

bool split_quantity(std::string_view text, uint64_t& number, std::string_view& unit, bool& too_large) {
  size_t i = 0;
  number = 0;
  too_large = false;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (number > (uint64_t{1} << 53)) too_large = true;  // far above every bound; stop growing
    if (!too_large) number = number * 10 + static_cast<uint64_t>(text[i] - '0');
    ++i;
  }
  if (i == 0) return false;
  if (i < text.size() && text[i] == ' ') ++i;
  unit = text.substr(i);
  return true;
}

std::string format_size(int64_t bytes) {
  if (bytes != 0 && bytes % kGiB == 0) return std::to_string(bytes / kGiB) + "GiB";
  if (bytes != 0 && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + "MiB";
  if (bytes != 0 && bytes % kKiB == 0) return std::to_string(bytes / kKiB) + "KiB";
  return std::to_string(bytes) + "B";
}

std::optional<int64_t> parse_size(std::string_view text, std::string& problem) {
  uint64_t number;
  std::string_view unit;
  bool too_large;
  if (!split_quantity(text, number, unit, too_large)) {
    problem = "a size is an integer (bytes) or a string like \"64KiB\" (units: B, KiB, MiB, GiB)";
    return std::nullopt;
  }
  static constexpr UnitFactor kSizeUnits[] = {{"B", 1}, {"KiB", kKiB}, {"MiB", kMiB}, {"GiB", kGiB}};
  const int64_t factor = unit_factor(kSizeUnits, unit);
  if (factor == 0) {
    std::string lower;
    for (char c : unit) lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    if (unit.empty()) {
      problem = "missing unit: write e.g. \"64KiB\" (units: B, KiB, MiB, GiB), or an integer for bytes";
    } else if (unit[0] == '.' || unit[0] == ',') {
      problem = "sizes take whole numbers: use a smaller unit";
    } else if (lower == "k" || lower == "kb" || lower == "m" || lower == "mb" || lower == "g" || lower == "gb") {
      problem = "unit " + quote(unit) + " is ambiguous: sizes use binary units, write " + std::to_string(number) +
                std::string(1, static_cast<char>(lower[0] - 'a' + 'A')) + "iB";
    } else if (lower == "kib" || lower == "mib" || lower == "gib" || lower == "b") {
      problem = "units are case-sensitive: write " +
                quote(std::string(1, static_cast<char>(lower[0] - 'a' + 'A')) + (lower.size() == 3 ? "iB" : ""));
    } else {
      problem = "unknown unit " + quote(unit) + ": use B, KiB, MiB or GiB";
    }
    return std::nullopt;
  }
  if (too_large || number > static_cast<uint64_t>(INT64_MAX / factor)) {
    problem = "the size is far too large";
    return std::nullopt;
  }
  return static_cast<int64_t>(number) * factor;
}

std::string ValueChecker::where(std::string_view key, std::string_view label) {
  return "'" + std::string(key) + "' in " + std::string(label);
}

void ValueChecker::check_keys(const toml::Value& table, const std::string& label, const std::string& path,
                              std::span<const std::string_view> known) {
  for (const auto& [key, value] : table.entries) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string hint = did_you_mean(key, known);
    if (value.type == toml::Type::table || is_header_array(value)) {
      bool array = value.type == toml::Type::array;
      error(value.line, std::string("unknown table ") + (array ? "[[" : "[") + path + "." + toml::format_key(key) +
                            (array ? "]]" : "]") + hint);
    } else {
      error(value.line, "unknown key " + quote_key(key) + " in " + label + hint);
    }
  }
}

std::optional<std::vector<const toml::Value*>> ValueChecker::strings(const toml::Value& table, std::string_view key,
                                                                     const std::string& label) {
  std::vector<const toml::Value*> out;
  const toml::Value* value = table.find(key);
  if (value == nullptr) return out;
  bool ok = value->type == toml::Type::array &&
            std::all_of(value->array.begin(), value->array.end(),
                        [](const toml::Value& v) { return v.type == toml::Type::string; });
  if (!ok) {
    error(value->line, where(key, label) + " must be an array of strings, e.g. " + std::string(key) +
                           " = [\"...\"], not " +
                           (value->type == toml::Type::array ? std::string("an array holding other values")
                                                             : std::string(toml::type_name(value->type))));
    return std::nullopt;
  }
  for (const auto& element : value->array) out.push_back(&element);
  return out;
}

const toml::Value* ValueChecker::get(const toml::Value& table, std::string_view key, toml::Type type,
                                     std::string_view label) {
  const toml::Value* value = table.find(key);
  if (value == nullptr) return nullptr;
  if (value->type != type) {
    error(value->line,
          where(key, label) + " must be " + toml::type_name(type) + ", not " + toml::type_name(value->type));
    return nullptr;
  }
  return value;
}

const toml::Value* ValueChecker::require(const toml::Value& table, std::string_view key, toml::Type type,
                                         std::string_view label) {
  if (table.find(key) == nullptr) {
    error(table.line, "missing required key " + where(key, label));
    return nullptr;
  }
  return get(table, key, type, label);
}

bool ValueChecker::integer_value(const toml::Value& table, std::string_view key, int64_t low, int64_t high,
                                 std::string_view label, std::optional<int64_t>& out) {
  bool present = table.find(key) != nullptr;
  const toml::Value* value = get(table, key, toml::Type::integer, label);
  if (value == nullptr) return !present;
  if (value->integer < low || value->integer > high) {
    error(value->line, where(key, label) + " must be between " + std::to_string(low) + " and " +
                           std::to_string(high) + ", not " + std::to_string(value->integer));
    return false;
  }
  out = value->integer;
  return true;
}

bool ValueChecker::size_value(const toml::Value& table, std::string_view key, int64_t low, int64_t high,
                              std::string_view label, std::optional<int64_t>& out) {
  const toml::Value* value = table.find(key);
  if (value == nullptr) return true;
  int64_t bytes;
  std::string shown;
  if (value->type == toml::Type::integer) {
    bytes = value->integer;
    shown = std::to_string(bytes);
  } else if (value->type == toml::Type::string) {
    std::string problem;
    auto parsed = parse_size(value->string, problem);
    if (!parsed) {
      error(value->line, where(key, label) + ": invalid size " + quote(value->string) + ": " + problem);
      return false;
    }
    bytes = *parsed;
    shown = toml::printable(value->string);
  } else {
    error(value->line, where(key, label) + " must be a size: an integer (bytes) or a string like \"64KiB\", not " +
                           toml::type_name(value->type));
    return false;
  }
  if (bytes < low || bytes > high) {
    error(value->line, where(key, label) + " must be between " + format_size(low) + " and " + format_size(high) +
                           ", not " + shown);
    return false;
  }
  out = bytes;
  return true;
}

}  // namespace sluice::core
