#include "audit/listing.h"

#include <algorithm>

#include "audit/display.h"

namespace sluice::audit {

using Node = core::JsonDocument::Node;

namespace {

// Column widths of the table; the last column (SQL / detail) takes the rest.
constexpr size_t kTimeWidth = 23, kTypeWidth = 13, kSessionWidth = 16, kWhoWidth = 14, kDecisionWidth = 8,
                 kResultWidth = 12;

size_t count(Node array) {
  size_t n = 0;
  for (Node item = array.first(); item; item = item.next()) ++n;
  return n;
}

// Appends ", <label><value>" when the value is present.
void add_part(std::string& out, std::string_view label, std::string_view value) {
  if (value.empty()) return;
  if (!out.empty()) out += ", ";
  out += label;
  out += value;
}

bool contains_ignoring_case(std::string_view haystack, std::string_view needle) {
  const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                     [&](char a, char b) { return lower(a) == lower(b); }) != haystack.end();
}

// The SQL of a statement record as text to show: `sql`, or the base64 of SQL that was
// not valid UTF-8.
std::string statement_text(Node record) {
  if (Node sql = record["sql"]) return std::string(sql.text());
  if (Node base64 = record["sql_base64"]) return "(not UTF-8, base64) " + std::string(base64.text());
  return std::string(record["protocol"].text());
}

// The outcome in a word, for the RESULT column.
std::string outcome_result(Node outcome) {
  if (Node sqlstate = outcome["sqlstate"]) return "ERROR " + std::string(sqlstate.text());
  const Node tags = outcome["tags"];
  const size_t tag_count = count(tags);
  if (tag_count == 0) return std::string(outcome["rows"].text()) + " rows";
  std::string last;
  for (Node tag = tags.first(); tag; tag = tag.next()) last = tag.text();
  return tag_count == 1 ? last : last + " +" + std::to_string(tag_count - 1);
}

std::string outcome_detail(Node outcome) {
  std::string out;
  add_part(out, "ERROR ", outcome["sqlstate"].text());
  add_part(out, "", join_texts(outcome["tags"], "; "));
  add_part(out, "rows ", outcome["rows"].text());
  add_part(out, "bytes ", outcome["bytes"].text());
  if (Node duration = outcome["duration_us"]) add_part(out, "", display_duration(static_cast<uint64_t>(duration.integer())));
  return out;
}

// The main fields of a record that is not a statement, as one line.
std::string record_detail(Node record, std::string_view type) {
  std::string out;
  if (type == "statement") return statement_text(record);
  if (type == "outcome") return outcome_detail(record);
  if (type == "session_start" || type == "auth_failure") {
    add_part(out, "target ", record["target"].text());
    add_part(out, "client ", record["client"].text());
    add_part(out, "groups ", join_texts(record["groups"], ","));
    add_part(out, "", record["auth"].text());
    if (record["tls"].boolean()) add_part(out, "", "tls");
    add_part(out, "", record["reason"].text());
  } else if (type == "session_end") {
    add_part(out, "", record["reason"].text());
    add_part(out, "statements ", record["statements"].text());
    if (Node duration = record["duration_us"]) add_part(out, "", display_duration(static_cast<uint64_t>(duration.integer())));
  } else if (type == "start") {
    add_part(out, "pid ", record["pid"].text());
    add_part(out, "version ", record["version"].text());
    add_part(out, "mode ", record["mode"].text());
    if (record["torn_bytes"].integer() > 0) add_part(out, "torn bytes truncated ", record["torn_bytes"].text());
  } else if (type == "stop") {
    add_part(out, "", record["reason"].text());
  } else if (type == "retention") {
    for (Node removed = record["removed"].first(); removed; removed = removed.next())
      add_part(out, "removed ", std::string(removed["file"].text()) + " (records " +
                                    std::string(removed["first"].text()) + ".." + std::string(removed["last"].text()) + ")");
  }
  return out;
}

std::string who(Node record, std::string_view type, std::string_view user) {
  if (type != "statement" && type != "outcome") return std::string(user);
  const std::string seq = "#" + std::string(record["seq"].text());
  return user.empty() ? seq : std::string(user) + " " + seq;
}

}  // namespace

bool matches(const SearchFilter& filter, const RecordFacts& facts) {
  const auto same = [](const std::string& wanted, const std::string& value) { return wanted.empty() || wanted == value; };
  if (!same(filter.type, facts.type) || !same(filter.session, facts.session) || !same(filter.user, facts.user) ||
      !same(filter.target, facts.target) || !same(filter.decision, facts.decision))
    return false;
  if (!filter.text.empty() && !contains_ignoring_case(facts.sql, filter.text)) return false;
  if (!filter.since && !filter.until) return true;
  const std::optional<int64_t> time = parse_time(facts.ts);
  return time && (!filter.since || *time >= *filter.since) && (!filter.until || *time < *filter.until);
}

namespace {

Row make_row(Node record, const RecordFacts& facts, std::string_view line) {
  Row row;
  row.time = display_time(facts.ts);
  row.type = facts.type;
  row.session = facts.session;
  row.who = who(record, facts.type, facts.user);
  row.decision = record["decision"].text();
  row.detail = record_detail(record, facts.type);
  row.lines.emplace_back(line);
  return row;
}

}  // namespace

bool Listing::add(std::string_view line, std::vector<Row>& ready) {
  if (!document_.load_json(line) || !document_.root().is_object()) return false;
  const Node record = document_.root();
  RecordFacts facts;
  facts.type = record["type"].text();
  facts.ts = record["ts"].text();
  facts.session = record["session"].text();
  // A start record means sluiced restarted: every session before it is gone, and
  // their statements will never see an outcome.
  if (facts.type == "start") restart();
  if (facts.type == "session_start") {
    sessions_[facts.session] = {std::string(record["user"].text()), std::string(record["target"].text())};
  }
  if (auto it = sessions_.find(facts.session); it != sessions_.end()) {
    facts.user = it->second.user;
    facts.target = it->second.target;
  } else {
    facts.user = record["user"].text();  // auth_failure names its user and target itself
    facts.target = record["target"].text();
  }

  line_ = line;
  if (facts.type == "statement") {
    statement(record, facts);
  } else if (facts.type == "outcome") {
    outcome(record, facts);
  } else if (matches(options_.filter, facts)) {
    hold(make_row(record, facts, line), true);
  }
  if (facts.type == "session_end") forget_session(facts.session);
  bound();
  release(ready, false);
  return true;
}

void Listing::statement(Node record, RecordFacts facts) {
  facts.decision = record["decision"].text();
  facts.sql = statement_text(record);
  OpenStatement open{facts.decision, facts.sql, matches(options_.filter, facts), UINT64_MAX};
  if (open.matched) {
    const uint64_t id = hold(make_row(record, facts, line_), !options_.fold_outcomes);
    if (options_.fold_outcomes) open.row = id;
  }
  open_[{facts.session, static_cast<uint64_t>(record["seq"].integer())}] = std::move(open);
}

void Listing::outcome(Node record, RecordFacts facts) {
  const auto it = open_.find({facts.session, static_cast<uint64_t>(record["seq"].integer())});
  if (it != open_.end()) {
    facts.decision = std::move(it->second.decision);
    facts.sql = std::move(it->second.sql);
    Held* statement = awaiting_outcome(it->second.row);
    open_.erase(it);
    if (statement != nullptr) {  // fold into the statement's row, which may now go out
      statement->row.result = outcome_result(record);
      statement->row.lines.emplace_back(line_);
      statement->complete = true;
      return;
    }
  }
  if (matches(options_.filter, facts)) {
    Row row = make_row(record, facts, line_);
    row.result = outcome_result(record);
    hold(std::move(row), true);
  }
}

void Listing::forget_session(const std::string& session) {
  sessions_.erase(session);
  auto it = open_.lower_bound({session, 0});
  while (it != open_.end() && it->first.first == session) {
    if (Held* statement = awaiting_outcome(it->second.row)) statement->complete = true;
    it = open_.erase(it);
  }
}

void Listing::restart() {
  for (Held& h : held_) h.complete = true;
  sessions_.clear();
  open_.clear();
}

uint64_t Listing::hold(Row row, bool complete) {
  held_.push_back({std::move(row), complete});
  return released_ + held_.size() - 1;
}

Listing::Held* Listing::awaiting_outcome(uint64_t id) {
  if (id < released_ || id - released_ >= held_.size()) return nullptr;
  Held& h = held_[id - released_];
  return h.complete ? nullptr : &h;
}

void Listing::release(std::vector<Row>& ready, bool everything) {
  while (!held_.empty() && (everything || held_.front().complete)) {
    ready.push_back(std::move(held_.front().row));
    held_.pop_front();
    ++released_;
  }
}

void Listing::bound() {
  // Sessions that never ended (a trail cut short) must not grow the join forever.
  while (sessions_.size() > options_.max_open) sessions_.erase(sessions_.begin());
  while (open_.size() > options_.max_open) open_.erase(open_.begin());
  for (size_t i = 0; i < held_.size() && held_.size() - i > options_.max_open; ++i) held_[i].complete = true;
}

void Listing::finish(std::vector<Row>& ready) { release(ready, true); }

// ---------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------

namespace {

std::string layout(const std::string (&columns)[7], size_t width) {
  static constexpr size_t kWidths[] = {kTimeWidth, kTypeWidth, kSessionWidth, kWhoWidth, kDecisionWidth, kResultWidth};
  std::string out;
  for (size_t i = 0; i < 6; ++i) {
    out += pad(terminal_safe(columns[i], Newlines::symbol), kWidths[i]);
    out += ' ';
  }
  out += terminal_safe(columns[6], Newlines::symbol);
  return width == 0 ? out : fit_width(out, width);
}

}  // namespace

std::string format_header(size_t width) {
  return layout({"TIME", "TYPE", "SESSION", "USER/SEQ", "DECISION", "RESULT", "SQL / DETAIL"}, width);
}

std::string format_row(const Row& row, size_t width) {
  return layout({row.time, row.type, row.session.empty() ? "-" : row.session, row.who, row.decision, row.result,
                 row.detail},
                width);
}

}  // namespace sluice::audit
