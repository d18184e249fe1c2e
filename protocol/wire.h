// PostgreSQL v3 wire format: message limits, a bounds-checked body reader, and
// builders for the messages sluice itself sends. All lengths from peers are
// hostile: every read checks the bytes remaining, every count is bounded.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::protocol {

// Request codes carried where a StartupMessage carries its protocol version.
inline constexpr uint32_t kProtocol30 = 196608;  // 3.0
inline constexpr uint32_t kCancelRequestCode = 80877102;
inline constexpr uint32_t kSslRequestCode = 80877103;
inline constexpr uint32_t kGssEncRequestCode = 80877104;

// PostgreSQL's own caps (src/include/libpq/pqcomm.h, libpq.h).
inline constexpr uint32_t kMaxStartupPacketLength = 10000;
inline constexpr uint32_t kSmallMessageLimit = 10000;
// PQ_LARGE_MESSAGE_LIMIT: no message of a real PostgreSQL peer is larger.
inline constexpr uint32_t kLargeMessageLimit = 0x3fffffff - 1;
inline constexpr uint32_t kMaxStartupParameters = 64;
// Messages we build must stay below 2^31 (the pgx CVE-2024-27304 class was an encoder bug).
inline constexpr size_t kMaxEncodedMessage = 0x7fffffff;

// Reads a message body front to back; every getter fails (returns false/nullopt)
// instead of reading past the end.
class BodyReader {
 public:
  explicit BodyReader(std::span<const uint8_t> body) : data_(body) {}
  bool int32(int32_t& out);
  bool uint32(uint32_t& out);
  bool int16(int16_t& out);
  bool byte(uint8_t& out);
  // A NUL-terminated string (the NUL is consumed, not returned).
  bool cstring(std::string_view& out);
  bool bytes(size_t count, std::span<const uint8_t>& out);
  size_t remaining() const { return data_.size() - pos_; }
  bool at_end() const { return pos_ == data_.size(); }

 private:
  std::span<const uint8_t> data_;
  size_t pos_ = 0;
};

// Builds one typed message; finish() fills in the length.
class MessageBuilder {
 public:
  explicit MessageBuilder(char type);
  // An untyped startup-phase packet (StartupMessage, CancelRequest).
  static MessageBuilder untyped();
  MessageBuilder& int32(int32_t v);
  MessageBuilder& int16(int16_t v);
  MessageBuilder& byte(uint8_t v);
  MessageBuilder& cstring(std::string_view s);
  MessageBuilder& bytes(std::span<const uint8_t> b);
  MessageBuilder& bytes(std::string_view b);
  // Returns the finished message; empty if it would exceed kMaxEncodedMessage.
  std::vector<uint8_t> finish();

 private:
  MessageBuilder() = default;
  std::vector<uint8_t> out_;
  size_t length_at_ = 0;
};

// One field of an ErrorResponse/NoticeResponse: code ('S', 'V', 'C', 'M', ...) and text.
struct ErrorField {
  char code;
  std::string value;
};

// The fields of an error or notice, for errors sluice raises itself.
struct ErrorInfo {
  std::string severity = "ERROR";  // ERROR, FATAL, NOTICE...
  std::string sqlstate;            // five characters
  std::string message;
  std::string detail;
  std::string hint;
  std::string position;  // 1-based character position in the statement ('P'); empty = none
};

std::vector<uint8_t> error_response(const ErrorInfo& error);
std::vector<uint8_t> notice_response(const ErrorInfo& notice);
std::vector<uint8_t> authentication_ok();
std::vector<uint8_t> authentication_cleartext_password();
std::vector<uint8_t> authentication_sasl(std::string_view mechanism);
std::vector<uint8_t> authentication_sasl_continue(std::string_view data);
std::vector<uint8_t> authentication_sasl_final(std::string_view data);
std::vector<uint8_t> parameter_status(std::string_view name, std::string_view value);
std::vector<uint8_t> backend_key_data(uint32_t pid, uint32_t secret);
std::vector<uint8_t> ready_for_query(char status);
std::vector<uint8_t> negotiate_protocol_version(uint32_t newest_minor, const std::vector<std::string>& unrecognized);
std::vector<uint8_t> startup_message(const std::vector<std::pair<std::string, std::string>>& parameters);
std::vector<uint8_t> password_message(std::string_view password);
std::vector<uint8_t> sasl_initial_response(std::string_view mechanism, std::string_view data);
std::vector<uint8_t> sasl_response(std::string_view data);
std::vector<uint8_t> cancel_request(uint32_t pid, uint32_t secret);
// SSLRequest: asks the server whether it will speak TLS (answer: one byte, 'S' or 'N').
std::vector<uint8_t> ssl_request();

// Parses the fields of an ErrorResponse/NoticeResponse body. Fails on a missing
// terminator or more than 64 fields.
bool parse_error_fields(std::span<const uint8_t> body, std::vector<ErrorField>& fields);
// The value of field `code`, or empty.
std::string_view error_field(const std::vector<ErrorField>& fields, char code);

// Builds an ErrorResponse ('E') or NoticeResponse ('N') from its fields, in order.
std::vector<uint8_t> error_fields_message(char type, const std::vector<ErrorField>& fields);

// Result sets. PostgreSQL allows at most 1664 columns in a result (MaxTupleAttributeNumber);
// sluice refuses more rather than size anything by a peer's count.
inline constexpr uint16_t kMaxResultColumns = 1664;

// One column of a RowDescription. `name` points into the message body.
struct ColumnDescription {
  std::string_view name;
  uint32_t table_oid = 0;  // 0: not a table column (an expression)
  int16_t column_number = 0;
  uint32_t type_oid = 0;
  int16_t type_size = 0;
  int32_t type_modifier = 0;
  int16_t format = 0;  // 0 text, 1 binary (always 0 in a statement's Describe)
};
bool parse_row_description(std::span<const uint8_t> body, std::vector<ColumnDescription>& columns);

// One value of a DataRow: its bytes point into the message body.
struct RowValue {
  bool is_null = false;
  std::span<const uint8_t> bytes;
};
// Fails on a malformed row or more than kMaxResultColumns values.
bool parse_data_row(std::span<const uint8_t> body, std::vector<RowValue>& values);

// Builds a DataRow. Returns an empty vector if it would exceed kMaxEncodedMessage.
std::vector<uint8_t> data_row(std::span<const RowValue> values);
// The same, written into `out` (cleared first; its capacity is reused). False, and
// `out` empty, if the row would exceed kMaxEncodedMessage.
bool data_row(std::span<const RowValue> values, std::vector<uint8_t>& out);

// A parsed StartupMessage (protocol 3.x).
struct StartupPacket {
  uint32_t version = 0;
  std::vector<std::pair<std::string, std::string>> parameters;
  const std::string* find(std::string_view key) const;
};
enum class StartupParse { ok, malformed, too_many_parameters };
// body = the packet after its length word (starting with the version).
StartupParse parse_startup_packet(std::span<const uint8_t> body, StartupPacket& out);

// Is `type` a message a client may send once the session is established?
bool is_frontend_message_type(uint8_t type);
// Is `type` a message a server may send once the session is established?
bool is_backend_message_type(uint8_t type);
// The largest body length sluice accepts for a message of `type` from a client,
// or from the backend (for messages that carry data this is `max_message_bytes`).
uint32_t frontend_body_limit(uint8_t type, uint32_t max_message_bytes);
uint32_t backend_body_limit(uint8_t type, uint32_t max_message_bytes);

// Readable name of a message type for logs ("Query", "DataRow"...).
const char* frontend_message_name(uint8_t type);
const char* backend_message_name(uint8_t type);

}  // namespace sluice::protocol
