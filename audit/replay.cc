#include "audit/replay.h"

#include <map>

#include "audit/display.h"

namespace sluice::audit {

using Node = core::JsonDocument::Node;

namespace {

std::string safe(std::string_view text) { return terminal_safe(text, Newlines::symbol); }

void header(std::string& out, std::string_view session, Node start, Node end) {
  const auto field = [&](std::string_view label, std::string_view value) {
    out += "-- " + pad(label, 8) + " " + safe(value) + "\n";
  };
  field("session", session);
  if (start) {
    field("user", start["user"].text());
    field("groups", join_texts(start["groups"], ", "));
    field("client", std::string(start["client"].text()) + (start["tls"].boolean() ? " (TLS)" : ""));
    field("target", start["target"].text());
    field("start", display_time(start["ts"].text()));
  } else {
    field("start", "not in the trail (its session_start record was removed, or precedes the oldest segment)");
  }
  if (end) {
    field("end", display_time(end["ts"].text()));
    field("reason", end["reason"].text());
  } else {
    field("end", "not recorded (the session was still open, or sluiced stopped first)");
  }
}

// "-- #3  2026-12-06 08:01:53.123  allow (rule)  12.3 ms"
std::string statement_title(Node statement, Node outcome) {
  std::string title = "-- #" + std::string(statement["seq"].text()) + "  " + display_time(statement["ts"].text()) +
                      "  " + std::string(statement["decision"].text());
  if (Node rule = statement["rule"]) title += " (" + std::string(rule.text()) + ")";
  if (Node duration = outcome["duration_us"]) title += "  " + display_duration(static_cast<uint64_t>(duration.integer()));
  return safe(title);
}

void sql_text(std::string& out, Node statement) {
  if (Node sql = statement["sql"]) {
    out += terminal_safe(sql.text(), Newlines::keep);
  } else if (Node base64 = statement["sql_base64"]) {
    out += "-- SQL not valid UTF-8, base64: " + safe(base64.text());
  } else {
    out += "-- " + safe(statement["protocol"].text()) + " (no SQL text)";
  }
  if (out.back() != '\n') out += '\n';
}

// A Bind parameter as docs/audit.md records it: text, null, binary, or a digest.
std::string parameter_text(Node parameter) {
  if (parameter.type() == core::JsonDocument::Type::null) return "NULL";
  if (Node base64 = parameter["base64"]) return "(binary, base64 " + std::string(base64.text()) + ")";
  if (Node bytes = parameter["bytes"])
    return "(" + std::string(bytes.text()) + " bytes, sha256 " + std::string(parameter["sha256"].text()) + ")";
  std::string quoted = "'";
  for (const char c : parameter.text()) quoted += c == '\'' ? std::string("''") : std::string(1, c);
  return quoted + "'";
}

void parameters(std::string& out, Node params) {
  std::string line;
  int number = 1;
  for (Node parameter = params.first(); parameter; parameter = parameter.next(), ++number)
    line += (line.empty() ? "" : ", ") + ("$" + std::to_string(number)) + " = " + parameter_text(parameter);
  if (!line.empty()) out += "-- params: " + safe(line) + "\n";
}

std::string row_count(size_t rows) { return "(" + std::to_string(rows) + (rows == 1 ? " row)\n" : " rows)\n"); }

// Captured result rows (an array of arrays of strings or nulls), aligned as psql does;
// NULL shows as an empty cell, as in psql.
void captured_rows(std::string& out, Node rows) {
  if (!rows.is_array()) return;
  std::vector<std::vector<std::string>> cells;
  std::vector<size_t> widths;
  for (Node row = rows.first(); row; row = row.next()) {
    auto& line = cells.emplace_back();
    for (Node value = row.first(); value; value = value.next()) {
      line.push_back(safe(value.text()));
      if (widths.size() < line.size()) widths.push_back(0);
      widths[line.size() - 1] = std::max(widths[line.size() - 1], display_width(line.back()));
    }
  }
  for (const auto& line : cells) {
    std::string text;
    for (size_t i = 0; i < line.size(); ++i)
      text += (i == 0 ? " " : " | ") + (i + 1 == line.size() ? line[i] : pad(line[i], widths[i]));
    out += text + "\n";
  }
  out += row_count(cells.size());
}

void outcome_text(std::string& out, Node outcome) {
  if (!outcome) {
    out += "-- no outcome recorded (the session ended before the result was complete)\n";
  } else if (Node sqlstate = outcome["sqlstate"]) {
    out += "ERROR: " + safe(sqlstate.text()) + "\n";
  } else if (outcome["tags"].first()) {
    for (Node tag = outcome["tags"].first(); tag; tag = tag.next()) out += safe(tag.text()) + "\n";
  } else if (Node rows = outcome["rows"]) {
    out += row_count(static_cast<size_t>(rows.integer()));
  }
}

}  // namespace

bool Transcript::add(std::string_view line) {
  if (!document_.load_json(line) || !document_.root().is_object()) return false;
  if (document_.root()["session"].text() == session_) lines_.emplace_back(line);
  return true;
}

std::string Transcript::render() const {
  // First find the records the others refer to: the session's start and end, and each
  // statement's outcome by seq. Each needs its own document to stay readable.
  core::JsonDocument start, end, statement, outcome, scan;
  std::map<std::string, size_t, std::less<>> outcomes;  // seq -> index in lines_
  for (size_t i = 0; i < lines_.size(); ++i) {
    scan.load_json(lines_[i]);
    const std::string_view type = scan.root()["type"].text();
    if (type == "session_start") start.load_json(lines_[i]);
    if (type == "session_end") end.load_json(lines_[i]);
    if (type == "outcome") outcomes[std::string(scan.root()["seq"].text())] = i;
  }
  std::string out;
  header(out, session_, start.root(), end.root());
  for (const std::string& line : lines_) {
    statement.load_json(line);
    const Node record = statement.root();
    if (record["type"].text() != "statement") continue;
    const auto found = outcomes.find(record["seq"].text());
    if (found != outcomes.end())
      outcome.load_json(lines_[found->second]);
    else
      outcome.clear();
    out += '\n';
    out += statement_title(record, outcome.root());
    out += '\n';
    sql_text(out, record);
    parameters(out, record["params"]);
    captured_rows(out, record["rows"]);
    outcome_text(out, outcome.root());
  }
  return out;
}

}  // namespace sluice::audit
