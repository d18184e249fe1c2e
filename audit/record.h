// Audit records: the JSON text of one record, built by the shard that saw the event.
// The format is documented field by field in docs/audit.md.
//
// A shard builds a record's *body*: everything after the chain fields, starting with
// `"ts":` and ending with the closing brace. The writer thread, which alone knows the
// order of records across shards, prepends `{"n":N,"prev":"<hash>",` (chain.h). So a
// body is never valid JSON on its own, and a full line always starts with the chain.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::audit {

// Appends JSON text to a caller-owned string. Strings are escaped per RFC 8259;
// invalid UTF-8 never reaches the output (see string()). Fields are written in call
// order; the writer tracks whether a comma is needed.
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  // Object members. key must be a plain ASCII literal (not escaped).
  JsonWriter& key(std::string_view key);
  JsonWriter& string(std::string_view key, std::string_view value) { return this->key(key).string(value); }
  JsonWriter& number(std::string_view key, uint64_t value) { return this->key(key).number(value); }
  JsonWriter& boolean(std::string_view key, bool value) { return this->key(key).boolean(value); }
  JsonWriter& strings(std::string_view key, std::span<const std::string> values);

  // Values (after key(), or as array elements).
  // A string value. Bytes that are not valid UTF-8 are written as U+FFFD; callers that
  // must keep such text exactly use base64() instead (valid_utf8() tells which).
  JsonWriter& string(std::string_view value);
  JsonWriter& number(uint64_t value);
  JsonWriter& boolean(bool value);
  JsonWriter& null();
  JsonWriter& base64(std::span<const uint8_t> bytes);  // as a JSON string
  // A value that is already JSON text (built by another JsonWriter).
  JsonWriter& raw(std::string_view json);
  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();

 private:
  void separate();
  std::string& out_;
  bool need_comma_ = false;
};

bool valid_utf8(std::string_view text);

// "2026-12-06T08:01:53.123456Z" for a CLOCK_REALTIME time in microseconds.
std::string iso8601_utc(int64_t unix_micros);
int64_t now_unix_micros();

// Starts a record body: `"ts":"...","type":"<type>"`. Add fields, then finish_body().
JsonWriter begin_body(std::string& out, std::string_view type, int64_t unix_micros);
void finish_body(std::string& out);  // appends the closing brace

}  // namespace sluice::audit
