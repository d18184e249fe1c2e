// libFuzzer target for mask/value_rewrite: any bytes as a value of any modelled type, in
// either format, under every strategy, whole or with findings. Nothing may read out of
// bounds, and a replacement must keep the promises of value_rewrite.h: fixed binary
// layouts have their exact length, JSON stays JSON, partial output is valid UTF-8 and
// never longer. Run by tools/fuzz.sh (target "value_rewrite").
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "mask/value_rewrite.h"

namespace {

using namespace sluice::mask;

constexpr uint32_t kOids[] = {16,  17,  18,  19,  20,   21,   23,   25,   26,   114,  142,  650,  700,
                              701, 774, 790, 829, 869,  1042, 1043, 1082, 1083, 1114, 1184, 1186, 1266,
                              1560, 1562, 1700, 2950, 3802, 1009, 0};

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const uint8_t c = static_cast<uint8_t>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<uint8_t>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

bool is_json(std::string_view text) {
  static sluice::core::JsonDocument document(64);
  return document.load_json(text);
}

// The exact binary length of fixed-size families (0: variable).
size_t fixed_length(ColumnType type) {
  switch (type.family) {
    case TypeFamily::integer:
    case TypeFamily::floating:
    case TypeFamily::macaddr: return type.width;
    case TypeFamily::single_char:
    case TypeFamily::boolean: return 1;
    case TypeFamily::uuid:
    case TypeFamily::interval: return 16;
    case TypeFamily::date: return 4;
    case TypeFamily::time:
    case TypeFamily::timestamp:
    case TypeFamily::timestamptz: return 8;
    case TypeFamily::timetz: return 12;
    default: return 0;
  }
}

void check_replacement(ColumnType type, ValueFormat format, const Replacement& r) {
  if (r.is_null) return;
  if (type.family == TypeFamily::unknown || type.family == TypeFamily::money) std::abort();  // only NULL
  if (format == ValueFormat::binary) {
    const size_t length = fixed_length(type);
    if (length != 0 && r.bytes.size() != length) std::abort();
    if (!binary_layout_ok(type, r.bytes)) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  static const TokenKey key = std::move(*TokenKey::from_bytes(std::string(32, 'f')));
  const ColumnType type = classify_type(kOids[data[0] % (sizeof kOids / sizeof kOids[0])]);
  const ValueFormat format = data[1] & 1 ? ValueFormat::binary : ValueFormat::text;
  const StrategySpec spec{static_cast<Strategy>((data[1] >> 1) % 4), static_cast<uint8_t>(data[2] % 8)};
  const size_t span_count = data[3] % 4;
  std::string_view rest(reinterpret_cast<const char*>(data) + 4, size - 4);
  // Span bounds come first (2 bytes each: begin, length), then the value.
  std::vector<uint8_t> bounds;
  for (size_t i = 0; i < 2 * span_count && !rest.empty(); ++i) {
    bounds.push_back(static_cast<uint8_t>(rest[0]));
    rest.remove_prefix(1);
  }
  const std::string_view value = rest;

  Replacement out;
  mask_value(spec, "fuzz", type, format, value, &key, out);
  check_replacement(type, format, out);
  if (!out.is_null && type.family == TypeFamily::string_like && spec.strategy == Strategy::partial) {
    if (!valid_utf8(out.bytes) || out.bytes.size() > value.size()) std::abort();
  }
  if (!out.is_null && (type.family == TypeFamily::json || type.family == TypeFamily::jsonb)) {
    std::string_view text = out.bytes;
    if (type.family == TypeFamily::jsonb && format == ValueFormat::binary) text.remove_prefix(1);
    if (!is_json(text)) std::abort();  // whole-value JSON replacements are JSON strings
  }

  std::vector<SpanFinding> findings;
  for (size_t i = 0; i + 1 < bounds.size(); i += 2) {
    const size_t begin = bounds[i];
    findings.push_back(SpanFinding{begin, begin + 1 + bounds[i + 1] % 16, "fuzz", spec});
  }
  if (findings.empty()) return 0;
  rewrite_spans(type, format, value, findings, &key, out);
  if (type.family != TypeFamily::string_like && type.family != TypeFamily::json && type.family != TypeFamily::jsonb) {
    check_replacement(type, format, out);
  }
  // A JSON document stays a JSON document.
  if (type.family == TypeFamily::json || type.family == TypeFamily::jsonb) {
    std::string_view original = value;
    bool versioned = type.family == TypeFamily::jsonb && format == ValueFormat::binary;
    if (versioned) {
      if (original.empty() || original[0] != '\x01') return 0;
      original.remove_prefix(1);
    }
    if (!is_json(original)) return 0;
    if (out.is_null) {
      if (spec.strategy != Strategy::null) std::abort();  // only a null finding empties a valid document
      return 0;
    }
    std::string_view text = out.bytes;
    if (versioned) {
      if (text.empty() || text[0] != '\x01') std::abort();
      text.remove_prefix(1);
    }
    if (!is_json(text)) std::abort();
  }
  return 0;
}
