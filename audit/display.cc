#include "audit/display.h"

#include <cstdio>
#include <ctime>

#include "audit/record.h"

namespace sluice::audit {

namespace {

// Length a UTF-8 lead byte announces (0: not a lead byte). Whether the sequence is
// really valid (continuations, overlongs, surrogates) is left to valid_utf8().
size_t announced_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC0 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF7) return 4;
  return 0;
}

uint32_t decode(std::string_view sequence) {
  static constexpr uint8_t kLeadMask[] = {0, 0x7F, 0x1F, 0x0F, 0x07};
  uint32_t cp = static_cast<uint8_t>(sequence[0]) & kLeadMask[sequence.size()];
  for (size_t k = 1; k < sequence.size(); ++k) cp = cp << 6 | (static_cast<uint8_t>(sequence[k]) & 0x3F);
  return cp;
}

// Code points that act on a terminal or on the order in which text is displayed.
bool is_active(uint32_t cp) {
  return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) ||  // C0, DEL, C1
         (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) ||  // bidi overrides, isolates
         cp == 0x2028 || cp == 0x2029;  // line and paragraph separators
}

void append_escape(std::string& out, const char* format, uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof text, format, value);
  out += text;
}

// Reads up to `count` digits at text[pos] (exactly `count` unless `up_to`).
bool digits(std::string_view text, size_t& pos, size_t count, int& value, bool up_to = false) {
  value = 0;
  size_t read = 0;
  while (read < count && pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    value = value * 10 + (text[pos++] - '0');
    ++read;
  }
  return up_to ? read > 0 : read == count;
}

bool expect(std::string_view text, size_t& pos, char c) {
  if (pos >= text.size() || text[pos] != c) return false;
  ++pos;
  return true;
}

}  // namespace

std::string terminal_safe(std::string_view text, Newlines newlines) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t length = announced_length(static_cast<uint8_t>(text[i]));
    const std::string_view sequence = text.substr(i, length);
    if (length == 0 || sequence.size() < length || !valid_utf8(sequence)) {
      append_escape(out, "\\x%02x", static_cast<uint8_t>(text[i]));
      ++i;
      continue;
    }
    i += length;
    const uint32_t cp = decode(sequence);
    if (!is_active(cp)) {
      out += sequence;
    } else if (cp == '\n') {
      out += newlines == Newlines::keep ? "\n" : "\xE2\x90\xA4";  // U+2424 SYMBOL FOR NEWLINE
    } else if (cp == '\t') {
      out += newlines == Newlines::keep ? '\t' : ' ';
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp < 0x80) {
      append_escape(out, "\\x%02x", cp);
    } else {
      append_escape(out, "\\u{%04x}", cp);
    }
  }
  return out;
}

size_t display_width(std::string_view utf8) {
  size_t width = 0;
  for (const char c : utf8)
    if ((static_cast<uint8_t>(c) & 0xC0) != 0x80) ++width;  // count all but continuation bytes
  return width;
}

std::string fit_width(std::string_view utf8, size_t width) {
  if (display_width(utf8) <= width) return std::string(utf8);
  if (width == 0) return {};
  // Keep width - 1 code points, then the ellipsis.
  size_t kept = 0, end = 0;
  for (; end < utf8.size(); ++end) {
    if ((static_cast<uint8_t>(utf8[end]) & 0xC0) == 0x80) continue;
    if (kept == width - 1) break;
    ++kept;
  }
  return std::string(utf8.substr(0, end)) + "\xE2\x80\xA6";  // U+2026 HORIZONTAL ELLIPSIS
}

std::string pad(std::string_view utf8, size_t width) {
  std::string out(utf8);
  const size_t used = display_width(utf8);
  if (used < width) out.append(width - used, ' ');
  return out;
}

std::string display_time(std::string_view ts) {
  // Exactly the shape the writer produces; anything else is shown as it is.
  if (ts.size() != 27 || ts[10] != 'T' || ts[19] != '.' || ts[26] != 'Z') return std::string(ts);
  std::string out(ts.substr(0, 23));
  out[10] = ' ';
  return out;
}

std::string display_duration(uint64_t micros) {
  char text[32];
  if (micros < 1'000)
    std::snprintf(text, sizeof text, "%llu us", static_cast<unsigned long long>(micros));
  else if (micros < 1'000'000)
    std::snprintf(text, sizeof text, "%.1f ms", static_cast<double>(micros) / 1e3);
  else
    std::snprintf(text, sizeof text, "%.2f s", static_cast<double>(micros) / 1e6);
  return text;
}

std::optional<int64_t> parse_time(std::string_view text) {
  size_t pos = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, micros = 0;
  if (!digits(text, pos, 4, year) || !expect(text, pos, '-') || !digits(text, pos, 2, month) ||
      !expect(text, pos, '-') || !digits(text, pos, 2, day))
    return std::nullopt;
  if (pos < text.size() && (text[pos] == 'T' || text[pos] == ' ')) {
    ++pos;
    if (!digits(text, pos, 2, hour) || !expect(text, pos, ':') || !digits(text, pos, 2, minute)) return std::nullopt;
    if (expect(text, pos, ':') && !digits(text, pos, 2, second)) return std::nullopt;
    if (expect(text, pos, '.')) {
      const size_t start = pos;
      if (!digits(text, pos, 6, micros, true)) return std::nullopt;
      for (size_t k = pos - start; k < 6; ++k) micros *= 10;  // ".5" is 500000 us
    }
  }
  expect(text, pos, 'Z');
  if (pos != text.size() || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 ||
      second > 59)
    return std::nullopt;
  tm utc{};
  utc.tm_year = year - 1900;
  utc.tm_mon = month - 1;
  utc.tm_mday = day;
  utc.tm_hour = hour;
  utc.tm_min = minute;
  utc.tm_sec = second;
  const time_t seconds = timegm(&utc);
  if (utc.tm_mday != day) return std::nullopt;  // timegm normalised a day like 02-31
  return int64_t{seconds} * 1'000'000 + micros;
}

std::string join_texts(core::JsonDocument::Node array, std::string_view separator) {
  std::string out;
  for (auto item = array.first(); item; item = item.next()) {
    if (!out.empty()) out += separator;
    out += item.text();
  }
  return out;
}

}  // namespace sluice::audit
