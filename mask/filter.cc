// ResultMasker: the per-session half of masking (filter.h). Every inspected message is
// parsed with protocol/wire.h's bounded readers; one that cannot be parsed cannot be
// judged, so it is refused rather than forwarded.
#include "mask/filter.h"

#include <algorithm>
#include <cstring>

#include "core/log.h"

namespace sluice::mask {
namespace {

using protocol::BodyReader;
using protocol::ErrorInfo;
using protocol::MessageBuilder;
using Action = protocol::ResultFilter::Action;

// Which families can hold text worth scanning. Numbers, times, booleans, uuids,
// network addresses and bit strings are skipped by type: no secret fits in them.
bool family_holds_text(TypeFamily family) {
  switch (family) {
    case TypeFamily::unknown:
    case TypeFamily::string_like:
    case TypeFamily::json:
    case TypeFamily::jsonb:
    case TypeFamily::bytea:
      return true;
    default:
      return false;
  }
}

// When findings in one value ask for different strategies, the most protective wins.
int protection(Strategy strategy) {
  switch (strategy) {
    case Strategy::null: return 3;
    case Strategy::redact: return 2;
    case Strategy::token: return 1;
    case Strategy::partial: return 0;
  }
  return 3;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// bytea's text form "\x6a6f..." -> the bytes. False when it is not that form (the
// escape form keeps printable bytes as they are, so it is scanned as it comes).
bool decode_hex_bytea(std::string_view text, std::string& out) {
  if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0) return false;
  out.clear();
  out.reserve((text.size() - 2) / 2);
  for (size_t i = 2; i < text.size(); i += 2) {
    const int high = hex_digit(text[i]), low = hex_digit(text[i + 1]);
    if (high < 0 || low < 0) return false;
    out.push_back(static_cast<char>(high << 4 | low));
  }
  return true;
}

std::string_view as_text(std::span<const uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

ErrorInfo refusal_error(std::string message, std::string hint) {
  ErrorInfo e;
  e.severity = "FATAL";
  e.sqlstate = "XX000";
  e.message = std::move(message);
  e.hint = std::move(hint);
  return e;
}

// Error and notice fields that carry no data: severity, SQLSTATE, positions and the
// server's source location. Everything else (message, detail, hint, context, the
// internal query, object names) can quote a value and is scanned.
bool field_holds_data(char code) {
  switch (code) {
    case 'S': case 'V': case 'C': case 'P': case 'p': case 'F': case 'L': case 'R':
      return false;
    default:
      return true;
  }
}

constexpr std::string_view kUnscannedKind = "unscanned";
constexpr uint32_t kTextOid = 25;  // error, notice, notification and COPY text is masked as text

}  // namespace

// ---------------------------------------------------------------------------
// ShardMasking

ShardMasking::ShardMasking(std::shared_ptr<const Masking> masking, Catalog* catalog)
    : masking_(std::move(masking)), catalog_(catalog) {
  if (masking_ && masking_->config.enabled && masking_->patterns) {
    scanner_ = std::make_shared<Scanner>(masking_->patterns);
    if (!scanner_->ready()) LOG_ERROR("masking: Hyperscan scratch space could not be allocated; values are masked unscanned");
  }
}

bool ShardMasking::exempt(const std::vector<std::string>& groups) const {
  if (!masking_) return true;
  const auto& exempt = masking_->config.exempt_groups;
  return std::any_of(groups.begin(), groups.end(),
                     [&](const std::string& g) { return std::find(exempt.begin(), exempt.end(), g) != exempt.end(); });
}

std::unique_ptr<protocol::ResultFilter> ShardMasking::open(const std::string& /*user*/,
                                                           const std::vector<std::string>& groups,
                                                           const protocol::Target& target) {
  if (!scanner_ || exempt(groups)) return nullptr;
  ColumnRuleSource columns;
  if (catalog_ && column_rules_apply(*masking_, target.name, groups)) {
    columns.catalog = catalog_;
    columns.target = target.name;
    columns.groups = groups;
  }
  if (!masking_->config.scan_secrets && !masking_->config.scan_pii && !columns.catalog) return nullptr;
  return std::make_unique<ResultMasker>(masking_, scanner_, std::move(columns));
}

// ---------------------------------------------------------------------------
// ResultMasker

ResultMasker::ResultMasker(std::shared_ptr<const Masking> masking, std::shared_ptr<Scanner> scanner,
                           ColumnRuleSource columns)
    : masking_(std::move(masking)), scanner_(std::move(scanner)), columns_(std::move(columns)) {}

bool ResultMasker::inspects(uint8_t type) const {
  switch (type) {
    case 'T':  // RowDescription: the plan for the rows that follow
    case 'D':  // DataRow
    case 'E':  // ErrorResponse
    case 'N':  // NoticeResponse
    case 'A':  // NotificationResponse
    case 'V':  // FunctionCallResponse
    case 'H':  // CopyOutResponse: text or binary
    case 'd':  // CopyData (COPY TO STDOUT)
      return true;
    default:
      return false;
  }
}

void ResultMasker::passed(uint8_t type) {
  switch (type) {
    case 't':  // ParameterDescription: a statement Describe, whose RowDescription follows
      after_parameter_description_ = true;
      return;
    case 'S':  // ParameterStatus arrives between any two messages; it ends nothing
      return;
    case 'c':  // CopyDone
      copy_binary_ = false;
      copy_header_pending_ = false;
      break;
    default:
      break;
  }
  // CommandComplete, BindComplete, NoData, PortalSuspended, ReadyForQuery...: the
  // rows of the current description are over (or were never described).
  after_parameter_description_ = false;
  described_ = false;
  plan_.clear();
}

Action ResultMasker::filter(uint8_t type, std::span<const uint8_t> body, std::vector<uint8_t>& replacement,
                            ErrorInfo& refusal) {
  switch (type) {
    case 'T':
      describe(body);
      return Action::forward;
    case 'D':
      return data_row(body, replacement, refusal);
    case 'E':
      described_ = false;
      plan_.clear();
      return error_or_notice(type, body, replacement);
    case 'N':
      return error_or_notice(type, body, replacement);
    case 'A':
      return notification(body, replacement);
    case 'V':
      return function_result(body, replacement);
    case 'H':
      copy_out_started(body);
      return Action::forward;
    case 'd':
      return copy_data(body, replacement, refusal);
    default:
      return Action::forward;
  }
}

std::vector<std::pair<std::string, uint64_t>> ResultMasker::take_masked_counts() {
  std::vector<std::pair<std::string, uint64_t>> out;
  out.swap(counts_);
  return out;
}

void ResultMasker::count(uint32_t pattern_index) { count_kind(scanner_->patterns().pattern(pattern_index).kind); }

namespace {

// One more value of `kind` in a "kind":count list (kinds in the order first seen).
void bump(std::vector<std::pair<std::string, uint64_t>>& counts, std::string_view kind) {
  for (auto& [k, n] : counts) {
    if (k == kind) {
      ++n;
      return;
    }
  }
  counts.emplace_back(kind, 1);
}

}  // namespace

void ResultMasker::note_clear(std::string_view kind) { bump(clear_counts_, kind); }

void ResultMasker::count_kind(std::string_view kind) { bump(counts_, kind); }

TierSet ResultMasker::tiers(bool pii) const {
  const bool secrets = masking_->config.scan_secrets;
  pii = pii && masking_->config.scan_pii;
  if (secrets && pii) return TierSet::all;
  return pii ? TierSet::pii : TierSet::secrets;
}

void ResultMasker::describe(std::span<const uint8_t> body) {
  const bool of_statement = after_parameter_description_;
  after_parameter_description_ = false;
  plan_.clear();
  described_ = false;
  // A statement's description carries no formats (they come with each Bind), and its
  // rows arrive after a BindComplete: they are planned as undescribed.
  if (of_statement) return;
  std::vector<protocol::ColumnDescription> columns;
  if (!protocol::parse_row_description(body, columns)) return;  // rows masked as undescribed
  plan_.reserve(columns.size());
  for (const auto& column : columns) {
    ColumnPlan plan;
    plan.type = classify_type(column.type_oid);
    plan.known = column.format == 0 || column.format == 1;
    plan.format = column.format == 1 ? ValueFormat::binary : ValueFormat::text;
    plan.scan = !plan.known || family_holds_text(plan.type.family);
    plan.scan_pii = plan.scan;
    plan.hex_bytea = plan.known && plan.type.family == TypeFamily::bytea && plan.format == ValueFormat::text;
    plan_column_rule(column, plan);
    plan_.push_back(plan);
  }
  described_ = true;
}

void ResultMasker::plan_column_rule(const protocol::ColumnDescription& column, ColumnPlan& plan) {
  if (!columns_.catalog || column.table_oid == 0) return;
  if (const uint64_t version = columns_.catalog->version(); version != catalog_version_ || !catalog_) {
    catalog_version_ = version;
    catalog_ = columns_.catalog->target(columns_.target);
  }
  if (!catalog_ || !catalog_->loaded || !catalog_->relids.count(column.table_oid)) {
    // A relation newer than the snapshot (or no snapshot): ask for a reread, and do not
    // show a value a rule might cover in the meantime.
    plan.unverified = true;
    columns_.catalog->invalidate(columns_.target);
    return;
  }
  const MaskedColumn* masked = catalog_->find(column.table_oid, column.column_number);
  if (masked == nullptr) return;
  const ColumnRule& rule = catalog_->rule_of(*masked);
  if (rule.exempts(columns_.groups)) plan.exempt_rule = &rule;
  else plan.rule = &rule;
}

std::vector<std::pair<std::string, uint64_t>> ResultMasker::take_clear_counts() {
  std::vector<std::pair<std::string, uint64_t>> out;
  out.swap(clear_counts_);
  return out;
}

bool ResultMasker::mask_by_rule(const ColumnPlan& plan, std::string_view value, Replacement& out) {
  if (plan.rule == nullptr && !plan.unverified) return false;
  const std::string_view kind = plan.rule ? std::string_view(plan.rule->kind) : std::string_view("unverified");
  const StrategySpec spec = plan.rule ? plan.rule->strategy : StrategySpec{Strategy::redact, 0};
  mask_value(spec, kind, plan.type, plan.format, value, masking_->token_key.get(), out);
  count_kind(kind);
  return true;
}

Action ResultMasker::data_row(std::span<const uint8_t> body, std::vector<uint8_t>& replacement, ErrorInfo& refusal) {
  if (!protocol::parse_data_row(body, values_)) {
    refusal = refusal_error("the server sent a malformed DataRow; sluice cannot mask it, so it closed the session",
                            "this is a server or network fault; reconnect and retry");
    return Action::refuse;
  }
  const size_t n = values_.size();
  const bool planned = described_ && plan_.size() == n;
  // Unknown type: scan everything with both tiers (it may be free text), mask findings
  // whole. With column rules, a value from an unseen description may be a masked
  // column's: it is masked whole as unverified.
  static const ColumnPlan kUndescribed = [] {
    ColumnPlan plan;
    plan.scan_pii = true;
    return plan;
  }();
  static const ColumnPlan kUndescribedUnderRules = [] {
    ColumnPlan plan;
    plan.unverified = true;
    return plan;
  }();
  const ColumnPlan& undescribed = columns_.catalog ? kUndescribedUnderRules : kUndescribed;
  auto plan_of = [&](size_t i) -> const ColumnPlan& { return planned ? plan_[i] : undescribed; };

  scan_values_.assign(n, std::string_view());
  if (decoded_.size() < n) decoded_.resize(n);
  bool any = false, pii = false, by_rule = false;
  for (size_t i = 0; i < n; ++i) {
    const ColumnPlan& plan = plan_of(i);
    if (values_[i].is_null) continue;
    if (plan.exempt_rule) note_clear(plan.exempt_rule->kind);
    if (plan.rule || plan.unverified) {
      by_rule = true;
      continue;
    }
    if (!plan.scan) continue;
    std::string_view value = as_text(values_[i].bytes);
    if (plan.hex_bytea && decode_hex_bytea(value, decoded_[i])) value = decoded_[i];
    scan_values_[i] = value;
    any = true;
    pii = pii || plan.scan_pii;
  }
  if (!any && !by_rule) return Action::forward;

  const ScanStatus status = any ? scanner_->scan_row(scan_values_, tiers(pii), found_) : ScanStatus::ok;
  if (!any) found_.clear();
  if (!by_rule && status == ScanStatus::ok && found_.findings.empty() && found_.saturated.empty())
    return Action::forward;

  replacements_.resize(n);
  std::vector<protocol::RowValue>& out = row_out_;
  out.assign(values_.begin(), values_.end());
  for (size_t i = 0; i < n; ++i) {
    if (values_[i].is_null) continue;
    const ColumnPlan& plan = plan_of(i);
    const std::string_view value = as_text(values_[i].bytes);
    Replacement& rep = replacements_[i];
    const uint32_t column = static_cast<uint32_t>(i);
    if (mask_by_rule(plan, value, rep)) {
      // masked whole by its column rule
    } else if (!plan.scan) {
      continue;
    } else if (status != ScanStatus::ok) {
      // Nothing is known about what this value holds: it is not shown.
      mask_value(StrategySpec{Strategy::redact, 0}, kUnscannedKind, plan.known ? plan.type : ColumnType{},
                 plan.format, value, nullptr, rep);
    } else {
      std::span<const Finding> findings = found_.of_column(column);
      if (findings.empty()) continue;
      const bool saturated = std::find(found_.saturated.begin(), found_.saturated.end(), column) != found_.saturated.end();
      for (const Finding& f : findings) count(f.pattern);
      if (!plan.known || plan.hex_bytea || saturated) {
        // Offsets do not map onto the bytes sent (decoded bytea), or the value's
        // layout is unknown, or it is dense with findings: mask it whole.
        const Finding* strongest = &findings[0];
        for (const Finding& f : findings)
          if (protection(pattern(f).strategy.strategy) > protection(pattern(*strongest).strategy.strategy)) strongest = &f;
        mask_value(pattern(*strongest).strategy, pattern(*strongest).kind, plan.known ? plan.type : ColumnType{},
                   plan.format, value, masking_->token_key.get(), rep);
      } else {
        rewrite_findings(plan.type, plan.format, value, findings, scanner_->patterns(), masking_->token_key.get(), rep);
      }
    }
    out[i].is_null = rep.is_null;
    out[i].bytes = rep.is_null ? std::span<const uint8_t>()
                               : std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(rep.bytes.data()),
                                                          rep.bytes.size());
  }
  if (!protocol::data_row(out, replacement)) {
    refusal = refusal_error("a masked row would exceed the protocol's message size; sluice closed the session",
                            "select fewer or smaller columns");
    return Action::refuse;
  }
  return Action::replace;
}

bool ResultMasker::mask_text(std::string_view text, std::string& out) { return rewrite_text(text, out, true); }

bool ResultMasker::mask_parameter(std::span<const uint8_t> bytes, bool binary, std::string& out) {
  if (!binary) return rewrite_text(as_text(bytes), out, false);
  // A binary value's bytes are not text to show in parts: say only what was found.
  const TextScan scan = scan_text(as_text(bytes));
  if (scan == TextScan::clean) return false;
  out.clear();
  append_placeholder(scan == TextScan::unscanned ? kUnscannedKind : std::string_view(pattern(found_.findings.front()).kind), out);
  return true;
}

ResultMasker::TextScan ResultMasker::scan_text(std::string_view text) {
  if (text.empty()) return TextScan::clean;
  if (scanner_->scan(text, tiers(true), found_) != ScanStatus::ok) {
    found_.clear();
    return TextScan::unscanned;
  }
  return found_.findings.empty() && found_.saturated.empty() ? TextScan::clean : TextScan::found;
}

bool ResultMasker::rewrite_text(std::string_view text, std::string& out, bool count_findings) {
  const TextScan scan = scan_text(text);
  if (scan == TextScan::clean) return false;
  if (scan == TextScan::unscanned) {
    out = "[masked:" + std::string(kUnscannedKind) + "]";  // nothing is known about it: not shown
    return true;
  }
  if (count_findings)
    for (const Finding& f : found_.findings) count(f.pattern);
  if (found_.saturated.empty()) {
    rewrite_findings(classify_type(kTextOid), ValueFormat::text, text, found_.findings, scanner_->patterns(),
                     masking_->token_key.get(), text_rep_);
  }
  if (!found_.saturated.empty() || text_rep_.is_null) {
    // Too dense to show in parts, or a null strategy (text has no NULL): redacted whole.
    out.clear();
    append_placeholder(pattern(found_.findings.front()).kind, out);
  } else {
    out.swap(text_rep_.bytes);
  }
  return true;
}

Action ResultMasker::error_or_notice(uint8_t type, std::span<const uint8_t> body, std::vector<uint8_t>& replacement) {
  std::vector<protocol::ErrorField> fields;
  if (!protocol::parse_error_fields(body, fields)) {
    // It cannot be scanned, so its text is not shown; its SQLSTATE is unknown too.
    ErrorInfo e;
    e.severity = type == 'E' ? "ERROR" : "NOTICE";
    e.sqlstate = "XX000";
    e.message = "the server sent a malformed message; sluice withheld its text because it could not be scanned";
    replacement = type == 'E' ? protocol::error_response(e) : protocol::notice_response(e);
    return Action::replace;
  }
  bool changed = false;
  for (auto& field : fields) {
    if (field_holds_data(field.code) && mask_text(field.value, masked_text_)) {
      field.value.swap(masked_text_);
      changed = true;
    }
  }
  if (!changed) return Action::forward;
  replacement = protocol::error_fields_message(static_cast<char>(type), fields);
  return Action::replace;
}

Action ResultMasker::notification(std::span<const uint8_t> body, std::vector<uint8_t>& replacement) {
  BodyReader r(body);
  int32_t pid;
  std::string_view channel_view, payload_view;
  if (!r.int32(pid) || !r.cstring(channel_view) || !r.cstring(payload_view) || !r.at_end()) {
    // Unparseable: nothing of it can be shown. An empty payload keeps the client's
    // LISTEN machinery working.
    replacement = MessageBuilder('A').int32(0).cstring("").cstring("").finish();
    return Action::replace;
  }
  std::string channel, payload;
  const bool channel_masked = mask_text(channel_view, channel);
  const bool payload_masked = mask_text(payload_view, payload);
  if (!channel_masked && !payload_masked) return Action::forward;
  if (!channel_masked) channel = channel_view;
  if (!payload_masked) payload = payload_view;
  replacement = MessageBuilder('A').int32(pid).cstring(channel).cstring(payload).finish();
  return Action::replace;
}

Action ResultMasker::function_result(std::span<const uint8_t> body, std::vector<uint8_t>& replacement) {
  BodyReader r(body);
  int32_t length;
  std::span<const uint8_t> bytes;
  const bool ok = r.int32(length) && length >= -1 &&
                  (length == -1 || r.bytes(static_cast<size_t>(length), bytes)) && r.at_end();
  if (ok && length == -1) return Action::forward;
  if (ok) {
    const std::string_view value = as_text(bytes);
    const ScanStatus status = scanner_->scan(value, tiers(true), found_);
    if (status == ScanStatus::ok && found_.findings.empty() && found_.saturated.empty()) return Action::forward;
    for (const Finding& f : found_.findings) count(f.pattern);
  }
  // A fastpath result's type and format are the caller's to know, not ours: a value
  // with a finding (or one we could not read) is returned as NULL.
  replacement = MessageBuilder('V').int32(-1).finish();
  return Action::replace;
}

void ResultMasker::copy_out_started(std::span<const uint8_t> body) {
  BodyReader r(body);
  uint8_t format = 0;
  // Unreadable: assume binary, whose layout is checked message by message.
  copy_binary_ = !r.byte(format) || format != 0;
  copy_header_pending_ = copy_binary_;
}

namespace {

constexpr uint8_t kBinaryCopySignature[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};

uint32_t be32(const uint8_t* p) { return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3]; }

}  // namespace

// Splits a binary COPY message into its parts: the file header (first message only),
// whole tuples, and the trailer. False when it is not exactly that (a server that
// splits tuples across messages): such a message cannot be rewritten field by field.
bool ResultMasker::parse_binary_copy(std::span<const uint8_t> body, BinaryCopyMessage& out) const {
  out.header_bytes = 0;
  out.fields.clear();
  out.tuples.clear();
  out.trailer = false;
  const uint8_t* p = body.data();
  const size_t size = body.size();
  size_t pos = 0;
  if (copy_header_pending_) {
    if (size < 19 || std::memcmp(p, kBinaryCopySignature, 11) != 0) return false;
    const uint32_t extension = be32(p + 15);
    if (extension > size - 19) return false;
    pos = out.header_bytes = 19 + extension;
  }
  while (pos < size) {
    if (size - pos < 2) return false;
    const int16_t count = static_cast<int16_t>(p[pos] << 8 | p[pos + 1]);
    pos += 2;
    if (count == -1) {
      out.trailer = true;
      return pos == size;
    }
    if (count < 0) return false;
    out.tuples.push_back(static_cast<uint32_t>(count));
    for (int16_t i = 0; i < count; ++i) {
      if (size - pos < 4) return false;
      const int32_t length = static_cast<int32_t>(be32(p + pos));
      pos += 4;
      if (length < -1 || (length > 0 && static_cast<size_t>(length) > size - pos)) return false;
      BinaryField field{pos, length};
      out.fields.push_back(field);
      if (length > 0) pos += static_cast<size_t>(length);
    }
  }
  return true;
}

// Binary COPY: each field is scanned; one with a finding is sent as NULL, the one value
// every column type accepts (the field's type is not known here, so its bytes cannot be
// rewritten in its layout).
Action ResultMasker::binary_copy_data(std::span<const uint8_t> body, std::vector<uint8_t>& replacement,
                                      ErrorInfo& refusal) {
  if (!parse_binary_copy(body, binary_copy_)) {
    const ScanStatus status = scanner_->scan(as_text(body), tiers(true), found_);
    if (status == ScanStatus::ok && found_.findings.empty() && found_.saturated.empty()) return Action::forward;
    refusal = refusal_error(
        "COPY in binary format returned a value sluice must mask in a message it cannot take apart; "
        "sluice closed the session rather than send it",
        "use COPY ... TO STDOUT in text or CSV format, or SELECT the rows");
    return Action::refuse;
  }
  copy_header_pending_ = false;
  const auto& fields = binary_copy_.fields;
  scan_values_.assign(fields.size(), std::string_view());
  for (size_t i = 0; i < fields.size(); ++i)
    if (fields[i].length > 0)
      scan_values_[i] = as_text(body.subspan(fields[i].offset, static_cast<size_t>(fields[i].length)));
  const ScanStatus status = scanner_->scan_row(scan_values_, tiers(true), found_);
  if (status == ScanStatus::ok && found_.findings.empty() && found_.saturated.empty()) return Action::forward;

  std::vector<bool> masked(fields.size(), status != ScanStatus::ok);
  for (const Finding& f : found_.findings) {
    if (!masked[f.column]) count(f.pattern);
    masked[f.column] = true;
  }
  for (uint32_t column : found_.saturated) masked[column] = true;
  MessageBuilder out('d');
  out.bytes(body.first(binary_copy_.header_bytes));
  size_t field = 0;
  for (uint32_t field_count : binary_copy_.tuples) {
    out.int16(static_cast<int16_t>(field_count));
    for (uint32_t i = 0; i < field_count; ++i, ++field) {
      const BinaryField& f = fields[field];
      if (masked[field] || f.length < 0) {
        if (masked[field] && status != ScanStatus::ok) count_kind(kUnscannedKind);
        out.int32(-1);
      } else {
        out.int32(f.length).bytes(body.subspan(f.offset, static_cast<size_t>(f.length)));
      }
    }
  }
  if (binary_copy_.trailer) out.int16(-1);
  replacement = out.finish();
  if (replacement.empty()) {
    refusal = refusal_error("a masked COPY row would exceed the protocol's message size; sluice closed the session",
                            "select fewer or smaller columns");
    return Action::refuse;
  }
  return Action::replace;
}

Action ResultMasker::copy_data(std::span<const uint8_t> body, std::vector<uint8_t>& replacement, ErrorInfo& refusal) {
  const std::string_view data = as_text(body);
  if (copy_binary_) return binary_copy_data(body, replacement, refusal);
  // Text and CSV: PostgreSQL sends one row per CopyData, so a value never spans two
  // messages. Replacements hold no tab, comma, quote, backslash or newline.
  if (!mask_text(data, masked_text_)) return Action::forward;  // the common case: no copy
  std::string& line = masked_text_;
  if (!line.empty() && data.back() == '\n' && line.back() != '\n') line.push_back('\n');
  replacement = MessageBuilder('d').bytes(line).finish();
  return Action::replace;
}

}  // namespace sluice::mask
