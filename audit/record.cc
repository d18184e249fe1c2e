#include "audit/record.h"

#include <charconv>
#include <ctime>

namespace sluice::audit {

namespace {

constexpr char kHex[] = "0123456789abcdef";

// Length of the valid UTF-8 sequence starting at text[i], or 0 if none does
// (overlong forms, surrogates and code points above U+10FFFF are invalid).
size_t utf8_sequence_length(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  const uint8_t lead = byte(i);
  if (lead < 0x80) return 1;
  size_t length;
  uint8_t low = 0x80, high = 0xBF;  // allowed range of the first continuation byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (text.size() - i < length) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (size_t k = 2; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  return length;
}

}  // namespace

bool valid_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t length = utf8_sequence_length(text, i);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

void JsonWriter::separate() {
  if (need_comma_) out_ += ',';
  need_comma_ = true;
}

JsonWriter& JsonWriter::key(std::string_view key) {
  separate();
  out_ += '"';
  out_ += key;
  out_ += "\":";
  need_comma_ = false;  // the value follows without a comma
  return *this;
}

namespace {
// A byte JSON text can carry as it is: printable ASCII but for the quote and backslash.
bool plain_json_byte(uint8_t u) { return u >= 0x20 && u < 0x7F && u != '"' && u != '\\'; }
}  // namespace

JsonWriter& JsonWriter::string(std::string_view value) {
  separate();
  out_ += '"';
  for (size_t i = 0; i < value.size();) {
    // Copy a run of plain bytes at once: most SQL is nothing else.
    size_t run = i;
    while (run < value.size() && plain_json_byte(static_cast<uint8_t>(value[run]))) ++run;
    if (run > i) {
      out_.append(value.data() + i, run - i);
      i = run;
      continue;
    }
    const char c = value[i];
    const auto u = static_cast<uint8_t>(c);
    if (u >= 0x80) {
      const size_t length = utf8_sequence_length(value, i);
      if (length == 0) {
        out_ += "\xEF\xBF\xBD";  // U+FFFD
        ++i;
      } else {
        out_.append(value.substr(i, length));
        i += length;
      }
      continue;
    }
    switch (c) {
      case '"': out_ += "\\\""; break;
      case '\\': out_ += "\\\\"; break;
      case '\n': out_ += "\\n"; break;
      case '\r': out_ += "\\r"; break;
      case '\t': out_ += "\\t"; break;
      default:  // other control characters and DEL
        out_ += "\\u00";
        out_ += kHex[u >> 4];
        out_ += kHex[u & 0xF];
    }
    ++i;
  }
  out_ += '"';
  return *this;
}

JsonWriter& JsonWriter::strings(std::string_view key, std::span<const std::string> values) {
  this->key(key).begin_array();
  for (const auto& value : values) string(value);
  return end_array();
}

JsonWriter& JsonWriter::number(uint64_t value) {
  separate();
  char digits[20];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  (void)ec;  // 20 digits hold every uint64_t
  out_.append(digits, end);
  return *this;
}

JsonWriter& JsonWriter::boolean(bool value) {
  separate();
  out_ += value ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::null() {
  separate();
  out_ += "null";
  return *this;
}

JsonWriter& JsonWriter::base64(std::span<const uint8_t> bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  separate();
  out_ += '"';
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (uint32_t{bytes[i]} << 16) | (uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
    out_ += kAlphabet[v >> 18];
    out_ += kAlphabet[(v >> 12) & 63];
    out_ += kAlphabet[(v >> 6) & 63];
    out_ += kAlphabet[v & 63];
  }
  if (const size_t rest = bytes.size() - i; rest > 0) {
    const uint32_t v = (uint32_t{bytes[i]} << 16) | (rest == 2 ? uint32_t{bytes[i + 1]} << 8 : 0);
    out_ += kAlphabet[v >> 18];
    out_ += kAlphabet[(v >> 12) & 63];
    out_ += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out_ += '=';
  }
  out_ += '"';
  return *this;
}

JsonWriter& JsonWriter::raw(std::string_view json) {
  separate();
  out_ += json;
  return *this;
}

JsonWriter& JsonWriter::begin_object() {
  separate();
  out_ += '{';
  need_comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::end_object() {
  out_ += '}';
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::begin_array() {
  separate();
  out_ += '[';
  need_comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::end_array() {
  out_ += ']';
  need_comma_ = true;
  return *this;
}

int64_t now_unix_micros() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000 + ts.tv_nsec / 1'000;
}

namespace {

// Appends `value` as exactly `width` decimal digits (value < 10^width).
void append_digits(std::string& out, uint64_t value, int width) {
  char digits[20];
  for (int i = width - 1; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  out.append(digits, static_cast<size_t>(width));
}

}  // namespace

// Formats by arithmetic (days to a proleptic Gregorian date) rather than gmtime_r,
// strftime and snprintf: every record carries a time, and this runs on the shard.
std::string iso8601_utc(int64_t unix_micros) {
  int64_t seconds = unix_micros / 1'000'000;
  int64_t micros = unix_micros % 1'000'000;
  if (micros < 0) {
    micros += 1'000'000;
    --seconds;
  }
  int64_t days = seconds / 86'400;
  int64_t second_of_day = seconds % 86'400;
  if (second_of_day < 0) {
    second_of_day += 86'400;
    --days;
  }
  // Civil date from days since 1970-01-01, in 400-year eras starting on March 1st.
  const int64_t z = days + 719'468;
  const int64_t era = (z >= 0 ? z : z - 146'096) / 146'097;
  const int64_t day_of_era = z - era * 146'097;
  const int64_t year_of_era = (day_of_era - day_of_era / 1'460 + day_of_era / 36'524 - day_of_era / 146'096) / 365;
  const int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const int64_t month_index = (5 * day_of_year + 2) / 153;  // 0 = March
  const int64_t day = day_of_year - (153 * month_index + 2) / 5 + 1;
  const int64_t month = month_index < 10 ? month_index + 3 : month_index - 9;
  const int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);

  std::string out;
  out.reserve(27);
  if (year >= 0 && year <= 9999)
    append_digits(out, static_cast<uint64_t>(year), 4);
  else
    out += std::to_string(year);  // not a time a clock gives; still unambiguous
  out += '-';
  append_digits(out, static_cast<uint64_t>(month), 2);
  out += '-';
  append_digits(out, static_cast<uint64_t>(day), 2);
  out += 'T';
  append_digits(out, static_cast<uint64_t>(second_of_day / 3600), 2);
  out += ':';
  append_digits(out, static_cast<uint64_t>(second_of_day / 60 % 60), 2);
  out += ':';
  append_digits(out, static_cast<uint64_t>(second_of_day % 60), 2);
  out += '.';
  append_digits(out, static_cast<uint64_t>(micros), 6);
  out += 'Z';
  return out;
}

JsonWriter begin_body(std::string& out, std::string_view type, int64_t unix_micros) {
  out.reserve(256);  // a typical record, in one allocation
  JsonWriter writer(out);
  writer.string("ts", iso8601_utc(unix_micros)).string("type", type);
  return writer;
}

void finish_body(std::string& out) { out += '}'; }

}  // namespace sluice::audit
