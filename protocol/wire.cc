#include "protocol/wire.h"

#include <arpa/inet.h>

#include <cstring>

namespace sluice::protocol {

bool BodyReader::uint32(uint32_t& out) {
  if (remaining() < 4) return false;
  uint32_t v;
  std::memcpy(&v, data_.data() + pos_, 4);
  out = ntohl(v);
  pos_ += 4;
  return true;
}

bool BodyReader::int32(int32_t& out) {
  uint32_t v;
  if (!uint32(v)) return false;
  out = static_cast<int32_t>(v);
  return true;
}

bool BodyReader::int16(int16_t& out) {
  if (remaining() < 2) return false;
  uint16_t v;
  std::memcpy(&v, data_.data() + pos_, 2);
  out = static_cast<int16_t>(ntohs(v));
  pos_ += 2;
  return true;
}

bool BodyReader::byte(uint8_t& out) {
  if (remaining() < 1) return false;
  out = data_[pos_++];
  return true;
}

bool BodyReader::cstring(std::string_view& out) {
  // An empty body may have no storage at all (data() == nullptr), which memchr must
  // not be given even with a zero length.
  if (remaining() == 0) return false;
  const void* nul = std::memchr(data_.data() + pos_, 0, remaining());
  if (nul == nullptr) return false;
  const size_t length = static_cast<const uint8_t*>(nul) - (data_.data() + pos_);
  out = std::string_view(reinterpret_cast<const char*>(data_.data() + pos_), length);
  pos_ += length + 1;
  return true;
}

bool BodyReader::bytes(size_t count, std::span<const uint8_t>& out) {
  if (count > remaining()) return false;
  out = data_.subspan(pos_, count);
  pos_ += count;
  return true;
}

MessageBuilder::MessageBuilder(char type) {
  out_.push_back(static_cast<uint8_t>(type));
  length_at_ = 1;
  out_.resize(5);
}

MessageBuilder MessageBuilder::untyped() {
  MessageBuilder b;
  b.length_at_ = 0;
  b.out_.resize(4);
  return b;
}

MessageBuilder& MessageBuilder::int32(int32_t v) {
  const uint32_t n = htonl(static_cast<uint32_t>(v));
  const auto* p = reinterpret_cast<const uint8_t*>(&n);
  out_.insert(out_.end(), p, p + 4);
  return *this;
}

MessageBuilder& MessageBuilder::int16(int16_t v) {
  const uint16_t n = htons(static_cast<uint16_t>(v));
  const auto* p = reinterpret_cast<const uint8_t*>(&n);
  out_.insert(out_.end(), p, p + 2);
  return *this;
}

MessageBuilder& MessageBuilder::byte(uint8_t v) {
  out_.push_back(v);
  return *this;
}

MessageBuilder& MessageBuilder::cstring(std::string_view s) {
  // An embedded NUL would split the string and shift every following field.
  const size_t nul = s.find('\0');
  if (nul != std::string_view::npos) s = s.substr(0, nul);
  out_.insert(out_.end(), s.begin(), s.end());
  out_.push_back(0);
  return *this;
}

MessageBuilder& MessageBuilder::bytes(std::span<const uint8_t> b) {
  out_.insert(out_.end(), b.begin(), b.end());
  return *this;
}

MessageBuilder& MessageBuilder::bytes(std::string_view b) {
  out_.insert(out_.end(), b.begin(), b.end());
  return *this;
}

std::vector<uint8_t> MessageBuilder::finish() {
  const size_t length = out_.size() - length_at_;
  if (length > kMaxEncodedMessage) return {};
  const uint32_t n = htonl(static_cast<uint32_t>(length));
  std::memcpy(out_.data() + length_at_, &n, 4);
  return std::move(out_);
}

namespace {
std::vector<uint8_t> error_like(char type, const ErrorInfo& e) {
  MessageBuilder b(type);
  b.byte('S').cstring(e.severity);
  b.byte('V').cstring(e.severity);
  b.byte('C').cstring(e.sqlstate);
  b.byte('M').cstring(e.message);
  if (!e.detail.empty()) b.byte('D').cstring(e.detail);
  if (!e.hint.empty()) b.byte('H').cstring(e.hint);
  if (!e.position.empty()) b.byte('P').cstring(e.position);
  b.byte(0);
  return b.finish();
}

std::vector<uint8_t> authentication(int32_t code, std::string_view data) {
  return MessageBuilder('R').int32(code).bytes(data).finish();
}
}  // namespace

std::vector<uint8_t> error_response(const ErrorInfo& error) { return error_like('E', error); }
std::vector<uint8_t> notice_response(const ErrorInfo& notice) { return error_like('N', notice); }
std::vector<uint8_t> authentication_ok() { return authentication(0, {}); }
std::vector<uint8_t> authentication_cleartext_password() { return authentication(3, {}); }

std::vector<uint8_t> authentication_sasl(std::string_view mechanism) {
  return MessageBuilder('R').int32(10).cstring(mechanism).byte(0).finish();
}
std::vector<uint8_t> authentication_sasl_continue(std::string_view data) { return authentication(11, data); }
std::vector<uint8_t> authentication_sasl_final(std::string_view data) { return authentication(12, data); }

std::vector<uint8_t> parameter_status(std::string_view name, std::string_view value) {
  return MessageBuilder('S').cstring(name).cstring(value).finish();
}

std::vector<uint8_t> backend_key_data(uint32_t pid, uint32_t secret) {
  return MessageBuilder('K').int32(static_cast<int32_t>(pid)).int32(static_cast<int32_t>(secret)).finish();
}

std::vector<uint8_t> ready_for_query(char status) { return MessageBuilder('Z').byte(static_cast<uint8_t>(status)).finish(); }

std::vector<uint8_t> negotiate_protocol_version(uint32_t newest_minor, const std::vector<std::string>& unrecognized) {
  MessageBuilder b('v');
  b.int32(static_cast<int32_t>(0x30000 | newest_minor)).int32(static_cast<int32_t>(unrecognized.size()));
  for (const auto& option : unrecognized) b.cstring(option);
  return b.finish();
}

std::vector<uint8_t> startup_message(const std::vector<std::pair<std::string, std::string>>& parameters) {
  MessageBuilder b = MessageBuilder::untyped();
  b.int32(static_cast<int32_t>(kProtocol30));
  for (const auto& [key, value] : parameters) b.cstring(key).cstring(value);
  b.byte(0);
  return b.finish();
}

std::vector<uint8_t> password_message(std::string_view password) { return MessageBuilder('p').cstring(password).finish(); }

std::vector<uint8_t> sasl_initial_response(std::string_view mechanism, std::string_view data) {
  return MessageBuilder('p').cstring(mechanism).int32(static_cast<int32_t>(data.size())).bytes(data).finish();
}

std::vector<uint8_t> sasl_response(std::string_view data) { return MessageBuilder('p').bytes(data).finish(); }

std::vector<uint8_t> cancel_request(uint32_t pid, uint32_t secret) {
  return MessageBuilder::untyped()
      .int32(static_cast<int32_t>(kCancelRequestCode))
      .int32(static_cast<int32_t>(pid))
      .int32(static_cast<int32_t>(secret))
      .finish();
}

std::vector<uint8_t> ssl_request() {
  return MessageBuilder::untyped().int32(static_cast<int32_t>(kSslRequestCode)).finish();
}

bool parse_error_fields(std::span<const uint8_t> body, std::vector<ErrorField>& fields) {
  BodyReader r(body);
  fields.clear();
  for (;;) {
    uint8_t code;
    if (!r.byte(code)) return false;
    if (code == 0) return r.at_end();
    std::string_view value;
    if (!r.cstring(value)) return false;
    if (fields.size() == 64) return false;
    fields.push_back(ErrorField{static_cast<char>(code), std::string(value)});
  }
}

std::vector<uint8_t> error_fields_message(char type, const std::vector<ErrorField>& fields) {
  MessageBuilder b(type);
  for (const auto& f : fields) b.byte(static_cast<uint8_t>(f.code)).cstring(f.value);
  return b.byte(0).finish();
}

bool parse_row_description(std::span<const uint8_t> body, std::vector<ColumnDescription>& columns) {
  BodyReader r(body);
  columns.clear();
  int16_t count;
  if (!r.int16(count) || count < 0 || count > kMaxResultColumns) return false;
  columns.resize(static_cast<size_t>(count));
  for (auto& c : columns) {
    int32_t table_oid, type_oid;
    if (!r.cstring(c.name) || !r.int32(table_oid) || !r.int16(c.column_number) || !r.int32(type_oid) ||
        !r.int16(c.type_size) || !r.int32(c.type_modifier) || !r.int16(c.format))
      return false;
    c.table_oid = static_cast<uint32_t>(table_oid);
    c.type_oid = static_cast<uint32_t>(type_oid);
  }
  return r.at_end();
}

bool parse_data_row(std::span<const uint8_t> body, std::vector<RowValue>& values) {
  BodyReader r(body);
  int16_t count;
  if (!r.int16(count) || count < 0 || count > kMaxResultColumns) {
    values.clear();
    return false;
  }
  // Every element is assigned below, so a row as wide as the last one (the common
  // case: one result set) costs no clearing and no construction.
  values.resize(static_cast<size_t>(count));
  for (auto& v : values) {
    int32_t length;
    if (!r.int32(length) || length < -1) return false;
    v.is_null = length == -1;
    v.bytes = {};
    if (!v.is_null && !r.bytes(static_cast<size_t>(length), v.bytes)) return false;
  }
  return r.at_end();
}

bool data_row(std::span<const RowValue> values, std::vector<uint8_t>& out) {
  uint64_t length = 4 + 2;
  for (const auto& v : values) length += 4 + (v.is_null ? 0 : v.bytes.size());
  out.clear();
  if (length > kMaxEncodedMessage) return false;
  out.resize(1 + length);
  uint8_t* at = out.data();
  auto put32 = [&](uint32_t v) {
    v = htonl(v);
    std::memcpy(at, &v, 4);
    at += 4;
  };
  *at++ = 'D';
  put32(static_cast<uint32_t>(length));
  const uint16_t count = htons(static_cast<uint16_t>(values.size()));
  std::memcpy(at, &count, 2);
  at += 2;
  for (const auto& v : values) {
    if (v.is_null) {
      put32(UINT32_MAX);  // -1: SQL NULL
      continue;
    }
    put32(static_cast<uint32_t>(v.bytes.size()));
    if (!v.bytes.empty()) std::memcpy(at, v.bytes.data(), v.bytes.size());
    at += v.bytes.size();
  }
  return true;
}

std::vector<uint8_t> data_row(std::span<const RowValue> values) {
  std::vector<uint8_t> out;
  data_row(values, out);
  return out;
}

std::string_view error_field(const std::vector<ErrorField>& fields, char code) {
  for (const auto& f : fields)
    if (f.code == code) return f.value;
  return {};
}

const std::string* StartupPacket::find(std::string_view key) const {
  for (const auto& [k, v] : parameters)
    if (k == key) return &v;
  return nullptr;
}

StartupParse parse_startup_packet(std::span<const uint8_t> body, StartupPacket& out) {
  BodyReader r(body);
  if (!r.uint32(out.version)) return StartupParse::malformed;
  out.parameters.clear();
  // Layout: (name NUL value NUL)* NUL, and the terminator must be the last byte.
  for (;;) {
    std::string_view key;
    if (!r.cstring(key)) return StartupParse::malformed;
    if (key.empty()) return r.at_end() ? StartupParse::ok : StartupParse::malformed;
    std::string_view value;
    if (!r.cstring(value)) return StartupParse::malformed;
    if (out.parameters.size() == kMaxStartupParameters) return StartupParse::too_many_parameters;
    out.parameters.emplace_back(std::string(key), std::string(value));
  }
}

bool is_frontend_message_type(uint8_t type) {
  switch (type) {
    case 'Q': case 'P': case 'B': case 'D': case 'E': case 'C': case 'S': case 'H':
    case 'F': case 'X': case 'd': case 'c': case 'f':
      return true;
    default:
      return false;
  }
}

bool is_backend_message_type(uint8_t type) {
  switch (type) {
    case '1': case '2': case '3': case 'A': case 'C': case 'D': case 'E': case 'G':
    case 'H': case 'I': case 'n': case 'N': case 's': case 'S': case 't': case 'T':
    case 'V': case 'W': case 'Z': case 'c': case 'd':
      return true;
    default:
      return false;
  }
}

uint32_t frontend_body_limit(uint8_t type, uint32_t max_message_bytes) {
  switch (type) {
    case 'Q': case 'P': case 'B': case 'F': case 'd':
      return max_message_bytes;
    case 'S': case 'H': case 'X': case 'c':
      return 0;  // no body at all
    default:
      return kSmallMessageLimit;
  }
}

uint32_t backend_body_limit(uint8_t type, uint32_t max_message_bytes) {
  switch (type) {
    case '1': case '2': case '3': case 'n': case 'I': case 's': case 'c':
      return 0;
    case 'Z':
      return 1;
    case 'C': case 'S': case 'K':
      return kSmallMessageLimit;
    default:
      return max_message_bytes;
  }
}

const char* frontend_message_name(uint8_t type) {
  switch (type) {
    case 'Q': return "Query";
    case 'P': return "Parse";
    case 'B': return "Bind";
    case 'D': return "Describe";
    case 'E': return "Execute";
    case 'C': return "Close";
    case 'S': return "Sync";
    case 'H': return "Flush";
    case 'F': return "FunctionCall";
    case 'X': return "Terminate";
    case 'd': return "CopyData";
    case 'c': return "CopyDone";
    case 'f': return "CopyFail";
    case 'p': return "PasswordMessage";
    default: return "unknown";
  }
}

const char* backend_message_name(uint8_t type) {
  switch (type) {
    case 'R': return "Authentication";
    case 'K': return "BackendKeyData";
    case 'S': return "ParameterStatus";
    case 'Z': return "ReadyForQuery";
    case 'E': return "ErrorResponse";
    case 'N': return "NoticeResponse";
    case 'T': return "RowDescription";
    case 'D': return "DataRow";
    case 'C': return "CommandComplete";
    case 'A': return "NotificationResponse";
    case 'd': return "CopyData";
    case 'G': return "CopyInResponse";
    case 'H': return "CopyOutResponse";
    case 'W': return "CopyBothResponse";
    case 'v': return "NegotiateProtocolVersion";
    default: return "unknown";
  }
}

}  // namespace sluice::protocol
