// One session's audit records (docs/audit.md): session start and end, a statement
// record for every Query, Execute and FunctionCall before it is forwarded, and the
// statement's outcome, followed from the server's replies.
//
// The session calls it with the client messages it forwards (already judged) and the
// server messages it relays; this class knows the extended protocol's bookkeeping
// (prepared statement texts, portals and their parameters) so the record of an
// Execute carries the SQL and parameters that run.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "audit/record.h"
#include "audit/writer.h"
#include "protocol/result_filter.h"
#include "protocol/statement_gate.h"

namespace sluice::protocol {

class SessionAudit {
 public:
  SessionAudit(audit::ShardLog& log, std::string client) : log_(log), client_(std::move(client)) {}

  // A failed login (nothing of the secret is recorded).
  // `auth`: "scram-sha-256" or "oidc". `reason` never holds the secret.
  static void auth_failed(audit::ShardLog& log, std::string_view client, std::string_view user, std::string_view target,
                          std::string_view reason, std::string_view auth = "scram-sha-256");

  // clear_text: results of this session are not masked (masking is off, or one of the
  // identity's groups is exempt); recorded so break-glass access is visible.
  // tls_records (with tls): who frames the records, "kernel" or "userspace" (or mixed).
  void session_started(std::string_view user, const std::vector<std::string>& groups, std::string_view target,
                       bool tls, bool clear_text = false, std::string_view auth = "scram-sha-256",
                       std::string_view tls_records = "userspace");
  void session_ended(std::string_view reason);

  // A client message about to be forwarded (or, for a refused statement, replaced):
  // writes the statement record for a Query, Execute or FunctionCall, and for a Parse
  // that policy refused. Returns the ticket of the record written, 0 if none.
  uint64_t on_client_message(uint8_t type, std::span<const uint8_t> body, const Verdict& verdict);

  // Server messages in the ready state, in order: every header (for result bytes and
  // rows), then the bodies the outcome needs.
  void on_server_header(uint8_t type, uint32_t body_length);
  void on_command_complete(std::span<const uint8_t> body);
  void on_error(std::string_view sqlstate);  // the SQLSTATE the client was sent
  void on_execute_ended();                   // EmptyQueryResponse, PortalSuspended
  // Values the result filter masked in what the client was just sent, by kind.
  void on_masked(const std::vector<std::pair<std::string, uint64_t>>& counts);
  // Values of columns the identity is exempt from masking, sent in clear text, by kind.
  void on_clear(const std::vector<std::pair<std::string, uint64_t>>& counts);
  void on_ready_for_query();

  void add_client_bytes(uint64_t n) { bytes_in_ += n; }
  // Bind parameters are recorded through this (masked where it finds something);
  // null: recorded as sent. Outlives the SessionAudit.
  void set_parameter_masker(ResultFilter* masker) { parameter_masker_ = masker; }
  uint64_t statements() const { return seq_; }

 private:
  struct Prepared {
    std::string sql;
    std::string action, rule, group;  // the verdict at Parse
  };
  struct Portal {
    std::string statement;
    std::string params_json;  // the `params` array, ready to paste
  };
  // A statement record whose outcome is still open. Invariant: in the order the server
  // answers; `ends_at` is the number of ReadyForQuery messages after which it is over.
  struct Open {
    uint64_t seq;
    uint64_t ends_at;
    int64_t started_us;
    bool extended;  // an Execute (or refused Parse): complete at its own result
    std::vector<std::string> tags;
    uint64_t rows = 0;
    uint64_t bytes = 0;
    std::string sqlstate;
    std::vector<std::pair<std::string, uint64_t>> masked;  // by kind, in order first seen
    std::vector<std::pair<std::string, uint64_t>> clear;   // exempt columns sent in clear text, by kind
  };

  uint64_t record_query(std::span<const uint8_t> body, const Verdict& verdict);
  uint64_t record_refused_parse(std::span<const uint8_t> body, const Verdict& verdict);
  void remember_parse(std::span<const uint8_t> body, const Verdict& verdict);
  void remember_bind(std::span<const uint8_t> body);
  uint64_t record_execute(std::span<const uint8_t> body);
  uint64_t record_function_call(const Verdict& verdict);
  void forget(std::span<const uint8_t> close_body);
  // Starts a statement body with the fields every statement record has.
  audit::JsonWriter begin_statement(std::string& body, std::string_view protocol);
  uint64_t finish_statement(std::string& body, bool extended, uint64_t ends_at);
  void write_outcome(const Open& open);
  void close_front();

  audit::ShardLog& log_;
  const std::string client_;
  std::string session_id_;  // empty until session_started
  int64_t started_us_ = 0;
  uint64_t seq_ = 0;
  uint64_t bytes_in_ = 0, bytes_out_ = 0;
  uint64_t requests_ = 0;  // Query, Sync, FunctionCall seen (each earns a ReadyForQuery)
  uint64_t readies_ = 0;
  std::unordered_map<std::string, Prepared> prepared_;
  std::unordered_map<std::string, Portal> portals_;
  ResultFilter* parameter_masker_ = nullptr;
  std::string masked_param_;  // scratch
  std::deque<Open> open_;
  std::string segment_sqlstate_;  // an error of the current pipeline segment
};

}  // namespace sluice::protocol
