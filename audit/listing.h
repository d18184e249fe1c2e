// The record listing behind `sluicectl audit tail` and `audit search`: one row per
// record, with the facts a reader wants joined in from other records (the user and
// target from the session's session_start; for search, the statement's outcome).
// Records are fed in trail order; rows come out in trail order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json.h"

namespace sluice::audit {

// What search filters on; an empty member matches every record. user and target come
// from the session's session_start; decision and text (a case-insensitive substring of
// the SQL) from the statement, which an outcome inherits.
struct SearchFilter {
  std::string user, target, session, decision, type, text;
  std::optional<int64_t> since, until;  // Unix microseconds; since inclusive, until exclusive
};

// What the filter looks at: a record's own fields, with the joined ones filled in.
struct RecordFacts {
  std::string type, ts, session, user, target, decision, sql;
};
bool matches(const SearchFilter& filter, const RecordFacts& facts);

// One row of the listing, before layout. Texts are as recorded; format_row() makes
// them safe for a terminal.
struct Row {
  std::string time, type, session;
  std::string who;       // the user, "#seq" or "user #seq"
  std::string decision;  // statements: allow/block/review/unjudged
  std::string result;    // the outcome in a word: "SELECT 3", "ERROR 42501"
  std::string detail;    // statements: the SQL; other records: their main fields
  std::vector<std::string> lines;  // the record's JSON line (then its folded outcome's)
};

class Listing {
 public:
  struct Options {
    SearchFilter filter;
    // Search: an outcome joins its statement's row (which waits for it) instead of
    // being a row of its own. Tail shows records as they come.
    bool fold_outcomes = false;
    // Bound on what the join remembers (open sessions, statements awaiting an outcome,
    // rows held back); beyond it the oldest is released unjoined.
    size_t max_open = 65'536;
  };

  explicit Listing(Options options) : options_(std::move(options)) {}

  // Takes one line of the trail. Rows that are complete go to `ready`, in trail order.
  // False when the line is not a JSON object (nothing is listed for it).
  bool add(std::string_view line, std::vector<Row>& ready);

  // End of input: rows still waiting for an outcome are released as they are.
  void finish(std::vector<Row>& ready);

 private:
  struct Session {
    std::string user, target;
  };
  // A statement whose outcome has not been seen yet.
  struct OpenStatement {
    std::string decision, sql;  // inherited by its outcome for filtering
    bool matched = false;
    uint64_t row = UINT64_MAX;  // id of its row while held back for the outcome
  };
  struct Held {
    Row row;
    bool complete = false;
  };
  using StatementKey = std::pair<std::string, uint64_t>;  // session, seq

  void statement(core::JsonDocument::Node record, RecordFacts facts);
  void outcome(core::JsonDocument::Node record, RecordFacts facts);
  void forget_session(const std::string& session);
  void restart();
  uint64_t hold(Row row, bool complete);
  Held* awaiting_outcome(uint64_t id);  // the held row with this id, if still incomplete
  void release(std::vector<Row>& ready, bool everything);
  void bound();

  Options options_;
  core::JsonDocument document_;
  std::map<std::string, Session, std::less<>> sessions_;
  std::map<StatementKey, OpenStatement> open_;
  std::string_view line_;  // the line add() is working on
  std::deque<Held> held_;    // rows in trail order; the front goes out once complete
  uint64_t released_ = 0;    // id of held_.front()
};

// The column titles, and one row laid out in columns, cut to `width` columns (0: no
// limit).
std::string format_header(size_t width);
std::string format_row(const Row& row, size_t width);

}  // namespace sluice::audit
