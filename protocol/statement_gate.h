// The session's view of statement policy. protocol/ knows nothing of SQL or rules:
// the session hands every SQL text (Query, Parse) to its gate before forwarding it,
// and the gate answers allow, or a refusal to send in its place. policy/ implements
// it (policy/gate.h); a session without a gate forwards everything.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/settings.h"
#include "protocol/wire.h"

namespace sluice::protocol {

// How a statement was judged, for the audit trail. The views stay valid until the
// gate's next judge() or allow_function_call().
struct Verdict {
  std::string_view action = "unjudged";  // "allow", "block", "review"; "unjudged" without policy
  std::string_view rule;                 // the rule or check that decided, if any
  std::string_view group;                // the group whose policy it is, if any
};

class StatementGate {
 public:
  virtual ~StatementGate() = default;
  // true: forward `sql`. false: `refusal` (severity ERROR) goes to the client instead.
  virtual bool judge(std::string_view sql, ErrorInfo& refusal, Verdict& verdict) = 0;
  // A fastpath FunctionCall ('F'): it names a function by OID, which sluice cannot judge.
  virtual bool allow_function_call(ErrorInfo& refusal, Verdict& verdict) = 0;
  // Longest Query/Parse/FunctionCall body the session may hold to judge; longer ones
  // end the session (54000) without being buffered.
  virtual uint32_t max_statement_message_bytes() const = 0;
  // Startup parameters the backend session must begin with; they replace any the
  // client sent under the same name.
  virtual void backend_parameters(std::vector<std::pair<std::string, std::string>>& parameters) const = 0;
};

// One per shard. open() is called once per session, after the client authenticated.
class StatementGateFactory {
 public:
  virtual ~StatementGateFactory() = default;
  // nullptr + `refusal` (FATAL): the identity may not use this target at all.
  virtual std::unique_ptr<StatementGate> open(const std::string& user, const std::vector<std::string>& groups,
                                              const Target& target, ErrorInfo& refusal) = 0;
};

}  // namespace sluice::protocol
