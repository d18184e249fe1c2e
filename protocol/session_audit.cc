#include "protocol/session_audit.h"

#include <algorithm>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "audit/chain.h"
#include "audit/record.h"
#include "protocol/wire.h"

namespace sluice::protocol {

namespace {

std::string random_session_id() {
  uint8_t bytes[8];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    const int64_t now = audit::now_unix_micros();
    std::memcpy(bytes, &now, sizeof bytes);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (uint8_t b : bytes) {
    id += kHex[b >> 4];
    id += kHex[b & 15];
  }
  return id;
}

std::string_view as_text(std::span<const uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// `"sql":"..."`, or `"sql_base64":"..."` when the text is not UTF-8 (kept exactly).
void write_sql(audit::JsonWriter& writer, std::string_view sql) {
  if (audit::valid_utf8(sql))
    writer.string("sql", sql);
  else
    writer.key("sql_base64").base64({reinterpret_cast<const uint8_t*>(sql.data()), sql.size()});
}

void write_verdict(audit::JsonWriter& writer, std::string_view action, std::string_view rule, std::string_view group) {
  writer.string("decision", action);
  if (!rule.empty()) writer.string("rule", rule);
  if (!group.empty()) writer.string("group", group);
}

// One Bind parameter as docs/audit.md describes: text, null, base64, or a digest when long.
void write_param(audit::JsonWriter& writer, std::span<const uint8_t> value, bool binary, uint32_t max_bytes) {
  if (value.size() > max_bytes) {
    audit::Hash digest{};
    SHA256(value.data(), value.size(), digest.data());
    writer.begin_object().number("bytes", value.size()).string("sha256", audit::to_hex(digest)).end_object();
  } else if (binary || !audit::valid_utf8(as_text(value))) {
    writer.begin_object().key("base64").base64(value).end_object();
  } else {
    writer.string(as_text(value));
  }
}

}  // namespace

void SessionAudit::auth_failed(audit::ShardLog& log, std::string_view client, std::string_view user,
                               std::string_view target, std::string_view reason, std::string_view auth) {
  std::string body;
  audit::begin_body(body, "auth_failure", audit::now_unix_micros())
      .string("client", client)
      .string("user", user)
      .string("target", target)
      .string("auth", auth)
      .string("reason", reason);
  audit::finish_body(body);
  log.append(std::move(body));
}

void SessionAudit::session_started(std::string_view user, const std::vector<std::string>& groups,
                                   std::string_view target, bool tls, bool clear_text, std::string_view auth,
                                   std::string_view tls_records) {
  session_id_ = random_session_id();
  started_us_ = audit::now_unix_micros();
  std::string body;
  auto writer = audit::begin_body(body, "session_start", started_us_);
  writer.string("session", session_id_)
      .string("client", client_)
      .string("user", user)
      .strings("groups", groups)
      .string("auth", auth)
      .string("target", target)
      .boolean("tls", tls);
  if (tls) writer.string("tls_records", tls_records);
  if (clear_text) writer.boolean("clear_text", true);
  audit::finish_body(body);
  log_.append(std::move(body));
}

void SessionAudit::session_ended(std::string_view reason) {
  if (session_id_.empty()) return;
  const int64_t now = audit::now_unix_micros();
  std::string body;
  audit::begin_body(body, "session_end", now)
      .string("session", session_id_)
      .number("statements", seq_)
      .number("bytes_in", bytes_in_)
      .number("bytes_out", bytes_out_)
      .number("duration_us", static_cast<uint64_t>(now - started_us_))
      .string("reason", reason);
  audit::finish_body(body);
  log_.append(std::move(body));
  session_id_.clear();
}

// ---------------------------------------------------------------------------
// Client messages
// ---------------------------------------------------------------------------

uint64_t SessionAudit::on_client_message(uint8_t type, std::span<const uint8_t> body, const Verdict& verdict) {
  switch (type) {
    case 'Q':
      ++requests_;
      return record_query(body, verdict);
    case 'P':
      remember_parse(body, verdict);
      return verdict.action == "allow" || verdict.action == "unjudged" ? 0 : record_refused_parse(body, verdict);
    case 'B':
      remember_bind(body);
      return 0;
    case 'E':
      return record_execute(body);
    case 'F':
      ++requests_;
      return record_function_call(verdict);
    case 'C':
      forget(body);
      return 0;
    case 'S':
      ++requests_;
      return 0;
    default:
      return 0;
  }
}

audit::JsonWriter SessionAudit::begin_statement(std::string& body, std::string_view protocol) {
  auto writer = audit::begin_body(body, "statement", audit::now_unix_micros());
  writer.string("session", session_id_).number("seq", ++seq_).string("protocol", protocol);
  return writer;
}

uint64_t SessionAudit::finish_statement(std::string& body, bool extended, uint64_t ends_at) {
  audit::finish_body(body);
  open_.push_back(Open{seq_, ends_at, audit::now_unix_micros(), extended, {}, 0, 0, {}, {}, {}});
  return log_.append(std::move(body));
}

uint64_t SessionAudit::record_query(std::span<const uint8_t> body, const Verdict& verdict) {
  BodyReader reader(body);
  std::string_view sql;
  if (!reader.cstring(sql)) sql = as_text(body);
  std::string record;
  auto writer = begin_statement(record, "simple");
  write_sql(writer, sql);
  write_verdict(writer, verdict.action, verdict.rule, verdict.group);
  return finish_statement(record, false, requests_);
}

void SessionAudit::remember_parse(std::span<const uint8_t> body, const Verdict& verdict) {
  BodyReader reader(body);
  std::string_view name, sql;
  if (!reader.cstring(name) || !reader.cstring(sql)) return;
  prepared_[std::string(name)] =
      Prepared{std::string(sql), std::string(verdict.action), std::string(verdict.rule), std::string(verdict.group)};
}

uint64_t SessionAudit::record_refused_parse(std::span<const uint8_t> body, const Verdict& verdict) {
  BodyReader reader(body);
  std::string_view name, sql;
  if (!reader.cstring(name) || !reader.cstring(sql)) return 0;
  std::string record;
  auto writer = begin_statement(record, "extended");
  writer.string("statement", name);
  write_sql(writer, sql);
  write_verdict(writer, verdict.action, verdict.rule, verdict.group);
  return finish_statement(record, true, requests_ + 1);
}

void SessionAudit::remember_bind(std::span<const uint8_t> body) {
  BodyReader reader(body);
  std::string_view portal, statement;
  int16_t format_count = 0, param_count = 0;
  if (!reader.cstring(portal) || !reader.cstring(statement) || !reader.int16(format_count) || format_count < 0)
    return;
  std::vector<int16_t> formats(static_cast<size_t>(format_count));
  for (int16_t& format : formats) {
    if (!reader.int16(format)) return;
  }
  if (!reader.int16(param_count) || param_count < 0) return;
  std::string params;
  audit::JsonWriter writer(params);
  writer.begin_array();
  for (int i = 0; i < param_count; ++i) {
    int32_t length = 0;
    if (!reader.int32(length)) return;
    if (length < 0) {
      writer.null();
      continue;
    }
    std::span<const uint8_t> value;
    if (!reader.bytes(static_cast<size_t>(length), value)) return;
    // One format code applies to all parameters; otherwise one per parameter.
    const int16_t format = formats.empty() ? 0 : formats[formats.size() == 1 ? 0 : static_cast<size_t>(i)];
    if (parameter_masker_ && parameter_masker_->mask_parameter(value, format == 1, masked_param_)) {
      writer.begin_object().string("masked", masked_param_).end_object();
      continue;
    }
    write_param(writer, value, format == 1, log_.max_param_bytes());
  }
  writer.end_array();
  portals_[std::string(portal)] = Portal{std::string(statement), std::move(params)};
}

uint64_t SessionAudit::record_execute(std::span<const uint8_t> body) {
  BodyReader reader(body);
  std::string_view portal_name;
  if (!reader.cstring(portal_name)) portal_name = {};
  std::string record;
  auto writer = begin_statement(record, "extended");
  const auto portal = portals_.find(std::string(portal_name));
  const Prepared* prepared = nullptr;
  if (portal != portals_.end()) {
    writer.string("statement", portal->second.statement);
    const auto found = prepared_.find(portal->second.statement);
    if (found != prepared_.end()) prepared = &found->second;
  }
  writer.string("portal", portal_name);
  if (prepared != nullptr) {
    write_sql(writer, prepared->sql);
  } else {
    writer.key("sql").null();  // a portal sluice did not see bound: PostgreSQL will reject it
  }
  if (portal != portals_.end()) {
    writer.key("params").raw(portal->second.params_json);
  }
  if (prepared != nullptr)
    write_verdict(writer, prepared->action, prepared->rule, prepared->group);
  else
    write_verdict(writer, "unjudged", {}, {});
  return finish_statement(record, true, requests_ + 1);
}

uint64_t SessionAudit::record_function_call(const Verdict& verdict) {
  std::string record;
  auto writer = begin_statement(record, "function_call");
  write_verdict(writer, verdict.action, verdict.rule, verdict.group);
  return finish_statement(record, false, requests_);
}

void SessionAudit::forget(std::span<const uint8_t> close_body) {
  BodyReader reader(close_body);
  uint8_t what = 0;
  std::string_view name;
  if (!reader.byte(what) || !reader.cstring(name)) return;
  if (what == 'S') prepared_.erase(std::string(name));
  if (what == 'P') portals_.erase(std::string(name));
}

// ---------------------------------------------------------------------------
// Server messages
// ---------------------------------------------------------------------------

void SessionAudit::on_server_header(uint8_t type, uint32_t body_length) {
  const uint64_t size = uint64_t{body_length} + 5;
  bytes_out_ += size;
  // A statement's bytes are its reply up to, not including, the ReadyForQuery that ends it.
  if (open_.empty() || type == 'Z') return;
  open_.front().bytes += size;
  if (type == 'D') ++open_.front().rows;
}

void SessionAudit::on_command_complete(std::span<const uint8_t> body) {
  if (open_.empty()) return;
  std::string_view tag = as_text(body);
  if (!tag.empty() && tag.back() == '\0') tag.remove_suffix(1);
  open_.front().tags.emplace_back(tag);
  if (open_.front().extended) close_front();
}

void SessionAudit::on_error(std::string_view sqlstate) {
  segment_sqlstate_ = sqlstate;
  if (open_.empty()) return;
  open_.front().sqlstate = sqlstate;
  if (open_.front().extended) close_front();
}

void SessionAudit::on_execute_ended() {
  if (!open_.empty() && open_.front().extended) close_front();
}

void SessionAudit::on_ready_for_query() {
  ++readies_;
  // Whatever this ReadyForQuery ends is over: a Query's results, or Executes of the
  // pipeline segment that were skipped after an error.
  while (!open_.empty() && open_.front().ends_at <= readies_) {
    if (open_.front().extended && open_.front().sqlstate.empty()) open_.front().sqlstate = segment_sqlstate_;
    close_front();
  }
  segment_sqlstate_.clear();
}

void SessionAudit::close_front() {
  write_outcome(open_.front());
  open_.pop_front();
}

void SessionAudit::write_outcome(const Open& open) {
  const int64_t now = audit::now_unix_micros();
  std::string body;
  auto writer = audit::begin_body(body, "outcome", now);
  writer.string("session", session_id_).number("seq", open.seq).strings("tags", open.tags);
  writer.number("rows", open.rows).number("bytes", open.bytes);
  if (!open.sqlstate.empty()) writer.string("sqlstate", open.sqlstate);
  writer.number("duration_us", static_cast<uint64_t>(now - open.started_us));
  if (!open.masked.empty()) {
    writer.key("masked").begin_object();
    for (const auto& [kind, count] : open.masked) writer.number(kind, count);
    writer.end_object();
  }
  if (!open.clear.empty()) {
    writer.key("clear_text").begin_object();
    for (const auto& [kind, count] : open.clear) writer.number(kind, count);
    writer.end_object();
  }
  audit::finish_body(body);
  log_.append(std::move(body));
}

namespace {

void add_counts(std::vector<std::pair<std::string, uint64_t>>& into,
                const std::vector<std::pair<std::string, uint64_t>>& counts) {
  for (const auto& found : counts) {
    auto it = std::find_if(into.begin(), into.end(), [&](const auto& entry) { return entry.first == found.first; });
    if (it == into.end()) into.push_back(found);
    else it->second += found.second;
  }
}

}  // namespace

void SessionAudit::on_masked(const std::vector<std::pair<std::string, uint64_t>>& counts) {
  if (open_.empty()) return;  // nothing open to charge it to (an asynchronous notice)
  add_counts(open_.front().masked, counts);
}

void SessionAudit::on_clear(const std::vector<std::pair<std::string, uint64_t>>& counts) {
  if (open_.empty()) return;
  add_counts(open_.front().clear, counts);
}

}  // namespace sluice::protocol
